/*
 * mtls-proxy - a TLS proxy on libmtls: terminates mTLS from clients and
 * forwards the bytes to an upstream over plain TCP or mTLS.
 *
 *   mtls-proxy [--strict] -c FILE   run
 *   mtls-proxy -t -c FILE            check FILE and its credentials, report
 *                                    every problem, exit 0 or 1
 *
 * At start an upstream, listen block or SNI host whose credentials fail is
 * skipped (logged with FILE:LINE) and the proxy serves the rest; --strict
 * makes any such problem fatal.  SIGHUP re-reads FILE and every credential
 * (all or nothing); SIGTERM/SIGINT stop it.  With "workers N" (N > 1) a
 * supervisor forks N workers, each with its own SO_REUSEPORT sockets and
 * event loop and its own contexts (read from FILE again: no random-number
 * state is shared); it forwards SIGHUP/SIGTERM/SIGINT to them and restarts
 * one that dies (at most 5 restarts a minute).  Stopped, it exits once they
 * have: 0, or 1 if one of them did not exit 0.
 *
 * With "admin ADDR:PORT" the shared counters (metrics.h) and the admin
 * socket (admin.h) are made here, before any fork: every worker counts in
 * its own slot, the worker of slot 0 serves the endpoint.
 *
 * The configuration syntax is documented in examples/mtls-proxy.conf.
 */
#include "config.h"
#include "admin.h"
#include "admit.h"
#include "log.h"
#include "metrics.h"
#include "proxy.h"
#include "tlsctx.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_RESTARTS 5 /* per RESTART_WINDOW seconds */
#define RESTART_WINDOW 60

static void usage(FILE *f)
{
	fprintf(f, "usage: mtls-proxy [-t] [--strict] [-l LEVEL] -c FILE\n"
	           "  -l LEVEL  error, warn, info or debug (overrides log_level)\n"
	           "  -c FILE   configuration file\n"
	           "  -t        check the configuration and credentials, "
	           "report every problem, then exit\n"
	           "  --strict  refuse to start if any credential fails "
	           "(default: skip what fails)\n"
	           "  -V        print versions\n");
}

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		pxy_reload();
	else
		pxy_stop();
}

static int signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; /* no SA_RESTART: wake epoll_wait */
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL) != 0 ||
	    sigaction(SIGINT, &sa, NULL) != 0 ||
	    sigaction(SIGHUP, &sa, NULL) != 0)
		return -1;
	sa.sa_handler = SIG_IGN; /* a peer gone mid-write is an EPIPE */
	return sigaction(SIGPIPE, &sa, NULL);
}

static void report_stderr(const char *msg)
{
	fprintf(stderr, "mtls-proxy: %s\n", msg);
}

static void report_log(const char *msg)
{
	pxy_log(MTLS_LOG_ERROR, "%s", msg);
}

/* Serves cfg (contexts built) in this process until stopped. */
static int serve(struct pxy_config *cfg)
{
	int rc;

	if (signals() != 0) {
		pxy_log(MTLS_LOG_ERROR, "sigaction: %s", strerror(errno));
		goto fail;
	}
	if (pxy_listen_all(cfg) != 0)
		goto fail;
	pxy_log(MTLS_LOG_INFO, "mtls-proxy %s (mbedTLS %s) started, pid %ld",
	        MTLS_VERSION_STRING, mtls_mbedtls_version(), (long)getpid());
	rc = pxy_run(cfg) == 0 ? 0 : 1; /* frees cfg */
	pxy_log(MTLS_LOG_INFO, "mtls-proxy stopped");
	return rc;
fail:
	pxy_config_free(cfg);
	free(cfg);
	return 1;
}

/* A worker: its own config generation, contexts and sockets; its slot
 * of the shared counters (the one in slot 0 serves the admin endpoint). */
static int worker(const char *path, int strict, const sigset_t *old_mask,
                  int slot)
{
	struct pxy_config *cfg;
	char err[1024];
	int n;

	prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive the supervisor */
	pxy_log_set_worker((long)getpid());
	pxy_metrics_claim(slot);
	if (slot != 0)
		pxy_admin_drop();
	if (signals() != 0 || sigprocmask(SIG_SETMASK, old_mask, NULL) != 0) {
		pxy_log(MTLS_LOG_ERROR, "signals: %s", strerror(errno));
		return 1;
	}
	if ((cfg = calloc(1, sizeof(*cfg))) == NULL) {
		pxy_log(MTLS_LOG_ERROR, "out of memory");
		return 1;
	}
	if (pxy_config_load(cfg, path, report_log, err, sizeof(err)) != 0) {
		free(cfg);
		return 1;
	}
	pxy_log_set_level(cfg->log_level);
	/* The supervisor reported the problems already. */
	if ((n = pxy_tls_setup(cfg, NULL, err, sizeof(err))) != 0) {
		pxy_log(MTLS_LOG_WARN, "%d problem(s), first: %s", n, err);
		if (strict) {
			pxy_config_free(cfg);
			free(cfg);
			return 1;
		}
	}
	pxy_set_reuse_port(1);
	return serve(cfg);
}

struct slot {
	pid_t pid;   /* 0: to be started */
	int started; /* ever started */
};

/* Forks a worker.  slots: the supervisor's table, which the child frees
 * (it has no use for it, and its copy would otherwise be lost at its exit). */
static pid_t spawn(const char *path, int strict, const sigset_t *old_mask,
                   struct slot *slots, int i)
{
	pid_t pid;

	fflush(stderr);
	if ((pid = fork()) < 0) {
		pxy_log(MTLS_LOG_ERROR, "fork: %s", strerror(errno));
		return 0;
	}
	if (pid == 0) {
		int rc;

		free(slots);
		rc = worker(path, strict, old_mask, i);

		mtls_set_log_callback(NULL, NULL);
		fflush(stderr);
		_exit(rc);
	}
	return pid;
}

/* The supervisor of n workers.  Signals are taken synchronously. */
static int supervise(const char *path, int n, int strict)
{
	struct slot *w = calloc((size_t)n, sizeof(*w));
	time_t restarts[MAX_RESTARTS] = {0};
	sigset_t set, old_mask;
	int i, alive = 0, stopping = 0, rc = 0, throttled = 0;
	struct timespec tick = {.tv_sec = 1};

	if (w == NULL) {
		pxy_log(MTLS_LOG_ERROR, "out of memory");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, &old_mask);
	pxy_log(MTLS_LOG_INFO, "mtls-proxy %s (mbedTLS %s) supervisor, pid "
	        "%ld: starting %d workers", MTLS_VERSION_STRING,
	        mtls_mbedtls_version(), (long)getpid(), n);
	for (;;) {
		pid_t pid;
		int status, sig;

		/* Reap. */
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			for (i = 0; i < n && w[i].pid != pid; i++)
				;
			if (i == n)
				continue;
			w[i].pid = 0;
			pxy_metrics_release(i);
			alive--;
			if (stopping && WIFEXITED(status) &&
			    WEXITSTATUS(status) == 0) {
				pxy_log(MTLS_LOG_INFO, "worker %ld exited",
				        (long)pid);
				continue;
			}
			if (stopping) { /* a worker that did not stop cleanly */
				pxy_log(MTLS_LOG_ERROR, "worker %ld %s %d while "
				        "stopping", (long)pid,
				        WIFSIGNALED(status) ? "died of signal"
				                            : "exited with status",
				        WIFSIGNALED(status) ? WTERMSIG(status)
				                            : WEXITSTATUS(status));
				rc = 1;
				continue;
			}
			if (WIFSIGNALED(status))
				pxy_log(MTLS_LOG_ERROR, "worker %ld died of "
				        "signal %d; restarting it", (long)pid,
				        WTERMSIG(status));
			else
				pxy_log(MTLS_LOG_ERROR, "worker %ld exited "
				        "unexpectedly (status %d); restarting "
				        "it", (long)pid, WEXITSTATUS(status));
		}
		if (stopping && alive == 0)
			break;
		/* (Re)start empty slots, at most MAX_RESTARTS a window. */
		for (i = 0; !stopping && i < n; i++) {
			time_t t = time(NULL);

			if (w[i].pid != 0)
				continue;
			if (w[i].started) {
				if (restarts[0] != 0 &&
				    t - restarts[0] < RESTART_WINDOW) {
					if (!throttled)
						pxy_log(MTLS_LOG_ERROR,
						        "%d worker restarts in "
						        "%d s: waiting before "
						        "the next", MAX_RESTARTS,
						        RESTART_WINDOW);
					throttled = 1;
					break;
				}
				memmove(restarts, restarts + 1,
				        sizeof(restarts) - sizeof(restarts[0]));
				restarts[MAX_RESTARTS - 1] = t;
				throttled = 0;
			}
			if ((w[i].pid = spawn(path, strict, &old_mask, w, i)) != 0) {
				w[i].started = 1;
				alive++;
			}
		}
		sig = sigtimedwait(&set, NULL, &tick);
		if (sig == SIGHUP) {
			pxy_log(MTLS_LOG_INFO, "SIGHUP: passing it to %d "
			        "worker(s)", alive);
			for (i = 0; i < n; i++)
				if (w[i].pid != 0)
					kill(w[i].pid, SIGHUP);
		} else if (sig == SIGTERM || sig == SIGINT) {
			if (!stopping)
				pxy_log(MTLS_LOG_INFO, "%s: stopping %d "
				        "worker(s)", sig == SIGTERM ? "SIGTERM"
				                                    : "SIGINT",
				        alive);
			stopping = 1;
			for (i = 0; i < n; i++)
				if (w[i].pid != 0)
					kill(w[i].pid, SIGTERM);
		}
	}
	pxy_log(MTLS_LOG_INFO, "mtls-proxy stopped");
	free(w);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option longs[] = {{"strict", no_argument, NULL, 's'},
	                                      {"help", no_argument, NULL, 'h'},
	                                      {NULL, 0, NULL, 0}};
	struct pxy_config *cfg;
	const char *path = NULL;
	char err[1024];
	int opt, test = 0, strict = 0, rc = 1, problems, workers;
	size_t i, live = 0;

	while ((opt = getopt_long(argc, argv, "c:thVl:", longs, NULL)) != -1) {
		switch (opt) {
		case 'l': {
			static const char *const lv[] = {"error", "warn", "info",
			                                 "debug"};
			int k;
			for (k = 0; k < 4 && strcmp(optarg, lv[k]) != 0; k++)
				;
			if (k == 4) {
				fprintf(stderr, "mtls-proxy: -l %s: expected "
				                "error, warn, info or debug\n",
				        optarg);
				return 2;
			}
			pxy_log_pin_level(MTLS_LOG_ERROR + k);
			break;
		}
		case 'c':
			path = optarg;
			break;
		case 't':
			test = 1;
			break;
		case 's':
			strict = 1;
			break;
		case 'V':
			printf("mtls-proxy %s (mbedTLS %s)\n",
			       MTLS_VERSION_STRING, mtls_mbedtls_version());
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (path == NULL || optind != argc) {
		usage(stderr);
		return 2;
	}
	if ((cfg = calloc(1, sizeof(*cfg))) == NULL) {
		fprintf(stderr, "mtls-proxy: out of memory\n");
		return 1;
	}
	if ((problems = pxy_config_load(cfg, path, report_stderr, err,
	                                sizeof(err))) != 0) {
		/* Credentials are read from a file that parses. */
		fprintf(stderr, "mtls-proxy: %s: %d problem(s)%s\n", path,
		        problems, test ? "; credentials not checked" : "");
		free(cfg);
		return 1;
	}
	pxy_log_set_level(cfg->log_level);
	mtls_set_log_callback(pxy_log_mtls, NULL);
	pxy_limits_warn(cfg);
	problems = pxy_tls_setup(cfg, test ? report_stderr : report_log, err,
	                         sizeof(err));
	for (i = 0; i < cfg->n_listens; i++)
		live += !cfg->listens[i].skipped;
	if (test && cfg->admin_line != 0) {
		printf("mtls-proxy: %s: admin endpoint http://%s (GET /metrics, "
		       "/status)\n", path, cfg->admin.text);
		if (!pxy_admin_is_loopback(cfg))
			fprintf(stderr, "mtls-proxy: %s:%d: warning: admin %s is "
			        "not a loopback address: anyone who can reach it "
			        "reads the names of clients, hosts and "
			        "certificates (127.0.0.1 is advised)\n", path,
			        cfg->admin_line, cfg->admin.text);
	}
	if (test) {
		if (problems == 0)
			printf("mtls-proxy: %s: configuration ok\n", path);
		else
			fprintf(stderr, "mtls-proxy: %s: %d problem(s)\n", path,
			        problems);
		rc = problems == 0 ? 0 : 1;
		goto out;
	}
	if (problems != 0 && (strict || live == 0)) {
		pxy_log(MTLS_LOG_ERROR, "%d problem(s)%s; not starting",
		        problems, strict ? " with --strict" : "");
		goto out;
	}
	if (problems != 0)
		pxy_log(MTLS_LOG_WARN, "%d problem(s): starting without what "
		        "failed (--strict refuses to)", problems);
	workers = cfg->workers;
	/* Counters and the admin socket outlive any worker: made first. */
	if (pxy_metrics_init(workers) != 0 || pxy_admin_open(cfg) != 0) {
		pxy_log(MTLS_LOG_ERROR, "not starting");
		goto out;
	}
	if (workers <= 1) {
		pxy_metrics_claim(0);
		rc = serve(cfg);
		mtls_set_log_callback(NULL, NULL);
		return rc;
	}
	/* Workers build their own contexts from the file. */
	pxy_config_free(cfg);
	free(cfg);
	rc = supervise(path, workers, strict);
	pxy_admin_drop();
	mtls_set_log_callback(NULL, NULL);
	return rc;
out:
	mtls_set_log_callback(NULL, NULL);
	pxy_config_free(cfg);
	free(cfg);
	return rc;
}
