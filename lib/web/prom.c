/*
 * prom - Prometheus text exposition format. See prom.h.
 *
 * SECURITY: label values come from received reports; escaping keeps each
 * sample on one line and each value inside its quotes, and terminal
 * controls (termesc.h) become U+FFFD, so the text is safe to display and
 * tlsrptctl's output filter never has to touch it.
 */
#include "prom.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "html.h"
#include "termesc.h"

void prom_family(struct buf *b, const char *name, const char *type, const char *help)
{
	buf_printf(b, "# HELP %s ", name);
	for (const char *p = help; *p; p++) {	/* HELP escapes \ and newline */
		if (*p == '\\')
			buf_adds(b, "\\\\");
		else if (*p == '\n')
			buf_adds(b, "\\n");
		else
			buf_addc(b, *p);
	}
	buf_printf(b, "\n# TYPE %s %s\n", name, type);
}

static void label_value(struct buf *b, const char *v)
{
	const unsigned char *p = (const unsigned char *)(v ? v : "");
	size_t out = 0;

	while (*p && out < PROM_LABEL_MAX) {
		uint32_t cp;
		size_t n = html_utf8_len(p, &cp);

		if (n == 0 || termesc_unsafe(cp)) {	/* no terminal controls either */
			buf_adds(b, "\xef\xbf\xbd");
			p += n ? n : 1;
			out += 3;
			continue;
		}
		if (cp == '\\')
			buf_adds(b, "\\\\");
		else if (cp == '"')
			buf_adds(b, "\\\"");
		else if (cp == '\n')
			buf_adds(b, "\\n");
		else
			buf_add(b, p, n);
		p += n;
		out += n;
	}
}

void prom_sample(struct buf *b, const char *name, const char *const *labels, double value)
{
	buf_adds(b, name);
	if (labels && labels[0]) {
		buf_addc(b, '{');
		for (size_t i = 0; labels[i] && labels[i + 1]; i += 2) {
			buf_printf(b, "%s%s=\"", i ? "," : "", labels[i]);
			label_value(b, labels[i + 1]);
			buf_addc(b, '"');
		}
		buf_addc(b, '}');
	}
	if (value != value)
		buf_adds(b, " NaN\n");
	else if (value > -9.007199254740992e15 && value < 9.007199254740992e15 &&
		 value == (double)(long long)value)
		buf_printf(b, " %lld\n", (long long)value);
	else
		buf_printf(b, " %.17g\n", value);
}

int prom_write_file(const struct buf *b, const char *path, char *err, size_t errsz)
{
	char tmp[8300];
	int fd;

	if (b->overflow) {
		snprintf(err, errsz, "%s: the metrics are too large", path);
		return -1;
	}
	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(tmp)) {
		snprintf(err, errsz, "%s: path too long", path);
		return -1;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0) {
		snprintf(err, errsz, "%.4000s: %s", tmp, strerror(errno));
		return -1;
	}
	if (fchmod(fd, 0644) != 0 || write(fd, b->data ? b->data : "", b->len) != (ssize_t)b->len ||
	    fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}
