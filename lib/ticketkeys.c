/*
 * ticketkeys.c - session-ticket keys shared by several instances through a
 * file, so a client resumes on any instance behind an L4 load balancer.
 *
 * The file holds 1 to MTLS_TKEYS_MAX keys of 80 random bytes each (the
 * size of nginx's ssl_session_ticket_key; `openssl rand 80`), concatenated.
 * The first key encrypts new tickets, every key decrypts: rotation is
 * "prepend a new key, reload; later drop the oldest, reload".
 *
 * A file key is never used directly.  Each snapshot derives its own keys
 * from it with HMAC-SHA256 over a fingerprint of what admits a session
 * (role, verify mode, CAs, CRLs, allow list, own chain; not the context's
 * name, a log label that differs between instances), so instances with
 * the same configuration share tickets, and a ticket from another host
 * (another certificate) or another policy finds no key name and is
 * refused, as with per-snapshot random keys.
 *
 * Ticket body: [16: key name][12: IV][8: issue time, ms since the epoch,
 * big endian][n: mbedtls_ssl_session_save()][16: GCM tag], AES-256-GCM
 * with the first 36 bytes as associated data.
 *
 * mbedTLS 3.6 checks a TLS 1.3 ticket's age against the creation time it
 * saved, read from a clock that starts at boot (mbedtls_ms_time()): on
 * another machine that number means nothing.  The wall-clock issue time
 * is ours, so the creation time is restated on this machine's clock
 * when a ticket is opened (instances' clocks must agree within mbedTLS's
 * age tolerance, 6 s by default, or TLS 1.3 tickets fall back to full
 * handshakes).
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/gcm.h>
#include <mbedtls/md.h>
#include <mbedtls/platform_util.h>

#define HDR (MTLS_TKEY_NAME + 12 + 8)
#define TAG 16
/* Tickets issued by another instance whose clock is ahead are accepted
 * up to this many seconds "from the future". */
#define SKEW 300

static uint64_t wall_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

void mtls__tkfile_unref(mtls_tkfile *f)
{
	if (f == NULL || atomic_fetch_sub(&f->refs, 1) != 1)
		return;
	mbedtls_platform_zeroize(f->keys, f->n * MTLS_TKEY_FILE_LEN);
	free(f->keys);
	free(f->path);
	free(f);
}

mtls_tkfile *mtls__tkfile_ref(mtls_tkfile *f)
{
	if (f != NULL)
		atomic_fetch_add(&f->refs, 1);
	return f;
}

int mtls__tkfile_load(const char *path, const char *log_name,
                      mtls_tkfile **out, mtls_err *e)
{
	mtls_buf b = {0};
	mtls_tkfile *f = NULL;
	unsigned mode;
	int ret;

	*out = NULL;
	if ((ret = mtls__read_file(path, 1, &b, e)) != 0)
		return ret;
	if (b.len % MTLS_TKEY_FILE_LEN != 0 ||
	    b.len / MTLS_TKEY_FILE_LEN > MTLS_TKEYS_MAX) {
		ret = mtls__fail(e, MTLS_ERR_KEY_PARSE,
		                 "%s: %zu bytes; a session ticket key file "
		                 "holds 1 to %d keys of %d random bytes each",
		                 path, b.len, MTLS_TKEYS_MAX,
		                 MTLS_TKEY_FILE_LEN);
		goto done;
	}
	f = calloc(1, sizeof(*f));
	if (f == NULL || (f->path = strdup(path)) == NULL ||
	    (f->keys = malloc(b.len)) == NULL) {
		ret = mtls__fail(e, MTLS_ERR_NO_MEMORY, "%s: out of memory",
		                 path);
		goto done;
	}
	atomic_init(&f->refs, 1);
	f->n = b.len / MTLS_TKEY_FILE_LEN;
	memcpy(f->keys, b.data, b.len);
	if ((mode = mtls__key_file_exposed(path)) != 0)
		mtls__log(MTLS_LOG_WARN, log_name,
		          "session ticket key file %s is readable by others "
		          "(mode %03o): anyone who reads it can decrypt "
		          "resumed sessions; chmod 600 it",
		          path, mode);
	*out = f;
	f = NULL;
done:
	mtls__buf_free(&b);
	if (f != NULL) {
		free(f->path);
		free(f->keys);
		free(f);
	}
	return ret;
}

/* ---- the policy fingerprint ------------------------------------------- */

static int put(mbedtls_md_context_t *md, const void *p, size_t len)
{
	unsigned char n[4] = {(unsigned char)(len >> 24),
	                      (unsigned char)(len >> 16),
	                      (unsigned char)(len >> 8), (unsigned char)len};
	int ret = mbedtls_md_update(md, n, sizeof(n));

	return ret != 0 || len == 0 ? ret : mbedtls_md_update(md, p, len);
}

static int put_int(mbedtls_md_context_t *md, long v)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%ld", v);

	return put(md, buf, (size_t)n);
}

static int put_crts(mbedtls_md_context_t *md, const mbedtls_x509_crt *c)
{
	int ret = 0;

	for (; ret == 0 && c != NULL && c->raw.p != NULL; c = c->next)
		ret = put(md, c->raw.p, c->raw.len);
	return ret == 0 ? put(md, "", 0) : ret;
}

int mtls__tkeys_fingerprint(const mtls_ctx *ctx, const mtls_snap *s,
                            unsigned char fp[32])
{
	mbedtls_md_context_t md;
	int ret;

	mbedtls_md_init(&md);
	ret = mbedtls_md_setup(&md, mbedtls_md_info_from_type(MBEDTLS_MD_SHA256),
	                       0);
	if (ret == 0)
		ret = mbedtls_md_starts(&md);
	if (ret == 0)
		ret = put(&md, "mtls ticket policy 1", 20);
	if (ret == 0)
		ret = put_int(&md, (long)ctx->role);
	if (ret == 0)
		ret = put_int(&md, (long)s->verify * 2 + (s->insecure != 0));
	if (ret == 0)
		ret = put_crts(&md, s->trust != NULL ? &s->trust->ca : NULL);
	for (const mbedtls_x509_crl *c = s->crl != NULL ? &s->crl->crl : NULL;
	     ret == 0 && c != NULL && c->raw.p != NULL; c = c->next)
		ret = put(&md, c->raw.p, c->raw.len);
	if (ret == 0)
		ret = put(&md, "", 0);
	for (size_t i = 0; ret == 0 && i < s->n_allow; i++) {
		ret = put_int(&md, (long)s->allow[i].kind);
		if (ret == 0)
			ret = put(&md, s->allow[i].value,
			          strlen(s->allow[i].value));
	}
	if (ret == 0)
		ret = put(&md, "", 0);
	if (ret == 0)
		ret = put_crts(&md, s->cred != NULL ? &s->cred->chain : NULL);
	if (ret == 0)
		ret = mbedtls_md_finish(&md, fp);
	mbedtls_md_free(&md);
	return ret;
}

/* ---- per-snapshot keys -------------------------------------------------- */

/* HMAC-SHA256(ikm, label || fp). */
static int derive(const unsigned char *ikm, const char *label,
                  const unsigned char fp[32], unsigned char out[32])
{
	mbedtls_md_context_t md;
	int ret;

	mbedtls_md_init(&md);
	ret = mbedtls_md_setup(&md, mbedtls_md_info_from_type(MBEDTLS_MD_SHA256),
	                       1);
	if (ret == 0)
		ret = mbedtls_md_hmac_starts(&md, ikm, MTLS_TKEY_FILE_LEN);
	if (ret == 0)
		ret = mbedtls_md_hmac_update(&md, (const unsigned char *)label,
		                             strlen(label));
	if (ret == 0)
		ret = mbedtls_md_hmac_update(&md, fp, 32);
	if (ret == 0)
		ret = mbedtls_md_hmac_finish(&md, out);
	mbedtls_md_free(&md); /* wipes the HMAC state */
	return ret;
}

int mtls__tkeys_derive(const mtls_tkfile *f, const unsigned char fp[32],
                       mtls_tkeys *out)
{
	unsigned char name[32];
	int ret = 0;

	out->k = calloc(f->n, sizeof(*out->k));
	if (out->k == NULL)
		return MBEDTLS_ERR_SSL_ALLOC_FAILED;
	out->n = f->n;
	for (size_t i = 0; ret == 0 && i < f->n; i++) {
		const unsigned char *ikm = f->keys + i * MTLS_TKEY_FILE_LEN;
		ret = derive(ikm, "mtls ticket name", fp, name);
		if (ret == 0)
			ret = derive(ikm, "mtls ticket key", fp, out->k[i].aes);
		if (ret == 0)
			ret = derive(ikm, "mtls ticket seal", fp,
			             out->k[i].seal);
		memcpy(out->k[i].name, name, MTLS_TKEY_NAME);
	}
	mbedtls_platform_zeroize(name, sizeof(name));
	if (ret != 0)
		mtls__tkeys_free(out);
	return ret;
}

void mtls__tkeys_free(mtls_tkeys *k)
{
	if (k->k != NULL) {
		mbedtls_platform_zeroize(k->k, k->n * sizeof(*k->k));
		free(k->k);
	}
	k->k = NULL;
	k->n = 0;
}

/* ---- ticket body -------------------------------------------------------- */

/* Encrypt: writes the tag; decrypt: checks it (constant time). */
static int gcm(const mtls_tkey *key, int mode, const unsigned char *hdr,
               const unsigned char *in, size_t len, unsigned char *out,
               unsigned char *tag)
{
	mbedtls_gcm_context g;
	int ret;

	mbedtls_gcm_init(&g);
	ret = mbedtls_gcm_setkey(&g, MBEDTLS_CIPHER_ID_AES, key->aes, 256);
	if (ret == 0 && mode == MBEDTLS_GCM_ENCRYPT)
		ret = mbedtls_gcm_crypt_and_tag(&g, mode, len,
		                                hdr + MTLS_TKEY_NAME, 12, hdr,
		                                HDR, in, out, TAG, tag);
	else if (ret == 0)
		ret = mbedtls_gcm_auth_decrypt(&g, len, hdr + MTLS_TKEY_NAME,
		                               12, hdr, HDR, tag, TAG, in, out);
	mbedtls_gcm_free(&g);
	return ret;
}

int mtls__tkeys_write(const mtls_tkeys *k, const mbedtls_ssl_session *session,
                      unsigned char *start, const unsigned char *end,
                      size_t *tlen, uint32_t *lifetime)
{
	const mtls_tkey *key = &k->k[0];
	uint64_t now = wall_ms();
	unsigned char *body = start + HDR;
	size_t n = 0;
	int ret;

	*tlen = 0;
	if (k->n == 0)
		return MBEDTLS_ERR_SSL_INTERNAL_ERROR;
	if (end - start < HDR + TAG)
		return MBEDTLS_ERR_SSL_BUFFER_TOO_SMALL;
	memcpy(start, key->name, MTLS_TKEY_NAME);
	if ((ret = mtls__rng(mtls__rng_ctx(), start + MTLS_TKEY_NAME, 12)) != 0)
		return ret;
	for (int i = 0; i < 8; i++)
		start[MTLS_TKEY_NAME + 12 + i] = (unsigned char)(now >> (56 - 8 * i));
	ret = mbedtls_ssl_session_save(session, body,
	                               (size_t)(end - body) - TAG, &n);
	if (ret != 0)
		return ret;
	ret = gcm(key, MBEDTLS_GCM_ENCRYPT, start, body, n, body, body + n);
	if (ret != 0) {
		mbedtls_platform_zeroize(body, n);
		return ret;
	}
	*tlen = HDR + n + TAG;
	*lifetime = MTLS_TICKET_LIFETIME;
	return 0;
}

const mtls_tkey *mtls__tkeys_find(const mtls_tkeys *k, const unsigned char *buf,
                                  size_t len)
{
	if (len < HDR + TAG)
		return NULL;
	for (size_t i = 0; i < k->n; i++)
		if (memcmp(buf, k->k[i].name, MTLS_TKEY_NAME) == 0)
			return &k->k[i];
	return NULL;
}

int mtls__tkeys_parse(const mtls_tkey *key, mbedtls_ssl_session *session,
                      unsigned char *buf, size_t len)
{
	uint64_t issued = 0, now = wall_ms(), age;
	unsigned char *body = buf + HDR;
	size_t n;
	int ret;

	if (key == NULL || len < HDR + TAG)
		return MBEDTLS_ERR_SSL_INVALID_MAC;
	n = len - HDR - TAG;
	ret = gcm(key, MBEDTLS_GCM_DECRYPT, buf, body, n, body, body + n);
	if (ret != 0)
		return MBEDTLS_ERR_SSL_INVALID_MAC;
	for (int i = 0; i < 8; i++)
		issued = issued << 8 | buf[MTLS_TKEY_NAME + 12 + i];
	age = now > issued ? now - issued : 0;
	if (issued > now + (uint64_t)SKEW * 1000 ||
	    age > (uint64_t)MTLS_TICKET_LIFETIME * 1000)
		ret = MBEDTLS_ERR_SSL_SESSION_TICKET_EXPIRED;
	else if ((ret = mbedtls_ssl_session_load(session, body, n)) == 0)
		mtls__session_restate_age(session, (int64_t)age);
	mbedtls_platform_zeroize(body, n);
	return ret;
}

/* ---- the public setter -------------------------------------------------- */

int mtls_ctx_set_ticket_key_file(mtls_ctx *ctx, const char *path)
{
	mtls_tkfile *f = NULL, *old;
	int ret;

	if (ctx == NULL)
		return MTLS_ERR_INVALID_ARG;
	ctx->err.code = 0;
	ctx->err.msg[0] = '\0';
	if (ctx->role != MTLS_ROLE_SERVER)
		ret = mtls__fail(&ctx->err, MTLS_ERR_WRONG_ROLE,
		                 "mtls_ctx_set_ticket_key_file applies to "
		                 "server contexts only");
#if !defined(MBEDTLS_SSL_TICKET_C) || !defined(MBEDTLS_SSL_SESSION_TICKETS)
	else if (path != NULL)
		ret = mtls__fail(&ctx->err, MTLS_ERR_UNSUPPORTED,
		                 "%s: this mbedTLS build has no session "
		                 "tickets", path);
#endif
	else if (path != NULL)
		ret = mtls__tkfile_load(path, ctx->name, &f, &ctx->err);
	else
		ret = 0;
	if (ret != 0) {
		mtls__log(MTLS_LOG_ERROR, ctx->name, "%s", ctx->err.msg);
		return ret;
	}
	pthread_mutex_lock(&ctx->lock);
	old = ctx->tkfile;
	ctx->tkfile = f;
	mtls__snap_invalidate(ctx);
	pthread_mutex_unlock(&ctx->lock);
	mtls__tkfile_unref(old);
	if (f != NULL)
		mtls__log(MTLS_LOG_INFO, ctx->name,
		          "session ticket keys: %zu from %s (the first "
		          "encrypts)", f->n, path);
	return 0;
}
