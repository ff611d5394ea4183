/*
 * admit.c - admission control (see admit.h).  Not "limits.c/.h": that
 * header would shadow <limits.h> wherever examples/mtls-proxy is on the
 * include path (lint, fuzz targets).
 *
 * Handshakes are what a peer can make expensive (a crafted chain costs the
 * server many times what it costs the client) and what an idle socket
 * holds for handshake_timeout seconds, so they are bounded in all and per
 * client address.  Addresses are kept in a small chained hash, one node per
 * address with a handshake in progress: at most max_handshakes nodes.
 */
#include "admit.h"

#include "log.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <time.h>

#define N_BUCKETS 1024
#define KEY_LEN 9 /* family, then 4 (IPv4) or 8 (IPv6 /64) bytes */

struct pxy_source {
	struct pxy_source *prev, *next; /* in its bucket */
	unsigned char key[KEY_LEN];
	size_t n; /* handshakes in progress */
};

static struct pxy_source *buckets[N_BUCKETS];
static size_t n_handshakes; /* in progress, all sources */

/* One rate-limited report per limit (NULL: out of memory): its first
 * refusal is logged, the next ones only counted until a second has
 * passed. */
struct burst {
	double last;          /* when a line was last written, 0: never */
	unsigned long quiet;  /* refused since, not logged */
};

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The address a limit counts: IPv4, or an IPv6 /64 (one host usually has
 * a whole /64); an IPv4-mapped IPv6 address counts as its IPv4 one. */
static void source_key(const struct sockaddr_storage *sa,
                       unsigned char key[KEY_LEN], char *text, size_t len)
{
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0,
	                                         0, 0, 0, 0, 0xff, 0xff};
	char buf[INET6_ADDRSTRLEN] = "?";

	memset(key, 0, KEY_LEN);
	if (sa->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)sa;
		const unsigned char *b = a->sin6_addr.s6_addr;

		if (memcmp(b, mapped, sizeof(mapped)) != 0) {
			struct in6_addr net;

			key[0] = 6;
			memcpy(key + 1, b, 8);
			memset(&net, 0, sizeof(net));
			memcpy(net.s6_addr, b, 8);
			inet_ntop(AF_INET6, &net, buf, sizeof(buf));
			snprintf(text, len, "%s/64", buf);
			return;
		}
		key[0] = 4;
		memcpy(key + 1, b + 12, 4);
	} else if (sa->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)sa;

		key[0] = 4;
		memcpy(key + 1, &a->sin_addr, 4);
	}
	inet_ntop(AF_INET, key + 1, buf, sizeof(buf));
	snprintf(text, len, "%s", buf);
}

/* FNV-1a over a per-process random prefix, then the key: a client cannot
 * choose addresses that all land in one bucket without knowing the
 * prefix (a chain is bounded by max_handshakes anyway). */
static size_t bucket_of(const unsigned char key[KEY_LEN])
{
	static unsigned char seed[8];
	static int seeded;
	uint32_t h = 2166136261u;
	size_t i;

	if (!seeded) {
		/* Without randomness (no getrandom yet) the prefix stays
		 * zero: the table still works, only predictably. */
		if (getrandom(seed, sizeof(seed), GRND_NONBLOCK) !=
		    (ssize_t)sizeof(seed))
			memset(seed, 0, sizeof(seed));
		seeded = 1;
	}
	for (i = 0; i < sizeof(seed); i++)
		h = (h ^ seed[i]) * 16777619u;
	for (i = 0; i < KEY_LEN; i++)
		h = (h ^ key[i]) * 16777619u;
	return h % N_BUCKETS;
}

static struct pxy_source *source_find(const unsigned char key[KEY_LEN])
{
	struct pxy_source *s = buckets[bucket_of(key)];

	while (s != NULL && memcmp(s->key, key, KEY_LEN) != 0)
		s = s->next;
	return s;
}

static struct pxy_source *source_add(const unsigned char key[KEY_LEN])
{
	struct pxy_source *s = calloc(1, sizeof(*s));
	size_t b = bucket_of(key);

	if (s == NULL)
		return NULL;
	memcpy(s->key, key, KEY_LEN);
	s->next = buckets[b];
	if (s->next != NULL)
		s->next->prev = s;
	buckets[b] = s;
	return s;
}

static void source_drop(struct pxy_source *s)
{
	if (--s->n > 0)
		return;
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		buckets[bucket_of(s->key)] = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	free(s);
}

static void refuse(struct burst *b, const char *limit, size_t value,
                   const char *who)
{
	double t = mono();

	if (b->last != 0 && t - b->last < 1.0) {
		b->quiet++;
		return;
	}
	if (limit == NULL)
		pxy_log(MTLS_LOG_ERROR, "out of memory: refusing new "
		        "connections (this one from %s; %lu more refused since "
		        "the last such line)", who, b->quiet);
	else
		pxy_log(MTLS_LOG_WARN, "limit %s %zu reached: refusing new "
		        "connections (this one from %s; %lu more refused since "
		        "the last such line)", limit, value, who, b->quiet);
	b->last = t;
	b->quiet = 0;
}

int pxy_admit(const struct pxy_config *cfg, struct pxy_listen *l,
              const struct sockaddr_storage *sa, size_t n_conns,
              struct pxy_ticket *t)
{
	static struct burst b_conns, b_listen, b_hs, b_src, b_mem;
	unsigned char key[KEY_LEN];
	char who[INET6_ADDRSTRLEN + 8], where[340];
	struct pxy_source *src;

	memset(t, 0, sizeof(*t));
	source_key(sa, key, who, sizeof(who));
	if (n_conns >= cfg->max_conns) {
		refuse(&b_conns, "max_connections", cfg->max_conns, who);
		return -1;
	}
	if (l->count == NULL && (l->count = calloc(1, sizeof(*l->count)))) {
		l->count->refs = 1;
	}
	if (l->count == NULL) {
		refuse(&b_mem, NULL, 0, who);
		return -1;
	}
	if (l->max_conns != 0 && l->count->n >= l->max_conns) {
		snprintf(where, sizeof(where), "max_connections (listen %s)",
		         l->addr.text);
		refuse(&b_listen, where, l->max_conns, who);
		return -1;
	}
	if (n_handshakes >= cfg->max_hs) {
		refuse(&b_hs, "max_handshakes", cfg->max_hs, who);
		return -1;
	}
	src = source_find(key);
	if (src != NULL && src->n >= cfg->max_hs_src) {
		refuse(&b_src, "max_handshakes_per_source", cfg->max_hs_src,
		       who);
		return -1;
	}
	if (src == NULL && (src = source_add(key)) == NULL) {
		refuse(&b_mem, NULL, 0, who);
		return -1;
	}
	src->n++;
	n_handshakes++;
	l->count->n++;
	*t = (struct pxy_ticket){.lc = l->count, .src = src, .held = 1};
	return 0;
}

void pxy_admit_hs_done(struct pxy_ticket *t)
{
	if (t->src == NULL)
		return;
	source_drop(t->src);
	t->src = NULL;
	n_handshakes--;
}

void pxy_admit_release(struct pxy_ticket *t)
{
	pxy_admit_hs_done(t);
	if (t->held && t->lc != NULL)
		t->lc->n--;
	t->lc = NULL;
	t->held = 0;
}

void pxy_admit_share(struct pxy_listen *nl, const struct pxy_listen *ol)
{
	nl->count = ol->count;
	if (nl->count != NULL)
		nl->count->refs++;
}

void pxy_admit_forget(struct pxy_config *cfg)
{
	size_t i;

	for (i = 0; i < cfg->n_listens; i++) {
		struct pxy_lcount *lc = cfg->listens[i].count;

		if (lc != NULL && --lc->refs == 0)
			free(lc);
		cfg->listens[i].count = NULL;
	}
}

void pxy_limits_warn(const struct pxy_config *cfg)
{
	struct rlimit rl;
	/* two sockets a connection, and room for listeners, checks, logs */
	unsigned long long need = 2ULL * cfg->max_conns + 64;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
	    (unsigned long long)rl.rlim_cur >= need)
		return;
	if (cfg->max_conns_line != 0)
		pxy_log(MTLS_LOG_WARN, "%s:%d: max_connections %zu needs about "
		        "%llu file descriptors, the limit (ulimit -n) is %llu: "
		        "past it, accepting pauses until some are free",
		        cfg->path, cfg->max_conns_line, cfg->max_conns, need,
		        (unsigned long long)rl.rlim_cur);
	else
		pxy_log(MTLS_LOG_WARN, "max_connections %zu (the default) needs "
		        "about %llu file descriptors, the limit (ulimit -n) is "
		        "%llu: past it, accepting pauses until some are free",
		        cfg->max_conns, need, (unsigned long long)rl.rlim_cur);
}
