/*
 * log.c - the process-wide log callback.  The library never prints.
 */
#include "internal.h"

#include <stdio.h>

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static mtls_log_fn log_fn;
static void *log_user;

void mtls_set_log_callback(mtls_log_fn fn, void *user)
{
	pthread_mutex_lock(&log_lock);
	log_fn = fn;
	log_user = user;
	pthread_mutex_unlock(&log_lock);
}

int mtls__log_enabled(void)
{
	int on;

	pthread_mutex_lock(&log_lock);
	on = log_fn != NULL;
	pthread_mutex_unlock(&log_lock);
	return on;
}

void mtls__log(int level, const char *name, const char *fmt, ...)
{
	char raw[1024], msg[1024];
	mtls_log_fn fn;
	void *user;
	va_list ap;
	int n;

	pthread_mutex_lock(&log_lock);
	fn = log_fn;
	user = log_user;
	pthread_mutex_unlock(&log_lock);
	if (fn == NULL)
		return;

	va_start(ap, fmt);
	n = vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (name != NULL && name[0] != '\0' && (size_t)n < sizeof(raw))
		snprintf(raw + n, sizeof(raw) - (size_t)n, " name=%s", name);
	/* One line, as promised: a newline or terminal escape in a path, a
	 * name or a peer's certificate must not forge a second log line.
	 * Escaped (\xNN), not dropped, so the bytes can still be read. */
	mtls__escape(msg, sizeof(msg), raw);
	fn(user, level, msg);
}
