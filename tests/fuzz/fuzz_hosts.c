/*
 * fuzz_hosts.c - the SNI host table of a listener (lib/hosts.c): names
 * added through mtls_ctx_add_host(), then looked up with
 * mtls__hosts_find() as the SNI callback does, every answer compared with a
 * reference model written here from the header's promises, not from
 * hosts.c:
 *   - an SNI value that is not a host name (1 to 253 bytes of dot-separated
 *     labels of 1 to 63 letters, digits, '-' or '_') matches nothing;
 *   - else an exact entry wins (case-insensitive), then a wildcard entry
 *     "*.rest" when the name is one label followed by ".rest";
 *   - the host returned is the one last added under that name, and
 *     *matched is that entry's name, lowercased.
 * Every name the model calls a host name or a one-label wildcard of one
 * must be accepted by mtls_ctx_add_host().  Any disagreement aborts.
 * (hosts.c's functions are hidden in the shared library; the fuzz build
 * links the static one, where they are visible.)
 *
 * Input: lines ('\n'); a line's first byte is an operation, the rest a
 * name (which may hold any byte, NUL included).  Operation % 4 == 0: add
 * the name (up to its first NUL) with host (op / 4) % POOL; otherwise look
 * it up, as is and uppercased.  At the end every entry is looked up again.
 */
#include "internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define POOL 4
#define MAX_ENTRIES 128
#define NAME_MAX_LEN 300

#define CHECK(c) \
	do { \
		if (!(c)) { \
			fprintf(stderr, "fuzz_hosts: %s:%d: %s\n", __FILE__, \
			        __LINE__, #c); \
			abort(); \
		} \
	} while (0)

struct entry {
	char name[NAME_MAX_LEN + 1]; /* lowercased */
	size_t len;
	mtls_ctx *host;
};

struct model {
	struct entry e[MAX_ENTRIES];
	size_t n;
};

static unsigned char lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

static int same_nocase(const char *a, size_t alen, const char *b, size_t blen)
{
	if (alen != blen)
		return 0;
	for (size_t i = 0; i < alen; i++)
		if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
			return 0;
	return 1;
}

static int label_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* The header's host name: labels of 1..63 allowed bytes, 1..253 in all. */
static int model_host_name(const char *s, size_t len)
{
	size_t start = 0;

	if (len == 0 || len > 253)
		return 0;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || s[i] == '.') {
			size_t n = i - start;
			if (n == 0 || n > 63)
				return 0;
			start = i + 1;
		} else if (!label_char((unsigned char)s[i])) {
			return 0;
		}
	}
	return 1;
}

static struct entry *model_get(struct model *m, const char *name, size_t len)
{
	for (size_t i = 0; i < m->n; i++)
		if (same_nocase(m->e[i].name, m->e[i].len, name, len))
			return &m->e[i];
	return NULL;
}

static void model_add(struct model *m, const char *name, mtls_ctx *host)
{
	size_t len = strlen(name);
	struct entry *e = model_get(m, name, len);

	if (e == NULL) {
		CHECK(m->n < MAX_ENTRIES && len <= NAME_MAX_LEN);
		e = &m->e[m->n++];
		for (size_t i = 0; i < len; i++)
			e->name[i] = (char)lower((unsigned char)name[i]);
		e->name[len] = '\0';
		e->len = len;
	}
	e->host = host; /* the same name again replaces its host */
}

/* Exact entry, else a "*.rest" entry when name is "label.rest". */
static const struct entry *model_find(struct model *m, const char *name,
                                      size_t len)
{
	const struct entry *e;

	if (!model_host_name(name, len))
		return NULL;
	if ((e = model_get(m, name, len)) != NULL)
		return e;
	for (size_t i = 0; i < m->n; i++) {
		const struct entry *w = &m->e[i];
		size_t rest = w->len - 1; /* ".rest" */
		if (w->len < 3 || w->name[0] != '*' || w->name[1] != '.' ||
		    len <= rest)
			continue;
		/* one label (no dot, not empty) before ".rest" */
		if (same_nocase(w->name + 1, rest, name + len - rest, rest) &&
		    memchr(name, '.', len - rest) == NULL)
			return w;
	}
	return NULL;
}

static void check_lookup(mtls_hosts *h, struct model *m, const char *name,
                         size_t len)
{
	const struct entry *want = model_find(m, name, len);
	const char *matched = "not set";
	mtls_ctx *got = mtls__hosts_find(h, name, len, &matched);

	if (want == NULL) {
		CHECK(got == NULL);
		CHECK(matched == NULL);
		return;
	}
	CHECK(got == want->host);
	CHECK(matched != NULL && strcmp(matched, want->name) == 0);
	/* NULL for matched is allowed and changes nothing */
	CHECK(mtls__hosts_find(h, name, len, NULL) == got);
	/* the validity check is the one the model makes */
	CHECK(mtls__sni_valid(name, len) == 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static mtls_ctx *pool[POOL];
	static struct model m;
	mtls_ctx *listener;
	const uint8_t *p = data, *end = data + size;

	if (pool[0] == NULL)
		for (int i = 0; i < POOL; i++)
			CHECK((pool[i] = mtls_ctx_new(MTLS_ROLE_SERVER)) != NULL);
	CHECK((listener = mtls_ctx_new(MTLS_ROLE_SERVER)) != NULL);
	m.n = 0;
	while (p < end) {
		const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = (size_t)((nl ? nl : end) - p);
		char name[NAME_MAX_LEN + 1];

		if (len > 0 && len - 1 <= NAME_MAX_LEN) {
			unsigned op = p[0];
			size_t nlen = len - 1;
			memcpy(name, p + 1, nlen);
			name[nlen] = '\0';
			CHECK(model_host_name(name, nlen) == mtls__sni_valid(name, nlen));
			if (op % 4 == 0 && m.n < MAX_ENTRIES) {
				mtls_ctx *host = pool[(op / 4) % POOL];
				size_t clen = strlen(name); /* to the first NUL */
				int ok = mtls_ctx_add_host(listener, name, host) == 0;
				int must = model_host_name(name, clen) ||
				           (clen > 2 && name[0] == '*' &&
				            name[1] == '.' &&
				            model_host_name(name + 2, clen - 2));
				CHECK(ok || !must);
				if (ok)
					model_add(&m, name, host);
			} else {
				check_lookup(listener->hosts, &m, name, nlen);
				for (size_t i = 0; i < nlen; i++)
					if (name[i] >= 'a' && name[i] <= 'z')
						name[i] = (char)(name[i] - 'a' + 'A');
				check_lookup(listener->hosts, &m, name, nlen);
			}
		}
		p = nl ? nl + 1 : end;
	}
	/* every entry finds itself (a wildcard only through a name under it) */
	for (size_t i = 0; i < m.n; i++) {
		char sub[NAME_MAX_LEN + 3];
		const struct entry *e = &m.e[i];
		check_lookup(listener->hosts, &m, e->name, e->len);
		if (e->name[0] == '*' && e->len + 1 <= NAME_MAX_LEN) {
			sub[0] = 'x';
			memcpy(sub + 1, e->name + 1, e->len - 1);
			check_lookup(listener->hosts, &m, sub, e->len);
		}
	}
	mtls_ctx_free(listener);
	return 0;
}
