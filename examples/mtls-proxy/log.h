/*
 * log.h - one line per event on stderr: "2026-11-23T14:29:05Z info: ...".
 */
#ifndef MTLS_PROXY_LOG_H
#define MTLS_PROXY_LOG_H

#include <mtls.h>

/* Messages above this MTLS_LOG_* level are dropped (default info). */
void pxy_log_set_level(int level);
/* Fixes the level for good (the -l flag); later set_level calls, from the
 * config's log_level or a reload, are ignored. */
void pxy_log_pin_level(int level);

/* With workers > 1: each worker's lines carry "worker=PID " after the
 * level; 0 (the default) leaves lines untagged. */
void pxy_log_set_worker(long pid);

void pxy_log(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The library's log callback: routes its messages through pxy_log. */
void pxy_log_mtls(void *user, int level, const char *msg);

#endif
