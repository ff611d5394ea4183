/*
 * watch.h - reload by itself when a file in use changes (`watch on`,
 * the default; `watch poll` without inotify; `watch off`).
 *
 * Every certificate, key, CA and CRL file of the current generation's
 * contexts, and the configuration file itself, are watched through the
 * library (mtls_watch, notify-only).  A change, once the files have been
 * quiet for a second, triggers the same full reload as SIGHUP (reload.c):
 * everything re-read and validated into a new generation, all or
 * nothing; a failure keeps the current one serving and the next change is
 * tried again.  Each worker process watches on its own.
 */
#ifndef MTLS_PROXY_WATCH_H
#define MTLS_PROXY_WATCH_H

#include "loop.h"

struct pxy_watch;

/* (Re)starts watching cfg's files as cfg->watch says; the previous watch,
 * if any, is dropped.  Failures are logged, never fatal. */
void pxy_watch_start(struct pxy_config *cfg);

/* Stops watching. */
void pxy_watch_stop(void);

/* Readiness on the watch's descriptor (its epoll data, kind K_WATCH). */
void pxy_watch_event(struct pxy_watch *pw);

/* Runs what is due (debounce, polling); 1 when a reload is called for. */
int pxy_watch_due(void);

#endif
