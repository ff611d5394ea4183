#!/usr/bin/env python3
"""idle_sites.py - the heap a set of idle connections holds, by category and by site.

  idle_sites.py BEFORE.ms AFTER.ms N

BEFORE and AFTER are massif detailed snapshots (vgdb detailed_snapshot) of one process,
without and with N idle connections (bench/idle_mem.sh makes them).  Every allocation stack of
AFTER minus BEFORE is put in one category by the functions on it (first rule that matches, innermost
frame first); prints bytes per connection by category, then the largest sites.
"""
import collections, re, sys

NODE = re.compile(r'^( *)n(\d+): (\d+) (.*)$')

# (category, substrings of a frame's function); the first frame (innermost first) that matches any
# rule decides.
RULES = [
    ("proxy relay buffers", ["pxy_buf_take"]),
    ("mbedTLS record buffers (in + out)", ["BIG:mbedtls_ssl_setup", "BIG:ssl_handshake_init"]),
    ("peer certificate chain (parsed, kept by the session)",
     ["mbedtls_x509_crt_parse_der", "x509_crt_parse_der", "mbedtls_x509_crt_parse",
      "mbedtls_x509_get_name", "x509_get_", "mbedtls_ssl_parse_certificate",
      "mbedtls_ssl_tls13_process_certificate"]),
    ("PSA key slots / operations", ["psa_"]),
    ("transforms: cipher contexts (AES/GCM)",
     ["mbedtls_cipher_setup", "mbedtls_cipher_setkey", "mbedtls_gcm_", "mbedtls_aes_", "mbedtls_ccm_",
      "mbedtls_chachapoly", "mbedtls_md_setup"]),
    ("mtls: peer text (mtls_peer_info)", ["mtls__peer_info_new", "peerinfo"]),
    ("mtls: identity", ["decide_identity"]),
    ("session (mbedtls_ssl_session)", ["session_negotiate", "ssl_session_copy", "mbedtls_ssl_session"]),
    ("transforms: mbedtls_ssl_transform", ["transform"]),
    ("mbedtls_ssl_setup: session, transform, handshake structs",
     ["ssl_handshake_init", "mbedtls_ssl_setup"]),
    ("mbedTLS handshake steps (peer chain head, session fields)", ["mbedtls_ssl_handshake_step",
                                                                  "handshake_server_step"]),
    ("mtls_conn (library struct, mbedtls_ssl_context inside)", ["mtls_conn_new"]),
    ("mtls: other", ["mtls_", "mtls__"]),
    ("proxy: struct conn", ["pxy_listener_event", "pxy_conn_start"]),
    ("proxy: other", ["pxy_", "main"]),
]


def parse(path):
    """[(bytes, [frame, ...] innermost first)] for the leaves of the heap tree, and heap/extra B."""
    leaves, stack, heap, extra = [], [], 0, 0
    in_tree = False
    with open(path) as f:
        for line in f:
            line = line.rstrip('\n')
            if line.startswith('mem_heap_B='):
                heap = int(line.split('=')[1])
            elif line.startswith('mem_heap_extra_B='):
                extra = int(line.split('=')[1])
            elif line.startswith('heap_tree='):
                in_tree = line != 'heap_tree=empty'
                continue
            if not in_tree:
                continue
            m = NODE.match(line)
            if not m:
                continue
            depth, kids, size, what = len(m.group(1)), int(m.group(2)), int(m.group(3)), m.group(4)
            del stack[depth:]
            fn = what
            mm = re.match(r'0x[0-9A-Fa-f]+: (\S+)', what)
            if mm:
                fn = mm.group(1)
            stack.append(fn)
            if kids == 0 and depth > 0:
                leaves.append((size, list(reversed(stack[1:]))[::-1]))
    return leaves, heap, extra


def classify(frames, per_conn):
    """per_conn: the leaf's bytes per connection; "BIG:" keys match only from 4,000 bytes."""
    for fr in frames:
        for cat, keys in RULES:
            for k in keys:
                if k.startswith("BIG:"):
                    if per_conn >= 4000 and k[4:] in fr:
                        return cat
                elif k in fr:
                    return cat
    return "other (" + (frames[0] if frames else "?") + ")"


def site(frames):
    """The innermost known frame and its three callers, as text."""
    known = [fr for fr in frames if not re.match(r'(\?\?\?|0x)', fr)]
    known = [fr for i, fr in enumerate(known) if i == 0 or fr != known[i - 1]]  # inlined twins
    return " <- ".join(known[:4]) if known else "?"


def main():
    before, h0, x0 = parse(sys.argv[1])
    after, h1, x1 = parse(sys.argv[2])
    n = int(sys.argv[3])
    cats, sites = collections.Counter(), collections.Counter()
    for sign, leaves in ((-1, before), (1, after)):
        for size, frames in leaves:
            # frames: innermost first (massif leaves out malloc/calloc themselves)
            cats[classify(frames, size / n)] += sign * size
            sites[site(frames)] += sign * size
    total = sum(cats.values())
    for cat, b in sorted(cats.items(), key=lambda kv: -kv[1]):
        if abs(b) / n >= 1:
            print(f"  {b / n:9.0f}  {cat}")
    print(f"  {total / n:9.0f}  total requested (mem_heap_B {(h1 - h0) / n:.0f})")
    print(f"  {(x1 - x0) / n:9.0f}  heap administration (massif: 8 B per block; glibc rounds to 16)")
    print("  largest sites (bytes per connection):")
    for s, b in sorted(sites.items(), key=lambda kv: -kv[1])[:14]:
        if b / n >= 8:
            print(f"  {b / n:9.0f}  {s}")


if __name__ == '__main__':
    main()
