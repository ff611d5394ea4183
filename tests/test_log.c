/*
 * test_log.c - the log callback, and secrets: no private key bytes and no
 * passphrase ever reach a log message or an error string.
 */
#include "common.h"

#include <pthread.h>
#include <stdatomic.h>

/* ---- everything the library said, for the secrets test ------------------ */

typedef struct said {
	char **text;
	size_t n, cap;
} said;

static said heard;

static void said_add(said *s, const char *text)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 256;
		s->text = realloc(s->text, s->cap * sizeof(*s->text));
		assert_non_null(s->text);
	}
	s->text[s->n] = strdup(text);
	assert_non_null(s->text[s->n]);
	s->n++;
}

static void said_free(said *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->text[i]);
	free(s->text);
	memset(s, 0, sizeof(*s));
}

static void hear_cb(void *user, int level, const char *msg)
{
	char line[1200];

	snprintf(line, sizeof(line), "[%d] %s", level, msg);
	said_add(user, line);
}

/* ---- secrets from the PKI ------------------------------------------------ */

static said secrets;

/* The base64 body lines of every PEM private key in `path`: lines after a
 * "-----BEGIN ... PRIVATE KEY-----" up to its END, without the
 * "Proc-Type:"/"DEK-Info:" headers. */
static void add_pem_key_lines(const char *path)
{
	size_t len;
	unsigned char *raw = slurp(path, &len);
	char *text = malloc(len + 1);
	char *line, *save = NULL;
	int in_key = 0;

	assert_non_null(text);
	memcpy(text, raw, len);
	text[len] = '\0';
	free(raw);
	for (line = strtok_r(text, "\r\n", &save); line != NULL;
	     line = strtok_r(NULL, "\r\n", &save)) {
		if (strncmp(line, "-----BEGIN ", 11) == 0) {
			in_key = strstr(line, "PRIVATE KEY-----") != NULL;
			continue;
		}
		if (strncmp(line, "-----END ", 9) == 0) {
			in_key = 0;
			continue;
		}
		if (!in_key || strchr(line, ':') != NULL || strlen(line) < 16)
			continue;
		said_add(&secrets, line);
	}
	free(text);
}

/* The private scalar of a SEC1 DER EC key (30 77 02 01 01 04 20 <32>), as
 * lower- and upper-case hex and as colon-separated hex. */
static void add_der_ec_scalar(const char *path)
{
	size_t len;
	unsigned char *d = slurp(path, &len);
	char hex[3 * 32 + 1], HEX[3 * 32 + 1], colon[3 * 32 + 1];

	assert_true(len > 7 + 32);
	assert_int_equal(d[5], 0x04);
	assert_int_equal(d[6], 32);
	for (int i = 0; i < 32; i++) {
		snprintf(hex + 2 * i, 3, "%02x", d[7 + i]);
		snprintf(HEX + 2 * i, 3, "%02X", d[7 + i]);
		snprintf(colon + 3 * i, 4, "%02x:", d[7 + i]);
	}
	/* 8 bytes of the scalar anywhere is already too much. */
	hex[16] = HEX[16] = colon[24] = '\0';
	said_add(&secrets, hex);
	said_add(&secrets, HEX);
	said_add(&secrets, colon);
	free(d);
}

static int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && strcmp(s + a - b, suffix) == 0;
}

static void collect_secrets(void)
{
	DIR *d = opendir(pki_dir());
	struct dirent *de;
	char path[TEST_PATH_MAX];
	int pem_keys = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		snprintf(path, sizeof(path), "%s/%s", pki_dir(), de->d_name);
		if (ends_with(de->d_name, ".key") ||
		    ends_with(de->d_name, "-combined.pem") ||
		    strcmp(de->d_name, "nocert-bundle.pem") == 0) {
			add_pem_key_lines(path);
			pem_keys++;
		} else if (ends_with(de->d_name, "-key.der")) {
			add_der_ec_scalar(path);
		}
	}
	closedir(d);
	/* The PKI has dozens of keys; finding few means this test is blind. */
	assert_true(pem_keys >= 30);
	assert_true(secrets.n >= 100);
	said_add(&secrets, "testpass");
	said_add(&secrets, "wrong-pass-7f3a");
	said_add(&secrets, "Pa55-in-mem-9q");
}

/* ---- the run ------------------------------------------------------------- */

static void note_error(const mtls_ctx *ctx)
{
	const char *m = mtls_ctx_error(ctx);

	if (m != NULL) {
		char line[700];
		snprintf(line, sizeof(line), "[ctx_error] %s", m);
		said_add(&heard, line);
	}
}

/* Calls that must succeed (checked) and calls expected to fail (only
 * recorded: what matters here is what they say). */
#define OK(ctx, call)                                                         \
	do {                                                                  \
		check_ok((ctx), (call));                                      \
		note_error(ctx);                                              \
	} while (0)
#define TRY(ctx, call)                                                        \
	do {                                                                  \
		assert_int_not_equal((call), 0);                              \
		note_error(ctx);                                              \
	} while (0)

static void run_role(mtls_role role)
{
	const char *r = role == MTLS_ROLE_SERVER ? "server" : "client";
	mtls_ctx *ctx = mtls_ctx_new(role);
	int (*load)(mtls_ctx *, const char *, const char *) =
	    role == MTLS_ROLE_SERVER ? mtls_load_server_pair
	                             : mtls_load_client_pair;
	int (*load_mem)(mtls_ctx *, const void *, size_t, const void *,
	                size_t) = role == MTLS_ROLE_SERVER
	                              ? mtls_load_server_pair_mem
	                              : mtls_load_client_pair_mem;
	char n[16][TEST_PATH_MAX];
	size_t cl, kl, el, ml;
	unsigned char *c, *k, *enc, *comb;
	static const char *const suffix[16] = {
	    "ec.crt",      "ec.key",         "rsa.crt",        "rsa.key",
	    "enc-pk8.key", "enc-legacy.key", "combined.pem",   "other.key",
	    "p384.crt",    "p384.key",       "expiring.crt",   "expiring.key",
	    "pk8.key",     "ec-key.der",     "rev-chain.pem",  "expired.crt",
	};

	assert_non_null(ctx);
	for (int i = 0; i < 16; i++) {
		char name[64];
		snprintf(name, sizeof(name), "%s-%s", r, suffix[i]);
		snprintf(n[i], sizeof(n[i]), "%s", pki(name));
	}
	OK(ctx, mtls_ctx_set_name(ctx, "secrets-run"));
	OK(ctx, mtls_ctx_set_expiry_warning(ctx, 1000)); /* warn every time */

	/* Plain keys, good and bad. */
	OK(ctx, load(ctx, n[0], n[1]));
	OK(ctx, load(ctx, n[2], n[3]));
	OK(ctx, load(ctx, n[8], n[9]));
	OK(ctx, load(ctx, n[10], n[11]));
	OK(ctx, load(ctx, n[0], n[12]));
	OK(ctx, load(ctx, n[0], n[13]));
	OK(ctx, load(ctx, n[6], NULL));
	TRY(ctx, load(ctx, n[0], n[7]));  /* mismatch */
	TRY(ctx, load(ctx, n[2], n[1]));  /* mismatch, RSA cert */
	TRY(ctx, load(ctx, n[1], n[0]));  /* swapped */
	TRY(ctx, load(ctx, n[1], NULL));  /* key as combined */
	TRY(ctx, load(ctx, n[14], n[1])); /* chain order */
	TRY(ctx, load(ctx, n[15], n[1])); /* expired (and mismatched) */
	TRY(ctx, load(ctx, n[0], pki("garbage.pem")));
	TRY(ctx, load(ctx, n[0], pki("nocert-bundle.pem")));
	TRY(ctx, load(ctx, pki("nocert-bundle.pem"), NULL));

	/* Encrypted keys: no password, wrong, right. */
	TRY(ctx, load(ctx, n[2], n[5]));
	TRY(ctx, load(ctx, n[0], n[4]));
	OK(ctx, mtls_ctx_set_key_password(ctx, "wrong-pass-7f3a"));
	TRY(ctx, load(ctx, n[2], n[5]));
	TRY(ctx, load(ctx, n[0], n[4]));
	TRY(ctx, load(ctx, n[0], n[5])); /* right file type, wrong cert */
	{
		char des3[64];
		snprintf(des3, sizeof(des3), "%s-enc-pk8-des3.key", r);
		snprintf(n[12], sizeof(n[12]), "%s", pki(des3));
	}
	TRY(ctx, load(ctx, n[0], n[12])); /* still the wrong password */
	OK(ctx, mtls_ctx_set_key_password(ctx, "testpass"));
	OK(ctx, load(ctx, n[0], n[12]));
	OK(ctx, load(ctx, n[2], n[5]));
	TRY(ctx, load(ctx, n[0], n[5])); /* decrypts, then mismatches */
	if (strncmp(mtls_mbedtls_version(), "2.", 2) == 0)
		TRY(ctx, load(ctx, n[0], n[4]));
	else
		OK(ctx, load(ctx, n[0], n[4]));

	/* From memory, with a password only the memory run uses. */
	c = slurp(n[2], &cl);
	k = slurp(n[3], &kl);
	enc = slurp(n[5], &el);
	comb = slurp(n[6], &ml);
	OK(ctx, load_mem(ctx, c, cl, k, kl));
	OK(ctx, load_mem(ctx, comb, ml, NULL, 0));
	TRY(ctx, load_mem(ctx, k, kl, c, cl));
	TRY(ctx, load_mem(ctx, k, kl, NULL, 0));
	TRY(ctx, load_mem(ctx, c, cl, k, kl / 2)); /* truncated key */
	TRY(ctx, load_mem(ctx, c, cl, comb, ml / 2));
	OK(ctx, mtls_ctx_set_key_password(ctx, "Pa55-in-mem-9q"));
	TRY(ctx, load_mem(ctx, c, cl, enc, el));
	TRY(ctx, load_mem(ctx, c, cl, enc, el - 40)); /* cut short */
	OK(ctx, mtls_ctx_set_key_password(ctx, NULL));
	TRY(ctx, load_mem(ctx, c, cl, enc, el));
	free(c);
	free(k);
	free(enc);
	free(comb);

	/* Keys where certificates, CAs or CRLs belong. */
	TRY(ctx, mtls_set_trusted_ca(ctx, n[1]));
	OK(ctx, mtls_set_trusted_ca(ctx, n[6])); /* certificates, and a key */
	TRY(ctx, mtls_set_trusted_ca(ctx, pki("nocert-bundle.pem")));
	TRY(ctx, mtls_set_crl(ctx, n[1]));
	TRY(ctx, mtls_set_crl(ctx, n[13]));
	OK(ctx, mtls_set_trusted_ca(ctx, pki("ca-bundle.pem")));
	/* The system store (debug messages about what it skips); where
	 * ca-certificates is missing, SSL_CERT_FILE stands in for it. */
	if (getenv("SSL_CERT_FILE") == NULL &&
	    access("/etc/ssl/certs/ca-certificates.crt", R_OK) != 0)
		setenv("SSL_CERT_FILE", pki("ca-bundle.pem"), 1);
	OK(ctx, mtls_set_trusted_ca(ctx, "system"));
	OK(ctx, mtls_set_crl(ctx, pki("int.crl")));
	mtls_ctx_free(ctx);
}

static void test_no_secrets_anywhere(void **state)
{
	(void)state;
	collect_secrets();
	mtls_set_log_callback(hear_cb, &heard);
	run_role(MTLS_ROLE_CLIENT);
	run_role(MTLS_ROLE_SERVER);
	log_stop();

	/* The run said enough to be meaningful. */
	assert_true(heard.n >= 60);
	for (size_t i = 0; i < heard.n; i++)
		for (size_t j = 0; j < secrets.n; j++)
			if (strstr(heard.text[i], secrets.text[j]) != NULL) {
				print_error("secret \"%s\" in: %s\n",
				            secrets.text[j], heard.text[i]);
				fail();
			}
	said_free(&heard);
	said_free(&secrets);
}

/* ---- the callback itself ------------------------------------------------- */

static void test_user_pointer_and_levels(void **state)
{
	mtls_ctx *ctx = mtls_ctx_new(MTLS_ROLE_CLIENT);
	said mine = {0};

	(void)state;
	mtls_set_log_callback(hear_cb, &mine);
	check_ok(ctx, mtls_load_client_pair(ctx, pki("client-expiring.crt"),
	                                    pki("client-expiring.key")));
	assert_int_not_equal(mtls_load_client_pair(ctx, pki("missing.crt"),
	                                           NULL),
	                     0);
	log_stop();
	assert_true(mine.n >= 3);
	/* One INFO (loaded), one WARN (expiring), one ERROR (missing). */
	{
		int info = 0, warn = 0, err = 0;
		char tag[8];
		for (size_t i = 0; i < mine.n; i++) {
			snprintf(tag, sizeof(tag), "[%d]", MTLS_LOG_INFO);
			info += strncmp(mine.text[i], tag, 3) == 0;
			snprintf(tag, sizeof(tag), "[%d]", MTLS_LOG_WARN);
			warn += strncmp(mine.text[i], tag, 3) == 0;
			snprintf(tag, sizeof(tag), "[%d]", MTLS_LOG_ERROR);
			err += strncmp(mine.text[i], tag, 3) == 0;
		}
		assert_int_equal(info, 1);
		assert_int_equal(warn, 1);
		assert_int_equal(err, 1);
	}
	said_free(&mine);
	mtls_ctx_free(ctx);
}

static void test_off_by_default_and_null(void **state)
{
	mtls_ctx *ctx = mtls_ctx_new(MTLS_ROLE_CLIENT);

	(void)state;
	log_capture();
	log_stop(); /* NULL turns it off */
	check_ok(ctx, mtls_load_client_pair(ctx, pki("client-ec.crt"),
	                                    pki("client-ec.key")));
	assert_int_not_equal(mtls_load_client_pair(ctx, pki("missing"), NULL),
	                     0);
	assert_int_equal(logs()->n, 0);
	/* And back on. */
	log_capture();
	check_ok(ctx, mtls_load_client_pair(ctx, pki("client-ec.crt"),
	                                    pki("client-ec.key")));
	log_stop();
	assert_int_equal(log_count(MTLS_LOG_INFO), 1);
	mtls_ctx_free(ctx);
}

static void test_replacing_callback(void **state)
{
	mtls_ctx *ctx = mtls_ctx_new(MTLS_ROLE_SERVER);
	said a = {0}, b = {0};

	(void)state;
	mtls_set_log_callback(hear_cb, &a);
	check_ok(ctx, mtls_set_trusted_ca(ctx, pki("ca.crt")));
	mtls_set_log_callback(hear_cb, &b);
	check_ok(ctx, mtls_set_trusted_ca(ctx, pki("ca-dir")));
	log_stop();
	assert_int_equal(a.n, 1);
	assert_int_equal(b.n, 1);
	assert_non_null(strstr(a.text[0], "ca.crt"));
	assert_non_null(strstr(b.text[0], "ca-dir"));
	said_free(&a);
	said_free(&b);
	mtls_ctx_free(ctx);
}

/* Paths and names are data, never format strings, and a message is always
 * one line. */
static void test_messages_are_literal_single_lines(void **state)
{
	mtls_ctx *ctx = mtls_ctx_new(MTLS_ROLE_CLIENT);
	char *dir = make_tmpdir();
	char p1[TEST_PATH_MAX], p2[TEST_PATH_MAX];

	(void)state;
	snprintf(p1, sizeof(p1), "%s/%%s%%n%%x.crt", dir);
	snprintf(p2, sizeof(p2), "%s/two\nlines\r\033[31m.crt", dir);
	check_ok(ctx, mtls_ctx_set_name(ctx, "n%s%n\nX"));
	log_capture();
	check_err(ctx, mtls_load_client_pair(ctx, p1, NULL),
	          MTLS_ERR_FILE_NOT_FOUND, "%s%n%x.crt");
	assert_int_not_equal(mtls_load_client_pair(ctx, p2, NULL), 0);
	assert_int_not_equal(mtls_set_trusted_ca(ctx, p2), 0);
	check_ok(ctx, mtls_load_client_pair(ctx, pki("client-ec.crt"),
	                                    pki("client-ec.key")));
	log_stop();
	assert_logged(MTLS_LOG_ERROR, "%s%n%x.crt", "name=n%s%n", NULL);
	assert_int_equal(logs()->newline, 0);
	for (int i = 0; i < logs()->n; i++)
		for (const char *m = logs()->e[i].msg; *m != '\0'; m++)
			if ((unsigned char)*m < 0x20 || *m == 0x7f)
				fail_msg("control character in: %s",
				         logs()->e[i].msg);
	mtls_ctx_free(ctx);
	rm_tree(dir);
}

/* A very long name and path: the message is cut, never overflows, and
 * stays a C string. */
static void test_long_message(void **state)
{
	mtls_ctx *ctx = mtls_ctx_new(MTLS_ROLE_CLIENT);
	char name[128], path[2048];

	(void)state;
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	/* 9 components of 200 bytes: long, but no ENAMETOOLONG. */
	snprintf(path, sizeof(path), "/nonexistent");
	for (int i = 0; i < 9; i++) {
		size_t at = strlen(path);
		path[at] = '/';
		memset(path + at + 1, 'p', 200);
		path[at + 201] = '\0';
	}
	check_ok(ctx, mtls_ctx_set_name(ctx, name));
	log_capture();
	assert_int_equal(mtls_load_client_pair(ctx, path, NULL),
	                 MTLS_ERR_FILE_NOT_FOUND);
	log_stop();
	assert_int_equal(logs()->n, 1);
	assert_true(strlen(logs()->e[0].msg) < 1024);
	assert_non_null(mtls_ctx_error(ctx));
	assert_true(strlen(mtls_ctx_error(ctx)) < 1024);
	mtls_ctx_free(ctx);
}

/* ---- concurrency: the callback may be swapped while others log ------------ */

static atomic_int calls_a, calls_b;
static atomic_int stop;

static void count_a(void *user, int level, const char *msg)
{
	(void)user;
	(void)level;
	(void)msg;
	atomic_fetch_add(&calls_a, 1);
}

static void count_b(void *user, int level, const char *msg)
{
	(void)user;
	(void)level;
	(void)msg;
	atomic_fetch_add(&calls_b, 1);
}

static void *swapper(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		mtls_set_log_callback(count_a, NULL);
		mtls_set_log_callback(count_b, NULL);
		mtls_set_log_callback(NULL, NULL);
	}
	return NULL;
}

static char missing_crt[TEST_PATH_MAX], empty_pem[TEST_PATH_MAX];

static void *loader(void *arg)
{
	mtls_ctx *ctx = mtls_ctx_new(MTLS_ROLE_SERVER);

	(void)arg;
	for (int i = 0; i < 100; i++) {
		mtls_load_server_pair(ctx, missing_crt, NULL);
		mtls_set_trusted_ca(ctx, empty_pem);
	}
	mtls_ctx_free(ctx);
	return NULL;
}

static void test_swap_while_logging(void **state)
{
	pthread_t s, l1, l2;

	(void)state;
	/* pki() is not thread-safe: make the paths here. */
	snprintf(missing_crt, sizeof(missing_crt), "%s", pki("missing.crt"));
	snprintf(empty_pem, sizeof(empty_pem), "%s", pki("empty.pem"));
	atomic_store(&stop, 0);
	assert_int_equal(pthread_create(&s, NULL, swapper, NULL), 0);
	assert_int_equal(pthread_create(&l1, NULL, loader, NULL), 0);
	assert_int_equal(pthread_create(&l2, NULL, loader, NULL), 0);
	pthread_join(l1, NULL);
	pthread_join(l2, NULL);
	atomic_store(&stop, 1);
	pthread_join(s, NULL);
	mtls_set_log_callback(NULL, NULL);
	/* 400 failures were reported to someone or no one; no crash, no
	 * race (run under the sanitizers). */
	assert_true(atomic_load(&calls_a) + atomic_load(&calls_b) <= 400);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_no_secrets_anywhere),
	    cmocka_unit_test(test_user_pointer_and_levels),
	    cmocka_unit_test(test_off_by_default_and_null),
	    cmocka_unit_test(test_replacing_callback),
	    cmocka_unit_test(test_messages_are_literal_single_lines),
	    cmocka_unit_test(test_long_message),
	    cmocka_unit_test(test_swap_while_logging),
	};

	pki_dir();
	return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
