/*
 * timer.c - deadlines in a binary min-heap (see timer.h).
 */
#include "timer.h"

#include <stdlib.h>

static struct pxy_timer **heap;
static size_t n_heap, cap_heap;

static void place(size_t i, struct pxy_timer *t)
{
	heap[i] = t;
	t->slot = i + 1;
}

static void sift_up(size_t i)
{
	struct pxy_timer *t = heap[i];

	while (i > 0 && heap[(i - 1) / 2]->when > t->when) {
		place(i, heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	place(i, t);
}

static void sift_down(size_t i)
{
	struct pxy_timer *t = heap[i];

	for (;;) {
		size_t k = 2 * i + 1;

		if (k >= n_heap)
			break;
		if (k + 1 < n_heap && heap[k + 1]->when < heap[k]->when)
			k++;
		if (heap[k]->when >= t->when)
			break;
		place(i, heap[k]);
		i = k;
	}
	place(i, t);
}

int pxy_timer_set(struct pxy_timer *t, double when)
{
	if (t->slot == 0) {
		if (n_heap == cap_heap) {
			size_t cap = cap_heap ? 2 * cap_heap : 256;
			struct pxy_timer **h = realloc(heap, cap * sizeof(struct pxy_timer *));

			if (h == NULL)
				return -1;
			heap = h;
			cap_heap = cap;
		}
		t->when = when;
		place(n_heap++, t);
		sift_up(n_heap - 1);
		return 0;
	}
	t->when = when;
	sift_up(t->slot - 1);
	sift_down(t->slot - 1);
	return 0;
}

void pxy_timer_del(struct pxy_timer *t)
{
	struct pxy_timer *last;
	size_t i = t->slot;

	if (i-- == 0)
		return;
	t->slot = 0;
	if (i == --n_heap)
		return;
	last = heap[n_heap]; /* fills the hole, then finds its place */
	place(i, last);
	sift_up(i);
	sift_down(last->slot - 1);
}

struct pxy_timer *pxy_timer_due(double now)
{
	return n_heap > 0 && heap[0]->when <= now ? heap[0] : NULL;
}

double pxy_timer_next(double now)
{
	if (n_heap == 0)
		return -1;
	return heap[0]->when > now ? heap[0]->when - now : 0;
}

void pxy_timer_free(void)
{
	free(heap);
	heap = NULL;
	n_heap = cap_heap = 0;
}
