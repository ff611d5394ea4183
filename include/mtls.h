/*
 * mtls.h - mutual TLS for C servers and proxies, over mbedTLS.
 *
 * CONVENTIONS
 *   - Objects are opaque handles: mtls_ctx (a configuration: one per host on
 *     the server side, one per upstream on the client side) and, from the
 *     connections part of the API, mtls_conn (one TLS connection).
 *   - Functions returning int return 0 on success or a negative MTLS_ERR_*
 *     code.  Constructors return NULL, and only when out of memory or given
 *     an argument they cannot use (a NULL context, an unknown role).
 *   - Error codes are banded by category (see mtls_err_category()), so a
 *     caller can decide what to do without parsing text.  The detail of the
 *     last failure on an object (naming the file and the reason, never key
 *     bytes) is returned by mtls_ctx_error().
 *   - A call that fails leaves its object exactly as it was before the call.
 *   - Setters copy their input: paths, buffers and strings may be freed by the
 *     caller as soon as the call returns.
 *   - Every *_free() accepts NULL and does nothing.
 *   - Strings returned by the library are owned by the object they came from
 *     and stay valid until the next call that changes that object, or its
 *     free, unless a function says otherwise.
 *   - Secure by default: peers are verified and, on the client side, the
 *     upstream's name is checked.  Anything that weakens this is a function
 *     with "insecure" in its name and it logs a warning.
 *   - The library never prints.  Messages go to the callback set with
 *     mtls_set_log_callback(); private keys and passphrases never appear in
 *     them, and are wiped from memory after parsing.
 *
 * THREAD SAFETY
 *   - Configuring a context (mtls_load_*, mtls_set_*, mtls_ctx_set_*) must not
 *     race with other configuration calls on the same context.
 *   - Once configured, a context may be used from many threads at once.
 *   - Distinct contexts are independent.
 *   - mtls_set_log_callback() may be called at any time; the callback itself
 *     may be called from any thread that uses the library and must be
 *     thread-safe.
 *   - A connection (mtls_conn) takes one call at a time: see EVENT LOOPS
 *     below mtls_conn_new_io().
 *
 * VERSIONS AND ABI (docs/versioning.md)
 *   - The soname libmtls.so.0 promises that a program compiled against any
 *     0.x header keeps working with every later libmtls.so.0: functions keep
 *     their names, arguments and meaning; constants keep their values (new
 *     ones may appear: treat an unknown code as "other"); the public structs
 *     (mtls_peer, mtls_cert_info) are frozen: size, fields and layout.
 *   - New facts come through new functions, each exported under the symbol
 *     version of the release that added it (MTLS_0 for 0.1.0, MTLS_0.2, ...,
 *     lib/libmtls.map); the soname changes only to break this promise.
 */
#ifndef MTLS_H
#define MTLS_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MTLS_VERSION_MAJOR 0
#define MTLS_VERSION_MINOR 1
#define MTLS_VERSION_PATCH 0
#define MTLS_VERSION_STRING "0.1.0"

#if defined(MTLS_BUILDING) && defined(__GNUC__)
#define MTLS_API __attribute__((visibility("default")))
#else
#define MTLS_API
#endif

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */
/* ------------------------------------------------------------------------ */

/* Not errors: the operation must be called again, the same way, once the
 * socket is readable (MTLS_WANT_READ) or writable (MTLS_WANT_WRITE). */
#define MTLS_WANT_READ (-2)
#define MTLS_WANT_WRITE (-3)

/* Categories of MTLS_ERR_* codes: err / 100 * -1 gives the band. */
typedef enum {
	MTLS_CAT_NONE = 0,       /* 0, or a WANT_* value */
	MTLS_CAT_USAGE = 1,      /* the caller's mistake: NULL, wrong role */
	MTLS_CAT_FILE = 2,       /* a file could not be read */
	MTLS_CAT_CREDENTIAL = 3, /* a certificate, key, CA or CRL is unusable */
	MTLS_CAT_PEER = 4,       /* the peer failed verification */
	MTLS_CAT_TLS = 5,        /* I/O, protocol, alerts */
	MTLS_CAT_INTERNAL = 6    /* out of memory, RNG, library bug */
} mtls_err_cat;

enum {
	/* usage */
	MTLS_ERR_INVALID_ARG = -101,  /* NULL or out-of-range argument */
	MTLS_ERR_WRONG_ROLE = -102,   /* call does not apply to this role */
	MTLS_ERR_UNSUPPORTED = -103,  /* not available in this mbedTLS build */
	MTLS_ERR_NOT_CONFIGURED = -104, /* context lacks what the call needs */
	/* file */
	MTLS_ERR_FILE_NOT_FOUND = -201,
	MTLS_ERR_FILE_ACCESS = -202,  /* permission denied */
	MTLS_ERR_FILE_NOT_REGULAR = -203, /* a directory or device */
	MTLS_ERR_FILE_EMPTY = -204,
	MTLS_ERR_FILE_TOO_LARGE = -205, /* over MTLS_MAX_FILE_SIZE */
	MTLS_ERR_FILE_READ = -206,    /* other I/O error */
	/* credential */
	MTLS_ERR_CERT_PARSE = -301,   /* not a certificate (garbage, truncated) */
	MTLS_ERR_KEY_PARSE = -302,    /* not a private key */
	MTLS_ERR_KEY_PASSWORD_REQUIRED = -303, /* key is encrypted, no password */
	MTLS_ERR_KEY_PASSWORD = -304, /* wrong password */
	MTLS_ERR_KEY_MISMATCH = -305, /* key does not match the certificate */
	MTLS_ERR_KEY_TYPE = -306,     /* unsupported key type or curve */
	MTLS_ERR_CERT_EXPIRED = -307,
	MTLS_ERR_CERT_NOT_YET_VALID = -308,
	MTLS_ERR_CERT_EKU = -309,     /* extended key usage forbids the role */
	MTLS_ERR_CHAIN_ORDER = -310,  /* leaf not first, or issuer link broken */
	MTLS_ERR_NO_CERTS = -311,     /* a CA source holds no certificate */
	MTLS_ERR_CRL_PARSE = -312,
	MTLS_ERR_NO_SYSTEM_CA = -313, /* no OS trust store found */
	/* peer verification (connections) */
	MTLS_ERR_PEER_NO_CERT = -401,
	MTLS_ERR_PEER_UNTRUSTED = -402, /* unknown CA or bad chain */
	MTLS_ERR_PEER_EXPIRED = -403,
	MTLS_ERR_PEER_NOT_YET_VALID = -404,
	MTLS_ERR_PEER_REVOKED = -405,
	MTLS_ERR_PEER_EKU = -406,
	MTLS_ERR_PEER_NAME = -407,    /* certificate not valid for the name */
	MTLS_ERR_PEER_POLICY = -408,  /* identity not on the allow list */
	MTLS_ERR_PEER_NOT_VERIFIED = -409, /* other verification failure */
	/* TLS and I/O (connections) */
	MTLS_ERR_IO = -501,           /* socket error (errno kept) */
	MTLS_ERR_CLOSED = -502,       /* peer closed without close_notify */
	MTLS_ERR_ALERT = -503,        /* peer sent a fatal alert (one a
	                               * TLS 1.3 client cannot decrypt on
	                               * mbedTLS 3.6: see mtls_handshake) */
	MTLS_ERR_HANDSHAKE = -504,    /* protocol failure in the handshake */
	MTLS_ERR_STATE = -505,        /* call out of order (e.g. before handshake) */
	/* internal */
	MTLS_ERR_NO_MEMORY = -601,
	MTLS_ERR_RNG = -602,
	MTLS_ERR_INTERNAL = -603
};

/* Files read by the library are refused above this size. */
#define MTLS_MAX_FILE_SIZE 4194304u /* 4 MiB */

/* A short static description of an error code ("certificate expired").
 * Never NULL; unknown codes give "unknown error". */
MTLS_API const char *mtls_strerror(int err);

/* The category of an error code. */
MTLS_API mtls_err_cat mtls_err_category(int err);

/* Version of the mbedTLS library in use, e.g. "3.6.6"; "3.6.6 (tuned)" when
 * libmtls was built with make MBEDTLS=tuned (a static mbedTLS compiled from
 * source with the project's configuration).  Static string. */
MTLS_API const char *mtls_mbedtls_version(void);

/* Version of this library as built, e.g. "0.1.0": MTLS_VERSION_STRING of
 * the libmtls actually loaded, which may be newer than the header a
 * program was compiled with.  Static string. */
MTLS_API const char *mtls_version(void);

/* ------------------------------------------------------------------------ */
/* Logging                                                                   */
/* ------------------------------------------------------------------------ */

enum { MTLS_LOG_ERROR, MTLS_LOG_WARN, MTLS_LOG_INFO, MTLS_LOG_DEBUG };

/* msg is a single line without trailing newline, valid during the call. */
typedef void (*mtls_log_fn)(void *user, int level, const char *msg);

/* Process-wide.  fn NULL turns logging off (the default).  Messages about a
 * named context carry "name=<name>".  May be called at any time; a message
 * being delivered concurrently may still go to the previous callback. */
MTLS_API void mtls_set_log_callback(mtls_log_fn fn, void *user);

/* ------------------------------------------------------------------------ */
/* Contexts                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct mtls_ctx mtls_ctx; /* opaque */

typedef enum { MTLS_ROLE_CLIENT, MTLS_ROLE_SERVER } mtls_role;

/* A new, empty context.  MTLS_ROLE_CLIENT: outbound, one context per
 * upstream.  MTLS_ROLE_SERVER: inbound, one context per host.
 * NULL only when out of memory (or role is not a mtls_role).  Free with
 * mtls_ctx_free(). */
MTLS_API mtls_ctx *mtls_ctx_new(mtls_role role);

/* Frees the context and wipes its key material.  NULL is a no-op. */
MTLS_API void mtls_ctx_free(mtls_ctx *ctx);

MTLS_API mtls_role mtls_ctx_role(const mtls_ctx *ctx);

/* The detail of the last failure on this context, e.g.
 * "client.pem: certificate expired on 2026-01-01 00:00:00 UTC", or NULL
 * when the last configuration call succeeded.  Owned by the context. */
MTLS_API const char *mtls_ctx_error(const mtls_ctx *ctx);

/* A label (host or upstream name) carried by every log message about this
 * context.  Copied; at most 127 bytes.  NULL clears it. */
MTLS_API int mtls_ctx_set_name(mtls_ctx *ctx, const char *name);

/* Warn through the log callback when the own certificate expires within
 * `days` days (default 30; 0 disables the warning).  Applies to the next
 * load. */
MTLS_API int mtls_ctx_set_expiry_warning(mtls_ctx *ctx, unsigned days);

/* Passphrase for encrypted private keys loaded afterwards.  The context
 * keeps a copy (a reload needs it) which is wiped when replaced or when the
 * context is freed; NULL wipes it. */
MTLS_API int mtls_ctx_set_key_password(mtls_ctx *ctx, const char *password);

/* ------------------------------------------------------------------------ */
/* Credentials                                                               */
/* ------------------------------------------------------------------------ */

/* The certificate chain (leaf first, then intermediates; PEM or DER) and
 * private key (PEM or DER; PKCS#8, PKCS#1 RSA or SEC1 EC; encrypted PEM or
 * PKCS#8 with the password set by mtls_ctx_set_key_password()) this client
 * context presents.  key_path NULL, or equal to cert_path, reads the key from
 * the certificate file.  Validated once, here: the key matches the leaf, the
 * leaf is within its validity period (a warning when it expires within the
 * threshold), its extended key usage allows clientAuth, the chain is in
 * order.  A key file readable by group or others gives a warning.
 * MTLS_ERR_WRONG_ROLE on a server context.  On failure the context keeps
 * its previous pair. */
MTLS_API int mtls_load_client_pair(mtls_ctx *ctx, const char *cert_path,
                                   const char *key_path);

/* As mtls_load_client_pair(), for a server context, checking serverAuth. */
MTLS_API int mtls_load_server_pair(mtls_ctx *ctx, const char *cert_path,
                                   const char *key_path);

/* As the two above, from memory (PEM or DER).  key NULL: the key is in the
 * certificate buffer.  Messages name the source "<memory>".  Buffers need
 * not be NUL-terminated; the library wipes its own copy of the key. */
MTLS_API int mtls_load_client_pair_mem(mtls_ctx *ctx, const void *cert,
                                       size_t cert_len, const void *key,
                                       size_t key_len);
MTLS_API int mtls_load_server_pair_mem(mtls_ctx *ctx, const void *cert,
                                       size_t cert_len, const void *key,
                                       size_t key_len);

/* Trust anchors.  `ca` is a PEM (or DER) bundle file, a directory of such
 * files, or "system" for the OS trust store (SSL_CERT_FILE / SSL_CERT_DIR,
 * then the usual Debian, Fedora, Alpine, SUSE and macOS-like locations).
 * Server role: the CAs allowed to issue client certificates ("system" then
 * lets every public CA issue them, and logs a warning saying so).  Client role:
 * the CAs that verify the upstream; a client context that never calls this
 * uses "system".  A source that yields no certificate is an error
 * (MTLS_ERR_NO_CERTS); certificates in a system store that mbedTLS cannot
 * parse are skipped with a debug message.
 *
 * Intermediate CAs: once a handshake has verified a peer's chain up to one
 * of these anchors with nothing flagged, the leaf's issuer is remembered by
 * the context's current configuration (at most 32) and later handshakes
 * stop at it, saving one signature verification per link (about a fifth of
 * a full ECDSA handshake).  The result is the same as verifying the whole
 * chain: the remembered intermediate's CRLs and dates are still checked,
 * it is used only until the CRLs' next update or the first expiry in its
 * chain, only when nothing above it limits the path length (or it may
 * issue end-entity certificates only), and any change to the context (a
 * new CRL, anchors, reload) starts from nothing.  On mbedTLS 2.28 the
 * remembered names are also listed in the CertificateRequest. */
MTLS_API int mtls_set_trusted_ca(mtls_ctx *ctx, const char *ca);
MTLS_API int mtls_set_trusted_ca_mem(mtls_ctx *ctx, const void *pem,
                                     size_t len);

/* Certificate revocation lists (PEM or DER file; memory), checked against
 * the peer's chain.  Replaces any CRL set before. */
MTLS_API int mtls_set_crl(mtls_ctx *ctx, const char *path);
MTLS_API int mtls_set_crl_mem(mtls_ctx *ctx, const void *data, size_t len);

/* Facts about the context's own leaf certificate, for a person or a
 * metric.  Strings are NUL-terminated and truncated to fit. */
typedef struct mtls_cert_info {
	char subject[256];   /* "CN=gateway, O=Example" */
	char issuer[256];
	char serial[128];    /* hex, colon separated */
	time_t not_before;   /* UTC */
	time_t not_after;    /* UTC */
	long days_left;      /* whole days until not_after; negative if past */
	int chain_len;       /* certificates sent: leaf + intermediates */
	char key_type[32];   /* "EC P-256", "RSA 2048" */
} mtls_cert_info;

/* Fills *info from the loaded pair; MTLS_ERR_NOT_CONFIGURED if none. */
MTLS_API int mtls_ctx_cert_info(const mtls_ctx *ctx, mtls_cert_info *info);


/* ------------------------------------------------------------------------ */
/* Connection settings on a context                                          */
/* ------------------------------------------------------------------------ */

/* How a server context treats client certificates. */
typedef enum {
	MTLS_VERIFY_REQUIRE,  /* no valid certificate: refused in the handshake */
	MTLS_VERIFY_OPTIONAL, /* handshake succeeds; mtls_verify_peer() tells */
	MTLS_VERIFY_NONE      /* no certificate is asked for */
} mtls_verify_mode;

/* Server role only.  The default is MTLS_VERIFY_REQUIRE once a client CA
 * is set (mtls_set_trusted_ca), MTLS_VERIFY_NONE before.  REQUIRE or
 * OPTIONAL without a CA fails when the first connection is made.  Client
 * contexts always verify the upstream (see mtls_ctx_insecure_skip_verify). */
MTLS_API int mtls_ctx_set_verify(mtls_ctx *ctx, mtls_verify_mode mode);

/* Client role, development only: accept any upstream certificate, of any
 * issuer, for any name.  Logs a warning now and on every connection. */
MTLS_API int mtls_ctx_insecure_skip_verify(mtls_ctx *ctx);

/* Client role: the name sent as SNI and checked against the upstream's
 * certificate, overriding the server_name given to mtls_conn_new() (for
 * upstreams whose certificate names differ from their address).  An IP
 * address is checked against the certificate's IP SANs and sent as no SNI.
 * NULL clears it. */
MTLS_API int mtls_ctx_set_server_name(mtls_ctx *ctx, const char *name);

#define MTLS_TLS1_2 0x0303
#define MTLS_TLS1_3 0x0304
/* Protocol version bounds (default: TLS 1.2 to the newest the build has).
 * MTLS_ERR_UNSUPPORTED for TLS 1.3 on an mbedTLS build without it
 * (mbedTLS 2.28). */
MTLS_API int mtls_ctx_set_tls_versions(mtls_ctx *ctx, int min, int max);

/* ALPN protocols, comma separated, most preferred first ("h2,http/1.1");
 * NULL or "" clears the list. */
MTLS_API int mtls_ctx_set_alpn(mtls_ctx *ctx, const char *protocols);

/* The cipher suites offered (client) or accepted (server), most preferred
 * first: a colon- or comma-separated list of names as mbedTLS spells them
 * ("TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256", "TLS1-3-AES-128-GCM-SHA256")
 * or as IANA does ("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
 * "TLS_AES_128_GCM_SHA256"); NULL restores the default.  The default,
 * whatever mbedTLS's own, is forward-secret and AEAD only:
 *   TLS 1.2: TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256,
 *            TLS-ECDHE-RSA-WITH-AES-128-GCM-SHA256,
 *            TLS-ECDHE-ECDSA-WITH-AES-256-GCM-SHA384,
 *            TLS-ECDHE-RSA-WITH-AES-256-GCM-SHA384,
 *            TLS-ECDHE-ECDSA-WITH-CHACHA20-POLY1305-SHA256,
 *            TLS-ECDHE-RSA-WITH-CHACHA20-POLY1305-SHA256
 *   TLS 1.3: TLS1-3-AES-128-GCM-SHA256, TLS1-3-AES-256-GCM-SHA384,
 *            TLS1-3-CHACHA20-POLY1305-SHA256, TLS1-3-AES-128-CCM-SHA256
 *            (not TLS1-3-AES-128-CCM-8-SHA256: an 8-byte tag)
 * each only if the mbedTLS build has it.  A list speaks for the protocol
 * versions it names suites of: one naming only TLS 1.2 suites keeps the
 * default TLS 1.3 suites, and the reverse (choose the versions with
 * mtls_ctx_set_tls_versions()).  A name this mbedTLS build does not know is
 * MTLS_ERR_INVALID_ARG, with a message naming it, and the context is left
 * as it was.  Suites weaker than the default (no forward secrecy, CBC or
 * another non-AEAD cipher, an 8-byte tag) are accepted, each logged as a
 * warning.  On a listener the list applies to every SNI host: mbedTLS
 * chooses the suite before the host is known, so a host's own list is not
 * used.  Every context also signs and accepts handshake signatures with
 * SHA-2 only, offers the groups x25519, secp256r1, secp384r1 and secp521r1,
 * and refuses peer certificates signed with SHA-1 or with an RSA key under
 * 2048 bits. */
MTLS_API int mtls_ctx_set_ciphersuites(mtls_ctx *ctx, const char *list);

/* Session resumption, on by default: server contexts issue session
 * tickets (AES-GCM keys rotated every 12 hours, tickets valid as long) and
 * keep a session-ID cache; client contexts re-offer the last session of
 * this upstream (TLS 1.2 session ID or ticket, TLS 1.3 ticket), and only
 * to the same server name.  Sessions are bound to the material and policy
 * that admitted them: a reload or any setter on the context (or on the SNI
 * host that admitted the session) ends them, so a revoked or no longer
 * allowed peer cannot come back by resuming.  TLS 1.3 tickets carry the
 * client's verified identity (sealed with AES-256-GCM) so mtls_verify_peer()
 * answers the same on a resumed connection.  0 turns it off; applies to
 * connections made afterwards. */
MTLS_API int mtls_ctx_set_session_resumption(mtls_ctx *ctx, int on);

/* Session-ticket keys shared by several instances (servers behind an L4
 * load balancer), read from `path`: 1 to 16 keys of 80 random bytes each,
 * concatenated (nginx's ssl_session_ticket_key size; make one with
 * `openssl rand 80 > file; chmod 600 file`).  The first key encrypts new
 * tickets, every key decrypts: to rotate, put a new key first and reload;
 * drop the old one (and reload) once its tickets should end.  Tickets are
 * valid 12 hours.  Keys are not used as they are: each context derives
 * its own from them and from what admits a session (verify mode, CAs,
 * CRL, allow list, own certificate chain; not the context's name), so
 * only instances configured alike resume each other's sessions, a ticket
 * issued for another SNI host (another certificate) or policy is refused, and a reload that changes any of
 * that material ends the sessions issued before (one that changes nothing
 * keeps them).  TLS 1.3 tickets' identity seals use the derived keys too.
 * TLS 1.3 resumption across machines needs their clocks to agree within a
 * few seconds (mbedTLS checks the ticket's age; NTP is enough), else those
 * clients get a full handshake.
 * The file is read now and again by mtls_ctx_reload(); its content is
 * kept in memory (wiped when replaced or freed), never logged; a file
 * readable by group or others is warned about.  Server contexts only; an
 * SNI host needs its own call.  NULL goes back to the default (random
 * keys per context, rotated every 12 hours).  Errors: MTLS_ERR_WRONG_ROLE,
 * the MTLS_ERR_FILE_* codes, MTLS_ERR_KEY_PARSE (size not a multiple of
 * 80, or over 16 keys), MTLS_ERR_UNSUPPORTED (mbedTLS without tickets);
 * on error nothing changes.  Not to be called while another thread
 * configures ctx; connections may be made meanwhile. */
MTLS_API int mtls_ctx_set_ticket_key_file(mtls_ctx *ctx, const char *path);

/* TLS 1.3 resumption: CPU against forward secrecy.  By default
 * (MTLS_TLS13_PSK_DHE_KE) every TLS 1.3 resumption does an (EC)DHE
 * exchange (psk_dhe_ke), as a full handshake does.  With MTLS_TLS13_PSK_KE
 * a server resumes without one (psk_ke) when the client offers psk_ke and
 * offered it when it got its ticket (OpenSSL: SSL_OP_ALLOW_NO_DHE_KEX,
 * "s_client -allow_no_dhe_kex"; an mtls client set to MTLS_TLS13_PSK_KE):
 * about a tenth of the server's instructions for that handshake
 * (bench/levers.md, section 6).  Clients that offer psk_dhe_ke only still
 * resume with it, and a ticket that is refused still gets a full handshake
 * (certificates, (EC)DHE).
 *
 * The trade-off: a connection resumed with psk_ke has no forward secrecy.
 * Its keys come from the ticket's secret alone, and the ticket travels
 * encrypted under the server's session-ticket key, so whoever obtains that
 * key (from the server's memory, or a shared ticket key file) and has
 * recorded the traffic can decrypt every connection resumed with psk_ke
 * from tickets it encrypted.  With the default keys that window is the
 * key's life: each context snapshot has its own random keys, a key
 * encrypts new tickets for 12 hours and is kept 12 hours more to open
 * them, and a reload or setter replaces them all; with
 * mtls_ctx_set_ticket_key_file() it is as long as a key stays in the
 * file.  Full handshakes, and psk_dhe_ke resumptions, keep forward
 * secrecy either way.  Setting MTLS_TLS13_PSK_KE logs a warning.
 *
 * Server contexts: the snapshot that opens the ticket decides (the SNI
 * host's when one matched), so each host has its own setting.  Client
 * contexts: MTLS_TLS13_PSK_KE offers psk_ke besides psk_dhe_ke; the default
 * offers psk_dhe_ke only.  Applies to connections made afterwards and, as
 * any setter, ends the sessions issued before.
 *
 * Returns 0, MTLS_ERR_INVALID_ARG (another value), or MTLS_ERR_UNSUPPORTED
 * with the context unchanged when this build cannot do psk_ke: mbedTLS
 * without TLS 1.3 (2.28), or, for a server context, an mbedTLS without
 * mtls's patch "tls13-server-prefer-psk-ke" (stock 3.6 never picks psk_ke
 * while it can do a certificate handshake; the tuned build, make
 * MBEDTLS=tuned, has it).  MTLS_TLS13_PSK_DHE_KE is accepted on every build.
 * Not to be called while another thread configures ctx; connections may be
 * made meanwhile. */
typedef enum {
	MTLS_TLS13_PSK_DHE_KE = 0, /* default: (EC)DHE on every resumption */
	MTLS_TLS13_PSK_KE = 1      /* resume without (EC)DHE when offered */
} mtls_tls13_kex;
MTLS_API int mtls_ctx_set_tls13_resumption_kex(mtls_ctx *ctx,
                                               mtls_tls13_kex kex);

/* Makes ctx use the trust anchors and CRL already parsed by `from`, shared
 * by reference (10,000 upstreams need not parse the same bundle 10,000
 * times).  Both contexts must have the same role.  ctx then follows the
 * context that owns them (`from`, or the one `from` itself follows): a
 * later mtls_set_trusted_ca(), mtls_set_crl() or mtls_ctx_reload() there
 * applies to ctx's next handshakes too, so a revocation on the owner
 * reaches every sharer.  mtls_ctx_reload(ctx) re-reads none of the
 * owner's files; mtls_set_trusted_ca() or mtls_set_crl() on ctx stops the
 * sharing (ctx keeps the CAs it has and takes the new file).  Sharing with
 * a context that follows ctx is a no-op. */
MTLS_API int mtls_ctx_share_trust(mtls_ctx *ctx, const mtls_ctx *from);

/* Identity allow list, enforced inside the handshake: when any entry is
 * set, a peer certificate whose leaf matches none is refused with an alert
 * (with MTLS_VERIFY_OPTIONAL the handshake completes and mtls_verify_peer()
 * reports MTLS_ERR_PEER_POLICY).  Entries accumulate; value is copied.
 * One identity per certificate: with URI or URI-prefix entries a leaf with
 * more than one URI SAN is refused (an X.509-SVID has exactly one), with
 * CN entries one with more than one CN; the value matched is reported by
 * mtls_conn_peer_identity().  A URI prefix matches whole path segments
 * ("spiffe://td/ns/a" covers ".../ns/a/x", not ".../ns/ab"), and a URI
 * with a "." or ".." segment, an empty segment, a query, a fragment, a
 * backslash or a percent-encoded '.', '/' or '\' never matches one. */
typedef enum {
	MTLS_ALLOW_URI,        /* exact URI SAN, e.g. a SPIFFE ID */
	MTLS_ALLOW_URI_PREFIX, /* URI SAN prefix: "spiffe://example.org/" */
	MTLS_ALLOW_DNS,        /* exact DNS SAN (case-insensitive) */
	MTLS_ALLOW_CN,         /* exact subject CN */
	MTLS_ALLOW_OU,         /* exact subject OU (any of them) */
	MTLS_ALLOW_SPKI_SHA256 /* public-key pin: hex SHA-256 of the SPKI */
} mtls_allow_kind;
MTLS_API int mtls_ctx_allow_peer(mtls_ctx *ctx, mtls_allow_kind kind,
                                 const char *value);

/* Per-host contexts on one listener, chosen by SNI.  `listener` is a server
 * context whose own pair and settings serve as the default host; `host` is
 * another server context serving `name`: an exact name ("admin.example.com")
 * or a wildcard for one label ("*.example.com").  Exact names win over
 * wildcards.  The listener holds a reference to host: mtls_ctx_free(host)
 * may be called at once.  Hosts are added before the listener serves;
 * each host may be reloaded at any time.  Lookup is a hash, not a scan.
 * Versions: the listener's bounds (mtls_ctx_set_tls_versions) choose the
 * version, because mbedTLS settles it from the ClientHello before it reads
 * the SNI name; a host whose own bounds exclude the version chosen refuses
 * the handshake with a protocol_version alert (followed by mbedTLS's
 * unrecognized_name), so a TLS-1.3-only host beside a default host that
 * takes TLS 1.2 works, but a client offering both versions is not steered
 * to 1.3 by the host: it gets the listener's choice (the newest both have). */
MTLS_API int mtls_ctx_add_host(mtls_ctx *listener, const char *name,
                               mtls_ctx *host);

/* What a listener does with an SNI name no host matches (connections
 * without SNI always get the default host).  An SNI value that is not a
 * host name (1 to 253 bytes of dot-separated labels of 1 to 63 letters,
 * digits, '-' or '_'; no trailing dot) is refused whatever the policy, and
 * a TLS 1.3 client whose second ClientHello (after a HelloRetryRequest)
 * names another server than its first, or adds or drops the name, is
 * refused. */
typedef enum { MTLS_SNI_DEFAULT, MTLS_SNI_REFUSE } mtls_sni_policy;
MTLS_API int mtls_ctx_set_unknown_host(mtls_ctx *listener,
                                       mtls_sni_policy policy);

/* Re-reads every file the context was loaded from (pair, CAs, CRL, session
 * ticket keys), validates all of it, then swaps it in at once: new
 * handshakes use the new material, connections in flight keep what they
 * started with, sessions issued before are not resumed (with a ticket key
 * file: unless no material changed, see mtls_ctx_set_ticket_key_file).  If any file fails, nothing changes and
 * the error says why.  Safe while other threads make connections from this
 * context. */
MTLS_API int mtls_ctx_reload(mtls_ctx *ctx);

/* ------------------------------------------------------------------------ */
/* Watching files: reload when they change                                   */
/* ------------------------------------------------------------------------ */

/* A watch reloads contexts (mtls_ctx_reload) when a file they were loaded
 * from changes: rewritten in place, renamed over, or swapped under a
 * symlink as Kubernetes secret volumes do ("..data").  It watches the
 * directories holding the files (inotify), waits until they have been
 * quiet for the debounce delay (a file being written is never loaded
 * half-way), then compares what each path resolves to with what was last
 * loaded.  Where inotify is unavailable, or with MTLS_WATCH_POLL (or the
 * environment variable MTLS_WATCH_POLL=1), it looks every poll interval
 * instead.  A reload that fails keeps the previous material (the error is
 * logged and returned); the next change is tried again.
 *
 * Event loop use: put mtls_watch_fd() in poll/epoll for reading (when it
 * is >= 0) and call mtls_watch_process() when it is readable and whenever
 * mtls_watch_timeout() milliseconds have passed.  No thread is started.
 * One thread uses a watch at a time; the contexts it reloads may serve
 * connections in other threads meanwhile.  The watch holds a reference to
 * each context added (freed contexts stay valid until mtls_watch_free). */
typedef struct mtls_watch mtls_watch; /* opaque */

#define MTLS_WATCH_NOTIFY_ONLY 1u /* report changes, reload nothing */
#define MTLS_WATCH_POLL        2u /* look every poll interval, no inotify */

/* A watch with no files yet; NULL only when out of memory. */
MTLS_API mtls_watch *mtls_watch_new(unsigned flags);

/* Watches every file ctx was loaded from by path (pair, CA file or
 * directory, CRL; not "system" nor memory) and those of its hosts
 * (mtls_ctx_add_host), as they are now: files loaded later need another
 * call.  0, or MTLS_ERR_NO_MEMORY / _INVALID_ARG (the watch unchanged). */
MTLS_API int mtls_watch_add_ctx(mtls_watch *w, mtls_ctx *ctx);

/* Watches one more file (a program's own configuration, say): its changes
 * are reported by mtls_watch_process(), nothing is reloaded for it. */
MTLS_API int mtls_watch_add_file(mtls_watch *w, const char *path);

/* Quiet time before acting on a change (default 1000 ms) and the poll
 * interval when polling (default 5000 ms, > 0). */
MTLS_API int mtls_watch_set_delays(mtls_watch *w, unsigned debounce_ms,
                                   unsigned poll_ms);

/* The descriptor to wait on for reading, or -1 when polling.  Owned by
 * the watch. */
MTLS_API int mtls_watch_fd(const mtls_watch *w);

/* Milliseconds until mtls_watch_process() must run again (0: now), or -1
 * when only the descriptor matters. */
MTLS_API int mtls_watch_timeout(const mtls_watch *w);

/* Does what is due, without blocking: > 0 the number of contexts reloaded
 * (with MTLS_WATCH_NOTIFY_ONLY, of changes seen; a file added with
 * mtls_watch_add_file counts one), 0 nothing to do yet, < 0 the first
 * failed reload's error code (mtls_watch_error() says which file and why;
 * the other contexts were still reloaded). */
MTLS_API int mtls_watch_process(mtls_watch *w);

/* Why the last call failed, or NULL.  Owned by the watch. */
MTLS_API const char *mtls_watch_error(const mtls_watch *w);

/* Stops watching and drops the references; NULL is a no-op. */
MTLS_API void mtls_watch_free(mtls_watch *w);

/* ------------------------------------------------------------------------ */
/* Connections                                                               */
/* ------------------------------------------------------------------------ */

typedef struct mtls_conn mtls_conn; /* opaque, one per TLS connection */

/* A TLS connection over a connected socket.  The fd stays the caller's:
 * never closed by the library; blocking or non-blocking.  server_name
 * (client role): the upstream's name for SNI and certificate checks,
 * unless the context overrides it; a client with neither fails its
 * handshake with MTLS_ERR_NOT_CONFIGURED.  Ignored by servers.
 * The connection holds a reference to the context's current material: the
 * context may be reloaded, or freed, while it lives.  NULL only when ctx is
 * NULL or out of memory.  A configuration problem (e.g. a server context
 * without a pair) is reported by the first mtls_handshake(). */
MTLS_API mtls_conn *mtls_conn_new(mtls_ctx *ctx, int fd,
                                  const char *server_name);

/* Caller-supplied I/O, for event loops.  send returns the bytes taken
 * (> 0), recv the bytes read (> 0) or 0 at end of stream; both return
 * MTLS_WANT_WRITE / MTLS_WANT_READ when they would block, any other
 * negative value on error.  NULL when ctx, send_fn or recv_fn is NULL, or
 * out of memory. */
typedef ssize_t (*mtls_send_fn)(void *user, const void *buf, size_t len);
typedef ssize_t (*mtls_recv_fn)(void *user, void *buf, size_t len);
MTLS_API mtls_conn *mtls_conn_new_io(mtls_ctx *ctx, mtls_send_fn send_fn,
                                     mtls_recv_fn recv_fn, void *user,
                                     const char *server_name);

/*
 * EVENT LOOPS (non-blocking sockets, or callbacks that return MTLS_WANT_*)
 *   - MTLS_WANT_READ / MTLS_WANT_WRITE name what the socket must become
 *     before the same call is made again: a read may need the socket
 *     writable, a write readable.  Any other negative value (but
 *     MTLS_ERR_INVALID_ARG, a caller's mistake) ends the connection: free
 *     it (mtls_conn_error() still tells why).
 *   - Reading: mbedTLS decrypts a whole record (up to 16 KiB) at a time,
 *     and whatever mtls_read() does not hand out waits inside the library,
 *     not in the socket, so the socket never turns readable for it again.
 *     After a readiness event, call mtls_read() until it returns
 *     MTLS_WANT_* (or 0, or an error); a loop that reads a bounded amount per event must,
 *     before going back to wait, check mtls_conn_pending() and come back to
 *     the connection while it is non-zero.  Nothing else waits unseen: a
 *     record not yet decrypted is still in the socket and keeps it readable.
 *   - Writing: mtls_write() may take fewer bytes than asked; after
 *     MTLS_WANT_*, the same bytes with the same length must be passed again
 *     (the record is already built), before any other mtls_write().
 *   - Reading while a write waits: allowed.  After mtls_write() returned
 *     MTLS_WANT_WRITE, mtls_read() may be called (mbedTLS keeps incoming
 *     and outgoing records in separate buffers), and should be: a peer that
 *     is itself blocked writing to us only drains once we read.  The waiting
 *     write is then retried as above, with the same bytes and length, and
 *     returns their count once they are out.  (If mbedTLS must answer the
 *     peer with an alert during such a read, e.g. refusing a TLS 1.2
 *     renegotiation, it flushes our waiting record instead and drops the
 *     alert; the retried write then reports the record sent, never sends
 *     it twice.)  On mbedTLS 3.x with TLS 1.3, a post-handshake message
 *     (the NewSessionTicket a server sends right after the handshake) read
 *     while a record of ours waits makes mtls_read() return MTLS_WANT_WRITE
 *     until that record is out; data behind it is readable only then.  A
 *     peer that stops reading while its own writes wait (a simple echo
 *     server does) can then deadlock with a client that wrote more than
 *     the sockets hold before reading that message: keep reading while
 *     writing, and bound how far writes run ahead of the peer's answers.
 *   - Closing: mtls_close() sends close_notify.  On MTLS_WANT_* call it
 *     again when the socket is ready, until it returns 0 (any record an
 *     earlier mtls_write() left unsent goes out first; the alert is sent
 *     once, and a call after 0 returns 0 again).  Or give up: a peer that
 *     never reads must not hold the connection, and mtls_conn_free() is
 *     always allowed; the peer then sees the connection end without a
 *     (complete) close_notify.
 *     After mtls_close() do not write again; reading the peer's own
 *     close_notify (mtls_read() returns 0) is optional.
 *   - Threads: a mtls_conn is not locked.  Its calls may come from any
 *     thread, and from different threads over its life (a connection may
 *     move between worker threads), but one call at a time: never two calls
 *     on the same mtls_conn at once, not even mtls_read() on one thread and
 *     mtls_write() on another, nor a query (mtls_conn_pending(),
 *     mtls_conn_error(), ...) during either; the caller serialises them
 *     (the event loop's thread, or a lock).  Distinct connections are independent, also when
 *     made from the same context.
 */

/* Runs the handshake: 0 when done, MTLS_WANT_READ / MTLS_WANT_WRITE to be
 * called again the same way once the socket is ready, or a negative
 * MTLS_ERR_* (peer refused: MTLS_ERR_PEER_*; the detail in
 * mtls_conn_error()).  mtls_read/mtls_write run it implicitly.
 *
 * A client refused in TLS 1.3 learns it late, and on mbedTLS 3.6 without
 * the reason.  TLS 1.3 lets a client finish its handshake before the server
 * has judged its certificate, so the refusal arrives on the client's first
 * mtls_read (or write), not here.  A server on mbedTLS 3.6 (3.6.6 at the
 * time of writing) sends that alert (certificate_required, unknown_ca,
 * bad_certificate, certificate_expired, ...) under its handshake keys,
 * which the client left for the application keys when it read the server's
 * Finished: the client cannot decrypt it.  OpenSSL clients print
 * "decryption failed or bad record mac" (curl and Python: that, or, when
 * the server's close wins the race, "Connection reset by peer" / "EOF
 * occurred in violation of protocol"); an mtls client
 * returns MTLS_ERR_ALERT (mtls_conn_reason(): PEER_ALERT_UNREADABLE) with
 * "upstream aborted the connection with a TLS 1.3 alert that could not be
 * decrypted (it most likely refused our client certificate)".  The reverse
 * holds too: a client refusing our 3.6 server's certificate in TLS 1.3
 * (mbedTLS or OpenSSL alike) sends an alert the server cannot decrypt.  Nothing the client receives carries the reason: it is on
 * the server, whose mtls_handshake returns the MTLS_ERR_PEER_* code with
 * mtls_conn_error() naming it ("client certificate required but not
 * presented", "client certificate (CN=x) refused: ...", "... not allowed
 * by policy"); read it there (mtls-proxy logs it as error="..." in its conn
 * line).  TLS 1.2, TLS 1.3 servers on other stacks (OpenSSL, nginx), and
 * a libmtls built with make MBEDTLS=tuned (its mbedTLS carries a fix) send
 * alerts the client can read. */
MTLS_API int mtls_handshake(mtls_conn *conn);

/* Up to len bytes of application data: > 0 bytes read, 0 when the peer
 * closed cleanly (close_notify), MTLS_WANT_READ / MTLS_WANT_WRITE, or
 * < 0 (MTLS_ERR_CLOSED when the peer closed without close_notify). */
MTLS_API ssize_t mtls_read(mtls_conn *conn, void *buf, size_t len);

/* Writes up to len bytes: > 0 bytes written (possibly fewer than len),
 * MTLS_WANT_READ / MTLS_WANT_WRITE, or < 0.  After a WANT_* value, call
 * again with the same data and the SAME len (the buffer may have moved):
 * part of it may already be in a TLS record, and a different len would
 * make the count returned wrong. */
MTLS_API ssize_t mtls_write(mtls_conn *conn, const void *buf, size_t len);

/* Bytes of application data already decrypted and waiting in the
 * connection: the next mtls_read() returns up to this many without
 * touching the socket.  0 for NULL, before the handshake completes, or
 * when nothing waits.  See EVENT LOOPS above for why it matters. */
MTLS_API size_t mtls_conn_pending(const mtls_conn *conn);

/* Sends close_notify: 0, MTLS_WANT_* (call again when the socket is ready,
 * or give up and free; see EVENT LOOPS), or < 0.  0 before the handshake
 * completed (nothing to close), and again on every call after the first 0.
 * The fd stays open. */
MTLS_API int mtls_close(mtls_conn *conn);

/* Frees the connection (no close_notify; call mtls_close first for one).
 * NULL is a no-op. */
MTLS_API void mtls_conn_free(mtls_conn *conn);

/* The detail of the connection's last failure, or NULL.  Owned by conn. */
MTLS_API const char *mtls_conn_error(const mtls_conn *conn);

/* The OS errno behind the last MTLS_ERR_IO, or 0. */
MTLS_API int mtls_conn_errno(const mtls_conn *conn);

/* After the handshake: "TLSv1.2"/"TLSv1.3", the cipher suite name, the
 * negotiated ALPN protocol (NULL if none), the SNI name the client sent
 * (server role; NULL if none), and whether the session was resumed.
 * Before the handshake completed: NULL and 0 (mtls_conn_sni() is set
 * from the ClientHello).  Strings are owned by the library and live as
 * long as conn. */
MTLS_API const char *mtls_conn_version(const mtls_conn *conn);
MTLS_API const char *mtls_conn_cipher(const mtls_conn *conn);
MTLS_API const char *mtls_conn_alpn(const mtls_conn *conn);
MTLS_API const char *mtls_conn_sni(const mtls_conn *conn);
MTLS_API int mtls_conn_resumed(const mtls_conn *conn);

/* Server role: the host that judged this handshake, as it was given to
 * mtls_ctx_add_host() and lowercased ("admin.example.com" or
 * "*.example.com"), or NULL when the listener's own (default) host did
 * (no SNI, or a name no host serves under MTLS_SNI_DEFAULT).  This is the
 * one host decision of the connection, made once from the SNI name in the
 * handshake: route by it, never by matching mtls_conn_sni() again.  Valid
 * from the handshake's first ClientHello; owned by conn. */
MTLS_API const char *mtls_conn_host(const mtls_conn *conn);

/* After a completed handshake whose peer is verified (mtls_verify_peer()
 * returns 0): the identity the context's policy decided, the one to log
 * and to forward.  With an allow list, the certificate's value that the
 * first matching entry matched (a URI SAN, DNS SAN, CN or OU; for an SPKI
 * pin, as without a list); without one, the leaf's only URI SAN (unless
 * its path has "." or ".." segments or percent-encoded dots or slashes),
 * else, when it has no URI SAN at all, its only CN.  NULL when the peer is
 * not verified or has no single identity (several URI SANs, several CNs).
 * Whole, at any length (a SPIFFE ID may be 2,048 bytes).  Owned by conn. */
MTLS_API const char *mtls_conn_peer_identity(const mtls_conn *conn);

/* ------------------------------------------------------------------------ */
/* Why a connection failed: reason codes and TLS alerts                      */
/* ------------------------------------------------------------------------ */

/* Why a handshake (or, for a TLS 1.3 client refused by its server, the
 * first read or write after it) failed: one value per connection, stable
 * for logs and metrics.  The values are ABI: never renumbered, only
 * appended; a program must treat a value it does not know as a failure
 * (it is never MTLS_REASON_NONE).  mtls_reason_name() gives the token
 * ("unknown_ca"); docs/reasons.md gives, per reason, the meaning, the
 * typical cause and the fix.  Verification reasons (PEER_NO_CERT ...
 * NOT_VERIFIED) say what this side found wrong with the peer; PEER_ALERT
 * says the peer refused us, mtls_conn_alert_received() saying with what. */
typedef enum {
	MTLS_REASON_NONE = 0,              /* "none": no failure (yet) */
	MTLS_REASON_PEER_NO_CERT = 1,      /* "peer_no_cert": no certificate
	                                    * where one is required */
	MTLS_REASON_UNKNOWN_CA = 2,        /* "unknown_ca": the chain ends at
	                                    * a CA we do not trust */
	MTLS_REASON_MISSING_INTERMEDIATE = 3, /* "missing_intermediate": the
	                                    * chain stops at a certificate whose
	                                    * issuer the peer did not send and
	                                    * we do not trust (see
	                                    * docs/reasons.md) */
	MTLS_REASON_EXPIRED = 4,           /* "expired": a certificate of the
	                                    * peer's chain is past not_after */
	MTLS_REASON_NOT_YET_VALID = 5,     /* "not_yet_valid" */
	MTLS_REASON_REVOKED = 6,           /* "revoked": listed in a CRL */
	MTLS_REASON_EKU = 7,               /* "eku": (extended) key usage does
	                                    * not allow the peer's role */
	MTLS_REASON_NAME_MISMATCH = 8,     /* "name_mismatch": upstream
	                                    * certificate not for the name */
	MTLS_REASON_POLICY = 9,            /* "policy": identity not on the
	                                    * allow list */
	MTLS_REASON_NOT_VERIFIED = 10,     /* "not_verified": another
	                                    * verification failure (bad
	                                    * signature, weak key or hash, chain
	                                    * too deep, CRL out of date) */
	MTLS_REASON_PEER_ALERT = 11,       /* "peer_alert": the peer refused
	                                    * us with a fatal alert */
	MTLS_REASON_PEER_ALERT_UNREADABLE = 12, /* "peer_alert_unreadable": a
	                                    * TLS 1.3 alert we could not
	                                    * decrypt (see mtls_handshake) */
	MTLS_REASON_PROTOCOL_VERSION = 13, /* "protocol_version": no TLS
	                                    * version both sides accept */
	MTLS_REASON_NO_SHARED_CIPHER = 14, /* "no_shared_cipher": no cipher
	                                    * suite, group or signature
	                                    * algorithm both sides accept */
	MTLS_REASON_UNKNOWN_HOST = 15,     /* "unknown_host": server, SNI names
	                                    * no host (MTLS_SNI_REFUSE) */
	MTLS_REASON_BAD_SNI = 16,          /* "bad_sni": server, the SNI value
	                                    * is not a host name, or changed
	                                    * after a HelloRetryRequest */
	MTLS_REASON_CLOSED = 17,           /* "closed": the peer closed the
	                                    * connection during the handshake */
	MTLS_REASON_IO = 18,               /* "io": socket error (reset) */
	MTLS_REASON_PROTOCOL = 19,         /* "protocol": a malformed or
	                                    * unexpected message, or another
	                                    * handshake failure */
	MTLS_REASON_CONFIG = 20,           /* "config": this side cannot make
	                                    * the connection (no pair, no CA,
	                                    * no server name) */
	MTLS_REASON_INTERNAL = 21,         /* "internal": out of memory, RNG */
	MTLS_REASON_ABANDONED = 22         /* "abandoned": the connection was
	                                    * freed before its handshake ended
	                                    * (a caller's timeout, shutdown) */
} mtls_reason;
/* One more than the highest reason this header knows.  It grows when a
 * reason is appended: size tables by it, but expect higher values from a
 * newer library. */
#define MTLS_REASON_COUNT 23

/* The stable snake_case token of a reason ("unknown_ca"), for logs and
 * metric labels.  Static string; "unknown" for a value out of range. */
MTLS_API const char *mtls_reason_name(mtls_reason reason);

/* The reason of the connection's first failure, MTLS_REASON_NONE while it
 * has none.  It is set with the MTLS_ERR_* code and mtls_conn_error()
 * message of the same failure.  NULL gives MTLS_REASON_NONE. */
MTLS_API mtls_reason mtls_conn_reason(const mtls_conn *conn);

/* The fatal TLS alert the peer sent us (its description, 0-255, as in RFC
 * 8446 section 6: 48 is unknown_ca), or -1 when none was received (or none
 * could be read: see MTLS_REASON_PEER_ALERT_UNREADABLE). */
MTLS_API int mtls_conn_alert_received(const mtls_conn *conn);

/* The fatal TLS alert this side sent the peer, or -1 when none was sent or
 * the library could not tell which: known when it went out in the clear
 * (every TLS 1.2 refusal in the handshake) or mbedTLS 3.x queued it; not
 * when mbedTLS sent it encrypted without keeping its description (TLS 1.3
 * certificate refusals on mbedTLS 3.6). */
MTLS_API int mtls_conn_alert_sent(const mtls_conn *conn);

/* The RFC 8446 / RFC 5246 name of an alert description: "unknown_ca",
 * "certificate_required", "handshake_failure".  Static string; "unknown"
 * for a value with no name (also -1). */
MTLS_API const char *mtls_alert_name(int alert);

/* ------------------------------------------------------------------------ */
/* Monitoring: handshake counters and expiry of what a context depends on    */
/* ------------------------------------------------------------------------ */

/* Handshake counters of a context.  Every handshake a connection made from
 * a context runs is counted once, when it ends, on the context that judged
 * it: the SNI host chosen for it (mtls_conn_host()), else the context the
 * connection was made from (a listener's default host; a client).  The
 * counts of a listener and of each of its hosts are therefore disjoint and
 * add up to everything the listener served (a host added to two listeners
 * counts for both).  A TLS 1.3 client refused by its server after its own
 * handshake completed is counted ok (the refusal reaches it later, on a
 * read; mtls_conn_reason() then says MTLS_REASON_PEER_ALERT*).  A
 * connection freed before its handshake ended counts as failed with
 * MTLS_REASON_ABANDONED.  Counters are relaxed atomics: they never go
 * backwards, but counters read together may be a few handshakes apart. */
typedef struct mtls_stats {
	unsigned long long handshakes_ok;      /* completed, full or resumed */
	unsigned long long handshakes_resumed; /* of those, resumed sessions */
	unsigned long long handshakes_failed;  /* failed, every reason */
} mtls_stats;

/* Fills *stats with the context's counters.  size is sizeof(mtls_stats)
 * as the caller knows it: fields the library has beyond it are left out,
 * fields the caller has beyond the library's are zeroed.  Thread-safe, no
 * lock; 0 or MTLS_ERR_INVALID_ARG. */
MTLS_API int mtls_ctx_stats(const mtls_ctx *ctx, mtls_stats *stats,
                            size_t size);

/* Handshakes of this context that failed with `reason` (0 for NONE, for
 * NULL and for a reason out of range).  Thread-safe, no lock. */
MTLS_API unsigned long long mtls_ctx_failures(const mtls_ctx *ctx,
                                              mtls_reason reason);

/* What a context depends on that ends on a date. */
typedef enum {
	MTLS_EXPIRY_LEAF = 0,  /* the context's own certificate */
	MTLS_EXPIRY_CHAIN = 1, /* an intermediate sent with it */
	MTLS_EXPIRY_CA = 2,    /* a trusted CA (mtls_set_trusted_ca) */
	MTLS_EXPIRY_CRL = 3    /* a CRL: `when` is its next update */
} mtls_expiry_kind;

/* One item, handed to an mtls_expiry_fn.  Strings are valid during the
 * call only.  New fields may be appended (the library allocates it). */
typedef struct mtls_expiry {
	mtls_expiry_kind kind;
	const char *source;  /* the file as given to the load call (for a CA
	                      * from a directory, the directory), "system", or
	                      * "<memory>" */
	const char *subject; /* certificate subject DN; a CRL's issuer DN */
	time_t when;         /* not_after (UTC); a CRL's next update, 0 when
	                      * it has none */
	int index;           /* position in its source: 0 is the leaf, 1 the
	                      * first intermediate; the n-th CA or CRL */
	int warned;          /* the expiry warning was logged for it */
} mtls_expiry;

/* Called once per item; a non-zero return stops the walk. */
typedef int (*mtls_expiry_fn)(void *user, const mtls_expiry *item);

/* Walks every item the context depends on, in the order own leaf, chain,
 * CAs, CRLs (a listener's SNI hosts are contexts of their own: walk each).
 * Shared trust (mtls_ctx_share_trust) is the owner's.  Returns the number
 * of items walked, or MTLS_ERR_INVALID_ARG.  The context's lock is not
 * held during fn: fn may call any mtls_ctx_* function, also on ctx.
 * Thread-safe. */
MTLS_API int mtls_ctx_expiry_each(const mtls_ctx *ctx, mtls_expiry_fn fn,
                                  void *user);

/* The expiry warning (threshold: mtls_ctx_set_expiry_warning, default 30
 * days) for every item of the context: each item whose date is within the
 * threshold of `now`, or past, is logged once at MTLS_LOG_WARN over the
 * life of the material that holds it (a reload makes new material, which
 * warns again).  CRLs use the smaller of the threshold and one day (they
 * are re-issued well before their next update; one that is not by then
 * has a broken refresh job), and CAs of the "system" store are walked but
 * never warned about (the OS renews them).  Loading material runs this
 * check; mtls_handshake() runs it too, at most once an hour per context
 * (an atomic compare, no lock), so a long-running program is warned when
 * an item enters the window.  now 0 means time(NULL).  Returns the number
 * of items within the window or past (warned now or before), or
 * MTLS_ERR_INVALID_ARG.  Thread-safe. */
MTLS_API int mtls_ctx_check_expiry(mtls_ctx *ctx, time_t now);

/* ------------------------------------------------------------------------ */
/* Peer verification and identity                                            */
/* ------------------------------------------------------------------------ */

/* The peer's certificate in full.  After a completed handshake (else
 * NULL or 0), whether or not the peer is verified: these report what the
 * peer presented, so decide on mtls_verify_peer()'s answer and on
 * mtls_conn_peer_identity(), never on a SAN picked here.  Strings are
 * NUL-terminated, whole (never cut), owned by conn and valid until
 * mtls_conn_free(conn); the bytes are the certificate's own, not escaped:
 * escape them before they reach a log line.  Each takes one call at a
 * time per connection, like the rest of mtls_conn.  NULL/0 as well when
 * the peer presented no certificate, conn is NULL or an argument is out
 * of range.  Added in 0.2 (symbol version MTLS_0.2, see
 * docs/versioning.md). */

/* Kinds of subjectAltName entry.  More may be added later: a kind this
 * library does not know counts 0.  Other GeneralName forms (otherName,
 * directoryName, ...) are not reported. */
typedef enum {
	MTLS_SAN_DNS = 1,   /* dNSName, "api.example.com" */
	MTLS_SAN_URI = 2,   /* uniformResourceIdentifier, "spiffe://td/x" */
	MTLS_SAN_IP = 3,    /* iPAddress, as text: "192.0.2.1", "2001:db8::1" */
	MTLS_SAN_EMAIL = 4  /* rfc822Name, "ops@example.com" */
} mtls_san_kind;

/* How many SANs of this kind the peer's leaf has, all of them, in
 * certificate order. */
MTLS_API int mtls_conn_peer_san_count(const mtls_conn *conn,
                                      mtls_san_kind kind);

/* The i-th (from 0) SAN of this kind.  A value C cannot carry whole is
 * reported as "" so that no part of it can pass for a name: a DNS, URI or
 * email SAN with an embedded NUL byte, an IP SAN that is not 4 or 16
 * bytes long. */
MTLS_API const char *mtls_conn_peer_san(const mtls_conn *conn,
                                        mtls_san_kind kind, int i);

/* The peer's SPIFFE ID: the identity the policy decided
 * (mtls_conn_peer_identity()) when it is one ("spiffe://" + a lowercase
 * trust domain + a path of non-empty segments of letters, digits, ".",
 * "-", "_", none "." or ".."); else NULL, as for an unverified peer, a leaf
 * with several URI SANs, or an identity that is a CN or a DNS name.  No
 * second decision: it is that same string, or nothing. */
MTLS_API const char *mtls_conn_peer_spiffe_id(const mtls_conn *conn);

/* The leaf's subject and issuer DNs ("CN=client, O=Example"), serial
 * number (hex bytes, colon separated, all of them), the value of its first
 * subject CN and of its first OU ("" when it has none). */
MTLS_API const char *mtls_conn_peer_subject(const mtls_conn *conn);
MTLS_API const char *mtls_conn_peer_issuer(const mtls_conn *conn);
MTLS_API const char *mtls_conn_peer_serial(const mtls_conn *conn);
MTLS_API const char *mtls_conn_peer_cn(const mtls_conn *conn);
MTLS_API const char *mtls_conn_peer_ou(const mtls_conn *conn);

/* The certificates the peer sent in this handshake, leaf first (index 0),
 * as it sent them (DER); a resumed session has what the session kept of
 * the handshake it resumes, which may be the leaf alone.  The count is 0
 * when there is none; the DER is owned by conn (valid until
 * mtls_conn_free), NULL when i is out of range; *len (len may be NULL)
 * gets its length, 0 with NULL. */
MTLS_API int mtls_conn_peer_cert_count(const mtls_conn *conn);
MTLS_API const unsigned char *mtls_conn_peer_cert_der(const mtls_conn *conn,
                                                      int i, size_t *len);

#define MTLS_PEER_MAX_SANS 8
/* has_cert bit: some value of the certificate did not fit this struct. */
#define MTLS_PEER_TRUNCATED 0x2
/* The peer's leaf certificate, as a plain struct.  FROZEN for soname
 * libmtls.so.0: its size, fields and layout never change (programs are
 * compiled against them); new facts about the peer come only through the
 * mtls_conn_peer_* accessors above, which also give every value whole.
 * Every string is NUL-terminated; absent values are "".  Nothing here is
 * ever cut short: a value that does not fit its field (a SPIFFE ID longer
 * than 255 bytes, a long DN) is "" instead, the SANs after the first
 * MTLS_PEER_MAX_SANS of a kind are left out, and either sets the bit
 * MTLS_PEER_TRUNCATED in has_cert: test has_cert as a boolean, and
 * has_cert & MTLS_PEER_TRUNCATED to know that the accessors have more.
 * The struct is about 5.5 KB: mind small thread stacks. */
typedef struct mtls_peer {
	int has_cert;          /* 0: the peer presented no certificate; else
	                        * 1, or 1 | MTLS_PEER_TRUNCATED */
	char subject[256];     /* subject DN, "CN=client, O=Example" */
	char cn[128];          /* subject common name */
	char ou[128];          /* first subject OU */
	char issuer[256];      /* issuer DN */
	char serial[128];      /* hex, colon separated */
	time_t not_before, not_after;
	char sha256[65];       /* SHA-256 of the certificate (DER), hex */
	char spki_sha256[65];  /* SHA-256 of the SubjectPublicKeyInfo, hex */
	int n_dns, n_uri, n_ip; /* at most MTLS_PEER_MAX_SANS each */
	char dns[MTLS_PEER_MAX_SANS][256];
	char uri[MTLS_PEER_MAX_SANS][256];
	char ip[MTLS_PEER_MAX_SANS][46];
} mtls_peer;

/* For a finished handshake: 0 when the peer's certificate was verified
 * (chain to a trusted CA, validity, revocation, extended key usage, name,
 * allow list), else why not: MTLS_ERR_PEER_NO_CERT, _UNTRUSTED, _EXPIRED,
 * _NOT_YET_VALID, _REVOKED, _EKU, _NAME, _POLICY, _NOT_VERIFIED (e.g.
 * skipped by mtls_ctx_insecure_skip_verify); MTLS_ERR_STATE before the
 * handshake completed (peer is then left untouched).  peer (may be NULL)
 * is filled whenever the handshake completed: has_cert tells whether a
 * certificate was presented, and its identity is there verified or not.
 * Pass NULL and use the accessors above to keep 5.5 KB off the stack. */
MTLS_API int mtls_verify_peer(const mtls_conn *conn, mtls_peer *peer);

#ifdef __cplusplus
}
#endif
#endif /* MTLS_H */
