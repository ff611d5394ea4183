/*
 * cred.c - loading a certificate chain and private key, and validating the
 * pair once, at load time, so a bad credential is a clear error now rather
 * than a handshake failure later.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#include <mbedtls/oid.h>
#include <mbedtls/pem.h>
#include <mbedtls/pkcs12.h>
#include <mbedtls/pkcs5.h>

#define RSA_MIN_BITS 2048

static const char *role_word(mtls_role r)
{
	return r == MTLS_ROLE_SERVER ? "server" : "client";
}

static int is_pem(const mtls_buf *b)
{
	return strstr((const char *)b->data, "-----BEGIN ") != NULL;
}

/* mbedTLS wants the terminating NUL counted for PEM, the exact size for DER. */
static size_t parse_len(const mtls_buf *b)
{
	return is_pem(b) ? b->len + 1 : b->len;
}

static int read_source(const char *path, const void *mem, size_t len,
                       int secret, mtls_buf *out, mtls_err *e)
{
	if (path != NULL)
		return mtls__read_file(path, secret, out, e);
	return mtls__copy_mem(mem, len, secret, out, e);
}

static int parse_chain(mbedtls_x509_crt *chain, const mtls_buf *b,
                       const char *disp, mtls_err *e)
{
	const char *text = (const char *)b->data;
	char why[128];
	int ret;

	if (is_pem(b) && strstr(text, "-----BEGIN CERTIFICATE-----") == NULL)
		return mtls__fail(e, MTLS_ERR_CERT_PARSE,
		                  "%s: no certificate found (PEM without a "
		                  "CERTIFICATE block)", disp);
	/* mbedTLS stops quietly at a BEGIN without END: a chain cut short
	 * would load as a shorter chain that peers refuse. */
	if (is_pem(b) && mtls__pem_truncated(text))
		return mtls__fail(e, MTLS_ERR_CERT_PARSE,
		                  "%s: truncated PEM: BEGIN CERTIFICATE without "
		                  "END CERTIFICATE", disp);
	ret = mbedtls_x509_crt_parse(chain, b->data, parse_len(b));
	if (ret == 0)
		return 0;
	if (ret > 0)
		return mtls__fail(e, MTLS_ERR_CERT_PARSE,
		                  "%s: %d certificate(s) in the chain could not "
		                  "be parsed", disp, ret);
	mtls__mbedtls_reason(ret, why, sizeof(why));
	return mtls__fail(e, MTLS_ERR_CERT_PARSE,
	                  "%s: not a valid certificate (%s)", disp, why);
}

/* A complete encrypted PEM key (PKCS#8 or legacy "Proc-Type: 4,ENCRYPTED"). */
static int is_encrypted_pem(const mtls_buf *b)
{
	const char *t = (const char *)b->data;

	if (!is_pem(b))
		return 0;
	if (strstr(t, "-----END ENCRYPTED PRIVATE KEY-----") != NULL)
		return 1;
	return strstr(t, "Proc-Type: 4,ENCRYPTED") != NULL &&
	       strstr(t, "PRIVATE KEY-----") != NULL &&
	       strstr(t, "-----END ") != NULL;
}

static int parse_key(mbedtls_pk_context *key, const mtls_buf *b,
                     const char *disp, int combined, const char *password,
                     mtls_err *e)
{
	char why[128];
	int ret;

	ret = mtls__pk_parse_key(key, b->data, parse_len(b), password);
	if (ret == 0)
		return 0;
	if (ret == MBEDTLS_ERR_PK_PASSWORD_REQUIRED)
		return mtls__fail(e, MTLS_ERR_KEY_PASSWORD_REQUIRED,
		                  "%s: private key is encrypted and no password "
		                  "was given", disp);
	/* 2.28 cannot decrypt PBES2 with AES (OpenSSL 3's default for
	 * encrypted PKCS#8): the key is fine, this mbedTLS is not. */
	if (ret == MBEDTLS_ERR_PKCS5_FEATURE_UNAVAILABLE ||
	    ret == MBEDTLS_ERR_PKCS12_FEATURE_UNAVAILABLE ||
	    ret == MBEDTLS_ERR_PEM_FEATURE_UNAVAILABLE) {
		mtls__mbedtls_reason(ret, why, sizeof(why));
		return mtls__fail(e, MTLS_ERR_UNSUPPORTED,
		                  "%s: the private key's encryption is not "
		                  "supported by mbedTLS %s (%s); store the key "
		                  "decrypted (mode 0600) or use mbedTLS 3.x",
		                  disp, MBEDTLS_VERSION_STRING, why);
	}
	/* mbedTLS spots a wrong password by a heuristic on the decrypted
	 * bytes; about one wrong password in a few hundred passes it and then
	 * fails as an invalid key.  Given a password and a complete encrypted
	 * key, a parse failure means the password. */
	if (ret == MBEDTLS_ERR_PK_PASSWORD_MISMATCH ||
	    (password != NULL && is_encrypted_pem(b)))
		return mtls__fail(e, MTLS_ERR_KEY_PASSWORD,
		                  "%s: wrong password for private key", disp);
	if (is_pem(b) && strstr((const char *)b->data, "PRIVATE KEY-----") == NULL)
		return mtls__fail(e, MTLS_ERR_KEY_PARSE,
		                  combined ? "%s: no private key found (give the "
		                             "key file, or append the key to "
		                             "this file)"
		                           : "%s: no private key found",
		                  disp);
	mtls__mbedtls_reason(ret, why, sizeof(why));
	return mtls__fail(e, MTLS_ERR_KEY_PARSE,
	                  "%s: not a valid private key (%s)", disp, why);
}

static int check_key_type(const mbedtls_pk_context *key, const char *disp,
                          const mtls_cred_opts *o, mtls_err *e)
{
	mbedtls_pk_type_t t = mbedtls_pk_get_type(key);

	if (t == MBEDTLS_PK_RSA) {
		if (mbedtls_pk_get_bitlen(key) < RSA_MIN_BITS)
			mtls__log(MTLS_LOG_WARN, o->log_name,
			          "%s: RSA key of %zu bits is weak; use at least "
			          "%d", disp, mbedtls_pk_get_bitlen(key),
			          RSA_MIN_BITS);
		return 0;
	}
	switch (mtls__pk_ec_group(key)) {
	case MBEDTLS_ECP_DP_SECP256R1:
	case MBEDTLS_ECP_DP_SECP384R1:
	case MBEDTLS_ECP_DP_SECP521R1:
		return 0;
	default:
		break;
	}
	char name[32];

	mtls__fmt_key_type(key, name, sizeof(name));
	return mtls__fail(e, MTLS_ERR_KEY_TYPE,
	                  "%s: unsupported key type %s (use RSA or ECDSA "
	                  "P-256/P-384/P-521)", disp, name);
}

/* The key must match the leaf; if it matches a later certificate, the chain
 * is in the wrong order, which deserves its own message. */
static int check_match(const mbedtls_x509_crt *chain,
                       const mbedtls_pk_context *key, const char *cert_disp,
                       const char *key_disp, mtls_err *e)
{
	const mbedtls_x509_crt *c;
	char leaf[256], other[256];
	int i;

	if (mtls__pk_check_pair(&chain->pk, key) == 0)
		return 0;
	for (c = chain->next, i = 2; c != NULL; c = c->next, i++) {
		if (mtls__pk_check_pair(&c->pk, key) != 0)
			continue;
		mtls__fmt_dn(&chain->subject, leaf, sizeof(leaf));
		mtls__fmt_dn(&c->subject, other, sizeof(other));
		return mtls__fail(e, MTLS_ERR_CHAIN_ORDER,
		                  "%s: chain out of order: the private key "
		                  "matches certificate #%d (%s), not the first "
		                  "(%s); put the leaf first, then its issuers",
		                  cert_disp, i, other, leaf);
	}
	return mtls__fail(e, MTLS_ERR_KEY_MISMATCH,
	                  "%s: certificate does not match private key %s",
	                  cert_disp, key_disp);
}

static int check_order(const mbedtls_x509_crt *chain, const char *disp,
                       mtls_err *e)
{
	const mbedtls_x509_crt *c;
	char a[256], b[256];
	int i;

	for (c = chain, i = 1; c->next != NULL; c = c->next, i++) {
		const mbedtls_x509_crt *n = c->next;
		if (c->issuer_raw.len == n->subject_raw.len &&
		    memcmp(c->issuer_raw.p, n->subject_raw.p,
		           n->subject_raw.len) == 0)
			continue;
		mtls__fmt_dn(&c->subject, a, sizeof(a));
		mtls__fmt_dn(&n->subject, b, sizeof(b));
		return mtls__fail(e, MTLS_ERR_CHAIN_ORDER,
		                  "%s: chain out of order: certificate #%d (%s) "
		                  "is not issued by certificate #%d (%s); put "
		                  "the leaf first, then each issuer in turn",
		                  disp, i, a, i + 1, b);
	}
	return 0;
}

static int check_validity(const mbedtls_x509_crt *chain, const char *disp,
                          const mtls_cred_opts *o, mtls_err *e)
{
	const mbedtls_x509_crt *c;
	time_t nb = mtls__x509_time(&chain->valid_from);
	time_t na = mtls__x509_time(&chain->valid_to);
	char when[40], dn[256];
	int i;

	if (o->now < nb) {
		mtls__fmt_time(nb, when, sizeof(when));
		return mtls__fail(e, MTLS_ERR_CERT_NOT_YET_VALID,
		                  "%s: certificate is not valid until %s", disp,
		                  when);
	}
	if (o->now > na) {
		mtls__fmt_time(na, when, sizeof(when));
		return mtls__fail(e, MTLS_ERR_CERT_EXPIRED,
		                  "%s: certificate expired on %s", disp, when);
	}
	/* An expired intermediate breaks the chain at the peer: say so. */
	for (c = chain->next, i = 2; c != NULL; c = c->next, i++) {
		time_t t = mtls__x509_time(&c->valid_to);
		if (o->now <= t)
			continue;
		mtls__fmt_time(t, when, sizeof(when));
		mtls__fmt_dn(&c->subject, dn, sizeof(dn));
		mtls__log(MTLS_LOG_WARN, o->log_name,
		          "%s: chain certificate #%d (%s) expired on %s; peers "
		          "will reject the chain", disp, i, dn, when);
	}
	return 0;
}

static void eku_names(const mbedtls_x509_crt *crt, char *buf, size_t len)
{
	const mbedtls_x509_sequence *s;
	size_t used = 0;

	buf[0] = '\0';
	for (s = &crt->ext_key_usage; s != NULL && used < len; s = s->next) {
		const char *name = NULL;
		if (s->buf.p == NULL)
			continue;
		if (mbedtls_oid_get_extended_key_usage(&s->buf, &name) != 0)
			name = "other";
		used += (size_t)snprintf(buf + used, len - used, "%s%s",
		                         used ? ", " : "", name);
	}
}

static int check_eku(const mbedtls_x509_crt *leaf, const char *disp,
                     mtls_role role, mtls_err *e)
{
	const char *oid = role == MTLS_ROLE_SERVER ? MBEDTLS_OID_SERVER_AUTH
	                                           : MBEDTLS_OID_CLIENT_AUTH;
	size_t oid_len = role == MTLS_ROLE_SERVER
	                     ? MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH)
	                     : MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH);
	char list[200];

	if (!mtls__crt_has_eku_ext(leaf))
		return 0;
	if (mbedtls_x509_crt_check_extended_key_usage(
	        leaf, oid, oid_len) == 0)
		return 0;
	eku_names(leaf, list, sizeof(list));
	return mtls__fail(e, MTLS_ERR_CERT_EKU,
	                  "%s: extended key usage does not include %s (it "
	                  "lists: %s); the %s would reject this certificate",
	                  disp,
	                  role == MTLS_ROLE_SERVER ? "serverAuth" : "clientAuth",
	                  list, role == MTLS_ROLE_SERVER ? "client" : "server");
}

/* Every handshake signs with the key (ECDHE, TLS 1.3, client auth), so a
 * keyUsage extension without digitalSignature makes peers refuse it; only
 * RSA key exchange (TLS 1.2, keyEncipherment) would still work. */
static int check_key_usage(const mbedtls_x509_crt *leaf, const char *disp,
                           const mtls_cred_opts *o, mtls_err *e)
{
	if (mbedtls_x509_crt_check_key_usage(
	        leaf, MBEDTLS_X509_KU_DIGITAL_SIGNATURE) == 0)
		return 0;
	if (o->role == MTLS_ROLE_SERVER &&
	    mbedtls_pk_get_type(&leaf->pk) == MBEDTLS_PK_RSA) {
		mtls__log(MTLS_LOG_WARN, o->log_name,
		          "%s: key usage lacks digitalSignature: only TLS 1.2 "
		          "RSA key exchange will work", disp);
		return 0;
	}
	return mtls__fail(e, MTLS_ERR_CERT_EKU,
	                  "%s: key usage does not include digitalSignature; "
	                  "peers would reject this certificate", disp);
}

static void fill_info(mtls_cred *c, time_t now)
{
	const mbedtls_x509_crt *x;
	mtls_cert_info *in = &c->info;

	mtls__fmt_dn(&c->chain.subject, in->subject, sizeof(in->subject));
	mtls__fmt_dn(&c->chain.issuer, in->issuer, sizeof(in->issuer));
	mtls__fmt_serial(&c->chain.serial, in->serial, sizeof(in->serial));
	in->not_before = mtls__x509_time(&c->chain.valid_from);
	in->not_after = mtls__x509_time(&c->chain.valid_to);
	in->days_left = mtls__days_until(in->not_after, now);
	in->chain_len = 0;
	for (x = &c->chain; x != NULL; x = x->next)
		in->chain_len++;
	mtls__fmt_key_type(&c->key, in->key_type, sizeof(in->key_type));
}

/* What loading warns about itself is marked, so that the expiry check
 * (expiry.c) does not say it twice: the leaf within the threshold
 * (report() below), chain certificates already expired (check_validity). */
static void mark_warned(mtls_cred *c, const mtls_cred_opts *o)
{
	const mbedtls_x509_crt *x;
	size_t i = 0;

	for (x = &c->chain; x != NULL && i < c->warned.n; x = x->next, i++) {
		int done = i == 0 ? o->warn_days > 0 &&
		                        c->info.days_left < (long)o->warn_days
		                  : mtls__x509_time(&x->valid_to) < o->now;
		if (done)
			atomic_store(&c->warned.flags[i], 1);
	}
}

static void report(const mtls_cred *c, const char *cert_disp,
                   const char *key_path, const mtls_cred_opts *o)
{
	const mtls_cert_info *in = &c->info;
	char when[40];
	unsigned mode;

	mtls__fmt_time(in->not_after, when, sizeof(when));
	if (o->warn_days > 0 && in->days_left < (long)o->warn_days)
		mtls__log(MTLS_LOG_WARN, o->log_name,
		          "%s: %s certificate expires in %ld days, on %s",
		          cert_disp, role_word(o->role), in->days_left, when);
	mode = mtls__key_file_exposed(key_path);
	if (mode != 0)
		mtls__log(MTLS_LOG_WARN, o->log_name,
		          "%s: private key file is readable by group or others "
		          "(mode %04o); it should be 0600", key_path, mode);
	mtls__log(MTLS_LOG_INFO, o->log_name,
	          "mTLS %s certificate configured cert=%s subject=%s "
	          "not_after=%s days_left=%ld key=%s chain=%d",
	          role_word(o->role), cert_disp, in->subject, when,
	          in->days_left, in->key_type, in->chain_len);
}

int mtls__cred_load(const mtls_pair_src *src, const mtls_cred_opts *o,
                    mtls_cred **out, mtls_err *e)
{
	mtls_buf cb = {0}, kb = {0};
	const mtls_buf *keybuf;
	const char *cert_disp = mtls__display(src->cert_path);
	const char *key_path = src->key_path;
	const char *key_disp;
	int combined, ret;
	mtls_cred *c;

	if (key_path != NULL && src->cert_path != NULL &&
	    strcmp(key_path, src->cert_path) == 0)
		key_path = NULL;
	combined = src->cert_path != NULL ? key_path == NULL
	                                  : src->key_mem == NULL;
	key_disp = combined ? cert_disp : mtls__display(key_path);

	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return mtls__fail(e, MTLS_ERR_NO_MEMORY, "out of memory");
	atomic_init(&c->refs, 1);
	mbedtls_x509_crt_init(&c->chain);
	mbedtls_pk_init(&c->key);

	/* A combined file holds the key, so it is handled as a secret. */
	ret = read_source(src->cert_path, src->cert_mem, src->cert_len,
	                  combined, &cb, e);
	if (ret != 0)
		goto out;
	if (!combined) {
		ret = read_source(key_path, src->key_mem, src->key_len, 1, &kb,
		                  e);
		if (ret != 0)
			goto out;
	}
	keybuf = combined ? &cb : &kb;

	if ((ret = parse_chain(&c->chain, &cb, cert_disp, e)) != 0 ||
	    (ret = parse_key(&c->key, keybuf, key_disp, combined, o->password,
	                     e)) != 0 ||
	    (ret = check_key_type(&c->key, key_disp, o, e)) != 0 ||
	    (ret = check_match(&c->chain, &c->key, cert_disp, key_disp, e)) !=
	        0 ||
	    (ret = check_order(&c->chain, cert_disp, e)) != 0 ||
	    (ret = check_validity(&c->chain, cert_disp, o, e)) != 0 ||
	    (ret = check_eku(&c->chain, cert_disp, o->role, e)) != 0 ||
	    (ret = check_key_usage(&c->chain, cert_disp, o, e)) != 0)
		goto out;

	fill_info(c, o->now);
	c->source = strdup(src->cert_path != NULL ? src->cert_path
	                                          : "<memory>");
	if (c->source == NULL ||
	    mtls__warned_init(&c->warned, (size_t)c->info.chain_len) != 0) {
		ret = mtls__fail(e, MTLS_ERR_NO_MEMORY, "out of memory");
		goto out;
	}
	mark_warned(c, o);
	report(c, cert_disp, combined ? src->cert_path : key_path, o);
	*out = c;
	c = NULL;
out:
	mtls__buf_free(&cb);
	mtls__buf_free(&kb);
	mtls__cred_unref(c);
	return ret;
}

mtls_cred *mtls__cred_ref(mtls_cred *c)
{
	if (c != NULL)
		atomic_fetch_add(&c->refs, 1);
	return c;
}

void mtls__cred_unref(mtls_cred *c)
{
	if (c == NULL || atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	mbedtls_x509_crt_free(&c->chain);
	mbedtls_pk_free(&c->key); /* wipes the key */
	free(c->source);
	mtls__warned_free(&c->warned);
	free(c);
}
