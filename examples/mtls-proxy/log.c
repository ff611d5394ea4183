/*
 * log.c - timestamped lines on stderr, filtered by level.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static int max_level = MTLS_LOG_INFO;
static long worker_pid; /* 0: a single process, no worker= tag */

void pxy_log_set_worker(long pid)
{
	worker_pid = pid;
}

static int pinned = -1; /* -l on the command line beats log_level */

void pxy_log_set_level(int level)
{
	max_level = pinned >= 0 ? pinned : level;
}

void pxy_log_pin_level(int level)
{
	pinned = level;
	max_level = level;
}

static void emit(int level, const char *prefix, const char *fmt, va_list ap)
{
	static const char *const names[] = {"error", "warn", "info", "debug"};
	char stamp[32] = "";
	char line[2048], tag[32] = "";
	struct tm tm;
	time_t now = time(NULL);

	if (level > max_level || level < 0)
		return;
	if (gmtime_r(&now, &tm) != NULL)
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	vsnprintf(line, sizeof(line), fmt, ap);
	if (worker_pid != 0)
		snprintf(tag, sizeof(tag), "worker=%ld ", worker_pid);
	/* One fprintf per line so lines from a busy loop do not interleave
	 * with a concurrent writer to the same stderr. */
	fprintf(stderr, "%s %s: %s%s%s\n", stamp, names[level], tag, prefix,
	        line);
}

void pxy_log(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit(level, "", fmt, ap);
	va_end(ap);
}

static void emit_prefixed(int level, const char *prefix, const char *fmt,
                          ...) __attribute__((format(printf, 3, 4)));

static void emit_prefixed(int level, const char *prefix, const char *fmt,
                          ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit(level, prefix, fmt, ap);
	va_end(ap);
}

void pxy_log_mtls(void *user, int level, const char *msg)
{
	(void)user;
	emit_prefixed(level, "mtls: ", "%s", msg);
}
