/*
 * log.c - timestamped lines on stderr, filtered by level.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
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

/* A byte that must not reach a log line as is: it could end the line
 * (a forged second line), fool a terminal, or, inside a quoted value, end
 * the quotes early.  Printable ASCII other than these stays readable. */
static int unsafe(unsigned char ch, int in_value)
{
	return ch < 0x20 || ch >= 0x7f ||
	       (in_value && (ch == '\\' || ch == '"'));
}

/* Copies s into out, each unsafe byte as \xNN; cut whole escapes only. */
static void escape(char *out, size_t cap, const char *s, int in_value)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (cap == 0)
		return;
	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;
		size_t need = unsafe(ch, in_value) ? 4 : 1;

		if (o + need >= cap)
			break;
		if (need == 1) {
			out[o++] = (char)ch;
			continue;
		}
		out[o++] = '\\';
		out[o++] = 'x';
		out[o++] = hex[ch >> 4];
		out[o++] = hex[ch & 15];
	}
	out[o] = '\0';
}

const char *pxy_log_value(char *out, size_t cap, const char *value)
{
	if (value == NULL || value[0] == '\0')
		value = "-";
	escape(out, cap, value, 1);
	return out;
}

static void emit(int level, const char *prefix, const char *fmt, va_list ap)
{
	static const char *const names[] = {"error", "warn", "info", "debug"};
	char stamp[32] = "";
	/* room for a 2,048-byte identity with the rest of a connection line */
	char raw[12288], line[12288], tag[32] = "";
	struct tm tm;
	time_t now = time(NULL);

	if (level > max_level || level < 0)
		return;
	if (gmtime_r(&now, &tm) != NULL)
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	/* Every line, whatever its call site passed: no control byte and no
	 * non-ASCII byte leaves here (values are escaped earlier, with
	 * pxy_log_value, so their backslashes are ours). */
	escape(line, sizeof(line), raw, 0);
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
