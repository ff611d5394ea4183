/*
 * tlsctx.h - builds the library contexts a parsed configuration asks for.
 */
#ifndef MTLS_PROXY_TLSCTX_H
#define MTLS_PROXY_TLSCTX_H

#include "config.h"

/* Creates one server context per listen block and one client context per
 * "tls on" upstream, loading and validating every credential through the
 * library.  0, or -1 with "FILE:LINE: <library's reason>" in err (the
 * library's message names the credential file).  Contexts are freed by
 * pxy_config_free(). */
int pxy_tls_setup(struct pxy_config *cfg, char *err, size_t errlen);

#endif
