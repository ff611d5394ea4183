/*
 * watch.c - reload contexts when the files they were loaded from change
 * (mtls_watch_*, see the header).
 *
 * Inotify watches the directories that hold each file, not the files:
 * a Kubernetes secret volume swaps a "..data" symlink to a new directory
 * and never writes the named file; editors and cert-manager write a new
 * file and rename it over the old one.  Both the directory of the path as
 * given and that of its resolved target are watched.  An event only says
 * "look again": what changed is decided by comparing each file's identity
 * (device, inode, size, modification and change times of what the path
 * resolves to; for a CA directory, of every entry) with the last one seen;
 * a change starts the debounce delay, any further change restarts it, and
 * the contexts are reloaded once the files have been quiet that long, so
 * a file being written is never loaded half-way.  Where inotify is missing (or with
 * MTLS_WATCH_POLL) the same comparison runs every poll interval, and a
 * change is acted on once two looks agree.
 */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEBOUNCE_MS 1000u
#define POLL_MS 5000u
#define IN_MASK (IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | \
                 IN_DELETE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF)

typedef struct wfile {
	char *path;
	mtls_ctx *ctx; /* reloaded when this file changes; NULL: reported */
	uint64_t seen; /* identity last acted on */
	uint64_t look; /* identity at the last look (polling: must repeat) */
} wfile;

struct mtls_watch {
	unsigned flags;
	int fd;            /* inotify, or -1 when polling */
	unsigned debounce_ms, poll_ms;
	wfile *files;
	size_t n_files;
	mtls_ctx **ctxs;   /* references held */
	size_t n_ctxs;
	int pending;       /* something may have changed */
	uint64_t quiet_at; /* ms: act when nothing happened since */
	uint64_t next_poll;
	mtls_err err;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t mix(uint64_t h, uint64_t v)
{
	for (int i = 0; i < 8; i++) {
		h ^= (v >> (8 * i)) & 0xff;
		h *= 1099511628211ull;
	}
	return h;
}

static uint64_t stat_id(const struct stat *st)
{
	uint64_t h = 14695981039346656037ull;

	h = mix(h, (uint64_t)st->st_dev);
	h = mix(h, (uint64_t)st->st_ino);
	h = mix(h, (uint64_t)st->st_size);
	h = mix(h, (uint64_t)st->st_mtim.tv_sec);
	h = mix(h, (uint64_t)st->st_mtim.tv_nsec);
	h = mix(h, (uint64_t)st->st_ctim.tv_sec);
	h = mix(h, (uint64_t)st->st_ctim.tv_nsec);
	return h;
}

/* The identity of what path resolves to now: a file's stat, a directory's
 * entries (order-independent), or a value naming the error. */
static uint64_t identity(const char *path)
{
	struct stat st;
	uint64_t h, sum = 0;
	DIR *d;
	struct dirent *de;

	if (stat(path, &st) != 0)
		return mix(1, (uint64_t)errno);
	h = stat_id(&st);
	if (!S_ISDIR(st.st_mode) || (d = opendir(path)) == NULL)
		return h;
	while ((de = readdir(d)) != NULL) {
		char p[PATH_MAX];
		uint64_t e = 14695981039346656037ull;

		if (de->d_name[0] == '.' ||
		    snprintf(p, sizeof(p), "%s/%s", path, de->d_name) >=
		        (int)sizeof(p))
			continue;
		for (const char *c = de->d_name; *c; c++)
			e = mix(e, (unsigned char)*c);
		e = mix(e, stat(p, &st) == 0 ? stat_id(&st) : 1);
		sum += e;
	}
	closedir(d);
	return mix(h, sum);
}

static int watch_dir_of(mtls_watch *w, const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	size_t len;

	if (slash == NULL) {
		strcpy(dir, ".");
	} else {
		len = slash == path ? 1 : (size_t)(slash - path);
		if (len >= sizeof(dir))
			return -1;
		memcpy(dir, path, len);
		dir[len] = '\0';
	}
	return inotify_add_watch(w->fd, dir, IN_MASK) < 0 ? -1 : 0;
}

/* Watches the directory of path, of what it resolves to, and a directory
 * path itself; on failure the whole watch falls back to polling. */
static void watch_path(mtls_watch *w, const char *path)
{
	char real[PATH_MAX];
	struct stat st;
	int bad = 0;

	if (w->fd < 0)
		return;
	bad |= watch_dir_of(w, path);
	if (realpath(path, real) != NULL) {
		bad |= watch_dir_of(w, real);
		if (stat(real, &st) == 0 && S_ISDIR(st.st_mode))
			bad |= inotify_add_watch(w->fd, real, IN_MASK) < 0;
	}
	if (bad) {
		mtls__log(MTLS_LOG_WARN, NULL, "watch: cannot watch the "
		          "directory of %s with inotify (%s); polling every "
		          "%u ms instead", mtls__display(path),
		          strerror(errno), w->poll_ms);
		close(w->fd);
		w->fd = -1;
	}
}

mtls_watch *mtls_watch_new(unsigned flags)
{
	mtls_watch *w = calloc(1, sizeof(*w));
	const char *env = getenv("MTLS_WATCH_POLL");

	if (w == NULL)
		return NULL;
	w->flags = flags;
	w->debounce_ms = DEBOUNCE_MS;
	w->poll_ms = POLL_MS;
	w->fd = -1;
	if (env != NULL && strcmp(env, "1") == 0)
		w->flags |= MTLS_WATCH_POLL;
	if (!(w->flags & MTLS_WATCH_POLL)) {
		w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		if (w->fd < 0)
			mtls__log(MTLS_LOG_WARN, NULL, "watch: inotify: %s; "
			          "polling every %u ms instead",
			          strerror(errno), w->poll_ms);
	}
	w->next_poll = now_ms() + w->poll_ms;
	return w;
}

static int add_file(mtls_watch *w, const char *path, mtls_ctx *ctx)
{
	wfile *f;

	for (size_t i = 0; i < w->n_files; i++)
		if (w->files[i].ctx == ctx && strcmp(w->files[i].path, path) == 0)
			return 0;
	f = realloc(w->files, (w->n_files + 1) * sizeof(*f));
	if (f == NULL)
		return MTLS_ERR_NO_MEMORY;
	w->files = f;
	f = &w->files[w->n_files];
	if ((f->path = strdup(path)) == NULL)
		return MTLS_ERR_NO_MEMORY;
	f->ctx = ctx;
	f->seen = f->look = identity(path);
	w->n_files++;
	watch_path(w, path);
	return 0;
}

int mtls_watch_add_file(mtls_watch *w, const char *path)
{
	int rc;

	if (w == NULL || path == NULL || path[0] == '\0')
		return MTLS_ERR_INVALID_ARG;
	memset(&w->err, 0, sizeof(w->err));
	if ((rc = add_file(w, path, NULL)) != 0)
		return mtls__fail(&w->err, rc, "watch %s: out of memory",
		                  mtls__display(path));
	return 0;
}

/* The files one context was loaded from (not its hosts). */
static int add_sources(mtls_watch *w, mtls_ctx *ctx)
{
	const char *src[4];
	size_t n = 0;
	int rc = 0;

	pthread_mutex_lock(&ctx->lock);
	src[n++] = ctx->cert_path;
	src[n++] = ctx->key_path;
	src[n++] = ctx->ca_source != NULL &&
	                   strcmp(ctx->ca_source, "system") != 0
	               ? ctx->ca_source : NULL;
	src[n++] = ctx->crl_path;
	for (size_t i = 0; i < n && rc == 0; i++)
		if (src[i] != NULL)
			rc = add_file(w, src[i], ctx);
	pthread_mutex_unlock(&ctx->lock);
	return rc;
}

static int keep_ctx(mtls_watch *w, mtls_ctx *ctx)
{
	mtls_ctx **c;

	for (size_t i = 0; i < w->n_ctxs; i++)
		if (w->ctxs[i] == ctx)
			return 0;
	c = realloc(w->ctxs, (w->n_ctxs + 1) * sizeof(mtls_ctx *));
	if (c == NULL)
		return MTLS_ERR_NO_MEMORY;
	w->ctxs = c;
	w->ctxs[w->n_ctxs++] = mtls__ctx_ref(ctx);
	return 0;
}

int mtls_watch_add_ctx(mtls_watch *w, mtls_ctx *ctx)
{
	mtls_ctx **hosts = NULL;
	size_t n_hosts, n_files, n_ctxs, i;
	int rc = 0;

	if (w == NULL || ctx == NULL)
		return MTLS_ERR_INVALID_ARG;
	memset(&w->err, 0, sizeof(w->err));
	n_files = w->n_files;
	n_ctxs = w->n_ctxs;
	n_hosts = mtls__hosts_list(ctx->hosts, NULL, 0);
	if (n_hosts > 0) {
		hosts = calloc(n_hosts, sizeof(mtls_ctx *));
		if (hosts == NULL)
			rc = MTLS_ERR_NO_MEMORY;
		else
			n_hosts = mtls__hosts_list(ctx->hosts, hosts, n_hosts);
	}
	if (hosts == NULL)
		n_hosts = 0;
	if (rc == 0)
		rc = keep_ctx(w, ctx);
	for (i = 0; rc == 0 && i < n_hosts; i++)
		rc = keep_ctx(w, hosts[i]);
	if (rc == 0)
		rc = add_sources(w, ctx);
	for (i = 0; rc == 0 && i < n_hosts; i++)
		rc = add_sources(w, hosts[i]);
	free(hosts);
	if (rc != 0) { /* as it was: drop what was just added */
		while (w->n_files > n_files)
			free(w->files[--w->n_files].path);
		while (w->n_ctxs > n_ctxs)
			mtls__ctx_unref(w->ctxs[--w->n_ctxs]);
		return mtls__fail(&w->err, rc, "watch: out of memory");
	}
	return 0;
}

int mtls_watch_set_delays(mtls_watch *w, unsigned debounce_ms,
                          unsigned poll_ms)
{
	if (w == NULL || poll_ms == 0)
		return MTLS_ERR_INVALID_ARG;
	w->debounce_ms = debounce_ms;
	w->poll_ms = poll_ms;
	w->next_poll = now_ms() + poll_ms;
	return 0;
}

int mtls_watch_fd(const mtls_watch *w)
{
	return w != NULL ? w->fd : -1;
}

int mtls_watch_timeout(const mtls_watch *w)
{
	uint64_t t = now_ms(), at;

	if (w == NULL || w->n_files == 0)
		return -1;
	if (w->pending)
		at = w->quiet_at;
	else if (w->fd < 0)
		at = w->next_poll;
	else
		return -1;
	return at <= t ? 0 : at - t > INT_MAX ? INT_MAX : (int)(at - t);
}

const char *mtls_watch_error(const mtls_watch *w)
{
	return w != NULL && w->err.code != 0 ? w->err.msg : NULL;
}

/* Reads what inotify has; 1 if any event (or an overflow) came. */
static int drain(mtls_watch *w)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	int any = 0;
	ssize_t n;

	while ((n = read(w->fd, buf, sizeof(buf))) > 0)
		any = 1;
	(void)n;
	return any;
}

/* Looks at every file; 1 when one differs from the last look (which is
 * then updated). */
static int look(mtls_watch *w)
{
	int moved = 0;

	for (size_t i = 0; i < w->n_files; i++) {
		uint64_t id = identity(w->files[i].path);

		if (id != w->files[i].look) {
			w->files[i].look = id;
			moved = 1;
		}
	}
	return moved;
}

/* The files are quiet: reload each context one of whose files changed
 * since it was last acted on. */
static int act(mtls_watch *w)
{
	int reloaded = 0, failed = 0;

	for (size_t i = 0; i < w->n_files; i++) {
		wfile *f = &w->files[i];
		int rc;

		if (f->look == f->seen)
			continue;
		mtls__log(MTLS_LOG_INFO, f->ctx ? f->ctx->name : NULL,
		          "watch: %s changed", mtls__display(f->path));
		if (f->ctx == NULL) {
			f->seen = f->look;
			reloaded++;
			continue;
		}
		/* One reload covers every changed file of that context. */
		for (size_t j = i; j < w->n_files; j++)
			if (w->files[j].ctx == f->ctx)
				w->files[j].seen = w->files[j].look;
		if (w->flags & MTLS_WATCH_NOTIFY_ONLY) {
			reloaded++;
			continue;
		}
		if ((rc = mtls_ctx_reload(f->ctx)) == 0) {
			reloaded++;
		} else if (!failed++) {
			mtls__fail(&w->err, rc, "%s", mtls_ctx_error(f->ctx)
			           ? mtls_ctx_error(f->ctx) : mtls_strerror(rc));
		}
	}
	return failed ? w->err.code : reloaded;
}

int mtls_watch_process(mtls_watch *w)
{
	uint64_t t;

	if (w == NULL)
		return MTLS_ERR_INVALID_ARG;
	memset(&w->err, 0, sizeof(w->err));
	t = now_ms();
	if (w->fd >= 0 && drain(w)) {
		/* Something happened in a watched directory.  Only a change
		 * to one of our files (re)starts the quiet time: a log file
		 * written beside the configuration must not hold it off. */
		if (look(w)) {
			w->pending = 1;
			w->quiet_at = t + w->debounce_ms;
		}
		return 0;
	}
	if (w->fd < 0 && !w->pending && t >= w->next_poll) {
		w->next_poll = t + w->poll_ms;
		if (look(w)) {
			w->pending = 1;
			w->quiet_at = t + (w->debounce_ms > w->poll_ms
			                       ? w->debounce_ms : w->poll_ms);
		}
		return 0;
	}
	if (!w->pending || t < w->quiet_at)
		return 0;
	if (look(w)) { /* still changing */
		w->quiet_at = t + w->debounce_ms;
		return 0;
	}
	w->pending = 0;
	w->next_poll = t + w->poll_ms;
	return act(w);
}

void mtls_watch_free(mtls_watch *w)
{
	if (w == NULL)
		return;
	if (w->fd >= 0)
		close(w->fd);
	for (size_t i = 0; i < w->n_files; i++)
		free(w->files[i].path);
	for (size_t i = 0; i < w->n_ctxs; i++)
		mtls__ctx_unref(w->ctxs[i]);
	free(w->files);
	free(w->ctxs);
	free(w);
}
