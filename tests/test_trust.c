/*
 * test_trust.c - trust anchors (bundle files, directories, the system
 * store, memory) and CRLs.
 *
 * Uses internal.h to see that a failing call leaves the context's trust
 * and CRL exactly as they were (the public API has no getter for them).
 */
#include "common.h"
#include "internal.h"

typedef struct fx {
	mtls_ctx *ctx;
	char *tmp;
} fx;

static int setup(void **state, mtls_role role)
{
	fx *f = calloc(1, sizeof(*f));

	if (f == NULL || (f->ctx = mtls_ctx_new(role)) == NULL)
		return -1;
	/* The system-store tests set these; start without them. */
	unsetenv("SSL_CERT_FILE");
	unsetenv("SSL_CERT_DIR");
	log_capture();
	*state = f;
	return 0;
}

static int setup_server(void **state)
{
	return setup(state, MTLS_ROLE_SERVER);
}

static int setup_client(void **state)
{
	return setup(state, MTLS_ROLE_CLIENT);
}

static int teardown(void **state)
{
	fx *f = *state;

	log_stop();
	unsetenv("SSL_CERT_FILE");
	unsetenv("SSL_CERT_DIR");
	mtls_ctx_free(f->ctx);
	rm_tree(f->tmp);
	free(f);
	return 0;
}

static const char *tmp_path(fx *f, const char *name)
{
	static char ring[8][TEST_PATH_MAX];
	static unsigned next;
	char *p = ring[next++ % 8];

	if (f->tmp == NULL)
		f->tmp = make_tmpdir();
	snprintf(p, TEST_PATH_MAX, "%s/%s", f->tmp, name);
	return p;
}

static void copy_file(const char *from, const char *to)
{
	size_t l;
	unsigned char *d = slurp(from, &l);

	write_file(to, d, l);
	free(d);
}

/* Number of CA certificates the context trusts now (0: none set). */
static int trust_count(const fx *f)
{
	return f->ctx->trust != NULL ? f->ctx->trust->count : 0;
}

/* What a failing call must leave untouched. */
typedef struct trust_state {
	mtls_trust *trust;
	int count;
	char source[TEST_PATH_MAX];
	mtls_crl *crl;
	char crl_path[TEST_PATH_MAX];
} trust_state;

static void save_state(const fx *f, trust_state *s)
{
	memset(s, 0, sizeof(*s));
	s->trust = f->ctx->trust;
	s->count = trust_count(f);
	snprintf(s->source, sizeof(s->source), "%s",
	         f->ctx->ca_source ? f->ctx->ca_source : "");
	s->crl = f->ctx->crl;
	snprintf(s->crl_path, sizeof(s->crl_path), "%s",
	         f->ctx->crl_path ? f->ctx->crl_path : "");
}

static void check_state_at(const char *file, int line, const fx *f,
                           const trust_state *s)
{
	if (f->ctx->trust != s->trust || trust_count(f) != s->count ||
	    strcmp(f->ctx->ca_source ? f->ctx->ca_source : "", s->source) !=
	        0 ||
	    f->ctx->crl != s->crl ||
	    strcmp(f->ctx->crl_path ? f->ctx->crl_path : "", s->crl_path) !=
	        0) {
		print_error("%s:%d: a failed call changed the context's trust "
		            "(count %d, was %d) or CRL\n",
		            file, line, trust_count(f), s->count);
		_fail(file, line);
	}
}

#define check_state(f, s) check_state_at(__FILE__, __LINE__, (f), (s))

/* ---- good sources -------------------------------------------------------- */

static void test_bundle_file(void **state)
{
	fx *f = *state;

	check_ok(f->ctx, mtls_set_trusted_ca(f->ctx, pki("ca-bundle.pem")));
	assert_int_equal(trust_count(f), 2);
	assert_logged(MTLS_LOG_INFO, "ca-bundle.pem", "certificates=2", NULL);
	check_ok(f->ctx, mtls_set_trusted_ca(f->ctx, pki("ca.crt")));
	assert_int_equal(trust_count(f), 1);
	assert_string_equal(f->ctx->ca_source, pki("ca.crt"));
}

static void test_der_file(void **state)
{
	fx *f = *state;

	/* Any certificate can be an anchor; the PKI has a leaf in DER. */
	check_ok(f->ctx, mtls_set_trusted_ca(f->ctx, pki("client-ec.der")));
	assert_int_equal(trust_count(f), 1);
}

static void test_directory(void **state)
{
	fx *f = *state;

	check_ok(f->ctx, mtls_set_trusted_ca(f->ctx, pki("ca-dir")));
	assert_int_equal(trust_count(f), 2);
	assert_logged(MTLS_LOG_INFO, "ca-dir", "certificates=2", NULL);
}

/* Hidden files and subdirectories of a CA directory are not read. */
static void test_directory_skips(void **state)
{
	fx *f = *state;

	copy_file(pki("ca.crt"), tmp_path(f, "ca.pem"));
	copy_file(pki("garbage.pem"), tmp_path(f, ".hidden.pem"));
	assert_int_equal(mkdir(tmp_path(f, "sub"), 0700), 0);
	copy_file(pki("garbage.pem"), tmp_path(f, "sub/bad.pem"));
	check_ok(f->ctx, mtls_set_trusted_ca(f->ctx, f->tmp));
	assert_int_equal(trust_count(f), 1);
	/* A trailing slash names the same directory. */
	check_ok(f->ctx, mtls_set_trusted_ca(f->ctx, tmp_path(f, "")));
	assert_int_equal(trust_count(f), 1);
}

static void test_system(void **state)
{
	fx *f = *state;
	static const char bundle[] = "/etc/ssl/certs/ca-certificates.crt";

	if (access(bundle, R_OK) != 0)
		skip(); /* ca-certificates is not installed */
	check_ok(f->ctx, mtls_set_trusted_ca(f->ctx, "system"));
	assert_true(trust_count(f) > 10);
	assert_logged(MTLS_LOG_INFO, "ca=system", bundle, NULL);
	/* #11 finding 11: as a client CA, every public CA may issue client
	 * certificates: said loudly, on server contexts only */
	if (mtls_ctx_role(f->ctx) == MTLS_ROLE_SERVER)
		assert_logged(MTLS_LOG_WARN, "system trust store",
		              "any public CA", NULL);
	else
		assert_null(log_find(MTLS_LOG_WARN, "system trust store", NULL,
		                     NULL));
}

static void test_system_env_file(void **state)
{
	fx *f = *state;

	assert_int_equal(setenv("SSL_CERT_FILE", pki("ca.crt"), 1), 0);
	check_ok(f->ctx, mtls_set_trusted_ca(f->ctx, "system"));
	assert_int_equal(trust_count(f), 1);
	assert_logged(MTLS_LOG_INFO, "ca=system", pki("ca.crt"), NULL);
	/* SSL_CERT_FILE wins over SSL_CERT_DIR. */
	assert_int_equal(setenv("SSL_CERT_DIR", pki("ca-dir"), 1), 0);
	check_ok(f->ctx, mtls_set_trusted_ca(f->ctx, "system"));
	assert_int_equal(trust_count(f), 1);
}

static void test_system_env_dir(void **state)
{
	fx *f = *state;

	assert_int_equal(setenv("SSL_CERT_DIR", pki("ca-dir"), 1), 0);
	check_ok(f->ctx, mtls_set_trusted_ca(f->ctx, "system"));
	assert_int_equal(trust_count(f), 2);
	/* Empty SSL_CERT_FILE is ignored. */
	assert_int_equal(setenv("SSL_CERT_FILE", "", 1), 0);
	check_ok(f->ctx, mtls_set_trusted_ca(f->ctx, "system"));
	assert_int_equal(trust_count(f), 2);
}

static void test_system_env_bad(void **state)
{
	fx *f = *state;
	trust_state s;
	const char *missing = pki("no-such-bundle.pem");

	check_ok(f->ctx, mtls_set_trusted_ca(f->ctx, pki("ca-bundle.pem")));
	save_state(f, &s);
	assert_int_equal(setenv("SSL_CERT_FILE", missing, 1), 0);
	check_err(f->ctx, mtls_set_trusted_ca(f->ctx, "system"),
	          MTLS_ERR_FILE_NOT_FOUND, missing);
	check_state(f, &s);
	/* A system store is lenient about certificates it cannot parse, but
	 * one with none at all is an error. */
	assert_int_equal(setenv("SSL_CERT_FILE", pki("garbage.pem"), 1), 0);
	check_err(f->ctx, mtls_set_trusted_ca(f->ctx, "system"),
	          MTLS_ERR_NO_CERTS, "garbage.pem");
	check_state(f, &s);
}

static void test_mem(void **state)
{
	fx *f = *state;
	size_t l, dl;
	unsigned char *b = slurp(pki("ca-bundle.pem"), &l);
	unsigned char *d = slurp(pki("client-ec.der"), &dl);

	check_ok(f->ctx, mtls_set_trusted_ca_mem(f->ctx, b, l));
	assert_int_equal(trust_count(f), 2);
	assert_logged(MTLS_LOG_INFO, "<memory>", "certificates=2", NULL);
	assert_null(f->ctx->ca_source);
	check_ok(f->ctx, mtls_set_trusted_ca_mem(f->ctx, d, dl));
	assert_int_equal(trust_count(f), 1);
	/* Copied: the caller's buffer may go at once. */
	memset(b, 0, l);
	free(b);
	free(d);
	assert_int_equal(trust_count(f), 1);
	assert_non_null(f->ctx->trust->ca.raw.p);
}

/* ---- bad sources --------------------------------------------------------- */

static void test_missing(void **state)
{
	fx *f = *state;
	trust_state s;
	const char *p = pki("no-such-ca.pem");

	check_ok(f->ctx, mtls_set_trusted_ca(f->ctx, pki("ca-bundle.pem")));
	save_state(f, &s);
	check_err(f->ctx, mtls_set_trusted_ca(f->ctx, p),
	          MTLS_ERR_FILE_NOT_FOUND, p, "No such file");
	check_state(f, &s);
	assert_logged(MTLS_LOG_ERROR, p, NULL, NULL);
}

static void test_empty(void **state)
{
	fx *f = *state;
	trust_state s;
	const char *p = pki("empty.pem");

	check_ok(f->ctx, mtls_set_trusted_ca(f->ctx, pki("ca-bundle.pem")));
	save_state(f, &s);
	check_err(f->ctx, mtls_set_trusted_ca(f->ctx, p), MTLS_ERR_FILE_EMPTY,
	          p, "empty");
	check_state(f, &s);
}

static void test_garbage(void **state)
{
	fx *f = *state;
	trust_state s;
	const char *p = pki("garbage.pem");

	check_ok(f->ctx, mtls_set_trusted_ca(f->ctx, pki("ca-bundle.pem")));
	save_state(f, &s);
	check_err(f->ctx, mtls_set_trusted_ca(f->ctx, p), MTLS_ERR_CERT_PARSE,
	          p);
	check_state(f, &s);
}

/* PEM text with a private key but no certificate. */
static void test_nocert_bundle(void **state)
{
	fx *f = *state;
	trust_state s;
	const char *p = pki("nocert-bundle.pem");

	check_ok(f->ctx, mtls_set_trusted_ca(f->ctx, pki("ca-bundle.pem")));
	save_state(f, &s);
	check_err(f->ctx, mtls_set_trusted_ca(f->ctx, p), MTLS_ERR_NO_CERTS, p);
	check_state(f, &s);
	/* A key file, likewise. */
	p = pki("client-ec.key");
	check_err(f->ctx, mtls_set_trusted_ca(f->ctx, p), MTLS_ERR_NO_CERTS, p);
	check_state(f, &s);
}

static void test_truncated(void **state)
{
	fx *f = *state;
	trust_state s;
	const char *p = pki("truncated.pem");

	check_ok(f->ctx, mtls_set_trusted_ca(f->ctx, pki("ca-bundle.pem")));
	save_state(f, &s);
	check_err(f->ctx, mtls_set_trusted_ca(f->ctx, p), MTLS_ERR_CERT_PARSE,
	          p, "truncated");
	check_state(f, &s);
}

/* A good certificate, then one cut short: all-or-nothing too (mbedTLS
 * would stop quietly at the BEGIN without END). */
static void test_truncated_tail(void **state)
{
	fx *f = *state;
	trust_state s;
	const char *p = tmp_path(f, "cut.pem");
	size_t cl, il;
	unsigned char *c = slurp(pki("ca.crt"), &cl);
	unsigned char *i = slurp(pki("int.crt"), &il);
	unsigned char *buf = malloc(cl + il / 2);

	assert_non_null(buf);
	memcpy(buf, c, cl);
	memcpy(buf + cl, i, il / 2);
	write_file(p, buf, cl + il / 2);
	check_ok(f->ctx, mtls_set_trusted_ca(f->ctx, pki("ca-bundle.pem")));
	save_state(f, &s);
	check_err(f->ctx, mtls_set_trusted_ca(f->ctx, p), MTLS_ERR_CERT_PARSE,
	          p, "truncated");
	check_state(f, &s);
	check_err(f->ctx, mtls_set_trusted_ca_mem(f->ctx, buf, cl + il / 2),
	          MTLS_ERR_CERT_PARSE, "<memory>", "truncated");
	check_state(f, &s);
	free(c);
	free(i);
	free(buf);
}

/* A good certificate followed by a corrupt one: a user's bundle is
 * all-or-nothing. */
static void test_partly_bad_bundle(void **state)
{
	fx *f = *state;
	trust_state s;
	const char *p = tmp_path(f, "partly.pem");
	size_t cl, il;
	unsigned char *c = slurp(pki("ca.crt"), &cl);
	unsigned char *i = slurp(pki("int.crt"), &il);
	unsigned char *buf = malloc(cl + il);
	char *line2;

	assert_non_null(buf);
	memcpy(buf, c, cl);
	memcpy(buf + cl, i, il);
	/* Zero out the second base64 line of the intermediate. */
	line2 = memchr(buf + cl, '\n', il);
	assert_non_null(line2);
	line2 = memchr(line2 + 1, '\n', il - (size_t)(line2 - (char *)buf - cl));
	assert_non_null(line2);
	memset(line2 + 1, 'A', 64);
	write_file(p, buf, cl + il);

	check_ok(f->ctx, mtls_set_trusted_ca(f->ctx, pki("ca-bundle.pem")));
	save_state(f, &s);
	check_err(f->ctx, mtls_set_trusted_ca(f->ctx, p), MTLS_ERR_CERT_PARSE,
	          p, "could not be parsed");
	check_state(f, &s);
	free(c);
	free(i);
	free(buf);
}

static void test_empty_directory(void **state)
{
	fx *f = *state;
	trust_state s;
	const char *d;

	check_ok(f->ctx, mtls_set_trusted_ca(f->ctx, pki("ca-bundle.pem")));
	save_state(f, &s);
	d = tmp_path(f, "empty-dir");
	assert_int_equal(mkdir(d, 0700), 0);
	check_err(f->ctx, mtls_set_trusted_ca(f->ctx, d), MTLS_ERR_NO_CERTS, d);
	check_state(f, &s);
	/* Only hidden files. */
	copy_file(pki("ca.crt"), tmp_path(f, "empty-dir/.ca.crt"));
	check_err(f->ctx, mtls_set_trusted_ca(f->ctx, d), MTLS_ERR_NO_CERTS, d);
	check_state(f, &s);
}

/* One bad file makes a user's directory fail, naming the file. */
static void test_directory_bad_file(void **state)
{
	fx *f = *state;
	trust_state s;
	const char *bad;

	copy_file(pki("ca.crt"), tmp_path(f, "a-ca.pem"));
	bad = tmp_path(f, "b-garbage.pem");
	copy_file(pki("garbage.pem"), bad);
	check_ok(f->ctx, mtls_set_trusted_ca(f->ctx, pki("ca-bundle.pem")));
	save_state(f, &s);
	check_err(f->ctx, mtls_set_trusted_ca(f->ctx, f->tmp),
	          MTLS_ERR_CERT_PARSE, bad);
	check_state(f, &s);
	/* An empty file in it likewise. */
	assert_int_equal(unlink(bad), 0);
	bad = tmp_path(f, "c-empty.pem");
	write_file(bad, "", 0);
	check_err(f->ctx, mtls_set_trusted_ca(f->ctx, f->tmp),
	          MTLS_ERR_FILE_EMPTY, bad);
	check_state(f, &s);
}

static void test_mem_bad(void **state)
{
	fx *f = *state;
	trust_state s;
	size_t gl, nl, tl;
	unsigned char *g = slurp(pki("garbage.pem"), &gl);
	unsigned char *n = slurp(pki("nocert-bundle.pem"), &nl);
	unsigned char *t = slurp(pki("truncated.pem"), &tl);

	check_ok(f->ctx, mtls_set_trusted_ca(f->ctx, pki("ca-bundle.pem")));
	save_state(f, &s);
	check_err(f->ctx, mtls_set_trusted_ca_mem(f->ctx, NULL, 10),
	          MTLS_ERR_INVALID_ARG, "NULL");
	check_state(f, &s);
	check_err(f->ctx, mtls_set_trusted_ca_mem(f->ctx, g, 0),
	          MTLS_ERR_FILE_EMPTY, "<memory>");
	check_state(f, &s);
	check_err(f->ctx, mtls_set_trusted_ca_mem(f->ctx, g, gl),
	          MTLS_ERR_CERT_PARSE, "<memory>");
	check_state(f, &s);
	check_err(f->ctx, mtls_set_trusted_ca_mem(f->ctx, n, nl),
	          MTLS_ERR_NO_CERTS, "<memory>");
	check_state(f, &s);
	check_err(f->ctx, mtls_set_trusted_ca_mem(f->ctx, t, tl),
	          MTLS_ERR_CERT_PARSE, "<memory>", "truncated");
	check_state(f, &s);
	free(g);
	free(n);
	free(t);
}

static void test_other_paths(void **state)
{
	fx *f = *state;
	trust_state s;

	check_ok(f->ctx, mtls_set_trusted_ca(f->ctx, pki("ca-bundle.pem")));
	save_state(f, &s);
	check_err(f->ctx, mtls_set_trusted_ca(f->ctx, "/dev/null"),
	          MTLS_ERR_FILE_NOT_REGULAR, "/dev/null");
	check_state(f, &s);
	check_err(f->ctx, mtls_set_trusted_ca(f->ctx, ""),
	          MTLS_ERR_FILE_NOT_FOUND);
	check_state(f, &s);
	/* "System" is a file name, not the keyword. */
	check_err(f->ctx, mtls_set_trusted_ca(f->ctx, "System"),
	          MTLS_ERR_FILE_NOT_FOUND, "System");
	check_state(f, &s);
}

/* ---- CRLs ---------------------------------------------------------------- */

static void test_crl_pem(void **state)
{
	fx *f = *state;

	check_ok(f->ctx, mtls_set_crl(f->ctx, pki("int.crl")));
	assert_non_null(f->ctx->crl);
	assert_string_equal(f->ctx->crl_path, pki("int.crl"));
	assert_logged(MTLS_LOG_INFO, "int.crl", NULL, NULL);
	/* Replaces the one before. */
	check_ok(f->ctx, mtls_set_crl(f->ctx, pki("ca.crl")));
	assert_string_equal(f->ctx->crl_path, pki("ca.crl"));
	/* Fresh CRLs: no staleness warning. */
	assert_null(log_find(MTLS_LOG_WARN, NULL, NULL, NULL));
}

static void test_crl_der(void **state)
{
	fx *f = *state;

	check_ok(f->ctx, mtls_set_crl(f->ctx, pki("int.crl.der")));
	assert_non_null(f->ctx->crl);
	/* The two revoked leaves (client and server) are listed. */
	assert_non_null(f->ctx->crl->crl.entry.serial.p);
	assert_non_null(f->ctx->crl->crl.entry.next);
}

static void test_crl_mem(void **state)
{
	fx *f = *state;
	size_t pl, dl;
	unsigned char *p = slurp(pki("int.crl"), &pl);
	unsigned char *d = slurp(pki("int.crl.der"), &dl);

	check_ok(f->ctx, mtls_set_crl_mem(f->ctx, p, pl));
	assert_non_null(f->ctx->crl);
	assert_null(f->ctx->crl_path);
	check_ok(f->ctx, mtls_set_crl_mem(f->ctx, d, dl));
	assert_non_null(f->ctx->crl);
	free(p);
	free(d);
}

static void test_crl_bad(void **state)
{
	fx *f = *state;
	trust_state s;
	const char *missing = pki("no-such.crl");
	size_t gl;
	unsigned char *g = slurp(pki("garbage.pem"), &gl);

	check_ok(f->ctx, mtls_set_trusted_ca(f->ctx, pki("ca-bundle.pem")));
	check_ok(f->ctx, mtls_set_crl(f->ctx, pki("int.crl")));
	save_state(f, &s);
	check_err(f->ctx, mtls_set_crl(f->ctx, missing),
	          MTLS_ERR_FILE_NOT_FOUND, missing);
	check_state(f, &s);
	check_err(f->ctx, mtls_set_crl(f->ctx, pki("garbage.pem")),
	          MTLS_ERR_CRL_PARSE, pki("garbage.pem"));
	check_state(f, &s);
	check_err(f->ctx, mtls_set_crl(f->ctx, pki("empty.pem")),
	          MTLS_ERR_FILE_EMPTY, pki("empty.pem"));
	check_state(f, &s);
	check_err(f->ctx, mtls_set_crl(f->ctx, pki("ca-dir")),
	          MTLS_ERR_FILE_NOT_REGULAR, pki("ca-dir"));
	check_state(f, &s);
	/* A certificate is not a CRL. */
	check_err(f->ctx, mtls_set_crl(f->ctx, pki("ca.crt")),
	          MTLS_ERR_CRL_PARSE, pki("ca.crt"), "no CRL");
	check_state(f, &s);
	check_err(f->ctx, mtls_set_crl(f->ctx, pki("client-ec.der")),
	          MTLS_ERR_CRL_PARSE, pki("client-ec.der"));
	check_state(f, &s);
	check_err(f->ctx, mtls_set_crl_mem(f->ctx, g, gl), MTLS_ERR_CRL_PARSE,
	          "<memory>");
	check_state(f, &s);
	check_err(f->ctx, mtls_set_crl_mem(f->ctx, g, 0), MTLS_ERR_FILE_EMPTY,
	          "<memory>");
	check_state(f, &s);
	check_err(f->ctx, mtls_set_crl_mem(f->ctx, NULL, 5),
	          MTLS_ERR_INVALID_ARG, "NULL");
	check_state(f, &s);
	free(g);
}

/* Trust and CRL are independent: setting one keeps the other. */
static void test_independent(void **state)
{
	fx *f = *state;
	mtls_crl *crl;

	check_ok(f->ctx, mtls_set_crl(f->ctx, pki("int.crl")));
	crl = f->ctx->crl;
	check_ok(f->ctx, mtls_set_trusted_ca(f->ctx, pki("ca-dir")));
	assert_ptr_equal(f->ctx->crl, crl);
	assert_int_equal(trust_count(f), 2);
	check_ok(f->ctx, mtls_set_crl(f->ctx, pki("ca.crl")));
	assert_int_equal(trust_count(f), 2);
}

#define BOTH(t)                                                               \
	{#t "/server", t, setup_server, teardown, NULL},                      \
	{                                                                     \
		#t "/client", t, setup_client, teardown, NULL                 \
	}
#define SERVER(t)                                                             \
	{                                                                     \
		#t, t, setup_server, teardown, NULL                           \
	}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    BOTH(test_bundle_file),
	    SERVER(test_der_file),
	    BOTH(test_directory),
	    SERVER(test_directory_skips),
	    BOTH(test_system),
	    SERVER(test_system_env_file),
	    SERVER(test_system_env_dir),
	    SERVER(test_system_env_bad),
	    BOTH(test_mem),
	    BOTH(test_missing),
	    SERVER(test_empty),
	    SERVER(test_garbage),
	    BOTH(test_nocert_bundle),
	    SERVER(test_truncated),
	    SERVER(test_truncated_tail),
	    SERVER(test_partly_bad_bundle),
	    SERVER(test_empty_directory),
	    SERVER(test_directory_bad_file),
	    SERVER(test_mem_bad),
	    SERVER(test_other_paths),
	    BOTH(test_crl_pem),
	    SERVER(test_crl_der),
	    SERVER(test_crl_mem),
	    BOTH(test_crl_bad),
	    SERVER(test_independent),
	};

	pki_dir();
	return cmocka_run_group_tests_name("trust", tests, NULL, NULL);
}
