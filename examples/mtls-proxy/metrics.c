/*
 * metrics.c - the counters in their shared region (see metrics.h).
 *
 * Only the process holding a slot writes it, so entering a name needs no
 * lock: the entry is filled, then published by a release store of the
 * count that readers load with acquire.  Counters are relaxed atomics.
 */
#include "metrics.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static struct mx_slot *slots;
static int n_slots;
static struct mx_slot *mine; /* NULL: this process counts nothing */

#define RLX memory_order_relaxed

/* Processes share these counters: their atomics must be lock-free (a
 * lock-based fallback would live in each process, not in the region). */
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2 && ATOMIC_LONG_LOCK_FREE == 2 &&
               ATOMIC_INT_LOCK_FREE == 2,
               "mtls-proxy metrics need lock-free atomics");

int pxy_metrics_init(int n)
{
	void *p;

	if (n < 1)
		n = 1;
	p = mmap(NULL, (size_t)n * sizeof(*slots), PROT_READ | PROT_WRITE,
	         MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		pxy_log(MTLS_LOG_ERROR, "metrics: mmap: %s", strerror(errno));
		return -1;
	}
	slots = p; /* zero-filled: every counter starts at 0 */
	n_slots = n;
	return 0;
}

struct mx_slot *pxy_metrics_slots(int *n)
{
	*n = n_slots;
	return slots;
}

void pxy_metrics_claim(int i)
{
	struct mx_slot *s;
	unsigned k, nl;

	if (slots == NULL || i < 0 || i >= n_slots)
		return;
	s = mine = &slots[i];
	nl = atomic_load_explicit(&s->n_listeners, memory_order_acquire);
	for (k = 0; k < nl; k++) /* the predecessor's connections died */
		atomic_store_explicit(&s->l[k].open, 0, RLX);
	if (atomic_load_explicit(&s->started, RLX) == 0) {
		atomic_store_explicit(&s->started, (long long)time(NULL), RLX);
		atomic_store_explicit(&s->last_reload_ok, (long long)time(NULL),
		                      RLX);
	} else {
		atomic_fetch_add_explicit(&s->restarts, 1, RLX);
	}
	atomic_store_explicit(&s->pid, (long)getpid(), RLX);
}

void pxy_metrics_release(int i)
{
	if (slots != NULL && i >= 0 && i < n_slots)
		atomic_store_explicit(&slots[i].pid, 0, RLX);
}

/* The index of listener `name` in this slot, entered if new; the last
 * entry takes every name once the table is full. */
static unsigned listener_index(const char *name)
{
	unsigned n = atomic_load_explicit(&mine->n_listeners, RLX), k;

	for (k = 0; k < n; k++)
		if (strcmp(mine->l[k].name, name) == 0)
			return k;
	if (n == MX_LISTENERS - 1) {
		snprintf(mine->l[n].name, MX_NAME, "other");
	} else if (n == MX_LISTENERS) {
		return MX_LISTENERS - 1;
	} else {
		snprintf(mine->l[n].name, MX_NAME, "%s", name);
	}
	atomic_store_explicit(&mine->n_listeners, n + 1, memory_order_release);
	return n;
}

static struct mx_pair *pair(const struct pxy_listen *l, const char *host)
{
	unsigned li = listener_index(l->addr.text);
	unsigned n = atomic_load_explicit(&mine->n_pairs, RLX), k;

	if (host == NULL)
		host = "default";
	for (k = 0; k < n; k++)
		if (mine->p[k].listener == li &&
		    strcmp(mine->p[k].host, host) == 0)
			return &mine->p[k];
	if (n == MX_PAIRS)
		return &mine->p[MX_PAIRS - 1];
	mine->p[n].listener = li;
	snprintf(mine->p[n].host, MX_NAME, "%s",
	         n == MX_PAIRS - 1 ? "other" : host);
	atomic_store_explicit(&mine->n_pairs, n + 1, memory_order_release);
	return &mine->p[n];
}

void pxy_metrics_config(const struct pxy_config *cfg)
{
	size_t i, j;

	if (mine == NULL)
		return;
	for (i = 0; i < cfg->n_listens; i++) {
		const struct pxy_listen *l = &cfg->listens[i];

		if (l->skipped)
			continue;
		(void)pair(l, NULL);
		for (j = 0; j < l->n_hosts; j++)
			if (!l->hosts[j].skipped)
				(void)pair(l, l->hosts[j].name);
	}
}

void pxy_metrics_conn_open(const struct pxy_listen *l)
{
	if (mine != NULL)
		atomic_fetch_add_explicit(
		    &mine->l[listener_index(l->addr.text)].open, 1, RLX);
}

void pxy_metrics_handshake(const struct pxy_listen *l, const char *host,
                           int ok, int r)
{
	struct mx_pair *p;

	if (mine == NULL)
		return;
	p = pair(l, host);
	if (ok)
		atomic_fetch_add_explicit(&p->hs_ok, 1, RLX);
	else
		atomic_fetch_add_explicit(
		    &p->hs_failed[r >= 0 && r < MX_REASONS ? r : MX_R_UNKNOWN],
		    1, RLX);
}

void pxy_metrics_conn_end(const struct pxy_listen *l, const char *host)
{
	if (mine == NULL)
		return;
	atomic_fetch_add_explicit(&pair(l, host)->conns, 1, RLX);
	atomic_fetch_sub_explicit(&mine->l[listener_index(l->addr.text)].open,
	                          1, RLX);
}

void pxy_metrics_bytes(int dir, unsigned long long n)
{
	if (mine != NULL && n > 0)
		atomic_fetch_add_explicit(&mine->bytes[dir != 0], n, RLX);
}

void pxy_metrics_reload(int ok)
{
	if (mine == NULL)
		return;
	atomic_store_explicit(&mine->last_reload, (long long)time(NULL), RLX);
	atomic_store_explicit(&mine->last_reload_result, ok ? 1 : -1, RLX);
	if (ok) {
		atomic_fetch_add_explicit(&mine->reloads_ok, 1, RLX);
		atomic_store_explicit(&mine->last_reload_ok,
		                      (long long)time(NULL), RLX);
	} else {
		atomic_fetch_add_explicit(&mine->reloads_failed, 1, RLX);
	}
}

const char *pxy_metrics_reason_name(int r)
{
	if (r >= 0 && r < MTLS_REASON_COUNT)
		return mtls_reason_name((mtls_reason)r);
	return r == MX_R_TIMEOUT ? "timeout" : "unknown";
}
