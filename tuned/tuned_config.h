/*
 * mtls's tuned mbedTLS configuration (make MBEDTLS=tuned).
 *
 * scripts/mbedtls-tuned.sh appends this block to the source package's
 * include/mbedtls/mbedtls_config.h (mbedTLS's default configuration) before
 * building, so the installed header is the one configuration both the
 * static libraries and everything compiled against them see.
 *
 * Every change below is measured (figures and commands: bench/tuned.md);
 * options that measured no gain are not here.
 */

/* ---- as Debian's package (debian/rules), what mtls needs ---------------- */
/* One context and its snapshots are shared by threads (mtls_ctx_* thread
 * notes); the session cache and ticket keys need the mutexes. */
#define MBEDTLS_THREADING_C
#define MBEDTLS_THREADING_PTHREAD

/* ---- memory ------------------------------------------------------------- */
/* The outgoing record buffer: 16 KiB -> 4 KiB per connection, 12 KiB less per
 * idle connection (bench/tuned.md; the price: 11-14 % of the bulk rate per CPU
 * second, four times the records).  mbedtls_ssl_write() then sends at most
 * 4096 bytes of plaintext per record (mtls_write() returns the partial count).
 * IN_CONTENT_LEN stays 16384: a peer may send 16 KiB records and a server has
 * no standard way to ask for less (only a client can negotiate
 * max_fragment_length).  Not MBEDTLS_SSL_VARIABLE_BUFFER_LENGTH: with this
 * line it would shrink the input buffer to 4 KiB after a TLS 1.2 handshake. */
#define MBEDTLS_SSL_OUT_CONTENT_LEN 4096

/* ---- ECDHE -------------------------------------------------------------- */
/* X25519 (OpenSSL's, curl's and nginx's first key share) through Project
 * Everest's verified HACL* Curve25519 (3rdparty/everest, Apache-2.0 only)
 * instead of the generic Montgomery ladder: mbedTLS routes the mbedtls_ecdh_*
 * API to it (TLS 1.2 ECDHE, the PSA shared secret), tuned/patches/0005 the
 * TLS 1.3 key share's public key.  Per X25519 key pair + shared secret:
 * figures in bench/levers.md ("ECDHE (X25519)").  P-256 is unchanged. */
#define MBEDTLS_ECDH_VARIANT_EVEREST_ENABLED

/* Not changed, measured (bench/levers.md "3. memory", bench/idle_mem.sh):
 * MBEDTLS_SSL_KEEP_PEER_CERTIFICATE stays on.  The parsed peer chain it keeps
 * costs 3,208 bytes per idle server connection (a P-256 leaf and its
 * intermediate), but libmtls reads it after the handshake: the
 * mtls_conn_peer_cert_der() chain, mtls_verify_peer()'s mtls_peer, and the
 * re-judging of a resumed TLS 1.2 session's leaf (whose ticket or cache
 * entry would otherwise hold only a digest of it).  Turning it off needs
 * the library to keep the DER itself and to carry the TLS 1.2 identity in
 * its own ticket, as it does for TLS 1.3: not done.
 * The TLS 1.3 handshake state that 3.6.6 keeps after the handshake (6.2 KB
 * per connection) is freed by tuned/patches/0008, not by an option. */

/* ---- no debug layer ------------------------------------------------------ */
/* libmtls never sets a debug callback (mbedtls_ssl_conf_dbg), yet with
 * MBEDTLS_DEBUG_C every record still pays mbedTLS's debug calls: -6.9 %
 * instructions per MiB relayed by mtls-proxy without it (callgrind,
 * bench/bulk_cg.sh -n 1: 3,955,026 -> 3,684,094 per MiB, TLS 1.2). */
#undef MBEDTLS_DEBUG_C
