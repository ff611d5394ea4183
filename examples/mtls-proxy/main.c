/*
 * mtls-proxy - a TLS proxy on libmtls: terminates mTLS from clients and
 * forwards the bytes to an upstream over plain TCP or mTLS.
 *
 *   mtls-proxy -c FILE        run
 *   mtls-proxy -t -c FILE     check FILE and its credentials, exit 0 or 1
 *
 * SIGHUP re-reads FILE and every credential; SIGTERM/SIGINT stop it.
 *
 * The configuration syntax is documented in examples/mtls-proxy.conf.
 */
#include "config.h"
#include "log.h"
#include "proxy.h"
#include "tlsctx.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f)
{
	fprintf(f, "usage: mtls-proxy [-t] -c FILE\n"
	           "  -c FILE  configuration file\n"
	           "  -t       check the configuration and credentials, "
	           "then exit\n"
	           "  -V       print versions\n");
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

int main(int argc, char **argv)
{
	struct pxy_config *cfg;
	const char *path = NULL;
	char err[1024];
	int opt, test = 0, rc = 1;

	while ((opt = getopt(argc, argv, "c:thV")) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 't':
			test = 1;
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
	if (pxy_config_load(cfg, path, err, sizeof(err)) != 0) {
		fprintf(stderr, "mtls-proxy: %s\n", err);
		free(cfg);
		return 1;
	}
	pxy_log_set_level(cfg->log_level);
	mtls_set_log_callback(pxy_log_mtls, NULL);
	if (pxy_tls_setup(cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "mtls-proxy: %s\n", err);
		goto out;
	}
	if (test) {
		printf("mtls-proxy: %s: configuration ok\n", path);
		rc = 0;
		goto out;
	}
	if (signals() != 0) {
		perror("mtls-proxy: sigaction");
		goto out;
	}
	if (pxy_listen_all(cfg) != 0)
		goto out;
	pxy_log(MTLS_LOG_INFO, "mtls-proxy %s (mbedTLS %s) started, pid %ld",
	        MTLS_VERSION_STRING, mtls_mbedtls_version(), (long)getpid());
	rc = pxy_run(cfg) == 0 ? 0 : 1; /* frees cfg */
	pxy_log(MTLS_LOG_INFO, "mtls-proxy stopped");
	mtls_set_log_callback(NULL, NULL);
	return rc;
out:
	mtls_set_log_callback(NULL, NULL);
	pxy_config_free(cfg);
	free(cfg);
	return rc;
}
