/*
 * common.h - shared fixtures for the cmocka tests: paths into the test PKI,
 * a capturing log callback, file helpers, and assertions that check an
 * error code together with the context's message.
 *
 * Each test program is one translation unit, so everything here is static
 * (inline, so that a program that does not use a helper does not warn).
 */
#ifndef MTLS_TEST_COMMON_H
#define MTLS_TEST_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <ftw.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mtls.h"

#define TEST_PATH_MAX 4096

/* ---- the test PKI (tests/pki.sh, directory in $MTLS_TEST_PKI) ---------- */

static inline const char *pki_dir(void)
{
	const char *d = getenv("MTLS_TEST_PKI");

	if (d == NULL || d[0] == '\0') {
		print_error("MTLS_TEST_PKI is not set: run the tests through "
		            "tests/run.sh BUILD\n");
		exit(2);
	}
	return d;
}

/* "$MTLS_TEST_PKI/name", in one of a ring of static buffers, so a few
 * paths can be used in one call. */
static inline const char *pki(const char *name)
{
	static char ring[16][TEST_PATH_MAX];
	static unsigned next;
	char *p = ring[next++ % 16];

	snprintf(p, TEST_PATH_MAX, "%s/%s", pki_dir(), name);
	return p;
}

/* Whole file into a malloc'ed buffer (NOT NUL-terminated on purpose: the
 * library must not need it); *len gets the size.  Fails the test if the
 * file cannot be read. */
static inline unsigned char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = NULL;
	size_t cap = 0, n = 0;

	if (f == NULL) {
		print_error("cannot open %s: %s\n", path, strerror(errno));
		fail();
	}
	for (;;) {
		size_t got;
		if (n == cap) {
			cap = cap ? cap * 2 : 4096;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
		got = fread(buf + n, 1, cap - n, f);
		if (got == 0)
			break;
		n += got;
	}
	fclose(f);
	/* Exactly the file's size, so a read past the end is a sanitizer
	 * error rather than a silent read of slack. */
	if (n > 0) {
		buf = realloc(buf, n);
		assert_non_null(buf);
	}
	*len = n;
	return buf;
}

static inline unsigned char *slurp_pki(const char *name, size_t *len)
{
	return slurp(pki(name), len);
}

static inline void write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* A fresh private directory under $TMPDIR; remove with rm_tree(). */
static inline char *make_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char *p = malloc(TEST_PATH_MAX);

	assert_non_null(p);
	snprintf(p, TEST_PATH_MAX, "%s/mtls-test.XXXXXX",
	         base != NULL && base[0] != '\0' ? base : "/tmp");
	assert_non_null(mkdtemp(p));
	return p;
}

static inline int rm_one(const char *path, const struct stat *st, int flag,
                         struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	chmod(path, 0700); /* so a mode-000 test file can go too */
	return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

/* Removes a directory made by make_tmpdir() with all it holds, then frees
 * the path. */
static inline void rm_tree(char *dir)
{
	if (dir == NULL)
		return;
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
}

/* ---- capturing log callback --------------------------------------------- */

#define TEST_LOG_MAX 512

typedef struct test_log_entry {
	int level;
	char msg[1100];
} test_log_entry;

typedef struct test_log {
	test_log_entry e[TEST_LOG_MAX];
	int n;
	int lost;     /* messages beyond TEST_LOG_MAX */
	int too_long; /* messages that would not fit msg[] */
	int newline;  /* messages containing a newline */
} test_log;

static inline test_log *logs(void)
{
	static test_log l;
	return &l;
}

static inline void log_capture_cb(void *user, int level, const char *msg)
{
	test_log *l = user;

	if (msg == NULL)
		msg = "(NULL message)";
	if (strchr(msg, '\n') != NULL)
		l->newline++;
	if (l->n >= TEST_LOG_MAX) {
		l->lost++;
		return;
	}
	l->e[l->n].level = level;
	if ((size_t)snprintf(l->e[l->n].msg, sizeof(l->e[l->n].msg), "%s",
	                     msg) >= sizeof(l->e[l->n].msg))
		l->too_long++;
	l->n++;
}

static inline void log_reset(void)
{
	memset(logs(), 0, sizeof(*logs()));
}

/* Captures every message from now on, starting empty. */
static inline void log_capture(void)
{
	log_reset();
	mtls_set_log_callback(log_capture_cb, logs());
}

static inline void log_stop(void)
{
	mtls_set_log_callback(NULL, NULL);
}

/* The first captured message at `level` (-1: any) containing every
 * non-NULL needle, or NULL. */
static inline const char *log_find(int level, const char *n1, const char *n2,
                                   const char *n3)
{
	test_log *l = logs();

	for (int i = 0; i < l->n; i++) {
		const char *m = l->e[i].msg;
		if (level >= 0 && l->e[i].level != level)
			continue;
		if ((n1 == NULL || strstr(m, n1) != NULL) &&
		    (n2 == NULL || strstr(m, n2) != NULL) &&
		    (n3 == NULL || strstr(m, n3) != NULL))
			return m;
	}
	return NULL;
}

static inline int log_count(int level)
{
	test_log *l = logs();
	int c = 0;

	for (int i = 0; i < l->n; i++)
		if (level < 0 || l->e[i].level == level)
			c++;
	return c;
}

static inline void log_dump(void)
{
	test_log *l = logs();

	for (int i = 0; i < l->n; i++)
		print_message("  log[%d] level=%d: %s\n", i, l->e[i].level,
		              l->e[i].msg);
}

static inline void assert_logged_at(const char *file, int line, int level,
                                    const char *n1, const char *n2,
                                    const char *n3)
{
	if (log_find(level, n1, n2, n3) != NULL)
		return;
	print_error("%s:%d: no log message at level %d with \"%s\" \"%s\" "
	            "\"%s\"; captured:\n",
	            file, line, level, n1 ? n1 : "", n2 ? n2 : "",
	            n3 ? n3 : "");
	log_dump();
	_fail(file, line);
}

/* Some captured message at `level` (-1: any) contains the non-NULL
 * needles. */
#define assert_logged(level, n1, n2, n3)                                      \
	assert_logged_at(__FILE__, __LINE__, (level), (n1), (n2), (n3))

/* ---- error assertions ---------------------------------------------------- */

/* ret must be `code`, mtls_ctx_error(ctx) must be set and contain every
 * needle (a NULL-terminated list).  Prints the message on failure. */
static inline void check_err_at(const char *file, int line,
                                const mtls_ctx *ctx, int ret, int code, ...)
{
	const char *msg = mtls_ctx_error(ctx);
	const char *needle;
	va_list ap;

	if (ret != code) {
		print_error("%s:%d: expected %d (%s), got %d (%s); "
		            "mtls_ctx_error: %s\n",
		            file, line, code, mtls_strerror(code), ret,
		            mtls_strerror(ret), msg ? msg : "(NULL)");
		_fail(file, line);
	}
	if (msg == NULL || msg[0] == '\0') {
		print_error("%s:%d: code %d but mtls_ctx_error is empty\n",
		            file, line, code);
		_fail(file, line);
	}
	va_start(ap, code);
	while ((needle = va_arg(ap, const char *)) != NULL) {
		if (strstr(msg, needle) == NULL) {
			va_end(ap);
			print_error("%s:%d: mtls_ctx_error \"%s\" lacks \"%s\"\n",
			            file, line, msg, needle);
			_fail(file, line);
		}
	}
	va_end(ap);
}

/* check_err(ctx, ret, MTLS_ERR_X, "needle", ...): at least one needle. */
#define check_err(ctx, ret, ...)                                              \
	check_err_at(__FILE__, __LINE__, (ctx), (ret), __VA_ARGS__,           \
	             (const char *)NULL)

/* A call that must succeed and leave no error on the context. */
#define check_ok(ctx, call)                                                   \
	do {                                                                  \
		int ret_ = (call);                                            \
		if (ret_ != 0) {                                              \
			const char *m_ = mtls_ctx_error(ctx);                 \
			print_error("%s:%d: %s returned %d (%s): %s\n",        \
			            __FILE__, __LINE__, #call, ret_,          \
			            mtls_strerror(ret_), m_ ? m_ : "(NULL)"); \
			_fail(__FILE__, __LINE__);                            \
		}                                                             \
		assert_null(mtls_ctx_error(ctx));                             \
	} while (0)

/* The whole mtls_cert_info of a context equals `want` (days_left aside,
 * which is recomputed on each call). */
static inline void check_info_same_at(const char *file, int line,
                                      const mtls_ctx *ctx,
                                      const mtls_cert_info *want)
{
	mtls_cert_info got;
	int ret = mtls_ctx_cert_info(ctx, &got);

	if (ret != 0 || strcmp(got.subject, want->subject) != 0 ||
	    strcmp(got.issuer, want->issuer) != 0 ||
	    strcmp(got.serial, want->serial) != 0 ||
	    strcmp(got.key_type, want->key_type) != 0 ||
	    got.not_before != want->not_before ||
	    got.not_after != want->not_after ||
	    got.chain_len != want->chain_len) {
		print_error("%s:%d: context lost its previous pair: ret=%d "
		            "subject=%s serial=%s key=%s chain=%d (wanted "
		            "serial=%s key=%s chain=%d)\n",
		            file, line, ret, got.subject, got.serial,
		            got.key_type, got.chain_len, want->serial,
		            want->key_type, want->chain_len);
		_fail(file, line);
	}
}

#define check_info_same(ctx, want)                                            \
	check_info_same_at(__FILE__, __LINE__, (ctx), (want))

#endif
