/*
 * dashboard.js - charts and filters of the tlsrptd dashboard (lib/web/site.c).
 *
 * Report text reaches the page only as text: data come from
 * <script type="application/json"> elements through JSON.parse, and this
 * script writes nothing but textContent and attributes of its own choosing.
 * Chart.js (Debian's libjs-chart.js, copied to assets/chart.min.js) draws
 * on canvases; each chart has a table with the same numbers.
 */
(function () {
  'use strict';

  function $(id) { return document.getElementById(id); }

  function data(id) {
    var el = $(id);
    return el ? JSON.parse(el.textContent) : null;
  }

  /* ---- a UTC date adapter for Chart.js's time scale ---- */
  var MS = { millisecond: 1, second: 1e3, minute: 6e4, hour: 36e5, day: 864e5, week: 6048e5 };
  var MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

  function pad(n) { return (n < 10 ? '0' : '') + n; }

  function ymd(d) {
    return d.getUTCFullYear() + '-' + pad(d.getUTCMonth() + 1) + '-' + pad(d.getUTCDate());
  }

  function format(t, f) {
    var d = new Date(t);
    switch (f) {
      case 'year': return String(d.getUTCFullYear());
      case 'quarter': return 'Q' + (Math.floor(d.getUTCMonth() / 3) + 1) + ' ' + d.getUTCFullYear();
      case 'month': return MONTHS[d.getUTCMonth()] + ' ' + d.getUTCFullYear();
      case 'week':
      case 'day': return ymd(d);
      default: return ymd(d) + ' ' + pad(d.getUTCHours()) + ':' + pad(d.getUTCMinutes()) + ' UTC';
    }
  }

  function startOf(t, unit, weekday) {
    var d = new Date(t);
    switch (unit) {
      case 'second': d.setUTCMilliseconds(0); break;
      case 'minute': d.setUTCSeconds(0, 0); break;
      case 'hour': d.setUTCMinutes(0, 0, 0); break;
      case 'day': d.setUTCHours(0, 0, 0, 0); break;
      case 'week':
      case 'isoWeek': {
        var first = unit === 'isoWeek' ? (typeof weekday === 'number' ? weekday : 1) : 0;
        d.setUTCHours(0, 0, 0, 0);
        d.setUTCDate(d.getUTCDate() - ((d.getUTCDay() - first + 7) % 7));
        break;
      }
      case 'month': d.setUTCHours(0, 0, 0, 0); d.setUTCDate(1); break;
      case 'quarter':
        d.setUTCHours(0, 0, 0, 0); d.setUTCDate(1);
        d.setUTCMonth(d.getUTCMonth() - d.getUTCMonth() % 3);
        break;
      case 'year': d.setUTCHours(0, 0, 0, 0); d.setUTCMonth(0, 1); break;
    }
    return d.getTime();
  }

  function add(t, n, unit) {
    var d = new Date(t);
    if (MS[unit]) return t + n * MS[unit];
    if (unit === 'month') d.setUTCMonth(d.getUTCMonth() + n);
    else if (unit === 'quarter') d.setUTCMonth(d.getUTCMonth() + 3 * n);
    else if (unit === 'year') d.setUTCFullYear(d.getUTCFullYear() + n);
    return d.getTime();
  }

  function diff(a, b, unit) {
    if (MS[unit]) return (a - b) / MS[unit];
    var x = new Date(a), y = new Date(b);
    var months = (x.getUTCFullYear() - y.getUTCFullYear()) * 12 + x.getUTCMonth() - y.getUTCMonth();
    if (unit === 'month') return months;
    if (unit === 'quarter') return months / 3;
    if (unit === 'year') return months / 12;
    return 0;
  }

  function parse(v) {
    if (v === null || v === undefined) return null;
    if (typeof v === 'number') return v;
    if (v instanceof Date) return v.getTime();
    if (typeof v === 'string') {
      var t = Date.parse(/^\d{4}-\d\d-\d\d$/.test(v) ? v + 'T00:00:00Z' : v);
      return isNaN(t) ? null : t;
    }
    return null;
  }

  function registerAdapter() {
    Chart._adapters._date.override({
      formats: function () {
        return { datetime: 'datetime', millisecond: 'datetime', second: 'datetime',
          minute: 'datetime', hour: 'datetime', day: 'day', week: 'week', month: 'month',
          quarter: 'quarter', year: 'year' };
      },
      parse: parse,
      format: format,
      add: add,
      diff: diff,
      startOf: startOf,
      endOf: function (t, unit) { return add(startOf(t, unit), 1, unit) - 1; }
    });
  }

  /* ---- charts ---- */
  var GREEN = '#1b7f3b', RED = '#c0262d', AMBER = '#a15c00', GREY = '#5f6b7a';
  var charts = {};

  function timeAxis(points) {
    var axis = { type: 'time', offset: true, grid: { display: false },
      time: { tooltipFormat: 'day', minUnit: 'day' },
      ticks: { autoSkip: true, maxRotation: 0, color: '#333' } };
    if (points.length) {
      axis.min = parse(points[0].day) - MS.day;
      axis.max = parse(points[points.length - 1].day) + MS.day;
    }
    return axis;
  }

  /* Bars at least 3 px wide however long the axis: sparse days stay visible. */
  function barWidth(canvas, pts) {
    if (!pts.length) return 10;
    var span = (parse(pts[pts.length - 1].day) - parse(pts[0].day)) / MS.day + 3;
    var w = (canvas.parentNode.clientWidth || 800) / span * 0.7;
    return Math.max(3, Math.min(14, Math.floor(w)));
  }

  function daysChart() {
    var canvas = $('chart-days'), d = data('chart-data');
    if (!canvas || !d || !window.Chart) return;
    var log = !($('linear-scale') && $('linear-scale').checked);
    var pts = d.days;
    function series(key) {
      return pts.map(function (p) {
        var v = p[key];
        return { x: parse(p.day), y: log && v === 0 ? null : v };
      });
    }
    var scales = { x: timeAxis(pts) };
    if (log) {
      scales.y = { type: 'logarithmic', min: 0.5, title: { display: true, text: 'sessions (log scale)' },
        ticks: { color: '#333', callback: function (v) {
          var e = Math.log10(v);
          return v >= 1 && Math.abs(e - Math.round(e)) < 1e-9 ? Number(v).toLocaleString('en') : '';
        } } };
    } else {
      scales.y = { type: 'linear', beginAtZero: true, position: 'left',
        title: { display: true, text: 'successful sessions' }, ticks: { color: '#333', precision: 0 } };
      scales.y1 = { type: 'linear', beginAtZero: true, position: 'right', suggestedMax: 1,
        grid: { drawOnChartArea: false },
        title: { display: true, text: 'failed sessions', color: RED }, ticks: { color: RED, precision: 0 } };
    }
    var bw = barWidth(canvas, pts);
    if (charts.days) charts.days.destroy();
    charts.days = new Chart(canvas, {
      type: 'bar',
      data: { datasets: [
        { label: 'successful sessions', data: series('successful'), backgroundColor: GREEN,
          yAxisID: 'y', barThickness: bw, minBarLength: 2 },
        { label: 'failed sessions', data: series('failed'), backgroundColor: RED,
          yAxisID: log ? 'y' : 'y1', barThickness: bw, minBarLength: 2 }
      ] },
      options: { animation: false, responsive: true, maintainAspectRatio: false,
        parsing: false, normalized: true, scales: scales,
        plugins: { legend: { labels: { color: '#222' } } } }
    });
  }

  function typesChart() {
    var canvas = $('chart-types'), d = data('chart-data');
    if (!canvas || !d || !window.Chart || !d.result_types.length) return;
    var rows = d.result_types.slice(0, 12);
    charts.types = new Chart(canvas, {
      type: 'bar',
      data: { labels: rows.map(function (r) { return r.k; }),
        datasets: [{ label: 'failed sessions', data: rows.map(function (r) { return r.n; }),
          backgroundColor: RED }] },
      options: { indexAxis: 'y', animation: false, responsive: true, maintainAspectRatio: false,
        scales: { x: { beginAtZero: true, ticks: { precision: 0, color: '#333' } },
          y: { ticks: { color: '#222' } } },
        plugins: { legend: { display: false } } }
    });
  }

  function sentChart() {
    var canvas = $('chart-sent'), d = data('sent-data');
    if (!canvas || !d || !window.Chart) return;
    var pts = d.days;
    function series(key) {
      return pts.map(function (p) { return { x: parse(p.day), y: p[key] }; });
    }
    var x = timeAxis(pts);
    x.stacked = true;
    charts.sent = new Chart(canvas, {
      type: 'bar',
      data: { datasets: [
        { label: 'delivered', data: series('delivered'), backgroundColor: GREEN, maxBarThickness: 14 },
        { label: 'pending', data: series('pending'), backgroundColor: AMBER, maxBarThickness: 14 },
        { label: 'failed', data: series('failed'), backgroundColor: RED, maxBarThickness: 14 },
        { label: 'no destination', data: series('no-destinations'), backgroundColor: GREY, maxBarThickness: 14 }
      ] },
      options: { animation: false, responsive: true, maintainAspectRatio: false, parsing: false,
        scales: { x: x, y: { stacked: true, beginAtZero: true, ticks: { precision: 0, color: '#333' },
          title: { display: true, text: 'reports' } } },
        plugins: { legend: { labels: { color: '#222' } } } }
    });
  }

  /* ---- filters: rows stay in the page, hidden ones get the hidden attribute ---- */
  function show(el, on) { if (on) el.removeAttribute('hidden'); else el.setAttribute('hidden', ''); }

  function count(out, shown, total, what) {
    if (out) out.textContent = shown + ' of ' + total + ' ' + what + ' shown';
  }

  function overviewFilters() {
    var text = $('f-domain'), failing = $('f-failing'), cls = $('f-class');
    if (!text || !failing || !cls) return;
    function apply() {
      var q = text.value.trim().toLowerCase(), shown = 0, total = 0;
      document.querySelectorAll('section.cls').forEach(function (sec) {
        var on = cls.value === 'all' || cls.value === sec.getAttribute('data-class');
        show(sec, on);
        sec.querySelectorAll('tbody tr').forEach(function (tr) {
          var ok = (!q || tr.getAttribute('data-domain').indexOf(q) >= 0) &&
            (!failing.checked || Number(tr.getAttribute('data-failed')) > 0);
          show(tr, ok);
          if (on) { total++; if (ok) shown++; }
        });
      });
      count($('f-count'), shown, total, 'domains');
    }
    [text, failing, cls].forEach(function (el) {
      el.addEventListener('input', apply);
      el.addEventListener('change', apply);
    });
    document.querySelectorAll('form.filters').forEach(function (f) {
      f.addEventListener('submit', function (e) { e.preventDefault(); });
    });
    apply();
  }

  function tableFilter(tableId, controls, match, out, what) {
    var table = $(tableId);
    if (!table || controls.some(function (c) { return !c; })) return;
    function apply() {
      var shown = 0, total = 0;
      table.querySelectorAll('tbody tr').forEach(function (tr) {
        var ok = match(tr);
        show(tr, ok);
        total++;
        if (ok) shown++;
      });
      count($(out), shown, total, what);
    }
    controls.forEach(function (el) {
      el.addEventListener('input', apply);
      el.addEventListener('change', apply);
      if (el.form) el.form.addEventListener('submit', function (e) { e.preventDefault(); });
    });
    apply();
  }

  function start() {
    if (window.Chart) {
      registerAdapter();
      Chart.defaults.font.family = 'system-ui, sans-serif';
    }
    daysChart();
    typesChart();
    sentChart();
    if ($('linear-scale')) $('linear-scale').addEventListener('change', daysChart);
    overviewFilters();
    var org = $('f-org'), rfail = $('f-rfailing');
    tableFilter('reports', [org, rfail], function (tr) {
      return (!org.value || tr.getAttribute('data-org') === org.value) &&
        (!rfail.checked || Number(tr.getAttribute('data-failed')) > 0);
    }, 'r-count', 'reports');
    var dest = $('f-dest'), dfail = $('f-dfailing');
    tableFilter('destinations', [dest, dfail], function (tr) {
      var q = dest.value.trim().toLowerCase();
      return (!q || tr.getAttribute('data-dest').toLowerCase().indexOf(q) >= 0) &&
        (!dfail.checked || Number(tr.getAttribute('data-failed')) > 0);
    }, 'd-count', 'destinations');
    document.documentElement.setAttribute('data-ready', '1');
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
}());
