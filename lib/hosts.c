/*
 * hosts.c - the SNI table of a listener: an open-addressing hash from a
 * lowercased name ("admin.example.com" or "*.example.com") to a host
 * context.  A lookup is at most two probes sequences, whatever the count.
 */
#include "internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define HOST_NAME_MAX_LEN 253

typedef struct slot {
	char *name; /* NULL: empty */
	size_t len;
	uint64_t hash;
	mtls_ctx *host;
} slot;

struct mtls_hosts {
	slot *slots;
	size_t cap; /* power of two */
	size_t used;
};

/* FNV-1a over the lowercased name. */
static uint64_t hash_name(const char *s, size_t len)
{
	uint64_t h = 14695981039346656037ull;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)mtls__ascii_lower((unsigned char)s[i]);
		h *= 1099511628211ull;
	}
	return h;
}

static slot *probe(const mtls_hosts *h, const char *name, size_t len,
                   uint64_t hash)
{
	size_t i = (size_t)hash & (h->cap - 1);

	for (;;) {
		slot *s = &h->slots[i];
		if (s->name == NULL ||
		    (s->hash == hash && s->len == len &&
		     mtls__ascii_eq_nocase(s->name, name, len)))
			return s;
		i = (i + 1) & (h->cap - 1);
	}
}

static int grow(mtls_hosts *h)
{
	size_t cap = h->cap ? h->cap * 2 : 16;
	slot *old = h->slots;
	size_t old_cap = h->cap;

	h->slots = calloc(cap, sizeof(slot));
	if (h->slots == NULL) {
		h->slots = old;
		return MTLS_ERR_NO_MEMORY;
	}
	h->cap = cap;
	for (size_t i = 0; i < old_cap; i++)
		if (old[i].name != NULL)
			*probe(h, old[i].name, old[i].len, old[i].hash) = old[i];
	free(old);
	return 0;
}

int mtls__hosts_add(mtls_hosts **hp, const char *name, mtls_ctx *host)
{
	size_t len = strlen(name);
	uint64_t hash = hash_name(name, len);
	mtls_hosts *h = *hp;
	slot *s;

	if (h == NULL) {
		h = calloc(1, sizeof(*h));
		if (h == NULL || grow(h) != 0) {
			free(h);
			return MTLS_ERR_NO_MEMORY;
		}
		*hp = h;
	}
	/* Keep the load under 1/2 so probes stay short. */
	if ((h->used + 1) * 2 > h->cap && grow(h) != 0)
		return MTLS_ERR_NO_MEMORY;
	s = probe(h, name, len, hash);
	if (s->name != NULL) {
		/* The same name again replaces its host. */
		mtls__ctx_unref(s->host);
		s->host = mtls__ctx_ref(host);
		return 0;
	}
	s->name = strdup(name);
	if (s->name == NULL)
		return MTLS_ERR_NO_MEMORY;
	for (char *p = s->name; *p; p++)
		*p = (char)mtls__ascii_lower((unsigned char)*p);
	s->len = len;
	s->hash = hash;
	s->host = mtls__ctx_ref(host);
	h->used++;
	return 0;
}

static mtls_ctx *lookup(const mtls_hosts *h, const char *name, size_t len,
                        const char **matched)
{
	slot *s = probe(h, name, len, hash_name(name, len));

	if (s->name == NULL)
		return NULL;
	if (matched != NULL)
		*matched = s->name;
	return s->host;
}

int mtls__sni_valid(const char *name, size_t len)
{
	size_t label = 0;

	if (name == NULL || len == 0 || len > HOST_NAME_MAX_LEN)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)name[i];
		if (ch == '.') {
			if (label == 0)
				return 0; /* empty label, leading dot */
			label = 0;
			continue;
		}
		if (!(mtls__ascii_alnum(ch) || ch == '-' || ch == '_') ||
		    ++label > 63)
			return 0;
	}
	return label != 0; /* no trailing dot */
}

mtls_ctx *mtls__hosts_find(const mtls_hosts *h, const char *name, size_t len,
                           const char **matched)
{
	char wild[HOST_NAME_MAX_LEN + 2];
	const char *dot;
	mtls_ctx *host;

	if (matched != NULL)
		*matched = NULL;
	if (h == NULL || !mtls__sni_valid(name, len))
		return NULL;
	host = lookup(h, name, len, matched);
	if (host != NULL)
		return host;
	/* "*.example.com" covers exactly one label: a.example.com, not
	 * a.b.example.com (that would be "*.b.example.com"). */
	dot = memchr(name, '.', len);
	if (dot == NULL || dot == name)
		return NULL;
	wild[0] = '*';
	memcpy(wild + 1, dot, len - (size_t)(dot - name));
	return lookup(h, wild, 1 + len - (size_t)(dot - name), matched);
}

void mtls__hosts_free(mtls_hosts *h)
{
	if (h == NULL)
		return;
	for (size_t i = 0; i < h->cap; i++) {
		free(h->slots[i].name);
		mtls__ctx_unref(h->slots[i].host);
	}
	free(h->slots);
	free(h);
}

size_t mtls__hosts_list(const mtls_hosts *h, mtls_ctx **out, size_t max)
{
	size_t n = 0;

	if (h == NULL)
		return 0;
	if (out == NULL)
		return h->used;
	for (size_t i = 0; i < h->cap && n < max; i++) {
		const slot *s = &h->slots[i];
		size_t j = 0;

		if (s->name == NULL)
			continue;
		while (j < n && out[j] != s->host)
			j++;
		if (j == n) /* one host under several names: listed once */
			out[n++] = s->host;
	}
	return n;
}

static const char *version_name(int v)
{
	return v == MTLS_TLS1_3 ? "1.3" : v == MTLS_TLS1_2 ? "1.2" : "?";
}

/*
 * A host is its own context, but the listener's configuration negotiates
 * the version: mbedTLS (2.28, and 3.6 for 1.3 against 1.2) decides it from
 * the ClientHello before it reads the server_name extension and calls us.
 * So a host's bounds cannot steer the negotiation; they are enforced here,
 * once the version and the host are both known.  mbedTLS answers a failed
 * SNI callback with unrecognized_name; the protocol_version alert sent
 * first is the one a client reads, and names the real reason.
 */
int mtls__host_version_check(mbedtls_ssl_context *ssl, const mtls_snap *hs,
                             const char *host, mtls_err *e)
{
	int v = mtls__ssl_version(ssl);

	if (v >= hs->tls_min && v <= hs->tls_max)
		return 0;
	(void)mbedtls_ssl_send_alert_message(ssl, MBEDTLS_SSL_ALERT_LEVEL_FATAL,
	                                     MBEDTLS_SSL_ALERT_MSG_PROTOCOL_VERSION);
	if (hs->tls_min == hs->tls_max)
		return mtls__fail(e, MTLS_ERR_HANDSHAKE,
		                  "host %s accepts TLS %s only; the client "
		                  "negotiated TLS %s", host,
		                  version_name(hs->tls_min), version_name(v));
	return mtls__fail(e, MTLS_ERR_HANDSHAKE,
	                  "host %s accepts TLS %s to %s; the client negotiated "
	                  "TLS %s", host, version_name(hs->tls_min),
	                  version_name(hs->tls_max), version_name(v));
}
