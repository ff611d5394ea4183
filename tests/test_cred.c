/*
 * test_cred.c - loading and validating the context's own certificate chain
 * and private key, for both roles, from files and from memory.
 *
 * Every test runs twice, on a client and on a server context, with that
 * role's files from the test PKI.  The fixture loads the role's RSA pair
 * first; after each failing call the context must still hold it.
 */
#include "common.h"

#include <sys/wait.h>

typedef struct fx {
	mtls_ctx *ctx;
	mtls_role role;
	const char *r;       /* "client" or "server" */
	const char *eku;     /* the EKU the role needs */
	const char *cn;      /* the leaves' subject */
	mtls_cert_info before; /* the pair loaded by the fixture */
	char *tmp;           /* scratch directory, made on demand */
} fx;

static int setup_role(void **state, mtls_role role)
{
	fx *f = calloc(1, sizeof(*f));
	char c[64], k[64];

	if (f == NULL)
		return -1;
	f->role = role;
	f->r = role == MTLS_ROLE_SERVER ? "server" : "client";
	f->eku = role == MTLS_ROLE_SERVER ? "serverAuth" : "clientAuth";
	f->cn = role == MTLS_ROLE_SERVER ? "CN=localhost" : "CN=client.test";
	f->ctx = mtls_ctx_new(role);
	if (f->ctx == NULL)
		return -1;
	snprintf(c, sizeof(c), "%s-rsa.crt", f->r);
	snprintf(k, sizeof(k), "%s-rsa.key", f->r);
	if ((role == MTLS_ROLE_SERVER
	         ? mtls_load_server_pair(f->ctx, pki(c), pki(k))
	         : mtls_load_client_pair(f->ctx, pki(c), pki(k))) != 0 ||
	    mtls_ctx_cert_info(f->ctx, &f->before) != 0) {
		print_error("fixture: cannot load %s: %s\n", c,
		            mtls_ctx_error(f->ctx));
		return -1;
	}
	log_capture();
	*state = f;
	return 0;
}

static int setup_client(void **state)
{
	return setup_role(state, MTLS_ROLE_CLIENT);
}

static int setup_server(void **state)
{
	return setup_role(state, MTLS_ROLE_SERVER);
}

static int teardown(void **state)
{
	fx *f = *state;

	log_stop();
	mtls_ctx_free(f->ctx);
	rm_tree(f->tmp);
	free(f);
	return 0;
}

/* "$PKI/<role>-<suffix>" */
static const char *rp(const fx *f, const char *suffix)
{
	char name[128];

	snprintf(name, sizeof(name), "%s-%s", f->r, suffix);
	return pki(name);
}

static const char *tmp_path(fx *f, const char *name)
{
	static char ring[4][TEST_PATH_MAX];
	static unsigned next;
	char *p = ring[next++ % 4];

	if (f->tmp == NULL)
		f->tmp = make_tmpdir();
	snprintf(p, TEST_PATH_MAX, "%s/%s", f->tmp, name);
	return p;
}

static int load(const fx *f, const char *cert, const char *key)
{
	return f->role == MTLS_ROLE_SERVER
	           ? mtls_load_server_pair(f->ctx, cert, key)
	           : mtls_load_client_pair(f->ctx, cert, key);
}

static int load_mem(const fx *f, const void *cert, size_t cert_len,
                    const void *key, size_t key_len)
{
	return f->role == MTLS_ROLE_SERVER
	           ? mtls_load_server_pair_mem(f->ctx, cert, cert_len, key,
	                                       key_len)
	           : mtls_load_client_pair_mem(f->ctx, cert, cert_len, key,
	                                       key_len);
}

static int is_mbedtls2(void)
{
	return strncmp(mtls_mbedtls_version(), "2.", 2) == 0;
}

/* The pair now loaded is the role's EC leaf (or another of the same
 * subject), with the given key type and chain length. */
static void check_info(const fx *f, const char *key_type, int chain_len)
{
	mtls_cert_info in;

	assert_int_equal(mtls_ctx_cert_info(f->ctx, &in), 0);
	assert_non_null(strstr(in.subject, f->cn));
	assert_non_null(strstr(in.issuer, "mtls Test Intermediate CA"));
	assert_string_equal(in.key_type, key_type);
	assert_int_equal(in.chain_len, chain_len);
	/* 397-day certificates issued moments ago. */
	assert_in_range(in.days_left, 390, 398);
	assert_in_range(in.not_after - in.not_before, 396L * 86400,
	                398L * 86400);
	assert_true(in.not_before <= time(NULL) + 60);
	/* hex, colon separated */
	assert_true(strlen(in.serial) >= 2);
	assert_true(strspn(in.serial, "0123456789abcdefABCDEF:") ==
	            strlen(in.serial));
}

/* A successful load reports itself once, at INFO, with the facts. */
static void check_loaded_log(const fx *f)
{
	assert_logged(MTLS_LOG_INFO, "subject=", "not_after=", f->cn);
	assert_int_equal(log_count(MTLS_LOG_ERROR), 0);
}

#define check_kept(f) check_info_same((f)->ctx, &(f)->before)

/* A copy of `src` in the scratch directory with the given mode. */
static const char *copy_with_mode(fx *f, const char *src, const char *name,
                                  mode_t mode)
{
	const char *p = tmp_path(f, name);
	size_t l;
	unsigned char *d = slurp(src, &l);

	write_file(p, d, l);
	free(d);
	assert_int_equal(chmod(p, mode), 0);
	return p;
}

/* ---- good pairs ---------------------------------------------------------- */

static void test_ec_p256(void **state)
{
	fx *f = *state;

	check_ok(f->ctx, load(f, rp(f, "ec.crt"), rp(f, "ec.key")));
	check_info(f, "EC P-256", 1);
	check_loaded_log(f);
	assert_logged(MTLS_LOG_INFO, "EC P-256", NULL, NULL);
	/* No warnings for a sound pair with a 0600 key. */
	assert_int_equal(log_count(MTLS_LOG_WARN), 0);
}

static void test_ec_p384(void **state)
{
	fx *f = *state;

	check_ok(f->ctx, load(f, rp(f, "p384.crt"), rp(f, "p384.key")));
	check_info(f, "EC P-384", 1);
	check_loaded_log(f);
}

static void test_rsa_pkcs1(void **state)
{
	fx *f = *state;

	check_ok(f->ctx, load(f, rp(f, "ec.crt"), rp(f, "ec.key")));
	check_ok(f->ctx, load(f, rp(f, "rsa.crt"), rp(f, "rsa.key")));
	check_info(f, "RSA 2048", 1);
	check_loaded_log(f);
}

static void test_pkcs8(void **state)
{
	fx *f = *state;

	check_ok(f->ctx, load(f, rp(f, "ec.crt"), rp(f, "pk8.key")));
	check_info(f, "EC P-256", 1);
}

/* PBES2 with AES-256-CBC: mbedTLS 2.28 cannot decrypt it (and says so as
 * UNSUPPORTED, not as a bad key); 3.x can. */
static void test_encrypted_pkcs8(void **state)
{
	fx *f = *state;
	const char *key = rp(f, "enc-pk8.key");

	check_ok(f->ctx, mtls_ctx_set_key_password(f->ctx, "testpass"));
	if (is_mbedtls2()) {
		check_err(f->ctx, load(f, rp(f, "ec.crt"), key),
		          MTLS_ERR_UNSUPPORTED, key, "encryption");
		check_kept(f);
		return;
	}
	check_ok(f->ctx, load(f, rp(f, "ec.crt"), key));
	check_info(f, "EC P-256", 1);
	check_loaded_log(f);
}

/* PBES2 with 3DES: what mbedTLS 2.28 can decrypt. */
static void test_encrypted_pkcs8_des3(void **state)
{
	fx *f = *state;

	check_ok(f->ctx, mtls_ctx_set_key_password(f->ctx, "testpass"));
	check_ok(f->ctx, load(f, rp(f, "ec.crt"), rp(f, "enc-pk8-des3.key")));
	check_info(f, "EC P-256", 1);
	check_loaded_log(f);
}

static void test_encrypted_legacy_pem(void **state)
{
	fx *f = *state;

	check_ok(f->ctx, load(f, rp(f, "ec.crt"), rp(f, "ec.key")));
	check_ok(f->ctx, mtls_ctx_set_key_password(f->ctx, "testpass"));
	check_ok(f->ctx, load(f, rp(f, "rsa.crt"), rp(f, "enc-legacy.key")));
	check_info(f, "RSA 2048", 1);
	check_loaded_log(f);
}

/* The password is for encrypted keys; a plain key ignores it. */
static void test_password_with_plain_key(void **state)
{
	fx *f = *state;

	check_ok(f->ctx, mtls_ctx_set_key_password(f->ctx, "testpass"));
	check_ok(f->ctx, load(f, rp(f, "ec.crt"), rp(f, "ec.key")));
	check_info(f, "EC P-256", 1);
}

static void test_combined_key_null(void **state)
{
	fx *f = *state;

	check_ok(f->ctx, load(f, rp(f, "combined.pem"), NULL));
	check_info(f, "EC P-256", 2);
	check_loaded_log(f);
}

static void test_combined_key_same_path(void **state)
{
	fx *f = *state;
	const char *p = rp(f, "combined.pem");
	char copy[TEST_PATH_MAX];

	/* Equal strings, distinct pointers. */
	snprintf(copy, sizeof(copy), "%s", p);
	check_ok(f->ctx, load(f, p, copy));
	check_info(f, "EC P-256", 2);
}

static void test_chain_file(void **state)
{
	fx *f = *state;

	check_ok(f->ctx, load(f, rp(f, "ec-chain.pem"), rp(f, "ec.key")));
	check_info(f, "EC P-256", 2);
	assert_logged(MTLS_LOG_INFO, "chain=2", NULL, NULL);
	check_ok(f->ctx, load(f, rp(f, "rsa-chain.pem"), rp(f, "rsa.key")));
	check_info(f, "RSA 2048", 2);
}

static void test_der(void **state)
{
	fx *f = *state;

	check_ok(f->ctx, load(f, rp(f, "ec.der"), rp(f, "ec-key.der")));
	check_info(f, "EC P-256", 1);
	/* Mixed encodings. */
	check_ok(f->ctx, load(f, rp(f, "ec.der"), rp(f, "ec.key")));
	check_info(f, "EC P-256", 1);
	check_ok(f->ctx, load(f, rp(f, "ec.crt"), rp(f, "ec-key.der")));
	check_info(f, "EC P-256", 1);
}

static void test_no_eku_accepted(void **state)
{
	fx *f = *state;

	check_ok(f->ctx, load(f, rp(f, "noeku.crt"), rp(f, "noeku.key")));
	check_info(f, "EC P-256", 1);
}

/* Certificates that load-time checks accept although a peer or a CRL may
 * not: trust is the peer's business. */
static void test_load_does_not_judge_trust(void **state)
{
	fx *f = *state;

	check_ok(f->ctx, load(f, rp(f, "revoked.crt"), rp(f, "revoked.key")));
	check_info(f, "EC P-256", 1);
	if (f->role == MTLS_ROLE_CLIENT)
		check_ok(f->ctx, load(f, pki("other-client.crt"),
		                      pki("other-client.key")));
}

static void test_replaces_previous(void **state)
{
	fx *f = *state;
	mtls_cert_info a, b;

	check_ok(f->ctx, load(f, rp(f, "ec.crt"), rp(f, "ec.key")));
	assert_int_equal(mtls_ctx_cert_info(f->ctx, &a), 0);
	check_ok(f->ctx, load(f, rp(f, "p384.crt"), rp(f, "p384.key")));
	assert_int_equal(mtls_ctx_cert_info(f->ctx, &b), 0);
	assert_string_equal(b.key_type, "EC P-384");
	assert_string_not_equal(a.serial, b.serial);
	/* Loading the same files again is fine. */
	check_ok(f->ctx, load(f, rp(f, "p384.crt"), rp(f, "p384.key")));
	check_info_same(f->ctx, &b);
}

/* ---- from memory --------------------------------------------------------- */

static void test_mem_pair(void **state)
{
	fx *f = *state;
	size_t cl, kl;
	unsigned char *c = slurp(rp(f, "ec.crt"), &cl);
	unsigned char *k = slurp(rp(f, "ec.key"), &kl);

	check_ok(f->ctx, load_mem(f, c, cl, k, kl));
	check_info(f, "EC P-256", 1);
	assert_logged(MTLS_LOG_INFO, "<memory>", "subject=", NULL);
	free(c);
	free(k);
}

static void test_mem_combined(void **state)
{
	fx *f = *state;
	size_t cl;
	unsigned char *c = slurp(rp(f, "combined.pem"), &cl);

	check_ok(f->ctx, load_mem(f, c, cl, NULL, 0));
	check_info(f, "EC P-256", 2);
	free(c);
}

static void test_mem_der_and_chain(void **state)
{
	fx *f = *state;
	size_t cl, kl, chl;
	unsigned char *c = slurp(rp(f, "ec.der"), &cl);
	unsigned char *k = slurp(rp(f, "ec-key.der"), &kl);
	unsigned char *ch = slurp(rp(f, "ec-chain.pem"), &chl);

	check_ok(f->ctx, load_mem(f, c, cl, k, kl));
	check_info(f, "EC P-256", 1);
	check_ok(f->ctx, load_mem(f, ch, chl, k, kl));
	check_info(f, "EC P-256", 2);
	free(c);
	free(k);
	free(ch);
}

/* The library copies: the caller may wipe and free its buffers at once,
 * and the loaded pair stays usable. */
static void test_mem_copied(void **state)
{
	fx *f = *state;
	size_t cl, kl;
	unsigned char *c = slurp(rp(f, "ec.crt"), &cl);
	unsigned char *k = slurp(rp(f, "ec.key"), &kl);
	mtls_cert_info in;

	check_ok(f->ctx, load_mem(f, c, cl, k, kl));
	memset(c, 0, cl);
	memset(k, 0, kl);
	free(c);
	free(k);
	assert_int_equal(mtls_ctx_cert_info(f->ctx, &in), 0);
	assert_non_null(strstr(in.subject, f->cn));
}

static void test_mem_encrypted(void **state)
{
	fx *f = *state;
	size_t cl, kl;
	unsigned char *c = slurp(rp(f, "rsa.crt"), &cl);
	unsigned char *k = slurp(rp(f, "enc-legacy.key"), &kl);

	check_err(f->ctx, load_mem(f, c, cl, k, kl),
	          MTLS_ERR_KEY_PASSWORD_REQUIRED, "<memory>");
	check_kept(f);
	check_ok(f->ctx, mtls_ctx_set_key_password(f->ctx, "wrong"));
	check_err(f->ctx, load_mem(f, c, cl, k, kl), MTLS_ERR_KEY_PASSWORD,
	          "<memory>");
	check_kept(f);
	check_ok(f->ctx, mtls_ctx_set_key_password(f->ctx, "testpass"));
	check_ok(f->ctx, load_mem(f, c, cl, k, kl));
	check_info(f, "RSA 2048", 1);
	free(c);
	free(k);
}

static void test_mem_bad(void **state)
{
	fx *f = *state;
	size_t cl, kl, gl, ol;
	unsigned char *c = slurp(rp(f, "ec.crt"), &cl);
	unsigned char *k = slurp(rp(f, "ec.key"), &kl);
	unsigned char *g = slurp(pki("garbage.pem"), &gl);
	unsigned char *o = slurp(rp(f, "other.key"), &ol);
	unsigned char *big;

	check_err(f->ctx, load_mem(f, NULL, 0, NULL, 0), MTLS_ERR_INVALID_ARG,
	          "NULL");
	check_kept(f);
	check_err(f->ctx, load_mem(f, NULL, 100, k, kl), MTLS_ERR_INVALID_ARG,
	          "NULL");
	check_kept(f);
	check_err(f->ctx, load_mem(f, c, 0, k, kl), MTLS_ERR_FILE_EMPTY,
	          "<memory>");
	check_kept(f);
	check_err(f->ctx, load_mem(f, c, cl, k, 0), MTLS_ERR_FILE_EMPTY,
	          "<memory>");
	check_kept(f);
	check_err(f->ctx, load_mem(f, g, gl, k, kl), MTLS_ERR_CERT_PARSE,
	          "<memory>");
	check_kept(f);
	check_err(f->ctx, load_mem(f, c, cl, g, gl), MTLS_ERR_KEY_PARSE,
	          "<memory>");
	check_kept(f);
	check_err(f->ctx, load_mem(f, c, cl, o, ol), MTLS_ERR_KEY_MISMATCH,
	          "<memory>", "does not match");
	check_kept(f);
	/* A certificate buffer without its key. */
	check_err(f->ctx, load_mem(f, c, cl, NULL, 0), MTLS_ERR_KEY_PARSE,
	          "<memory>", "no private key");
	check_kept(f);
	/* Truncated: half the PEM. */
	check_err(f->ctx, load_mem(f, c, cl / 2, k, kl), MTLS_ERR_CERT_PARSE,
	          "<memory>", "truncated");
	check_kept(f);

	big = calloc(1, (size_t)MTLS_MAX_FILE_SIZE + 1);
	assert_non_null(big);
	check_err(f->ctx, load_mem(f, big, (size_t)MTLS_MAX_FILE_SIZE + 1, k,
	                           kl),
	          MTLS_ERR_FILE_TOO_LARGE, "<memory>", "too large");
	check_kept(f);
	free(big);
	free(c);
	free(k);
	free(g);
	free(o);
}

/* ---- files that cannot be read ------------------------------------------- */

static void test_missing_cert(void **state)
{
	fx *f = *state;
	const char *p = rp(f, "missing.crt");

	check_err(f->ctx, load(f, p, rp(f, "ec.key")), MTLS_ERR_FILE_NOT_FOUND,
	          p, "No such file");
	check_kept(f);
	assert_logged(MTLS_LOG_ERROR, p, NULL, NULL);
}

static void test_missing_key(void **state)
{
	fx *f = *state;
	const char *p = rp(f, "missing.key");

	check_err(f->ctx, load(f, rp(f, "ec.crt"), p), MTLS_ERR_FILE_NOT_FOUND,
	          p);
	check_kept(f);
	/* A missing directory component too. */
	p = pki("no-such-dir/x.crt");
	check_err(f->ctx, load(f, p, rp(f, "ec.key")), MTLS_ERR_FILE_NOT_FOUND,
	          p);
	check_kept(f);
}

static void test_directory(void **state)
{
	fx *f = *state;
	const char *d = pki("ca-dir");

	check_err(f->ctx, load(f, d, rp(f, "ec.key")),
	          MTLS_ERR_FILE_NOT_REGULAR, d, "directory");
	check_kept(f);
	check_err(f->ctx, load(f, rp(f, "ec.crt"), d),
	          MTLS_ERR_FILE_NOT_REGULAR, d, "directory");
	check_kept(f);
}

static void test_device(void **state)
{
	fx *f = *state;

	check_err(f->ctx, load(f, "/dev/null", rp(f, "ec.key")),
	          MTLS_ERR_FILE_NOT_REGULAR, "/dev/null", "regular");
	check_kept(f);
}

static void test_empty(void **state)
{
	fx *f = *state;
	const char *p = pki("empty.pem");

	check_err(f->ctx, load(f, p, rp(f, "ec.key")), MTLS_ERR_FILE_EMPTY, p,
	          "empty");
	check_kept(f);
	check_err(f->ctx, load(f, rp(f, "ec.crt"), p), MTLS_ERR_FILE_EMPTY, p,
	          "empty");
	check_kept(f);
}

static void test_too_large(void **state)
{
	fx *f = *state;
	const char *big = tmp_path(f, "big.pem");
	const char *edge = tmp_path(f, "edge.pem");
	size_t cl;
	unsigned char *c = slurp(rp(f, "ec.crt"), &cl);
	int fd;

	/* One byte over the limit (sparse: cheap to make). */
	fd = open(big, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)MTLS_MAX_FILE_SIZE + 1), 0);
	close(fd);
	check_err(f->ctx, load(f, big, rp(f, "ec.key")),
	          MTLS_ERR_FILE_TOO_LARGE, big, "too large");
	check_kept(f);
	check_err(f->ctx, load(f, rp(f, "ec.crt"), big),
	          MTLS_ERR_FILE_TOO_LARGE, big);
	check_kept(f);

	/* Exactly at the limit is allowed: the certificate, then newlines. */
	fd = open(edge, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, c, cl), (ssize_t)cl);
	{
		size_t left = MTLS_MAX_FILE_SIZE - cl;
		char nl[65536];
		memset(nl, '\n', sizeof(nl));
		while (left > 0) {
			size_t n = left < sizeof(nl) ? left : sizeof(nl);
			assert_int_equal(write(fd, nl, n), (ssize_t)n);
			left -= n;
		}
	}
	close(fd);
	check_ok(f->ctx, load(f, edge, rp(f, "ec.key")));
	check_info(f, "EC P-256", 1);
	free(c);
}

/* Loads `cert` and `key` as an unprivileged user: in a child process that
 * drops to nobody, since root reads mode-000 files.  Returns the code, or
 * 1 when privileges cannot be dropped. */
static int load_as_nobody(fx *f, const char *cert, const char *key,
                          char *msg, size_t msg_len)
{
	int fds[2], status = 0;
	pid_t pid;
	ssize_t n;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		const char *m;
		int ret = 1;
		close(fds[0]);
		if (setgid(65534) == 0 && setuid(65534) == 0) {
			ret = load(f, cert, key);
			m = mtls_ctx_error(f->ctx);
			if (m != NULL && write(fds[1], m, strlen(m)) < 0)
				ret = 1;
		}
		_exit(ret < 0 ? -ret : ret);
	}
	close(fds[1]);
	n = read(fds[0], msg, msg_len - 1);
	msg[n > 0 ? n : 0] = '\0';
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status) == 1 ? 1 : -WEXITSTATUS(status);
}

static void test_unreadable(void **state)
{
	fx *f = *state;
	const char *crt = copy_with_mode(f, rp(f, "ec.crt"), "a.crt", 0644);
	const char *key = copy_with_mode(f, rp(f, "ec.key"), "a.key", 0);
	char msg[600];
	int ret;

	if (geteuid() != 0) {
		check_err(f->ctx, load(f, crt, key), MTLS_ERR_FILE_ACCESS, key,
		          "denied");
		check_kept(f);
		return;
	}
	/* root reads mode-000 files: try as nobody, else skip. */
	assert_int_equal(chmod(f->tmp, 0755), 0);
	ret = load_as_nobody(f, crt, key, msg, sizeof(msg));
	if (ret == 1)
		skip();
	if (ret != MTLS_ERR_FILE_ACCESS || strstr(msg, key) == NULL ||
	    strstr(msg, "denied") == NULL)
		fail_msg("as nobody: %d, \"%s\"", ret, msg);
	/* The child's context is a copy: nothing to check here. */
	check_kept(f);
}

/* ---- files that are not what they should be ------------------------------ */

static void test_garbage(void **state)
{
	fx *f = *state;
	const char *p = pki("garbage.pem");

	check_err(f->ctx, load(f, p, rp(f, "ec.key")), MTLS_ERR_CERT_PARSE, p);
	check_kept(f);
	check_err(f->ctx, load(f, rp(f, "ec.crt"), p), MTLS_ERR_KEY_PARSE, p);
	check_kept(f);
}

static void test_truncated(void **state)
{
	fx *f = *state;
	const char *p = pki("truncated.pem");

	check_err(f->ctx, load(f, p, rp(f, "ec.key")), MTLS_ERR_CERT_PARSE, p,
	          "truncated");
	check_kept(f);
}

/* A chain file cut short inside its second certificate: mbedTLS stops
 * quietly at a BEGIN without END, which would load a one-certificate chain
 * that peers then refuse. */
static void test_truncated_intermediate(void **state)
{
	fx *f = *state;
	const char *p = tmp_path(f, "cut-chain.pem");
	size_t cl, il;
	unsigned char *c = slurp(rp(f, "ec.crt"), &cl);
	unsigned char *i = slurp(pki("int.crt"), &il);
	unsigned char *buf = malloc(cl + il / 2);

	assert_non_null(buf);
	memcpy(buf, c, cl);
	memcpy(buf + cl, i, il / 2);
	write_file(p, buf, cl + il / 2);
	check_err(f->ctx, load(f, p, rp(f, "ec.key")), MTLS_ERR_CERT_PARSE, p,
	          "truncated");
	check_kept(f);
	check_err(f->ctx, load_mem(f, buf, cl + il / 2, NULL, 0),
	          MTLS_ERR_CERT_PARSE, "<memory>", "truncated");
	check_kept(f);
	free(c);
	free(i);
	free(buf);
}

/* A key file where the certificate should be. */
static void test_key_as_cert(void **state)
{
	fx *f = *state;
	const char *p = rp(f, "ec.key");

	check_err(f->ctx, load(f, p, p), MTLS_ERR_CERT_PARSE, p,
	          "no certificate");
	check_kept(f);
}

/* A certificate where the key should be, or a combined file without key. */
static void test_cert_as_key(void **state)
{
	fx *f = *state;
	const char *crt = rp(f, "ec.crt");
	const char *chain = rp(f, "ec-chain.pem");

	check_err(f->ctx, load(f, crt, crt), MTLS_ERR_KEY_PARSE, crt,
	          "no private key");
	check_kept(f);
	check_err(f->ctx, load(f, crt, NULL), MTLS_ERR_KEY_PARSE, crt,
	          "no private key");
	check_kept(f);
	check_err(f->ctx, load(f, chain, NULL), MTLS_ERR_KEY_PARSE, chain);
	check_kept(f);
	check_err(f->ctx, load(f, crt, rp(f, "rsa.crt")), MTLS_ERR_KEY_PARSE,
	          rp(f, "rsa.crt"));
	check_kept(f);
	check_err(f->ctx, load(f, crt, rp(f, "ec.der")), MTLS_ERR_KEY_PARSE,
	          rp(f, "ec.der"));
	check_kept(f);
}

static void test_key_mismatch(void **state)
{
	fx *f = *state;
	const char *crt = rp(f, "ec.crt");
	const char *key = rp(f, "other.key");
	char want[TEST_PATH_MAX + 64];

	snprintf(want, sizeof(want), "certificate does not match private key %s",
	         key);
	check_err(f->ctx, load(f, crt, key), MTLS_ERR_KEY_MISMATCH, crt, want);
	check_kept(f);
	/* EC certificate, RSA key. */
	check_err(f->ctx, load(f, crt, rp(f, "rsa.key")),
	          MTLS_ERR_KEY_MISMATCH, crt);
	check_kept(f);
	/* Another role's pair. */
	check_err(f->ctx,
	          load(f, crt, f->role == MTLS_ROLE_SERVER
	                           ? pki("client-ec.key")
	                           : pki("server-ec.key")),
	          MTLS_ERR_KEY_MISMATCH, crt);
	check_kept(f);
}

static void test_reversed_chain(void **state)
{
	fx *f = *state;
	const char *p = rp(f, "rev-chain.pem");

	check_err(f->ctx, load(f, p, rp(f, "ec.key")), MTLS_ERR_CHAIN_ORDER, p,
	          "order");
	check_kept(f);
}

static void test_broken_chain(void **state)
{
	fx *f = *state;
	const char *p = rp(f, "broken-chain.pem");

	check_err(f->ctx, load(f, p, rp(f, "ec.key")), MTLS_ERR_CHAIN_ORDER, p,
	          "not issued by", "Other Root CA");
	check_kept(f);
}

static void test_expired(void **state)
{
	fx *f = *state;
	const char *p = rp(f, "expired.crt");

	check_err(f->ctx, load(f, p, rp(f, "expired.key")),
	          MTLS_ERR_CERT_EXPIRED, p, "expired on 20", "UTC");
	check_kept(f);
}

static void test_not_yet_valid(void **state)
{
	fx *f = *state;
	const char *p = rp(f, "future.crt");

	check_err(f->ctx, load(f, p, rp(f, "future.key")),
	          MTLS_ERR_CERT_NOT_YET_VALID, p, "not valid until");
	check_kept(f);
}

static void test_wrong_eku(void **state)
{
	fx *f = *state;
	const char *p = rp(f, "wrongeku.crt");

	check_err(f->ctx, load(f, p, rp(f, "wrongeku.key")),
	          MTLS_ERR_CERT_EKU, p, f->eku);
	check_kept(f);
	/* The other role's certificate, with its own key, is refused the
	 * same way. */
	p = f->role == MTLS_ROLE_SERVER ? pki("client-ec.crt")
	                                : pki("server-ec.crt");
	check_err(f->ctx,
	          load(f, p, f->role == MTLS_ROLE_SERVER ? pki("client-ec.key")
	                                                 : pki("server-ec.key")),
	          MTLS_ERR_CERT_EKU, p, f->eku);
	check_kept(f);
}

static void test_password_required(void **state)
{
	fx *f = *state;
	const char *k1 = rp(f, "enc-legacy.key");
	const char *k2 = rp(f, "enc-pk8.key");

	check_err(f->ctx, load(f, rp(f, "rsa.crt"), k1),
	          MTLS_ERR_KEY_PASSWORD_REQUIRED, k1, "password");
	check_kept(f);
	check_err(f->ctx, load(f, rp(f, "ec.crt"), k2),
	          MTLS_ERR_KEY_PASSWORD_REQUIRED, k2, "password");
	check_kept(f);
	k2 = rp(f, "enc-pk8-des3.key");
	check_err(f->ctx, load(f, rp(f, "ec.crt"), k2),
	          MTLS_ERR_KEY_PASSWORD_REQUIRED, k2, "password");
	check_kept(f);
	/* A password set and then cleared. */
	check_ok(f->ctx, mtls_ctx_set_key_password(f->ctx, "testpass"));
	check_ok(f->ctx, mtls_ctx_set_key_password(f->ctx, NULL));
	check_err(f->ctx, load(f, rp(f, "rsa.crt"), k1),
	          MTLS_ERR_KEY_PASSWORD_REQUIRED, k1);
	check_kept(f);
}

/* Many wrong passwords: mbedTLS's own wrong-password detection is a
 * heuristic that lets about one garbage decryption in a few hundred
 * through; the library must still say "wrong password" for each. */
#define WRONG_PASSWORDS 500
/* PBKDF2 makes each PKCS#8 attempt ~2 ms on 3.x: fewer. */
#define WRONG_PASSWORDS_PBES2 30
static void test_wrong_password(void **state)
{
	fx *f = *state;
	char k1[TEST_PATH_MAX], k2[TEST_PATH_MAX], k3[TEST_PATH_MAX], pw[32];

	/* Own copies: rp()'s buffers are reused within the loop. */
	snprintf(k1, sizeof(k1), "%s", rp(f, "enc-legacy.key"));
	snprintf(k2, sizeof(k2), "%s", rp(f, "enc-pk8.key"));
	snprintf(k3, sizeof(k3), "%s", rp(f, "enc-pk8-des3.key"));
	for (int i = 0; i < WRONG_PASSWORDS; i++) {
		snprintf(pw, sizeof(pw), "wrong-%d", i);
		check_ok(f->ctx, mtls_ctx_set_key_password(f->ctx, pw));
		check_err(f->ctx, load(f, rp(f, "rsa.crt"), k1),
		          MTLS_ERR_KEY_PASSWORD, k1, "wrong password");
	}
	check_kept(f);
	for (int i = 0; i < (is_mbedtls2() ? 1 : WRONG_PASSWORDS_PBES2); i++) {
		snprintf(pw, sizeof(pw), "wrong-%d", i);
		check_ok(f->ctx, mtls_ctx_set_key_password(f->ctx, pw));
		check_err(f->ctx, load(f, rp(f, "ec.crt"), k2),
		          is_mbedtls2() ? MTLS_ERR_UNSUPPORTED
		                        : MTLS_ERR_KEY_PASSWORD,
		          k2);
	}
	check_kept(f);
	for (int i = 0; i < WRONG_PASSWORDS_PBES2; i++) {
		snprintf(pw, sizeof(pw), "wrong-%d", i);
		check_ok(f->ctx, mtls_ctx_set_key_password(f->ctx, pw));
		check_err(f->ctx, load(f, rp(f, "ec.crt"), k3),
		          MTLS_ERR_KEY_PASSWORD, k3, "wrong password");
	}
	check_kept(f);
	/* Case matters. */
	check_ok(f->ctx, mtls_ctx_set_key_password(f->ctx, "TESTPASS"));
	check_err(f->ctx, load(f, rp(f, "rsa.crt"), k1), MTLS_ERR_KEY_PASSWORD,
	          k1);
	check_kept(f);
}

/* ---- warnings and reports through the log callback ----------------------- */

static void test_expiring_warns(void **state)
{
	fx *f = *state;
	const char *p = rp(f, "expiring.crt");
	const char *w;

	check_ok(f->ctx, load(f, p, rp(f, "expiring.key")));
	w = log_find(MTLS_LOG_WARN, "expires in", NULL, NULL);
	if (w == NULL) {
		log_dump();
		fail_msg("no expiry warning");
	}
	assert_true(strstr(w, "expires in 9 days") != NULL ||
	            strstr(w, "expires in 10 days") != NULL);
	assert_non_null(strstr(w, "expiring.crt"));
	assert_int_equal(log_count(MTLS_LOG_WARN), 1);
}

static void test_expiry_warning_threshold(void **state)
{
	fx *f = *state;

	/* Disabled. */
	check_ok(f->ctx, mtls_ctx_set_expiry_warning(f->ctx, 0));
	check_ok(f->ctx, load(f, rp(f, "expiring.crt"), rp(f, "expiring.key")));
	assert_null(log_find(MTLS_LOG_WARN, "expires in", NULL, NULL));
	/* Below the days left. */
	check_ok(f->ctx, mtls_ctx_set_expiry_warning(f->ctx, 5));
	check_ok(f->ctx, load(f, rp(f, "expiring.crt"), rp(f, "expiring.key")));
	assert_null(log_find(MTLS_LOG_WARN, "expires in", NULL, NULL));
	/* Above: even a year-long certificate warns. */
	check_ok(f->ctx, mtls_ctx_set_expiry_warning(f->ctx, 1000));
	check_ok(f->ctx, load(f, rp(f, "ec.crt"), rp(f, "ec.key")));
	assert_logged(MTLS_LOG_WARN, "expires in", NULL, NULL);
	/* The default (30) does not warn for 397 days. */
	log_reset();
	check_ok(f->ctx, mtls_ctx_set_expiry_warning(f->ctx, 30));
	check_ok(f->ctx, load(f, rp(f, "ec.crt"), rp(f, "ec.key")));
	assert_null(log_find(MTLS_LOG_WARN, NULL, NULL, NULL));
}

static void test_key_mode_warns(void **state)
{
	fx *f = *state;
	const char *key;

	/* The PKI has a 0644 copy of the client key; make the server's. */
	key = f->role == MTLS_ROLE_CLIENT
	          ? pki("client-ec-0644.key")
	          : copy_with_mode(f, rp(f, "ec.key"), "0644.key", 0644);
	check_ok(f->ctx, load(f, rp(f, "ec.crt"), key));
	assert_logged(MTLS_LOG_WARN, "0600", key, "0644");
	/* Readable by the group only is exposed too. */
	log_reset();
	key = copy_with_mode(f, rp(f, "ec.key"), "0640.key", 0640);
	check_ok(f->ctx, load(f, rp(f, "ec.crt"), key));
	assert_logged(MTLS_LOG_WARN, "0600", key, NULL);
	/* 0400 is fine. */
	log_reset();
	key = copy_with_mode(f, rp(f, "ec.key"), "0400.key", 0400);
	check_ok(f->ctx, load(f, rp(f, "ec.crt"), key));
	assert_null(log_find(MTLS_LOG_WARN, NULL, NULL, NULL));
}

static void test_combined_mode_warns(void **state)
{
	fx *f = *state;
	const char *p = copy_with_mode(f, rp(f, "combined.pem"), "comb.pem",
	                               0644);

	check_ok(f->ctx, load(f, p, NULL));
	assert_logged(MTLS_LOG_WARN, "0600", p, NULL);
}

static void test_info_log_with_name(void **state)
{
	fx *f = *state;

	check_ok(f->ctx, mtls_ctx_set_name(f->ctx, "payments"));
	check_ok(f->ctx, load(f, rp(f, "ec.crt"), rp(f, "ec.key")));
	assert_logged(MTLS_LOG_INFO, "subject=", "not_after=", "name=payments");
	assert_logged(MTLS_LOG_INFO, f->cn, "name=payments", NULL);
	/* A failure is logged with the name too. */
	check_err(f->ctx, load(f, rp(f, "expired.crt"), rp(f, "expired.key")),
	          MTLS_ERR_CERT_EXPIRED, "expired.crt");
	assert_logged(MTLS_LOG_ERROR, "expired.crt", "name=payments", NULL);
}

#define BOTH(t)                                                               \
	{#t "/client", t, setup_client, teardown, NULL},                      \
	{                                                                     \
		#t "/server", t, setup_server, teardown, NULL                 \
	}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    BOTH(test_ec_p256),
	    BOTH(test_ec_p384),
	    BOTH(test_rsa_pkcs1),
	    BOTH(test_pkcs8),
	    BOTH(test_encrypted_pkcs8),
	    BOTH(test_encrypted_pkcs8_des3),
	    BOTH(test_encrypted_legacy_pem),
	    BOTH(test_password_with_plain_key),
	    BOTH(test_combined_key_null),
	    BOTH(test_combined_key_same_path),
	    BOTH(test_chain_file),
	    BOTH(test_der),
	    BOTH(test_no_eku_accepted),
	    BOTH(test_load_does_not_judge_trust),
	    BOTH(test_replaces_previous),
	    BOTH(test_mem_pair),
	    BOTH(test_mem_combined),
	    BOTH(test_mem_der_and_chain),
	    BOTH(test_mem_copied),
	    BOTH(test_mem_encrypted),
	    BOTH(test_mem_bad),
	    BOTH(test_missing_cert),
	    BOTH(test_missing_key),
	    BOTH(test_directory),
	    BOTH(test_device),
	    BOTH(test_empty),
	    BOTH(test_too_large),
	    BOTH(test_unreadable),
	    BOTH(test_garbage),
	    BOTH(test_truncated),
	    BOTH(test_truncated_intermediate),
	    BOTH(test_key_as_cert),
	    BOTH(test_cert_as_key),
	    BOTH(test_key_mismatch),
	    BOTH(test_reversed_chain),
	    BOTH(test_broken_chain),
	    BOTH(test_expired),
	    BOTH(test_not_yet_valid),
	    BOTH(test_wrong_eku),
	    BOTH(test_password_required),
	    BOTH(test_wrong_password),
	    BOTH(test_expiring_warns),
	    BOTH(test_expiry_warning_threshold),
	    BOTH(test_key_mode_warns),
	    BOTH(test_combined_mode_warns),
	    BOTH(test_info_log_with_name),
	};

	pki_dir();
	return cmocka_run_group_tests_name("cred", tests, NULL, NULL);
}
