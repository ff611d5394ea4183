/*
 * timer.h - deadlines in a binary min-heap (private to mtls-proxy).
 *
 * The loop asks for what is due after every pass; with thousands of
 * connections open that must not walk them all.  A pxy_timer lives inside
 * the object it times; setting it is O(log n), finding the earliest is
 * O(1).  Deadlines that only move later (an idle timer pushed back by
 * every byte relayed) need not be re-set on each move: the owner re-keys
 * the timer when it comes due and finds it is not (lazy re-keying).
 */
#ifndef MTLS_PROXY_TIMER_H
#define MTLS_PROXY_TIMER_H

#include <stddef.h>

struct pxy_timer {
	double when;  /* pxy_now() seconds */
	size_t slot;  /* 1 + its index in the heap; 0 when not set */
};

/* Sets (or moves) t to when.  0, or -1 out of memory (t then not set). */
int pxy_timer_set(struct pxy_timer *t, double when);

/* Takes t out of the heap if it is there. */
void pxy_timer_del(struct pxy_timer *t);

/* The earliest timer whose time is <= now, left in the heap; or NULL. */
struct pxy_timer *pxy_timer_due(double now);

/* Seconds until the earliest timer (0 if due), or -1 if none is set. */
double pxy_timer_next(double now);

/* Frees the heap (at exit, after every timer was deleted). */
void pxy_timer_free(void);

#endif
