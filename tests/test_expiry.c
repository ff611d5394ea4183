/*
 * test_expiry.c - what a context depends on that ends on a date
 * (mtls_ctx_expiry_each): own leaf and chain, trusted CAs, CRLs' next
 * update, with the dates openssl reads from the same files; the expiry
 * warning (mtls_ctx_check_expiry): each item warned once when it enters
 * the window, a CA near its end warned at load, CRLs within a day, and the
 * check run by mtls_handshake for a long-running program.
 */
#include "conn_util.h"

#include <sys/wait.h>

#define MAX_ITEMS 16

typedef struct item {
	mtls_expiry_kind kind;
	char source[512];
	char subject[256];
	time_t when;
	int index;
} item;

typedef struct items {
	item v[MAX_ITEMS];
	int n;
} items;

static int collect(void *user, const mtls_expiry *it)
{
	items *l = user;

	if (l->n >= MAX_ITEMS)
		return 1;
	l->v[l->n].kind = it->kind;
	snprintf(l->v[l->n].source, sizeof(l->v[0].source), "%s", it->source);
	snprintf(l->v[l->n].subject, sizeof(l->v[0].subject), "%s",
	         it->subject);
	l->v[l->n].when = it->when;
	l->v[l->n].index = it->index;
	l->n++;
	return 0;
}

static int stop_at_first(void *user, const mtls_expiry *it)
{
	(void)it;
	++*(int *)user;
	return 1;
}

/* A date as openssl prints it ("notAfter=Nov 28 20:00:00 2036 GMT"), from
 * `openssl ARGS`. */
static time_t openssl_date(const char *args)
{
	char cmd[2048], line[256], *eq;
	struct tm tm;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "openssl %s", args);
	f = popen(cmd, "r");
	assert_non_null(f);
	assert_non_null(fgets(line, sizeof(line), f));
	pclose(f);
	eq = strchr(line, '=');
	assert_non_null(eq);
	memset(&tm, 0, sizeof(tm));
	assert_non_null(strptime(eq + 1, "%b %d %H:%M:%S %Y", &tm));
	return timegm(&tm);
}

static time_t crt_end(const char *file)
{
	char args[1024];

	snprintf(args, sizeof(args), "x509 -noout -enddate -in '%s'",
	         pki(file));
	return openssl_date(args);
}

static time_t crl_next(const char *file)
{
	char args[1024];

	snprintf(args, sizeof(args), "crl -noout -nextupdate -in '%s'",
	         pki(file));
	return openssl_date(args);
}

static mtls_ctx *full_server(void)
{
	mtls_ctx *s = default_server(0);

	check_ok(s, mtls_set_crl(s, pki("int.crl")));
	return s;
}

static void test_expiry_items(void **state)
{
	mtls_ctx *s;
	items l = {0};
	int n, first = 0;

	(void)state;
	assert_int_equal(mtls_ctx_expiry_each(NULL, collect, &l),
	                 MTLS_ERR_INVALID_ARG);
	s = full_server();
	assert_int_equal(mtls_ctx_expiry_each(s, NULL, &l),
	                 MTLS_ERR_INVALID_ARG);
	n = mtls_ctx_expiry_each(s, collect, &l);
	assert_int_equal(n, 4);
	assert_int_equal(l.n, 4);
	/* own leaf, its intermediate, the root, the intermediate's CRL */
	assert_int_equal(l.v[0].kind, MTLS_EXPIRY_LEAF);
	assert_int_equal(l.v[0].index, 0);
	assert_string_equal(l.v[0].source, pki(SRV_CERT));
	assert_string_equal(l.v[0].subject, "CN=localhost");
	assert_int_equal(l.v[0].when, crt_end("server-ec.crt"));
	assert_int_equal(l.v[1].kind, MTLS_EXPIRY_CHAIN);
	assert_int_equal(l.v[1].index, 1);
	assert_string_equal(l.v[1].subject, "CN=mtls Test Intermediate CA");
	assert_int_equal(l.v[1].when, crt_end("int.crt"));
	assert_int_equal(l.v[2].kind, MTLS_EXPIRY_CA);
	assert_string_equal(l.v[2].source, pki(CA));
	assert_string_equal(l.v[2].subject, "O=mtls tests, CN=mtls Test Root CA");
	assert_int_equal(l.v[2].when, crt_end("ca.crt"));
	assert_int_equal(l.v[3].kind, MTLS_EXPIRY_CRL);
	assert_string_equal(l.v[3].source, pki("int.crl"));
	assert_string_equal(l.v[3].subject, "CN=mtls Test Intermediate CA");
	assert_int_equal(l.v[3].when, crl_next("int.crl"));
	/* a non-zero return stops the walk */
	assert_int_equal(mtls_ctx_expiry_each(s, stop_at_first, &first), 1);
	assert_int_equal(first, 1);
	mtls_ctx_free(s);

	/* memory sources say so; an empty context has nothing */
	s = mtls_ctx_new(MTLS_ROLE_CLIENT);
	assert_non_null(s);
	assert_int_equal(mtls_ctx_expiry_each(s, collect, &l), 0);
	{
		size_t len;
		unsigned char *pem = slurp_pki(CA, &len);
		check_ok(s, mtls_set_trusted_ca_mem(s, pem, len));
		free(pem);
	}
	l.n = 0;
	assert_int_equal(mtls_ctx_expiry_each(s, collect, &l), 1);
	assert_string_equal(l.v[0].source, "<memory>");
	mtls_ctx_free(s);
}

static int warns(const char *needle)
{
	int n = 0;

	for (int i = 0; i < logs()->n; i++)
		if (logs()->e[i].level == MTLS_LOG_WARN &&
		    strstr(logs()->e[i].msg, needle) != NULL)
			n++;
	return n;
}

/* Each item warns once when the window reaches it. */
static void test_window_once(void **state)
{
	mtls_ctx *s;
	time_t ca_end = crt_end("ca.crt"), int_end = crt_end("int.crt");
	time_t next = crl_next("int.crl");

	(void)state;
	log_capture();
	s = full_server();
	assert_int_equal(warns("trusted CA"), 0);
	assert_int_equal(warns("CRL of"), 0);
	assert_int_equal(mtls_ctx_check_expiry(NULL, 0), MTLS_ERR_INVALID_ARG);
	assert_int_equal(mtls_ctx_check_expiry(s, 0), 0);

	/* 10 days before the root's end (after the intermediate's and the
	 * leaf's, which are shorter): everything is past or within 30 days */
	assert_true(int_end < ca_end);
	assert_int_equal(mtls_ctx_check_expiry(s, ca_end - 10 * 86400), 4);
	assert_int_equal(warns("trusted CA (O=mtls tests, CN=mtls Test Root "
	                       "CA) expires in 10 days"), 1);
	assert_int_equal(warns("chain certificate #2 (CN=mtls Test "
	                       "Intermediate CA) expired on"), 1);
	assert_int_equal(warns("own certificate (CN=localhost) expired on"),
	                 1);
	assert_int_equal(warns("CRL of CN=mtls Test Intermediate CA is stale"),
	                 1);
	/* again, later: nothing new */
	assert_int_equal(mtls_ctx_check_expiry(s, ca_end - 86400), 4);
	assert_int_equal(warns("trusted CA"), 1);
	assert_int_equal(warns("CRL of"), 1);
	assert_int_equal(warns("own certificate"), 1);
	assert_int_equal(warns("chain certificate"), 1);

	/* a reload brings new material, which warns again */
	check_ok(s, mtls_ctx_reload(s));
	assert_int_equal(mtls_ctx_check_expiry(s, ca_end - 5 * 86400), 4);
	assert_int_equal(warns("trusted CA"), 2);
	mtls_ctx_free(s);

	/* CRLs: at most one day ahead, whatever the threshold */
	log_reset();
	s = full_server();
	check_ok(s, mtls_ctx_set_expiry_warning(s, 365));
	assert_int_equal(mtls_ctx_check_expiry(s, next - 2 * 86400), 0);
	assert_int_equal(warns("CRL of"), 0);
	assert_int_equal(mtls_ctx_check_expiry(s, next - 3600), 1);
	assert_int_equal(warns("CRL of CN=mtls Test Intermediate CA is due "
	                       "for its next update"), 1);
	/* threshold 0: no warning, items past still counted */
	check_ok(s, mtls_ctx_set_expiry_warning(s, 0));
	assert_int_equal(mtls_ctx_check_expiry(s, ca_end + 1), 4);
	assert_int_equal(warns("trusted CA"), 0);
	mtls_ctx_free(s);
	log_stop();
}

/* A CA that ends within the threshold is warned about when it is set. */
static void test_ca_warned_at_load(void **state)
{
	char *dir = make_tmpdir(), cmd[2048];
	char *crt = path_in(dir, "soon.crt"), *key = path_in(dir, "soon.key");
	mtls_ctx *s;
	int st;

	(void)state;
	snprintf(cmd, sizeof(cmd),
	         "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
	         "-nodes -subj '/CN=Soon CA' -days 5 -keyout '%s' -out '%s' "
	         "-addext basicConstraints=critical,CA:TRUE >/dev/null 2>&1",
	         key, crt);
	st = system(cmd);
	assert_true(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	log_capture();
	s = default_server(0);
	check_ok(s, mtls_set_trusted_ca(s, crt));
	assert_int_equal(warns("soon.crt: trusted CA (CN=Soon CA) expires in"),
	                 1);
	/* said once: the next check is quiet */
	assert_int_equal(mtls_ctx_check_expiry(s, 0), 1);
	assert_int_equal(warns("Soon CA"), 1);
	mtls_ctx_free(s);
	log_stop();
	free(crt);
	free(key);
	rm_tree(dir);
}

/* A long-running program: the handshake runs the check, so an item that
 * entered the window since the load is warned about without a call. */
static void test_handshake_checks(void **state)
{
	mtls_ctx *s, *c;
	pair p;

	(void)state;
	tlog_start(); /* the server thread logs */
	s = mtls_ctx_new(MTLS_ROLE_SERVER);
	assert_non_null(s);
	check_ok(s, mtls_ctx_set_expiry_warning(s, 0)); /* quiet load */
	check_ok(s, mtls_load_server_pair(s, pki(SRV_CERT), pki(SRV_KEY)));
	check_ok(s, mtls_set_trusted_ca(s, pki(CA)));
	assert_int_equal(tlog_count(MTLS_LOG_WARN, "expires in"), 0);
	/* as if years went by: the whole chain is within the window now */
	check_ok(s, mtls_ctx_set_expiry_warning(s, 100000));
	c = default_client(0);
	run_pair(&p, s, c, "localhost");
	assert_pair_ok(&p);
	assert_int_equal(tlog_count(MTLS_LOG_WARN, "own certificate (CN=localhost) expires in"),
	                 1);
	assert_int_equal(tlog_count(MTLS_LOG_WARN, "trusted CA (O=mtls tests, CN=mtls Test Root "
	                       "CA) expires in"), 1);
	/* not again on the next handshakes */
	run_pair(&p, s, c, "localhost");
	assert_pair_ok(&p);
	assert_int_equal(tlog_count(MTLS_LOG_WARN, "own certificate"), 1);
	assert_int_equal(tlog_count(MTLS_LOG_WARN, "trusted CA"), 1);
	mtls_ctx_free(s);
	mtls_ctx_free(c);
	tlog_stop();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_expiry_items),
	    cmocka_unit_test(test_window_once),
	    cmocka_unit_test(test_ca_warned_at_load),
	    cmocka_unit_test(test_handshake_checks),
	};

	pki_dir();
	return cmocka_run_group_tests_name("expiry", tests, NULL, NULL);
}
