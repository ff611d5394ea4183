/*
 * internal.h - private declarations shared by libmtls's modules.
 * Nothing here is part of the public API; every symbol is hidden.
 */
#ifndef MTLS_INTERNAL_H
#define MTLS_INTERNAL_H

#include "mtls.h"
#include "compat.h"

#include <mbedtls/ssl.h>
#include <mbedtls/ssl_cache.h>
#include <mbedtls/ssl_ticket.h>

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define MTLS_ERRBUF 512
/* Deepest peer chain accepted: the leaf at depth 0, the anchor at most
 * here (a leaf, four intermediates, a root). */
#define MTLS_CHAIN_MAX 5
#define MTLS_NAME_MAX 128

/* ---- ASCII, whatever the locale ------------------------------------------ */

/* Host names and SAN comparisons are ASCII: <ctype.h> and strcasecmp
 * follow the program's locale, where 0xE9 may be a letter. */
static inline int mtls__ascii_lower(int ch)
{
	return ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch;
}

static inline int mtls__ascii_alnum(int ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
	       (ch >= 'A' && ch <= 'Z');
}

/* 1 when the n bytes of a and b are equal but for ASCII case. */
static inline int mtls__ascii_eq_nocase(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (mtls__ascii_lower((unsigned char)a[i]) !=
		    mtls__ascii_lower((unsigned char)b[i]))
			return 0;
	return 1;
}

/* ---- error.c: formatted failure detail ---------------------------------- */

/* An error buffer: the detail of the first failure reported into it. */
typedef struct mtls_err {
	int code;
	char msg[MTLS_ERRBUF];
} mtls_err;

/* Records code and message in *e (unless a message is already there, which
 * is more specific) and returns code. */
int mtls__fail(mtls_err *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Copies src into dst (cap bytes, always terminated, cut at a whole
 * character) with every byte outside printable ASCII written as \xNN and
 * a backslash as two: any peer-controlled text becomes one safe line. */
void mtls__escape(char *dst, size_t cap, const char *src);

/* "reason" text for an mbedTLS error code, without key material. */
void mtls__mbedtls_reason(int mbed_ret, char *buf, size_t len);

/* ---- log.c -------------------------------------------------------------- */

/* Delivers one message; `name` (may be NULL or "") is added as name=... */
void mtls__log(int level, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int mtls__log_enabled(void);

/* ---- file.c: bounded reads, secrets ------------------------------------- */

/* A buffer read from a file or copied from memory, NUL-terminated (the
 * terminator is not counted in len; mbedTLS PEM parsing wants len + 1). */
typedef struct mtls_buf {
	unsigned char *data;
	size_t len;
	int secret; /* wipe on free */
} mtls_buf;

/* Reads a whole regular file of at most MTLS_MAX_FILE_SIZE bytes. */
int mtls__read_file(const char *path, int secret, mtls_buf *out, mtls_err *e);
/* Copies memory into a NUL-terminated buffer. */
int mtls__copy_mem(const void *p, size_t len, int secret, mtls_buf *out,
                   mtls_err *e);
void mtls__buf_free(mtls_buf *b);
/* More BEGIN CERTIFICATE lines than END lines: PEM text cut short, which
 * mbedTLS would silently load as fewer certificates. */
int mtls__pem_truncated(const char *text);
/* The basename of a path, for messages ("<memory>" for NULL). */
const char *mtls__display(const char *path);
/* strdup that returns NULL for NULL. */
char *mtls__strdup(const char *s);
/* Frees a string after wiping it. */
void mtls__free_secret_str(char *s);
/* Mode bits of a key file readable by group or others, or 0. */
unsigned mtls__key_file_exposed(const char *path);

/* ---- certutil.c: formatting certificates -------------------------------- */

time_t mtls__x509_time(const mbedtls_x509_time *t);
/* "2026-01-01 00:00:00 UTC" */
void mtls__fmt_time(time_t t, char *buf, size_t len);
void mtls__fmt_dn(const mbedtls_x509_name *dn, char *buf, size_t len);
void mtls__fmt_serial(const mbedtls_x509_buf *serial, char *buf, size_t len);
/* len bytes as 2 * len lowercase hex digits and a NUL. */
void mtls__hex(const unsigned char *in, size_t len, char *out);
void mtls__fmt_key_type(const mbedtls_pk_context *pk, char *buf, size_t len);
/* Whole days from now until t (floor), negative when past. */
long mtls__days_until(time_t t, time_t now);
/* Issuer name equals subject name (a root, or a self-issued CA). */
int mtls__crt_self_issued(const mbedtls_x509_crt *crt);
/* The first certificate of list whose subject is crt's issuer (by name,
 * not by signature), skipping crt itself; NULL when none. */
const mbedtls_x509_crt *mtls__crt_find_issuer(const mbedtls_x509_crt *list,
                                              const mbedtls_x509_crt *crt);

/* ---- reason.c ----------------------------------------------------------- */

/* Alerts by which a peer refuses a certificate (bad_certificate,
 * unknown_ca, certificate_required, ...). */
int mtls__alert_is_cert_refusal(int alert);
/* The reason that goes with an MTLS_ERR_* code when nothing more precise
 * is known. */
mtls_reason mtls__reason_of_peer_code(int code);

/* ---- expiry.c ----------------------------------------------------------- */

/* "Warned once" flags of one piece of material: one per item, set with an
 * atomic exchange so that concurrent checks warn once. */
typedef struct mtls_warned {
	atomic_uchar *flags;
	size_t n;
} mtls_warned;

int mtls__warned_init(mtls_warned *w, size_t n);
void mtls__warned_free(mtls_warned *w);

/* ---- cred.c: a validated certificate chain and key ---------------------- */

/* Immutable once built; shared by reference. */
typedef struct mtls_cred {
	atomic_int refs;
	mbedtls_x509_crt chain; /* leaf first, then intermediates */
	mbedtls_pk_context key;
	mtls_cert_info info;
	char *source;       /* the certificate file, or "<memory>" */
	mtls_warned warned; /* per chain certificate */
} mtls_cred;

/* Where a pair comes from: paths, or memory buffers. */
typedef struct mtls_pair_src {
	const char *cert_path;
	const char *key_path; /* NULL: in the cert file */
	const void *cert_mem;
	size_t cert_len;
	const void *key_mem; /* NULL: in the cert buffer */
	size_t key_len;
} mtls_pair_src;

typedef struct mtls_cred_opts {
	mtls_role role;             /* decides the EKU checked */
	const char *password;       /* may be NULL */
	unsigned warn_days;         /* expiry warning threshold */
	const char *log_name;       /* context name for messages */
	time_t now;
} mtls_cred_opts;

int mtls__cred_load(const mtls_pair_src *src, const mtls_cred_opts *o,
                    mtls_cred **out, mtls_err *e);
mtls_cred *mtls__cred_ref(mtls_cred *c);
void mtls__cred_unref(mtls_cred *c);

/* ---- trust.c: trust anchors and CRLs ------------------------------------ */

typedef struct mtls_trust {
	atomic_int refs;
	mbedtls_x509_crt ca;
	int count;
	char *source; /* "system", a path, or "<memory>" */
	mtls_warned warned; /* per CA, in list order */
} mtls_trust;

typedef struct mtls_crl {
	atomic_int refs;
	mbedtls_x509_crl crl;
	char *source; /* the path as given, or "<memory>" */
	mtls_warned warned; /* per CRL of the list */
} mtls_crl;

int mtls__trust_load(const char *ca, const void *mem, size_t len,
                     const char *log_name, mtls_trust **out, mtls_err *e);
mtls_trust *mtls__trust_ref(mtls_trust *t);
void mtls__trust_unref(mtls_trust *t);

int mtls__crl_load(const char *path, const void *mem, size_t len,
                   const char *log_name, mtls_crl **out, mtls_err *e);
mtls_crl *mtls__crl_ref(mtls_crl *c);
void mtls__crl_unref(mtls_crl *c);

/* ---- peer.c: identity and allow lists ----------------------------------- */

typedef struct mtls_allow {
	mtls_allow_kind kind;
	char *value;
} mtls_allow;

/* GeneralName tags of the SANs the library reads. */
#define MTLS__SAN_TAG_EMAIL (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 1)
#define MTLS__SAN_TAG_DNS (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 2)
#define MTLS__SAN_TAG_URI (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 6)
#define MTLS__SAN_TAG_IP (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7)

/* 1 when the leaf matches an entry (or the list is empty), 0 when not.
 * With URI or URI-prefix entries a leaf with more than one URI SAN never
 * matches, with CN entries one with more than one CN.  *id (id may be
 * NULL) gets the identity decided, in the leaf's own bytes: the
 * certificate value the first matching entry matched; with no list or an
 * SPKI pin, the leaf's only URI SAN (if its path is plain), else, with no
 * URI SAN, its only CN; NULL when there is none (several URIs, several
 * CNs) or the leaf does not match. */
int mtls__allow_decide(const mtls_allow *list, size_t n,
                       const mbedtls_x509_crt *leaf,
                       const mbedtls_x509_buf **id);
/* The same, with the identity copied into id (idlen bytes, may be NULL):
 * "" when there is none, it has an embedded NUL, or it does not fit. */
int mtls__allow_match(const mtls_allow *list, size_t n,
                      const mbedtls_x509_crt *leaf, char *id, size_t idlen);
/* 1 if s (NUL-terminated) is a SPIFFE ID: "spiffe://" + a trust domain of
 * [a-z0-9.-_] + a path of non-empty segments of [A-Za-z0-9.-_], none "."
 * or "..", no trailing "/", no query or fragment. */
int mtls__is_spiffe_id(const char *s);

/* ---- peerinfo.c: the peer's leaf as text, in full ------------------------ */

/* Every value the mtls_conn_peer_* accessors return, copied out of the
 * certificate once (NUL-terminated; see mtls.h for the rules). */
#define MTLS__SAN_KINDS 5 /* indexed by mtls_san_kind, 0 unused */
typedef struct mtls_peer_info {
	char *subject, *issuer, *serial, *cn, *ou;
	int n_san[MTLS__SAN_KINDS];
	char **san[MTLS__SAN_KINDS];
} mtls_peer_info;

/* NULL when out of memory. */
mtls_peer_info *mtls__peer_info_new(const mbedtls_x509_crt *crt);
void mtls__peer_info_free(mtls_peer_info *info);
/* Fills the fixed struct from info (NULL: no certificate) and crt: a value
 * that does not fit is "" and sets MTLS_PEER_TRUNCATED in has_cert. */
void mtls__peer_fill(const mtls_peer_info *info,
                     const mbedtls_x509_crt *crt, mtls_peer *p);
/* Whether an IP SAN of crt equals the address in text form. */
int mtls__crt_has_ip(const mbedtls_x509_crt *crt, const char *ip);
/* 1 if s is an IPv4 or IPv6 literal. */
int mtls__is_ip(const char *s);

/* ---- hosts.c: SNI name -> host context ---------------------------------- */

typedef struct mtls_hosts mtls_hosts;
int mtls__hosts_add(mtls_hosts **h, const char *name, mtls_ctx *host);
/* The host for an SNI name (exact, then one-label wildcard), or NULL;
 * *matched (may be NULL) gets the table's lowercased name that matched,
 * valid while the table lives.  Names that fail mtls__sni_valid() match
 * nothing. */
mtls_ctx *mtls__hosts_find(const mtls_hosts *h, const char *name, size_t len,
                           const char **matched);
/* Whether an SNI value is a host name this library serves: 1 to 253 bytes
 * of dot-separated labels of 1 to 63 letters, digits, '-' or '_', no empty
 * label, no trailing dot.  Anything else is refused in the handshake. */
int mtls__sni_valid(const char *name, size_t len);
void mtls__hosts_free(mtls_hosts *h);
/* The distinct host contexts of the table: with out NULL, the number of
 * names (an upper bound); else fills out (up to max) and returns how many. */
size_t mtls__hosts_list(const mtls_hosts *h, mtls_ctx **out, size_t max);

/* ---- suites.c: cipher suites offered ------------------------------------ */

/* The secure default, 0-terminated, static: ECDHE with AES-GCM or
 * ChaCha20-Poly1305 on TLS 1.2 and the TLS 1.3 suites, those of them this
 * mbedTLS build has. */
const int *mtls__suites_default(void);
/* A colon- or comma-separated list of suite names (mbedTLS's or IANA's)
 * as a malloc'ed 0-terminated list of ids; the default suites of a
 * protocol version the list names none of are added.  An unknown name is
 * MTLS_ERR_INVALID_ARG with a message naming it. */
int mtls__suites_parse(const char *text, int **out, mtls_err *e);
/* Why a suite is weaker than the default ("no forward secrecy", "CBC, not
 * AEAD ..."), or NULL when it is not. */
const char *mtls__suite_weakness(int id);
/* A malloc'ed copy of a 0-terminated list, or NULL. */
int *mtls__suites_dup(const int *list);

/* ---- anchors.c: intermediates proven once, then trusted ----------------- */

typedef struct mtls_anchor mtls_anchor;

/* A snapshot's learned intermediates: a list of its own nodes in front of
 * the trust anchors (head->crt.next ... -> trust->ca), published whole. */
typedef struct mtls_anchors {
	pthread_mutex_t lock;             /* writers only */
	_Atomic(mtls_anchor *) head;      /* NULL: nothing learned */
	mtls_anchor *all;                 /* every node, for freeing */
	int count;
	time_t crl_until;                 /* the earliest CRL next_update */
} mtls_anchors;

/* What a handshake's verification saw of the peer's chain: the leaf's
 * issuer (a pointer valid during the handshake), when it may be learned. */
typedef struct mtls_anchor_seen {
	const mbedtls_x509_crt *crt;
	time_t until;
	int above;         /* a certificate above depth 1 was seen */
	int above_limits;  /* ... with a path length constraint */
	time_t above_until;
} mtls_anchor_seen;

void mtls__anchors_init(mtls_anchors *a, const mtls_crl *crl);
void mtls__anchors_free(mtls_anchors *a);
/* The list to verify against now (learned + roots), or NULL to use the
 * roots alone. */
mbedtls_x509_crt *mtls__anchors_chain(mtls_anchors *a, time_t now);
/* Whether a chain from mtls__anchors_chain() may still be used now. */
int mtls__anchors_current(const mbedtls_x509_crt *chain, time_t now);
/* Whether crt (same object or same DER) is in list. */
int mtls__anchors_has(const mbedtls_x509_crt *list, const mbedtls_x509_crt *crt);
/* From the verify callback, for each certificate (top of the chain first);
 * in_use is the anchor list of this handshake. */
void mtls__anchors_note(mtls_anchor_seen *seen, const mbedtls_x509_crt *crt,
                        int depth, const mbedtls_x509_crt *in_use);
/* After a handshake whose chain verified with no flag at all. */
void mtls__anchors_learn(mtls_anchors *a, mbedtls_x509_crt *roots,
                         const mtls_anchor_seen *seen, time_t now);
/* Learned so far (tests). */
int mtls__anchors_count(mtls_anchors *a);

/* ---- sigcache.c: verified certificate signatures (tuned build) --------- */

/* The tuned mbedTLS's signature hook (tuned/patches/0004) is there: only
 * then does a snapshot remember verified signatures.  CFLAGS=
 * -DMTLS_NO_SIGCACHE leaves it out (bench/levers.md: the "before" figure). */
#if defined(MTLS_MBEDTLS_TUNED) && defined(MBEDTLS_X509_CRT_SIG_HOOK) && \
    !defined(MTLS_NO_SIGCACHE)
#define MTLS_HAVE_SIGCACHE 1
#else
#define MTLS_HAVE_SIGCACHE 0
#endif

#if MTLS_HAVE_SIGCACHE
/* Entries per snapshot: far more than the returning clients of a busy
 * listener between two reloads; 72 KiB when full. */
#define MTLS_SIGCACHE_MAX 1024

/* A certificate's signature by a key: SHA-256 of the certificate's DER
 * and of the issuer's SubjectPublicKeyInfo, and when it stops counting. */
typedef struct mtls_sigkey {
	unsigned char child[32];
	unsigned char parent[32];
	time_t until;
} mtls_sigkey;

typedef struct mtls_sigcache {
	pthread_mutex_t lock;
	mtls_sigkey *e;      /* MTLS_SIGCACHE_MAX, from the first addition */
	size_t n, next;      /* entries used; the slot replaced next */
	atomic_ullong hits;  /* checks answered from here (tests, bench) */
	atomic_ullong checks; /* signatures mbedTLS really checked */
} mtls_sigcache;

/* An empty cache (the hook itself is installed by mtls__global_init). */
void mtls__sigcache_init(mtls_sigcache *sc);
void mtls__sigcache_free(mtls_sigcache *sc);
/* The key of child's signature by parent, bounded by both not_after dates
 * and crl_until; -1 when it cannot be made (then nothing is cached). */
int mtls__sigkey_make(const mbedtls_x509_crt *child,
                      const mbedtls_x509_crt *parent, time_t crl_until,
                      mtls_sigkey *k);
/* 1 when k was verified before and its entry lasts past now. */
int mtls__sigcache_has(mtls_sigcache *sc, const mtls_sigkey *k, time_t now);
/* Remembers k (a verified signature of a fully trusted handshake). */
void mtls__sigcache_add(mtls_sigcache *sc, const mtls_sigkey *k, time_t now);
/* Counts one signature check mbedTLS really made. */
void mtls__sigcache_checked(mtls_sigcache *sc);
/* Entries still valid at `when`; hits and real checks so far (tests). */
int mtls__sigcache_count(mtls_sigcache *sc, time_t when);
void mtls__sigcache_stats(mtls_sigcache *sc, unsigned long long *hits,
                          unsigned long long *checks);
/* conn.c: the hook mbedTLS calls (mbedtls_x509_crt_sig_hook_t). */
int mtls__sig_hook(int event, const mbedtls_x509_crt *child,
                   const mbedtls_x509_crt *parent);
#endif

/* ---- ticketkeys.c: session-ticket keys from a shared file -------------- */

#define MTLS_TKEY_FILE_LEN 80   /* bytes per key in the file (as nginx) */
#define MTLS_TKEYS_MAX 16
#define MTLS_TKEY_NAME 16
#define MTLS_TICKET_LIFETIME (12 * 3600)

/* A key file as read: immutable, shared by reference, wiped when freed. */
typedef struct mtls_tkfile {
	atomic_int refs;
	size_t n;
	unsigned char *keys; /* n * MTLS_TKEY_FILE_LEN */
	char *path;
} mtls_tkfile;

/* One snapshot's keys, derived from each file key and its policy. */
typedef struct mtls_tkey {
	unsigned char name[MTLS_TKEY_NAME];
	unsigned char aes[32];  /* the ticket body */
	unsigned char seal[32]; /* the TLS 1.3 identity seal (snap.c) */
} mtls_tkey;

typedef struct mtls_tkeys {
	size_t n; /* 0: not in use (per-snapshot random keys) */
	mtls_tkey *k;
} mtls_tkeys;

/* Reads and checks a key file (a warning when group/world readable). */
int mtls__tkfile_load(const char *path, const char *log_name,
                      mtls_tkfile **out, mtls_err *e);
mtls_tkfile *mtls__tkfile_ref(mtls_tkfile *f);
void mtls__tkfile_unref(mtls_tkfile *f);
struct mtls_snap;
/* SHA-256 over what admits a session on this snapshot. */
int mtls__tkeys_fingerprint(const mtls_ctx *ctx, const struct mtls_snap *s,
                            unsigned char fp[32]);
int mtls__tkeys_derive(const mtls_tkfile *f, const unsigned char fp[32],
                       mtls_tkeys *out);
void mtls__tkeys_free(mtls_tkeys *k);
/* mbedTLS ticket callbacks' bodies with the first key; parse takes the
 * key mtls__tkeys_find() chose by name (NULL when none: refused). */
int mtls__tkeys_write(const mtls_tkeys *k, const mbedtls_ssl_session *session,
                      unsigned char *start, const unsigned char *end,
                      size_t *tlen, uint32_t *lifetime);
const mtls_tkey *mtls__tkeys_find(const mtls_tkeys *k, const unsigned char *buf,
                                  size_t len);
int mtls__tkeys_parse(const mtls_tkey *key, mbedtls_ssl_session *session,
                      unsigned char *buf, size_t len);

/* ---- snap.c: a ready mbedTLS configuration ------------------------------ */

/* An immutable snapshot of a context's material and settings with its
 * mbedTLS configuration, shared by the connections made from it.  A reload
 * or setter replaces the context's snapshot; live connections keep theirs. */
typedef struct mtls_snap {
	atomic_int refs;
	mbedtls_ssl_config conf;
	mtls_cred *cred;
	mtls_trust *trust;
	mtls_crl *crl;
	mtls_verify_mode verify;
	int insecure;
	int tls_min, tls_max; /* the context's bounds (MTLS_TLS1_*) */
	char *server_name;
	char **alpn;          /* NULL-terminated, as mbedTLS keeps it */
	int *suites;          /* 0-terminated, as mbedTLS keeps it; NULL:
	                       * the static default */
	mtls_allow *allow;
	size_t n_allow;
	unsigned warn_days;   /* the context's expiry warning threshold */
	uint64_t id;          /* unique per process: what a client session
	                       * was verified under */
	/* Server resumption state.  It lives here, not on the context, so a
	 * session is only resumed under the very policy (CAs, CRL, verify
	 * mode, allow list) and host that admitted it: any change builds a
	 * new snapshot with fresh ticket keys and an empty cache. */
	int resumption;
	int psk_ke;           /* TLS 1.3 tickets may resume without (EC)DHE
	                       * (mtls_ctx_set_tls13_resumption_kex) */
	mtls_anchors anchors; /* learned intermediates: see anchors.c */
#if MTLS_HAVE_SIGCACHE
	mtls_sigcache sigcache; /* verified signatures: see sigcache.c */
#endif
#if defined(MBEDTLS_SSL_TICKET_C)
	int ticket_ready;
	mbedtls_ssl_ticket_context ticket;
#endif
#if MTLS_HAVE_TLS13
	unsigned char id_key[32]; /* seals the peer identity in TLS 1.3
	                           * tickets, which mbedTLS leaves out */
#endif
	mtls_tkeys tkeys;     /* from a shared key file: replace ticket and
	                       * id_key when n > 0 */
#if defined(MBEDTLS_SSL_CACHE_C)
	mbedtls_ssl_cache_context cache;
#endif
} mtls_snap;

/* mbedTLS's authmode for a verify mode. */
int mtls__authmode(mtls_verify_mode verify);
/* The context's current snapshot, built if needed, with a reference the
 * caller drops with mtls__snap_unref. */
int mtls__snap_get(mtls_ctx *ctx, mtls_snap **out, mtls_err *e);
void mtls__snap_unref(mtls_snap *s);
/* Drops the context's snapshot after a change (caller holds ctx->lock). */
void mtls__snap_invalidate(mtls_ctx *ctx);

/* ---- conn.c ------------------------------------------------------------- */

/* Server session callbacks: the snapshot whose resumption state serves
 * the handshake running on this thread (the SNI host's, else the
 * listener's), or NULL outside one; and the note that `by` resumed it. */
mtls_snap *mtls__hs_judge(void);
void mtls__mark_resumed(const mtls_snap *by);
/* TLS 1.3 server tickets: the peer identity of the handshake on this
 * thread (leaf DER and 5 bytes of verification outcome; -1 when there is
 * none to keep), and its restoration when a ticket is opened (der NULL
 * forgets it; < 0 if it cannot be restored). */
int mtls__hs_identity(const unsigned char **der, size_t *len,
                      unsigned char meta[5]);
int mtls__hs_restore_identity(const unsigned char *der, size_t len,
                              const unsigned char meta[5]);
/* The negotiated version of the handshake on this thread, or 0. */
int mtls__hs_version(void);

/* Certificates in the chain the last full handshake verified, from the
 * leaf to the anchor it stopped at (tests). */
int mtls__conn_chain_len(const mtls_conn *c);

/* hosts.c: whether the version this handshake negotiated (decided from
 * the ClientHello before the SNI callback runs) is within the SNI host's
 * own bounds; otherwise sends a protocol_version alert and fails. */
int mtls__host_version_check(mbedtls_ssl_context *ssl, const mtls_snap *hs,
                             const char *host, mtls_err *e);

/* The SNI callback of every server configuration. */
int mtls__sni_cb(void *p, mbedtls_ssl_context *ssl, const unsigned char *name,
                 size_t len);
#if MTLS_HAVE_TLS13
/* Runs once per ClientHello a server has parsed (mbedTLS's certificate
 * callback): a second ClientHello must carry a server name iff the first
 * did. */
int mtls__hello_cb(mbedtls_ssl_context *ssl);
#endif

/* ---- ctx.c -------------------------------------------------------------- */

/* Counts one handshake on ctx: ok (resumed or not), or failed for reason. */
void mtls__ctx_count(mtls_ctx *ctx, int ok, int resumed, mtls_reason reason);
/* The expiry check of the material in hand (a snapshot's, or the
 * context's): warns once per item within warn_days of now; returns the
 * number of items within the window or past. */
int mtls__expiry_check(const mtls_cred *cred, const mtls_trust *trust,
                       const mtls_crl *crl, unsigned warn_days,
                       const char *log_name, time_t now);
/* From mtls_handshake: runs mtls__expiry_check on s at most once an hour
 * per context (a compare-and-swap decides who runs it). */
void mtls__expiry_tick(mtls_ctx *ctx, const mtls_snap *s);

mtls_ctx *mtls__ctx_ref(mtls_ctx *ctx);
/* Caller holds ctx->lock: a context sharing another's trust takes the
 * owner's current CAs and CRL (dropping its snapshot) when they changed. */
void mtls__ctx_follow_trust(mtls_ctx *ctx);
void mtls__ctx_unref(mtls_ctx *ctx);
/* Client role: remember / re-offer this upstream's session.  A session
 * is only offered again for the same target name, under the same
 * snapshot (trust, settings) that verified the upstream. */
void mtls__ctx_save_session(mtls_ctx *ctx, const mbedtls_ssl_context *ssl,
                            const char *target, uint64_t snap_id);
void mtls__ctx_offer_session(mtls_ctx *ctx, mbedtls_ssl_context *ssl,
                             const char *target, uint64_t snap_id);

struct mtls_ctx {
	atomic_int refs;
	pthread_mutex_t lock; /* guards material swaps, snap, session */
	mtls_role role;
	char name[MTLS_NAME_MAX];
	mtls_err err;      /* last failure; err.code == 0 when none */
	unsigned warn_days;
	char *password;    /* wiped on replace/free */

	/* sources, kept for reload */
	char *cert_path, *key_path;
	char *ca_source, *crl_path;

	/* parsed material, each immutable and shared by reference */
	mtls_cred *cred;
	mtls_trust *trust;
	mtls_crl *crl;

	/* connection settings */
	mtls_verify_mode verify;
	int verify_set;
	int insecure;
	char *server_name;
	int tls_min, tls_max;
	char *alpn;
	int *suites;       /* mtls_ctx_set_ciphersuites(); NULL: default */
	int resumption;
	int psk_ke;        /* mtls_ctx_set_tls13_resumption_kex() */
	mtls_tkfile *tkfile; /* mtls_ctx_set_ticket_key_file(), re-read by
	                      * mtls_ctx_reload() */
	mtls_allow *allow;
	size_t n_allow;
	mtls_hosts *hosts;
	atomic_int unknown_host; /* mtls_sni_policy; set while handshakes read it */

	uint64_t trust_gen;   /* bumped whenever trust or crl change */
	mtls_ctx *trust_src;  /* mtls_ctx_share_trust: the owner followed */
	uint64_t trust_src_gen; /* the owner's trust_gen last taken */

	mtls_snap *snap; /* current snapshot, NULL until needed */

	/* monitoring: relaxed atomics, no lock (see mtls_ctx_stats) */
	atomic_ullong st_ok, st_resumed;
	atomic_ullong st_failed[MTLS_REASON_COUNT];
	atomic_llong expiry_next; /* next automatic expiry check (time_t) */

	/* client resumption: the last session, and what verified it */
	int has_session;
	mbedtls_ssl_session session;
	char *session_target;
	uint64_t session_snap;
};

#endif
