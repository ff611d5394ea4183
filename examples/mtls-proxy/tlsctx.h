/*
 * tlsctx.h - builds the library contexts a parsed configuration asks for.
 */
#ifndef MTLS_PROXY_TLSCTX_H
#define MTLS_PROXY_TLSCTX_H

#include "config.h"

/* Creates one server context per listen block and one client context per
 * "tls on" upstream, loading and validating every credential through the
 * library.  Whatever fails is marked skipped and the rest is still built:
 * an upstream whose credentials fail; a listen block (or SNI host) whose
 * own credentials fail or whose upstream was skipped.  Each problem is
 * passed to report (if not NULL) as "FILE:LINE: <library's reason>
 * (upstream NAME skipped)" -- the library's message names the credential
 * file -- and the first is also left in err.  Returns the number of
 * problems, 0 when all is well; one more is counted when no listen block
 * is left.  Contexts are freed by pxy_config_free(). */
int pxy_tls_setup(struct pxy_config *cfg, void (*report)(const char *msg),
                  char *err, size_t errlen);

#endif
