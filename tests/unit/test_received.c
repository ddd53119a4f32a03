/*
 * test_received - the received-report store: DKIM verdicts from
 * Authentication-Results, storing, dedupe, verified/unverified classes,
 * rejection records, concurrent writers, the index.
 */
#include <dirent.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "received.h"

static void test_dkim(void)
{
	static const struct {
		const char *ar, *id, *submitter, *from;
		bool want;
		const char *dkim, *dom;
	} t[] = {
		{ "mx.example.net; dkim=pass header.d=google.com header.s=x", "mx.example.net",
		  "google.com", "noreply@google.com", true, "pass", "google.com" },
		{ "MX.Example.NET 1; dkim=pass (2048-bit key) header.d=corp.mail.ru", "mx.example.net",
		  "mail.ru", "<noreply@corp.mail.ru>", true, "pass", "corp.mail.ru" },
		{ "mx.example.net; spf=pass; dkim=pass header.i=@microsoft.com", "mx.example.net",
		  "microsoft.com", NULL, true, "pass", "microsoft.com" },
		{ "mx.example.net; dkim=pass header.d=\"google.com\"", "mx.example.net",
		  "google.com", NULL, true, "pass", "google.com" },
		{ "mx.example.net; dkim=pass header.d=sub.google.com", "mx.example.net",
		  "google.com", NULL, true, "pass", "sub.google.com" },
		/* wrong authserv-id: forged or someone else's */
		{ "evil.example; dkim=pass header.d=google.com", "mx.example.net",
		  "google.com", NULL, false, "none", "" },
		/* a prefix of our id is not our id */
		{ "mx.example.net.evil; dkim=pass header.d=google.com", "mx.example.net",
		  "google.com", NULL, false, "none", "" },
		/* pass for an unrelated domain: who signed is said, not trusted */
		{ "mx.example.net; dkim=pass header.d=attacker.example", "mx.example.net",
		  "google.com", "x@google.com", false, "unaligned", "attacker.example" },
		/* issue 10 item 7: the forger's From aligns with its own signature,
		 * but the report claims google.com as its submitter */
		{ "mx.example.net; dkim=pass header.d=attacker.example", "mx.example.net",
		  "google.com", "reports@attacker.example", false, "unaligned", "attacker.example" },
		/* without a submitter, From is the identity */
		{ "mx.example.net; dkim=pass header.d=Attacker.Example", "mx.example.net",
		  "", "reports@attacker.example", true, "pass", "attacker.example" },
		/* "notgoogle.com" is not aligned with google.com */
		{ "mx.example.net; dkim=pass header.d=notgoogle.com", "mx.example.net",
		  "google.com", NULL, false, "unaligned", "notgoogle.com" },
		/* the aligned one of two signatures counts */
		{ "mx.example.net; dkim=pass header.d=attacker.example; dkim=pass header.d=google.com",
		  "mx.example.net", "google.com", "reports@attacker.example", true, "pass", "google.com" },
		{ "mx.example.net; dkim=fail header.d=google.com", "mx.example.net",
		  "google.com", NULL, false, "fail", "" },
		/* the dkim=pass is inside a comment */
		{ "mx.example.net; spf=pass (dkim=pass header.d=google.com)", "mx.example.net",
		  "google.com", NULL, false, "none", "" },
		{ "mx.example.net; none", "mx.example.net", "google.com", NULL, false, "none", "" },
		{ "mx.example.net; dkim=pass header.d=google.com", "", "google.com", NULL, false, "none", "" },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char *ar[1] = { (char *)t[i].ar }, dom[256];
		const char *dkim = "?";
		bool got = received_dkim_verdict(ar, 1, t[i].id, t[i].submitter, t[i].from, &dkim,
						 dom, sizeof(dom));

		CHECK(got == t[i].want, "case %zu (%s): got %d, want %d", i, t[i].ar, got, t[i].want);
		CHECK(strcmp(dkim, t[i].dkim) == 0, "case %zu: dkim got %s, want %s", i, dkim, t[i].dkim);
		CHECK(strcmp(dom, t[i].dom) == 0, "case %zu: dom got %s, want %s", i, dom, t[i].dom);
	}
	/* several headers: the second one is ours */
	{
		char *ar[2] = { (char *)"other.example; dkim=pass header.d=google.com",
				(char *)"mx.example.net;\r\n\tdkim=pass\r\n header.d=google.com" };
		char dom[64];
		const char *dkim;

		CHECK(received_dkim_verdict(ar, 2, "mx.example.net", NULL, "a@google.com", &dkim, dom,
					    sizeof(dom)), "second header not used");
	}
}

#define REPORT "{\"organization-name\":\"Org\",\"date-range\":{\"start-datetime\":\"2024-01-01T00:00:00Z\"," \
	"\"end-datetime\":\"2024-01-01T23:59:59Z\"},\"contact-info\":\"tls@sender.example\",\"report-id\":\"%s\"," \
	"\"policies\":[{\"policy\":{\"policy-type\":\"sts\",\"policy-domain\":\"rcpt.example\"}," \
	"\"summary\":{\"total-successful-session-count\":3,\"total-failure-session-count\":1}}]}"

static int count_files(const char *dir, const char *sub)
{
	char path[1024];
	DIR *d;
	struct dirent *e;
	int n = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	d = opendir(path);
	while (d && (e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

static int count_lines(const char *path)
{
	FILE *fp = fopen(path, "r");
	int n = 0, ch;

	while (fp && (ch = fgetc(fp)) != EOF)
		n += ch == '\n';
	if (fp)
		fclose(fp);
	return n;
}

struct thr {
	struct received_store *s;
	int idx;
	int stored, dup;
};

static void *writer(void *arg)
{
	struct thr *t = arg;

	for (int i = 0; i < 20; i++) {
		char json[1024], id[32], reason[256], rid[16];
		struct received_input in = { .is_message = false, .source = "test",
					     .max_report = 1 << 20, .now = 1700000000 };

		/* every thread writes the same 20 reports */
		snprintf(rid, sizeof(rid), "t%d", i);
		snprintf(json, sizeof(json), REPORT, rid);
		in.data = json;
		in.len = strlen(json);
		switch (received_ingest(t->s, &in, id, sizeof(id), reason, sizeof(reason))) {
		case RECEIVED_STORED: t->stored++; break;
		case RECEIVED_DUPLICATE: t->dup++; break;
		default: break;
		}
	}
	return NULL;
}

static int cb_count(const char *cls, const char *id, struct json_object *rec, void *arg)
{
	int *n = arg;

	(void)id;
	(void)rec;
	if (strcmp(cls, "unverified") == 0)
		n[0]++;
	else if (strcmp(cls, "verified") == 0)
		n[1]++;
	else
		n[2]++;
	return 0;
}

static void test_store(void)
{
	char dir[] = "/tmp/test_received.XXXXXX", err[256], id[32], id2[32], reason[512], json[1024];
	char path[1200];
	struct received_store *s;
	struct received_input in = { .source = "test", .max_report = 1 << 20, .now = 1700000000 };
	struct json_object *rec, *v;
	enum received_status st;
	int counts[3] = { 0, 0, 0 };

	CHECK(mkdtemp(dir) != NULL, "mkdtemp");
	snprintf(path, sizeof(path), "%s/store", dir);
	CHECK_INT(received_open(path, &s, err, sizeof(err)), 0);
	if (s == NULL)
		return;

	/* a report file: unverified */
	snprintf(json, sizeof(json), REPORT, "id-1");
	in.data = json;
	in.len = strlen(json);
	st = received_ingest(s, &in, id, sizeof(id), reason, sizeof(reason));
	CHECK_INT(st, RECEIVED_STORED);
	CHECK_STR(reason, "unverified");
	CHECK_INT(strlen(id), RECEIVED_ID_LEN);
	/* the same again: duplicate, same id */
	st = received_ingest(s, &in, id2, sizeof(id2), reason, sizeof(reason));
	CHECK_INT(st, RECEIVED_DUPLICATE);
	CHECK_STR(id2, id);
	/* same report, pretty-printed differently: still a duplicate */
	{
		char pretty[1200];

		snprintf(pretty, sizeof(pretty), "\n  %s\n", json);
		in.data = pretty;
		in.len = strlen(pretty);
		CHECK_INT(received_ingest(s, &in, id2, sizeof(id2), reason, sizeof(reason)), RECEIVED_DUPLICATE);
		in.data = json;
		in.len = strlen(json);
	}
	/* trusted: stored apart, as verified, under an id of its own (the
	 * class is part of the identity: one id never names two records) */
	in.trusted = true;
	st = received_ingest(s, &in, id2, sizeof(id2), reason, sizeof(reason));
	CHECK_INT(st, RECEIVED_STORED);
	CHECK_STR(reason, "verified");
	CHECK(strcmp(id2, id) != 0, "verified and unverified copies share the id %s", id);
	in.trusted = false;
	/* an unverified report with the same names and other content is not a
	 * duplicate: a forgery can not pre-empt the real one (issue 10 item 7) */
	{
		char forged[1200], *p;

		snprintf(forged, sizeof(forged), "%s", json);
		p = strstr(forged, "\"total-successful-session-count\":3");
		if (p)
			p[strlen("\"total-successful-session-count\":")] = '0';
		in.data = forged;
		in.len = strlen(forged);
		CHECK_INT(received_ingest(s, &in, id2, sizeof(id2), reason, sizeof(reason)), RECEIVED_STORED);
		CHECK(strcmp(id2, id) != 0, "forged copy got the real one's id");
		in.data = json;
		in.len = strlen(json);
	}

	/* the stored record */
	CHECK_INT(received_load(s, id, &rec), 0);
	if (rec) {
		CHECK(json_object_object_get_ex(rec, "submitter", &v) &&
		      strcmp(json_object_get_string(v), "sender.example") == 0, "submitter");
		CHECK(json_object_object_get_ex(rec, "report", &v) &&
		      json_object_object_get_ex(v, "report-id", &v) &&
		      strcmp(json_object_get_string(v), "id-1") == 0, "report-id");
		CHECK(json_object_object_get_ex(rec, "stored", &v) &&
		      strcmp(json_object_get_string(v), "2023-11-14T22:13:20Z") == 0, "stored time");
		json_object_put(rec);
	}
	CHECK_INT(received_load(s, "../../etc/passwd", &rec), -1);
	CHECK_INT(received_load(s, "ffffffffffffffffffffffff", &rec), -1);

	/* a mail with a DKIM pass from our authserv-id: verified */
	{
		char msg[2048];

		snprintf(json, sizeof(json), REPORT, "id-mail");
		snprintf(msg, sizeof(msg),
			 "Authentication-Results: mx.rcpt.example; dkim=pass header.d=sender.example\n"
			 "From: tls@sender.example\nTLS-Report-Submitter: sender.example\n"
			 "Content-Type: multipart/report; report-type=tlsrpt; boundary=b\n\n"
			 "--b\nContent-Type: application/tlsrpt+json\n\n%s\n--b--\n", json);
		in.data = msg;
		in.len = strlen(msg);
		in.is_message = true;
		in.authserv_id = "mx.rcpt.example";
		st = received_ingest(s, &in, id2, sizeof(id2), reason, sizeof(reason));
		CHECK_INT(st, RECEIVED_STORED);
		CHECK_STR(reason, "verified");
		CHECK_INT(received_load(s, id2, &rec), 0);
		if (rec) {
			CHECK(json_object_object_get_ex(rec, "dkim", &v) &&
			      strcmp(json_object_get_string(v), "pass") == 0, "dkim pass");
			CHECK(json_object_object_get_ex(rec, "headers", &v) &&
			      json_object_object_get_ex(v, "authentication-results", &v) &&
			      json_object_array_length(v) == 1, "AR kept");
			json_object_put(rec);
		}
		/* another authserv-id: unverified */
		in.authserv_id = "other.example";
		st = received_ingest(s, &in, id2, sizeof(id2), reason, sizeof(reason));
		CHECK_INT(st, RECEIVED_STORED);
		CHECK_STR(reason, "unverified");
		in.authserv_id = NULL;
		in.is_message = false;
	}

	/* rejections: bad JSON, a mail without a report, a bomb-ish count */
	in.data = "{\"organization-name\":";
	in.len = strlen(in.data);
	st = received_ingest(s, &in, id2, sizeof(id2), reason, sizeof(reason));
	CHECK_INT(st, RECEIVED_REJECTED);
	CHECK(strstr(reason, "not valid JSON") != NULL, "reason got \"%s\"", reason);
	CHECK_INT(received_load(s, id2, &rec), 0);
	if (rec) {
		CHECK(json_object_object_get_ex(rec, "reason", &v) &&
		      strstr(json_object_get_string(v), "not valid JSON"), "stored reason");
		CHECK(json_object_object_get_ex(rec, "size", &v) && json_object_get_int(v) == 21, "size");
		json_object_put(rec);
	}
	snprintf(path, sizeof(path), "%s/store/rejected/%s.raw", dir, id2);
	{
		FILE *fp = fopen(path, "r");
		char raw[64] = "";

		CHECK(fp != NULL, "raw file %s missing", path);
		if (fp) {
			CHECK(fgets(raw, sizeof(raw), fp) != NULL, "raw empty");
			fclose(fp);
		}
		CHECK_STR(raw, "{\"organization-name\":");
	}
	in.data = "From: a@b\nSubject: hi\n\nno report here\n";
	in.len = strlen(in.data);
	in.is_message = true;
	st = received_ingest(s, &in, id2, sizeof(id2), reason, sizeof(reason));
	CHECK_INT(st, RECEIVED_REJECTED);
	CHECK(strstr(reason, "no report part found") != NULL, "reason got \"%s\"", reason);
	in.is_message = false;

	/* concurrent writers: 8 threads x the same 20 reports */
	{
		pthread_t th[8];
		struct thr t[8];
		int stored = 0, dup = 0;

		for (int i = 0; i < 8; i++) {
			t[i] = (struct thr){ .s = s, .idx = i };
			pthread_create(&th[i], NULL, writer, &t[i]);
		}
		for (int i = 0; i < 8; i++) {
			pthread_join(th[i], NULL);
			stored += t[i].stored;
			dup += t[i].dup;
		}
		CHECK_INT(stored, 20);
		CHECK_INT(dup, 8 * 20 - 20);
	}
	CHECK_INT(count_files(dir, "store/unverified"), 1 + 1 + 1 + 20);	/* the forged copy too */
	CHECK_INT(count_files(dir, "store/verified"), 2);
	CHECK_INT(count_files(dir, "store/rejected"), 4);
	CHECK_INT(count_files(dir, "store/tmp"), 0);
	snprintf(path, sizeof(path), "%s/store/index", dir);
	CHECK_INT(count_lines(path), 23 + 2 + 2);
	received_foreach(s, 0, cb_count, counts);
	CHECK_INT(counts[0], 23);
	CHECK_INT(counts[1], 2);
	CHECK_INT(counts[2], 2);
	/* 'since' after the reports' end: only the rejections */
	memset(counts, 0, sizeof(counts));
	received_foreach(s, 1704153600, cb_count, counts);
	CHECK_INT(counts[0] + counts[1], 0);
	CHECK_INT(counts[2], 2);
	received_close(s);

	/* the index cannot be written: an error, and no record left behind */
	snprintf(path, sizeof(path), "%s/store2", dir);
	CHECK_INT(received_open(path, &s, err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/store2/index", dir);
	CHECK_INT(mkdir(path, 0700), 0);
	snprintf(json, sizeof(json), REPORT, "id-noindex");
	in.data = json;
	in.len = strlen(json);
	if (s) {
		st = received_ingest(s, &in, id2, sizeof(id2), reason, sizeof(reason));
		CHECK_INT(st, RECEIVED_ERROR);
		CHECK(strstr(reason, "storing the report failed") != NULL, "reason got \"%s\"", reason);
		CHECK_INT(count_files(dir, "store2/unverified"), 0);
		received_close(s);
	}
	{
		char cmd[1200];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		CHECK_INT(system(cmd), 0);
	}
}

int main(void)
{
	test_dkim();
	test_store();
	return check_done("test_received");
}
