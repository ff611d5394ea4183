/*
 * mtls-check - check a certificate, its private key and chain the way
 * libmtls does when it loads them, and report every finding at once, for a
 * person (one line each) or as one JSON object.
 *
 *   mtls-check CERT [KEY] [--ca CA] [--role client|server]
 *              [--password-file F] [--warn-days N] [--json]
 *
 * The library stops at the first problem; this tool parses each part on its
 * own so one run shows everything that is wrong.  It then asks the library
 * itself (mtls_load_*_pair) as a cross-check, so it never calls a pair good
 * that the library would refuse.
 *
 * Exit status: 0 no errors, 1 errors, 2 usage.
 *
 *   mtls-check --connect HOST:PORT [CERT KEY] [--ca CA] [--servername NAME]
 *
 * handshakes with a server instead (tools/connect.c).
 */
#include "internal.h"
#include "connect.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/oid.h>
#include <mbedtls/pkcs5.h>

#define RSA_MIN_BITS 2048
#define DEFAULT_WARN_DAYS 30
#define MAX_FINDINGS 64
#define MAX_VERIFY 16
#define MSG_LEN 1024

static const char usage_text[] =
    "usage: mtls-check CERT [KEY] [--ca CA] [--role client|server]\n"
    "                  [--password-file FILE] [--warn-days N] [--json]\n"
    "       mtls-check --connect HOST:PORT [CERT KEY] [--ca CA]\n"
    "                  [--servername NAME]\n";

enum level { L_OK, L_INFO, L_WARN, L_ERROR };

/* Findings print in this order, whatever order they were found in. */
static const char *const check_order[] = {
	"certificate", "key", "chain", "expiry", "usage",
	"names", "key file", "trust", "load", NULL,
};

typedef struct finding {
	enum level level;
	int rank;
	const char *check;
	char msg[MSG_LEN];
} finding;

typedef struct opts {
	const char *cert_path;
	const char *key_path;  /* NULL: in CERT */
	const char *ca;
	const char *pw_path;
	int role;              /* -1: infer from the EKU */
	unsigned warn_days;
	int json;
} opts;

/* Everything learnt about the files, for the findings and the JSON. */
typedef struct state {
	const opts *o;
	time_t now;
	char *password;        /* in pwbuf; wiped with it */
	mtls_buf pwbuf, cbuf, kbuf;
	int cert_read;         /* CERT could be read */

	mbedtls_x509_crt chain; /* every certificate parsed from CERT */
	const mbedtls_x509_crt **certs;
	int ncerts;
	int leaf_idx;          /* -1 when no certificate */

	mbedtls_pk_context key;
	const char *key_src;   /* file the key came from, NULL: none */
	int key_read;          /* a key file was read and holds a key */
	int key_parsed;
	int key_match;         /* -1 unknown, 0 no, 1 yes */

	int roles[2];
	int nroles;
	int role_inferred;

	char **sans;
	int nsans;
	int verified;          /* -1 not checked, 0 no, 1 yes */

	finding f[MAX_FINDINGS];
	int nf;
	int errors, warnings;
} state;

/* ---- findings ------------------------------------------------------------ */

static int rank_of(const char *check)
{
	int i;

	for (i = 0; check_order[i] != NULL; i++)
		if (strcmp(check_order[i], check) == 0)
			return i;
	return i;
}

static void add(state *s, enum level lv, const char *check, const char *fmt,
                ...) __attribute__((format(printf, 4, 5)));

static void add(state *s, enum level lv, const char *check, const char *fmt,
                ...)
{
	finding *f;
	va_list ap;

	if (lv == L_ERROR)
		s->errors++;
	else if (lv == L_WARN)
		s->warnings++;
	if (s->nf >= MAX_FINDINGS)
		return;
	f = &s->f[s->nf++];
	f->level = lv;
	f->check = check;
	f->rank = rank_of(check);
	va_start(ap, fmt);
	vsnprintf(f->msg, sizeof(f->msg), fmt, ap);
	va_end(ap);
}

/* Stable: findings of one check keep the order they were found in. */
static void sort_findings(state *s)
{
	int i, j;

	for (i = 1; i < s->nf; i++) {
		finding t = s->f[i];
		for (j = i; j > 0 && s->f[j - 1].rank > t.rank; j--)
			s->f[j] = s->f[j - 1];
		s->f[j] = t;
	}
}

/* ---- small helpers ------------------------------------------------------- */

static const char *role_word(int role)
{
	return role == MTLS_ROLE_SERVER ? "server" : "client";
}

static int is_pem(const mtls_buf *b)
{
	return strstr((const char *)b->data, "-----BEGIN ") != NULL;
}

static size_t parse_len(const mtls_buf *b)
{
	return is_pem(b) ? b->len + 1 : b->len;
}

static int has(const mtls_buf *b, const char *text)
{
	return b->data != NULL && strstr((const char *)b->data, text) != NULL;
}

static const char *plural(long n, const char *one, const char *many)
{
	return n == 1 || n == -1 ? one : many;
}

static void dn(const mbedtls_x509_crt *c, char *buf, size_t len)
{
	mtls__fmt_dn(&c->subject, buf, len);
}

/* The library's own tests of names (certutil.c), so that mtls-check and a
 * refused handshake tell a missing intermediate the same way. */
static int self_signed(const mbedtls_x509_crt *c)
{
	return mtls__crt_self_issued(c);
}

static int issued_by(const mbedtls_x509_crt *child,
                     const mbedtls_x509_crt *parent)
{
	return child->issuer_raw.len == parent->subject_raw.len &&
	       memcmp(child->issuer_raw.p, parent->subject_raw.p,
	              parent->subject_raw.len) == 0;
}

/* Bytes from a certificate, made safe for a terminal: \xNN outside ASCII
 * printables. */
static void printable(const unsigned char *p, size_t n, char *out, size_t len)
{
	size_t i, o = 0;

	for (i = 0; i < n && o + 5 < len; i++) {
		if (p[i] >= 0x20 && p[i] < 0x7f)
			out[o++] = (char)p[i];
		else
			o += (size_t)snprintf(out + o, len - o, "\\x%02x", p[i]);
	}
	out[o] = '\0';
}

/* ---- arguments ----------------------------------------------------------- */

static int usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "mtls-check: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n%s", usage_text);
	return 2;
}

static int parse_uint(const char *s, unsigned *out)
{
	unsigned long v = 0;

	if (*s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (unsigned long)(*s - '0');
		if (v > 100000)
			return -1;
	}
	*out = (unsigned)v;
	return 0;
}

/* Returns -1 to go on, or an exit status. */
static int parse_args(int argc, char **argv, opts *o)
{
	const char *pos[2] = {NULL, NULL};
	int npos = 0, i, dashdash = 0;

	o->role = -1;
	o->warn_days = DEFAULT_WARN_DAYS;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *val = NULL, *eq;
		char name[32];
		size_t nlen;

		if (dashdash || a[0] != '-' || a[1] == '\0') {
			if (npos == 2)
				return usage_error("too many arguments: %s", a);
			pos[npos++] = a;
			continue;
		}
		if (strcmp(a, "--") == 0) {
			dashdash = 1;
			continue;
		}
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			fputs(usage_text, stdout);
			return 0;
		}
		if (strcmp(a, "--version") == 0) {
			printf("mtls-check %s (mbedTLS %s)\n",
			       MTLS_VERSION_STRING, mtls_mbedtls_version());
			return 0;
		}
		if (strcmp(a, "--json") == 0) {
			o->json = 1;
			continue;
		}
		/* Options with a value: "--opt VALUE" or "--opt=VALUE". */
		eq = strchr(a, '=');
		nlen = eq != NULL ? (size_t)(eq - a) : strlen(a);
		if (nlen >= sizeof(name))
			return usage_error("unknown option: %s", a);
		memcpy(name, a, nlen);
		name[nlen] = '\0';
		if (strcmp(name, "--ca") != 0 && strcmp(name, "--role") != 0 &&
		    strcmp(name, "--password-file") != 0 &&
		    strcmp(name, "--warn-days") != 0)
			return usage_error("unknown option: %s", a);
		if (eq != NULL)
			val = eq + 1;
		else if (i + 1 < argc)
			val = argv[++i];
		else
			return usage_error("%s needs a value", name);
		if (val[0] == '\0')
			return usage_error("%s needs a value", name);
		if (strcmp(name, "--ca") == 0) {
			o->ca = val;
		} else if (strcmp(name, "--password-file") == 0) {
			o->pw_path = val;
		} else if (strcmp(name, "--role") == 0) {
			if (strcmp(val, "client") == 0)
				o->role = MTLS_ROLE_CLIENT;
			else if (strcmp(val, "server") == 0)
				o->role = MTLS_ROLE_SERVER;
			else
				return usage_error("--role must be client or "
				                   "server, not \"%s\"", val);
		} else if (parse_uint(val, &o->warn_days) != 0) {
			return usage_error("--warn-days needs a number of days "
			                   "(0 to 100000), not \"%s\"", val);
		}
	}
	if (npos == 0)
		return usage_error("no certificate file given");
	o->cert_path = pos[0];
	o->key_path = pos[1];
	if (o->key_path != NULL && strcmp(o->key_path, o->cert_path) == 0)
		o->key_path = NULL;
	return -1;
}

/* ---- reading and parsing ------------------------------------------------- */

static void read_password(state *s)
{
	mtls_err e = {0};
	unsigned mode;
	char *pw, *nl;

	if (s->o->pw_path == NULL)
		return;
	if (mtls__read_file(s->o->pw_path, 1, &s->pwbuf, &e) != 0) {
		add(s, L_ERROR, "key", "password file %s", e.msg);
		return;
	}
	/* The first line is the password, as with openssl's file:F. */
	pw = (char *)s->pwbuf.data;
	nl = strpbrk(pw, "\r\n");
	if (nl != NULL)
		*nl = '\0';
	if (pw[0] == '\0')
		add(s, L_ERROR, "key", "password file %s: the first line is "
		    "empty", s->o->pw_path);
	else
		s->password = pw;
	mode = mtls__key_file_exposed(s->o->pw_path);
	if (mode != 0)
		add(s, L_WARN, "key file",
		    "password file %s is mode %04o; it should be 0600",
		    s->o->pw_path, mode);
}

/* Says what a PEM file without a certificate holds instead. */
static void no_cert_found(state *s)
{
	const char *p = s->o->cert_path;

	if (has(&s->cbuf, "CERTIFICATE REQUEST-----"))
		add(s, L_ERROR, "certificate",
		    "%s: holds a certificate signing request (CSR), not a "
		    "certificate; have your CA sign it", p);
	else if (has(&s->cbuf, "PRIVATE KEY-----"))
		add(s, L_ERROR, "certificate",
		    "%s: holds a private key but no certificate; give the "
		    "certificate first: mtls-check CERT KEY", p);
	else
		add(s, L_ERROR, "certificate",
		    "%s: no certificate found (PEM without a CERTIFICATE "
		    "block)", p);
}

/* Each PEM block on its own, so one bad certificate is named and the
 * others are still checked. */
static void parse_pem_certs(state *s)
{
	static const char begin[] = "-----BEGIN CERTIFICATE-----";
	static const char end[] = "-----END CERTIFICATE-----";
	const char *p = (const char *)s->cbuf.data, *b, *e;
	const char *path = s->o->cert_path;
	char why[128];
	int block = 0, ret;

	while ((b = strstr(p, begin)) != NULL) {
		unsigned char *one;
		size_t n;

		block++;
		e = strstr(b + sizeof(begin) - 1, end);
		if (e == NULL) {
			add(s, L_ERROR, "certificate",
			    "%s: certificate #%d is truncated (BEGIN "
			    "CERTIFICATE without END CERTIFICATE)", path,
			    block);
			break;
		}
		n = (size_t)(e - b) + sizeof(end) - 1;
		one = malloc(n + 1);
		if (one == NULL) {
			add(s, L_ERROR, "certificate", "out of memory");
			return;
		}
		memcpy(one, b, n);
		one[n] = '\0';
		ret = mbedtls_x509_crt_parse(&s->chain, one, n + 1);
		free(one);
		if (ret != 0) {
			if (ret > 0)
				snprintf(why, sizeof(why), "parse failed");
			else
				mtls__mbedtls_reason(ret, why, sizeof(why));
			add(s, L_ERROR, "certificate",
			    "%s: certificate #%d is not valid (%s)", path,
			    block, why);
		}
		p = b + n;
	}
	if (block == 0)
		no_cert_found(s);
}

static void read_cert(state *s)
{
	const mbedtls_x509_crt *c;
	mtls_err e = {0};
	char why[128];
	int i, ret;

	/* Read as a secret: a combined file holds the key too. */
	if (mtls__read_file(s->o->cert_path, 1, &s->cbuf, &e) != 0) {
		add(s, L_ERROR, "certificate", "%s", e.msg);
		return;
	}
	s->cert_read = 1;
	if (is_pem(&s->cbuf)) {
		parse_pem_certs(s);
	} else {
		ret = mbedtls_x509_crt_parse_der(&s->chain, s->cbuf.data,
		                                 s->cbuf.len);
		if (ret != 0) {
			mtls__mbedtls_reason(ret, why, sizeof(why));
			add(s, L_ERROR, "certificate",
			    "%s: not a certificate in PEM or DER (%s)",
			    s->o->cert_path, why);
		}
	}
	for (c = &s->chain; c != NULL && c->raw.p != NULL; c = c->next)
		s->ncerts++;
	if (s->ncerts == 0)
		return;
	/* an array of pointers into the chain */
	s->certs = calloc((size_t)s->ncerts, sizeof(*s->certs)); // NOLINT(bugprone-sizeof-expression)
	if (s->certs == NULL) {
		s->ncerts = 0;
		add(s, L_ERROR, "certificate", "out of memory");
		return;
	}
	/* ncerts was counted on this same list: c is never NULL here. */
	for (c = &s->chain, i = 0; c != NULL && i < s->ncerts; c = c->next, i++)
		s->certs[i] = c;
}

static void key_parse_error(state *s, const mtls_buf *b, int ret)
{
	const char *k = s->key_src;
	char why[128];

	if (ret == MBEDTLS_ERR_PK_PASSWORD_REQUIRED && s->o->pw_path != NULL)
		add(s, L_ERROR, "key", "%s: private key is encrypted, and the "
		    "password file gave no password", k);
	else if (ret == MBEDTLS_ERR_PK_PASSWORD_REQUIRED)
		add(s, L_ERROR, "key",
		    "%s: private key is encrypted; give its password with "
		    "--password-file FILE", k);
	else if (ret == MBEDTLS_ERR_PK_PASSWORD_MISMATCH)
		add(s, L_ERROR, "key", "%s: wrong password for private key "
		    "(from %s)", k, s->o->pw_path);
	else if (ret == MBEDTLS_ERR_PKCS5_FEATURE_UNAVAILABLE ||
	         ret == MBEDTLS_ERR_PK_FEATURE_UNAVAILABLE)
		add(s, L_ERROR, "key", "%s: the key is encrypted with an "
		    "algorithm mbedTLS %s cannot decrypt (2.28 decrypts "
		    "PKCS#8 keys with DES or 3DES only; 3.6 also with AES)",
		    k, mtls_mbedtls_version());
	else if (is_pem(b) && !has(b, "PRIVATE KEY-----"))
		add(s, L_ERROR, "key", "%s: no private key found%s", k,
		    has(b, "CERTIFICATE-----")
		        ? " (it holds a certificate; the order is CERT, "
		          "then KEY)"
		        : "");
	else {
		mtls__mbedtls_reason(ret, why, sizeof(why));
		add(s, L_ERROR, "key", "%s: not a valid private key (%s)", k,
		    why);
	}
}

static void read_key(state *s)
{
	const mtls_buf *b;
	mtls_err e = {0};
	int ret;

	if (s->o->key_path != NULL) {
		s->key_src = s->o->key_path;
		if (mtls__read_file(s->o->key_path, 1, &s->kbuf, &e) != 0) {
			add(s, L_ERROR, "key", "%s", e.msg);
			return;
		}
		b = &s->kbuf;
	} else if (s->cert_read && is_pem(&s->cbuf) &&
	           has(&s->cbuf, "PRIVATE KEY-----")) {
		s->key_src = s->o->cert_path;
		b = &s->cbuf;
	} else {
		if (s->cert_read)
			add(s, L_INFO, "key",
			    "not checked: no KEY given and %s holds no private "
			    "key", s->o->cert_path);
		return;
	}
	/* Its mode matters if it holds a key, even one we cannot parse. */
	s->key_read = !is_pem(b) || has(b, "PRIVATE KEY-----");
	ret = mtls__pk_parse_key(&s->key, b->data, parse_len(b), s->password);
	if (ret != 0) {
		key_parse_error(s, b, ret);
		return;
	}
	s->key_parsed = 1;
}

/* The leaf is the certificate the key belongs to, else the first one that
 * is not a CA, else the first. */
static void pick_leaf(state *s)
{
	int i;

	s->leaf_idx = s->ncerts > 0 ? 0 : -1;
	if (s->ncerts == 0)
		return;
	if (s->key_parsed) {
		s->key_match = 0;
		for (i = 0; i < s->ncerts; i++) {
			if (mtls__pk_check_pair(&s->certs[i]->pk, &s->key) ==
			    0) {
				s->leaf_idx = i;
				s->key_match = 1;
				return;
			}
		}
	}
	for (i = 0; i < s->ncerts; i++) {
		if (!mtls__crt_is_ca(s->certs[i])) {
			s->leaf_idx = i;
			return;
		}
	}
}

/* ---- checks -------------------------------------------------------------- */

static void check_certificate(state *s)
{
	const mbedtls_x509_crt *leaf;
	char subj[256], iss[256];

	if (s->leaf_idx < 0)
		return;
	leaf = s->certs[s->leaf_idx];
	dn(leaf, subj, sizeof(subj));
	mtls__fmt_dn(&leaf->issuer, iss, sizeof(iss));
	if (s->leaf_idx == 0)
		add(s, L_OK, "certificate", "%s: %s, issued by %s",
		    s->o->cert_path, subj, iss);
	else
		add(s, L_OK, "certificate", "%s: %s, issued by %s "
		    "(certificate #%d in the file)", s->o->cert_path, subj,
		    iss, s->leaf_idx + 1);
	if (mtls__crt_is_ca(leaf))
		add(s, self_signed(leaf) ? L_INFO : L_WARN, "certificate",
		    "%s is a CA certificate (basicConstraints CA:TRUE), not "
		    "an end-entity certificate", subj);
}

static void check_key_type(state *s, const mbedtls_pk_context *pk,
                           const char *ktype)
{
	if (mbedtls_pk_get_type(pk) == MBEDTLS_PK_RSA) {
		if (mbedtls_pk_get_bitlen(pk) < RSA_MIN_BITS)
			add(s, L_WARN, "key",
			    "RSA key of %zu bits is weak; use at least %d",
			    mbedtls_pk_get_bitlen(pk), RSA_MIN_BITS);
		return;
	}
	switch (mtls__pk_ec_group(pk)) {
	case MBEDTLS_ECP_DP_SECP256R1:
	case MBEDTLS_ECP_DP_SECP384R1:
	case MBEDTLS_ECP_DP_SECP521R1:
		return;
	default:
		add(s, L_ERROR, "key", "unsupported key type %s (use RSA or "
		    "ECDSA P-256/P-384/P-521)", ktype);
	}
}

static void key_match_finding(state *s, const mbedtls_x509_crt *leaf,
                              const char *ctype)
{
	char ktype[32], subj[256];

	mtls__fmt_key_type(&s->key, ktype, sizeof(ktype));
	if (s->key_match != 1) {
		dn(leaf, subj, sizeof(subj));
		if (strcmp(ctype, ktype) == 0)
			add(s, L_ERROR, "key", "%s does not match the "
			    "certificate %s (a different %s key)", s->key_src,
			    subj, ktype);
		else
			add(s, L_ERROR, "key", "%s does not match the "
			    "certificate %s (the certificate has an %s key, "
			    "%s an %s key)", s->key_src, subj, ctype,
			    s->key_src, ktype);
	} else if (s->leaf_idx == 0) {
		add(s, L_OK, "key", "%s matches the certificate (%s)",
		    s->key_src, ktype);
	} else {
		dn(leaf, subj, sizeof(subj));
		add(s, L_OK, "key", "%s matches certificate #%d (%s), not the "
		    "first one (%s)", s->key_src, s->leaf_idx + 1, subj,
		    ktype);
	}
}

static void check_key(state *s)
{
	const mbedtls_x509_crt *leaf;
	char ktype[32], ctype[32];

	if (s->leaf_idx < 0) {
		if (s->key_parsed) {
			mtls__fmt_key_type(&s->key, ktype, sizeof(ktype));
			add(s, L_INFO, "key", "%s holds a private key (%s), but "
			    "there is no certificate to match it against",
			    s->key_src, ktype);
		}
		return;
	}
	leaf = s->certs[s->leaf_idx];
	mtls__fmt_key_type(&leaf->pk, ctype, sizeof(ctype));
	if (s->key_parsed)
		key_match_finding(s, leaf, ctype);
	check_key_type(s, &leaf->pk, ctype);
}

static void check_chain(state *s)
{
	const mbedtls_x509_crt *prev, *c;
	char a[256], b[256];
	int i, bad = 0;

	if (s->leaf_idx < 0)
		return;
	if (s->leaf_idx != 0) {
		dn(s->certs[s->leaf_idx], a, sizeof(a));
		dn(s->certs[0], b, sizeof(b));
		add(s, L_ERROR, "chain",
		    "out of order: the leaf (%s) is certificate #%d, after "
		    "%s; put the leaf first, then each issuer in turn", a,
		    s->leaf_idx + 1, b);
		bad = 1;
	}
	/* Links in the order the chain should have: leaf, then the rest. */
	prev = s->certs[s->leaf_idx];
	for (i = 0; i < s->ncerts; i++) {
		if (i == s->leaf_idx)
			continue;
		c = s->certs[i];
		if (!issued_by(prev, c)) {
			dn(prev, a, sizeof(a));
			dn(c, b, sizeof(b));
			add(s, L_ERROR, "chain",
			    "out of order: %s is not issued by the certificate "
			    "that follows it, #%d (%s); put the leaf first, "
			    "then each issuer in turn", a, i + 1, b);
			bad = 1;
		} else if (!mtls__crt_is_ca(c)) {
			dn(c, b, sizeof(b));
			add(s, L_ERROR, "chain",
			    "certificate #%d (%s) is not a CA certificate, so "
			    "it cannot issue the one before it", i + 1, b);
			bad = 1;
		}
		prev = c;
	}
	if (bad)
		return;
	if (s->ncerts == 1)
		add(s, L_OK, "chain", "1 certificate (the leaf alone, no "
		    "intermediates)");
	else
		add(s, L_OK, "chain", "%d certificates, in order (leaf, then "
		    "%s)", s->ncerts,
		    s->ncerts == 2 ? "its issuer" : "each issuer");
	c = s->certs[s->ncerts - 1];
	if (s->ncerts > 1 && self_signed(c)) {
		dn(c, a, sizeof(a));
		add(s, L_INFO, "chain", "the chain ends with the root CA (%s); "
		    "peers must already trust it, so it need not be sent", a);
	} else if (s->ncerts == 1 && self_signed(c)) {
		add(s, L_INFO, "chain", "the certificate is self-signed: peers "
		    "must trust it directly");
	}
}

static void check_expiry(state *s)
{
	const mbedtls_x509_crt *leaf;
	char when[40], who[256];
	time_t nb, na;
	long days;
	int i;

	if (s->leaf_idx < 0)
		return;
	leaf = s->certs[s->leaf_idx];
	nb = mtls__x509_time(&leaf->valid_from);
	na = mtls__x509_time(&leaf->valid_to);
	days = mtls__days_until(na, s->now);
	if (s->now < nb) {
		mtls__fmt_time(nb, when, sizeof(when));
		add(s, L_ERROR, "expiry", "not valid yet: valid from %s (in %ld "
		    "%s)", when, mtls__days_until(nb, s->now),
		    plural(mtls__days_until(nb, s->now), "day", "days"));
	} else if (s->now > na) {
		mtls__fmt_time(na, when, sizeof(when));
		add(s, L_ERROR, "expiry", "expired on %s (%ld %s ago)", when,
		    -days, plural(days, "day", "days"));
	} else {
		mtls__fmt_time(na, when, sizeof(when));
		if (s->o->warn_days > 0 && days < (long)s->o->warn_days)
			add(s, L_WARN, "expiry", "expires in %ld %s, on %s",
			    days, plural(days, "day", "days"), when);
		else
			add(s, L_OK, "expiry", "valid until %s (%ld %s left)",
			    when, days, plural(days, "day", "days"));
	}
	/* The rest of the chain breaks the leaf when it lapses. */
	for (i = 0; i < s->ncerts; i++) {
		const mbedtls_x509_crt *c = s->certs[i];
		if (i == s->leaf_idx)
			continue;
		na = mtls__x509_time(&c->valid_to);
		nb = mtls__x509_time(&c->valid_from);
		days = mtls__days_until(na, s->now);
		dn(c, who, sizeof(who));
		if (s->now > na) {
			mtls__fmt_time(na, when, sizeof(when));
			add(s, L_WARN, "expiry",
			    "chain certificate #%d (%s) expired on %s; peers "
			    "will reject the chain", i + 1, who, when);
		} else if (s->now < nb) {
			mtls__fmt_time(nb, when, sizeof(when));
			add(s, L_WARN, "expiry",
			    "chain certificate #%d (%s) is not valid until %s",
			    i + 1, who, when);
		} else if (s->o->warn_days > 0 &&
		           days < (long)s->o->warn_days) {
			mtls__fmt_time(na, when, sizeof(when));
			add(s, L_WARN, "expiry",
			    "chain certificate #%d (%s) expires in %ld %s, on "
			    "%s", i + 1, who, days,
			    plural(days, "day", "days"), when);
		}
	}
}

static void eku_list(const mbedtls_x509_crt *crt, char *buf, size_t len)
{
	const mbedtls_x509_sequence *q;
	size_t used = 0;

	buf[0] = '\0';
	for (q = &crt->ext_key_usage; q != NULL && used < len; q = q->next) {
		const char *name = NULL;
		char num[64];
		if (q->buf.p == NULL)
			continue;
		if (mbedtls_oid_get_extended_key_usage(&q->buf, &name) != 0) {
			if (mbedtls_oid_get_numeric_string(num, sizeof(num),
			                                   &q->buf) < 0)
				snprintf(num, sizeof(num), "?");
			name = num;
		}
		used += (size_t)snprintf(buf + used, len - used, "%s%s",
		                         used ? ", " : "", name);
	}
}

static int eku_allows(const mbedtls_x509_crt *crt, int role)
{
	if (role == MTLS_ROLE_SERVER)
		return mbedtls_x509_crt_check_extended_key_usage(
		           crt, MBEDTLS_OID_SERVER_AUTH,
		           MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH)) == 0;
	return mbedtls_x509_crt_check_extended_key_usage(
	           crt, MBEDTLS_OID_CLIENT_AUTH,
	           MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH)) == 0;
}

/* The roles to check: --role, else what the EKU allows (both when it
 * allows both, or says nothing). */
static void pick_roles(state *s, const mbedtls_x509_crt *leaf)
{
	int c, v;

	if (s->o->role >= 0) {
		s->roles[s->nroles++] = s->o->role;
		return;
	}
	s->role_inferred = 1;
	c = eku_allows(leaf, MTLS_ROLE_CLIENT);
	v = eku_allows(leaf, MTLS_ROLE_SERVER);
	if (c || !v)
		s->roles[s->nroles++] = MTLS_ROLE_CLIENT;
	if (v || !c)
		s->roles[s->nroles++] = MTLS_ROLE_SERVER;
}

static void check_usage(state *s)
{
	const mbedtls_x509_crt *leaf;
	char list[256], how[96];
	int i, has_eku;

	if (s->leaf_idx < 0) {
		if (s->o->role >= 0)
			s->roles[s->nroles++] = s->o->role;
		return;
	}
	leaf = s->certs[s->leaf_idx];
	pick_roles(s, leaf);
	has_eku = mtls__crt_has_eku_ext(leaf);
	eku_list(leaf, list, sizeof(list));

	if (!s->role_inferred)
		snprintf(how, sizeof(how), "checked as a %s certificate",
		         role_word(s->roles[0]));
	else if (s->nroles == 1)
		snprintf(how, sizeof(how), "so checked as a %s certificate",
		         role_word(s->roles[0]));
	else
		snprintf(how, sizeof(how), "checked as both client and server "
		         "certificate");

	if (!has_eku) {
		add(s, L_OK, "usage", "no extended key usage extension, so no "
		    "restriction (%s)", how);
	} else if (s->role_inferred && !eku_allows(leaf, MTLS_ROLE_CLIENT) &&
	           !eku_allows(leaf, MTLS_ROLE_SERVER)) {
		add(s, L_ERROR, "usage",
		    "extended key usage (%s) allows neither TLS client nor "
		    "server authentication; peers will reject it", list);
	} else {
		int bad = 0;
		for (i = 0; i < s->nroles; i++) {
			int r = s->roles[i];
			if (eku_allows(leaf, r))
				continue;
			bad = 1;
			add(s, L_ERROR, "usage",
			    "extended key usage does not include %s (it lists: "
			    "%s); a %s would reject this certificate",
			    r == MTLS_ROLE_SERVER ? "serverAuth" : "clientAuth",
			    list, r == MTLS_ROLE_SERVER ? "client" : "server");
		}
		if (!bad)
			add(s, L_OK, "usage", "extended key usage: %s (%s)",
			    list, how);
	}
	/* The handshake signs with the key: digitalSignature is needed. */
	if (mbedtls_x509_crt_check_key_usage(
	        leaf, MBEDTLS_X509_KU_DIGITAL_SIGNATURE) != 0) {
		int client = 0;
		for (i = 0; i < s->nroles; i++)
			client |= s->roles[i] == MTLS_ROLE_CLIENT;
		if (client || mbedtls_pk_get_type(&leaf->pk) != MBEDTLS_PK_RSA)
			add(s, L_ERROR, "usage", "key usage does not include "
			    "digitalSignature; TLS peers will reject it");
		else
			add(s, L_WARN, "usage", "key usage does not include "
			    "digitalSignature: only RSA key exchange (no "
			    "forward secrecy, not in TLS 1.3) can use it");
	}
}

/* ---- names --------------------------------------------------------------- */

static int add_san(state *s, const char *text)
{
	char **n = realloc(s->sans, (size_t)(s->nsans + 1) * sizeof(*n));

	if (n == NULL)
		return -1;
	s->sans = n;
	s->sans[s->nsans] = strdup(text);
	if (s->sans[s->nsans] == NULL)
		return -1;
	s->nsans++;
	return 0;
}

/* One SAN entry as text.  mbedTLS parses the primitive types it knows
 * (3.6: DNS, URI, IP; 2.28: DNS only); for the rest the entry is still the
 * raw [n] IMPLICIT value, decoded here.  Constructed entries (otherName,
 * directoryName) are not parsed: on 3.6 that would allocate. */
static void san_text(const mbedtls_x509_buf *raw, char *out, size_t len)
{
	mbedtls_x509_subject_alternative_name san;
	const mbedtls_x509_buf *v = raw;
	int type = raw->tag & MBEDTLS_ASN1_TAG_VALUE_MASK;
	char val[300];

	if ((raw->tag & MBEDTLS_ASN1_TAG_CLASS_MASK) !=
	    MBEDTLS_ASN1_CONTEXT_SPECIFIC) {
		snprintf(out, len, "<malformed>");
		return;
	}
	if ((raw->tag & MBEDTLS_ASN1_CONSTRUCTED) != 0) {
		snprintf(out, len, type == MBEDTLS_X509_SAN_OTHER_NAME
		                       ? "othername:<not shown>"
		                       : "DirName:<not shown>");
		return;
	}
	memset(&san, 0, sizeof(san));
	switch (mbedtls_x509_parse_subject_alt_name(raw, &san)) {
	case 0:
		type = san.type;
		v = &san.san.unstructured_name;
		break;
	case MBEDTLS_ERR_X509_FEATURE_UNAVAILABLE:
		break;
	default:
		snprintf(out, len, "<malformed>");
		return;
	}
	switch (type) {
	case MBEDTLS_X509_SAN_DNS_NAME:
	case MBEDTLS_X509_SAN_UNIFORM_RESOURCE_IDENTIFIER:
	case MBEDTLS_X509_SAN_RFC822_NAME:
		printable(v->p, v->len, val, sizeof(val));
		snprintf(out, len, "%s:%s",
		         type == MBEDTLS_X509_SAN_DNS_NAME    ? "DNS"
		         : type == MBEDTLS_X509_SAN_RFC822_NAME ? "email"
		                                                : "URI",
		         val);
		return;
	case MBEDTLS_X509_SAN_IP_ADDRESS:
		if ((v->len == 4 &&
		     inet_ntop(AF_INET, v->p, val, sizeof(val)) != NULL) ||
		    (v->len == 16 &&
		     inet_ntop(AF_INET6, v->p, val, sizeof(val)) != NULL))
			snprintf(out, len, "IP:%s", val);
		else
			snprintf(out, len, "IP:<malformed>");
		return;
	default:
		snprintf(out, len, "type%d:<not shown>", type);
	}
}

static void check_names(state *s)
{
	const mbedtls_x509_crt *leaf;
	const mbedtls_x509_sequence *q;
	char one[400], all[MSG_LEN], subj[256];
	size_t used = 0;

	if (s->leaf_idx < 0)
		return;
	leaf = s->certs[s->leaf_idx];
	all[0] = '\0';
	for (q = &leaf->subject_alt_names; q != NULL; q = q->next) {
		if (q->buf.p == NULL)
			continue;
		san_text(&q->buf, one, sizeof(one));
		if (add_san(s, one) != 0) {
			add(s, L_ERROR, "names", "out of memory");
			return;
		}
		if (used < sizeof(all))
			used += (size_t)snprintf(all + used, sizeof(all) - used,
			                         "%s%s", used ? ", " : "", one);
	}
	if (s->nsans > 0) {
		add(s, L_INFO, "names", "%s", all);
		return;
	}
	dn(leaf, subj, sizeof(subj));
	if (s->nroles == 1 && s->roles[0] == MTLS_ROLE_SERVER)
		add(s, L_WARN, "names", "no subject alternative names: clients "
		    "that match names against SANs only (most of them) will "
		    "not accept %s", subj);
	else
		add(s, L_INFO, "names", "no subject alternative names; the "
		    "subject is %s", subj);
}

static void check_key_file(state *s)
{
	unsigned mode;

	if (!s->key_read)
		return;
	mode = mtls__key_file_exposed(s->key_src);
	if (mode != 0)
		add(s, L_WARN, "key file", "%s is mode %04o; it should be 0600 "
		    "(readable by group or others)", s->key_src, mode);
	else
		add(s, L_OK, "key file", "%s is readable by its owner only",
		    s->key_src);
}

/* ---- trust --------------------------------------------------------------- */

typedef struct verify_log {
	int n;
	struct {
		int depth;
		uint32_t flags;
		char subject[256];
	} c[MAX_VERIFY];
} verify_log;

static int verify_cb(void *p, mbedtls_x509_crt *crt, int depth,
                     uint32_t *flags)
{
	verify_log *v = p;

	if (v->n < MAX_VERIFY) {
		v->c[v->n].depth = depth;
		v->c[v->n].flags = *flags;
		dn(crt, v->c[v->n].subject, sizeof(v->c[v->n].subject));
		v->n++;
	}
	return 0;
}

/* mbedTLS's words for a set of flags, one clause per flag. */
static void flags_text(uint32_t flags, char *out, size_t len)
{
	char info[512], *line, *save = NULL;
	size_t used = 0;

	out[0] = '\0';
	if (mbedtls_x509_crt_verify_info(info, sizeof(info), "", flags) < 0)
		snprintf(info, sizeof(info), "verify flags 0x%08x",
		         (unsigned)flags);
	for (line = strtok_r(info, "\n", &save); line != NULL && used < len;
	     line = strtok_r(NULL, "\n", &save)) {
		size_t n = strlen(line);
		if (n > 0 && line[n - 1] == '.')
			line[n - 1] = '\0';
		used += (size_t)snprintf(out + used, len - used, "%s%s",
		                         used ? "; " : "", line);
	}
}

static const char *ca_words(const char *ca)
{
	return strcmp(ca, "system") == 0 ? "the system trust store" : ca;
}

/* The chain as the peer should get it: leaf first, then the others. */
static int verify_chain(state *s, mbedtls_x509_crt *v)
{
	int i, ret;

	ret = mbedtls_x509_crt_parse_der(v, s->certs[s->leaf_idx]->raw.p,
	                                 s->certs[s->leaf_idx]->raw.len);
	for (i = 0; ret == 0 && i < s->ncerts; i++)
		if (i != s->leaf_idx)
			ret = mbedtls_x509_crt_parse_der(v, s->certs[i]->raw.p,
			                                 s->certs[i]->raw.len);
	return ret;
}

/* The top of the chain CERT holds: from the leaf, each issuer in turn. */
static const mbedtls_x509_crt *chain_top(const state *s)
{
	const mbedtls_x509_crt *c = s->certs[s->leaf_idx];
	int i, steps;

	for (steps = 0; steps < s->ncerts && !self_signed(c); steps++) {
		for (i = 0; i < s->ncerts; i++)
			if (s->certs[i] != c && issued_by(c, s->certs[i]))
				break;
		if (i == s->ncerts)
			break;
		c = s->certs[i];
	}
	return c;
}

/* Why "not trusted": is the issuer's name in CA at all? */
static void untrusted_hint(state *s, const mbedtls_x509_crt *ca)
{
	const mbedtls_x509_crt *top = chain_top(s), *t;
	char who[256], iss[256];

	dn(top, who, sizeof(who));
	mtls__fmt_dn(&top->issuer, iss, sizeof(iss));
	t = mtls__crt_find_issuer(ca, top);
	if (t != NULL)
		add(s, L_INFO, "trust", "%s has a CA named %s, but its key did "
		    "not sign %s: a different CA with the same name",
		    ca_words(s->o->ca), iss, who);
	else if (self_signed(top))
		add(s, L_INFO, "trust", "%s is self-signed and not in %s",
		    who, ca_words(s->o->ca));
	else
		add(s, L_INFO, "trust", "%s holds no CA named %s (the issuer "
		    "of %s): either it is the wrong CA, or CERT lacks an "
		    "intermediate CA certificate", ca_words(s->o->ca), iss,
		    who);
}

static void report_unverified(state *s, const verify_log *vl, uint32_t flags,
                              const mbedtls_x509_crt *ca)
{
	char msg[MSG_LEN], words[600];
	size_t used = 0;
	int i;

	msg[0] = '\0';
	/* Callback order is root first; show the leaf's problems first. */
	for (i = vl->n - 1; i >= 0 && used < sizeof(msg); i--) {
		if (vl->c[i].flags == 0)
			continue;
		flags_text(vl->c[i].flags, words, sizeof(words));
		used += (size_t)snprintf(msg + used, sizeof(msg) - used,
		                         "%s%s: %s", used ? "; " : "",
		                         vl->c[i].subject, words);
	}
	if (used == 0)
		flags_text(flags, msg, sizeof(msg));
	add(s, L_ERROR, "trust", "chain does not verify to %s: %s",
	    ca_words(s->o->ca), msg);
	if (flags & MBEDTLS_X509_BADCERT_NOT_TRUSTED)
		untrusted_hint(s, ca);
}

static void check_trust(state *s)
{
	mtls_trust *t = NULL;
	mbedtls_x509_crt v;
	verify_log vl;
	mtls_err e = {0};
	char why[128];
	uint32_t flags = 0;
	int ret;

	if (s->o->ca == NULL) {
		if (s->leaf_idx >= 0)
			add(s, L_INFO, "trust", "not checked (give --ca CA to "
			    "verify the chain)");
		return;
	}
	if (mtls__trust_load(s->o->ca, NULL, 0, NULL, &t, &e) != 0) {
		add(s, L_ERROR, "trust", "%s", e.msg);
		return;
	}
	if (s->leaf_idx < 0) {
		mtls__trust_unref(t);
		return;
	}
	mbedtls_x509_crt_init(&v);
	memset(&vl, 0, sizeof(vl));
	ret = verify_chain(s, &v);
	if (ret != 0) {
		mtls__mbedtls_reason(ret, why, sizeof(why));
		add(s, L_ERROR, "trust", "internal error copying the chain (%s)",
		    why);
		goto out;
	}
	ret = mbedtls_x509_crt_verify(&v, &t->ca, NULL, NULL, &flags,
	                              verify_cb, &vl);
	if (ret == 0 && flags == 0) {
		s->verified = 1;
		add(s, L_OK, "trust", "chain verifies to %s (%s)",
		    ca_words(s->o->ca),
		    vl.n > 0 ? vl.c[0].subject : "?");
	} else {
		s->verified = 0;
		report_unverified(s, &vl, flags, &t->ca);
	}
out:
	mbedtls_x509_crt_free(&v);
	mtls__trust_unref(t);
}

/* ---- the library's own verdict ------------------------------------------- */

typedef struct lib_log {
	int n;
	char msg[8][MSG_LEN];
} lib_log;

static void log_cb(void *user, int level, const char *msg)
{
	lib_log *l = user;

	if (level == MTLS_LOG_WARN && l->n < 8)
		snprintf(l->msg[l->n++], MSG_LEN, "%s", msg);
}

static void check_load(state *s)
{
	int i, j, errs = s->errors, warns = s->warnings;

	if (!s->cert_read || !s->key_read)
		return;
	for (i = 0; i < s->nroles; i++) {
		int role = s->roles[i];
		const char *fn = role == MTLS_ROLE_SERVER
		                     ? "mtls_load_server_pair()"
		                     : "mtls_load_client_pair()";
		mtls_ctx *ctx = mtls_ctx_new((mtls_role)role);
		lib_log ll;
		int ret;

		if (ctx == NULL) {
			add(s, L_ERROR, "load", "out of memory");
			return;
		}
		memset(&ll, 0, sizeof(ll));
		mtls_ctx_set_expiry_warning(ctx, s->o->warn_days);
		if (s->password != NULL)
			mtls_ctx_set_key_password(ctx, s->password);
		mtls_set_log_callback(log_cb, &ll);
		ret = role == MTLS_ROLE_SERVER
		          ? mtls_load_server_pair(ctx, s->o->cert_path,
		                                  s->o->key_path)
		          : mtls_load_client_pair(ctx, s->o->cert_path,
		                                  s->o->key_path);
		mtls_set_log_callback(NULL, NULL);
		/* A safety net: the library's verdict counts only when the
		 * checks above missed it. */
		if (ret == 0)
			add(s, errs ? L_INFO : L_OK, "load",
			    "%s accepts this pair", fn);
		else
			add(s, errs ? L_INFO : L_ERROR, "load",
			    "%s refuses this pair: %s", fn,
			    mtls_ctx_error(ctx) ? mtls_ctx_error(ctx)
			                        : mtls_strerror(ret));
		for (j = 0; i == 0 && warns == 0 && j < ll.n; j++)
			add(s, L_WARN, "load", "%s", ll.msg[j]);
		mtls_ctx_free(ctx); /* wipes its copy of the password */
	}
}

/* ---- output -------------------------------------------------------------- */

static const char *level_text(enum level lv)
{
	switch (lv) {
	case L_OK:
		return "OK";
	case L_INFO:
		return "INFO";
	case L_WARN:
		return "WARN";
	default:
		return "ERROR";
	}
}

static void print_text(const state *s)
{
	int i;

	for (i = 0; i < s->nf; i++)
		printf("%-5s %-12s %s\n", level_text(s->f[i].level),
		       s->f[i].check, s->f[i].msg);
	printf("%d %s, %d %s\n", s->errors, plural(s->errors, "error",
	       "errors"), s->warnings, plural(s->warnings, "warning",
	       "warnings"));
}

/* Length of a valid UTF-8 sequence at p, or 0. */
static size_t utf8_len(const unsigned char *p)
{
	size_t n, i;

	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4;
	else
		return 0;
	for (i = 1; i < n; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] > 0x9f) ||
	    (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] > 0x8f))
		return 0;
	return n;
}

/* A JSON string; invalid UTF-8 becomes U+FFFD, NULL becomes null. */
static void json_str(const char *str)
{
	const unsigned char *p = (const unsigned char *)str;
	size_t n;

	if (str == NULL) {
		fputs("null", stdout);
		return;
	}
	putchar('"');
	while (*p != '\0') {
		if (*p == '"' || *p == '\\') {
			printf("\\%c", *p++);
		} else if (*p == '\n') {
			fputs("\\n", stdout);
			p++;
		} else if (*p < 0x20 || *p == 0x7f) {
			printf("\\u%04x", *p++);
		} else if (*p < 0x80) {
			putchar(*p++);
		} else if ((n = utf8_len(p)) != 0) {
			fwrite(p, 1, n, stdout);
			p += n;
		} else {
			fputs("\\ufffd", stdout);
			p++;
		}
	}
	putchar('"');
}

static void json_key(const char *k, int first)
{
	printf("%s\n  \"%s\": ", first ? "" : ",", k);
}

static void json_time(time_t t)
{
	struct tm tm;
	char buf[32];

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
		fputs("null", stdout);
		return;
	}
	json_str(buf);
}

static void json_cert_fields(const state *s)
{
	const mbedtls_x509_crt *leaf = s->certs[s->leaf_idx];
	const mbedtls_x509_sequence *q;
	char buf[256];
	int i, first;

	dn(leaf, buf, sizeof(buf));
	json_key("subject", 0);
	json_str(buf);
	mtls__fmt_dn(&leaf->issuer, buf, sizeof(buf));
	json_key("issuer", 0);
	json_str(buf);
	mtls__fmt_serial(&leaf->serial, buf, sizeof(buf));
	json_key("serial", 0);
	json_str(buf);
	json_key("not_before", 0);
	json_time(mtls__x509_time(&leaf->valid_from));
	json_key("not_after", 0);
	json_time(mtls__x509_time(&leaf->valid_to));
	json_key("days_left", 0);
	printf("%ld", mtls__days_until(mtls__x509_time(&leaf->valid_to),
	                               s->now));
	mtls__fmt_key_type(&leaf->pk, buf, sizeof(buf));
	json_key("key_type", 0);
	json_str(buf);
	json_key("sans", 0);
	putchar('[');
	for (i = 0; i < s->nsans; i++) {
		fputs(i ? ", " : "", stdout);
		json_str(s->sans[i]);
	}
	putchar(']');
	json_key("eku", 0);
	putchar('[');
	first = 1;
	for (q = &leaf->ext_key_usage; q != NULL; q = q->next) {
		char num[64];
		if (q->buf.p == NULL ||
		    mbedtls_oid_get_numeric_string(num, sizeof(num), &q->buf) <
		        0)
			continue;
		fputs(first ? "" : ", ", stdout);
		json_str(num);
		first = 0;
	}
	putchar(']');
	json_key("chain", 0);
	putchar('[');
	for (i = 0; i < s->ncerts; i++) {
		fputs(i ? ", " : "", stdout);
		dn(s->certs[i], buf, sizeof(buf));
		fputs("{\"subject\": ", stdout);
		json_str(buf);
		mtls__fmt_dn(&s->certs[i]->issuer, buf, sizeof(buf));
		fputs(", \"issuer\": ", stdout);
		json_str(buf);
		fputs(", \"not_after\": ", stdout);
		json_time(mtls__x509_time(&s->certs[i]->valid_to));
		putchar('}');
	}
	putchar(']');
}

static void print_json(const state *s)
{
	static const char *const levels[] = {"ok", "info", "warning", "error"};
	int i;

	fputs("{", stdout);
	json_key("cert", 1);
	json_str(s->o->cert_path);
	json_key("key", 0);
	json_str(s->key_src);
	json_key("ca", 0);
	json_str(s->o->ca);
	json_key("roles", 0);
	putchar('[');
	for (i = 0; i < s->nroles; i++)
		printf("%s\"%s\"", i ? ", " : "", role_word(s->roles[i]));
	putchar(']');
	if (s->leaf_idx >= 0) {
		json_cert_fields(s);
	} else {
		static const char *const none[] = {
		    "subject", "issuer", "serial", "not_before", "not_after",
		    "days_left", "key_type", NULL};
		for (i = 0; none[i] != NULL; i++) {
			json_key(none[i], 0);
			fputs("null", stdout);
		}
		json_key("sans", 0);
		fputs("[]", stdout);
		json_key("eku", 0);
		fputs("[]", stdout);
		json_key("chain", 0);
		fputs("[]", stdout);
	}
	json_key("chain_len", 0);
	printf("%d", s->ncerts);
	json_key("leaf_index", 0); /* in "chain"; 0 unless out of order */
	if (s->leaf_idx >= 0)
		printf("%d", s->leaf_idx);
	else
		fputs("null", stdout);
	json_key("key_matches", 0);
	fputs(s->key_match < 0 ? "null" : s->key_match ? "true" : "false",
	      stdout);
	json_key("verified", 0);
	fputs(s->verified < 0 ? "null" : s->verified ? "true" : "false",
	      stdout);
	json_key("findings", 0);
	putchar('[');
	for (i = 0; i < s->nf; i++) {
		printf("%s\n    {\"level\": \"%s\", \"check\": ", i ? "," : "",
		       levels[s->f[i].level]);
		json_str(s->f[i].check);
		fputs(", \"message\": ", stdout);
		json_str(s->f[i].msg);
		putchar('}');
	}
	fputs(s->nf ? "\n  ]" : "]", stdout);
	json_key("errors", 0);
	printf("%d", s->errors);
	json_key("warnings", 0);
	printf("%d", s->warnings);
	fputs("\n}\n", stdout);
}

/* ---- main ---------------------------------------------------------------- */

static void state_free(state *s)
{
	int i;

	mbedtls_x509_crt_free(&s->chain);
	mbedtls_pk_free(&s->key);
	free(s->certs);
	for (i = 0; i < s->nsans; i++)
		free(s->sans[i]);
	free(s->sans);
	mtls__buf_free(&s->cbuf);
	mtls__buf_free(&s->kbuf);
	mtls__buf_free(&s->pwbuf); /* wipes the password */
	s->password = NULL;
}

int main(int argc, char **argv)
{
	opts o = {0};
	state s;
	int ret;

	for (ret = 1; ret < argc; ret++)
		if (strcmp(argv[ret], "--connect") == 0 ||
		    strncmp(argv[ret], "--connect=", 10) == 0)
			return mtls_check_connect_main(argc, argv);
	ret = parse_args(argc, argv, &o);
	if (ret >= 0)
		return ret;

	memset(&s, 0, sizeof(s));
	s.o = &o;
	s.now = time(NULL);
	s.leaf_idx = -1;
	s.key_match = -1;
	s.verified = -1;
	mbedtls_x509_crt_init(&s.chain);
	mbedtls_pk_init(&s.key);

	if (mtls__global_init() != 0) {
		fprintf(stderr, "mtls-check: cannot seed the random number "
		        "generator\n");
		return 1;
	}
	read_password(&s);
	read_cert(&s);
	read_key(&s);
	pick_leaf(&s);

	check_certificate(&s);
	check_key(&s);
	check_chain(&s);
	check_expiry(&s);
	check_usage(&s);
	check_names(&s);
	check_key_file(&s);
	check_trust(&s);
	check_load(&s);

	sort_findings(&s);
	if (o.json)
		print_json(&s);
	else
		print_text(&s);
	ret = s.errors > 0 ? 1 : 0;
	state_free(&s);
	return ret;
}
