/*
 * log.h - one line per event on stderr: "2026-11-23T14:29:05Z info: ...".
 */
#ifndef MTLS_PROXY_LOG_H
#define MTLS_PROXY_LOG_H

#include <mtls.h>

#include <stddef.h>

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

/* Every line is written by one function, which escapes any control byte,
 * DEL and non-ASCII byte as \xNN, so no caller can split a line.  Values a
 * peer controls (SNI, certificate names, error texts quoting them) are
 * passed through pxy_log_value first: it also escapes backslash and double
 * quote, so a quoted value ends where the proxy ended it.  Writes value
 * (or "-" for NULL or "") escaped into out (cap bytes, cut at a whole
 * escape) and returns out. */
const char *pxy_log_value(char *out, size_t cap, const char *value);

/* The library's log callback: routes its messages through pxy_log. */
void pxy_log_mtls(void *user, int level, const char *msg);

#endif
