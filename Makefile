# mtls - mutual TLS for C servers and proxies, over mbedTLS.
#
#   make                  build libmtls.a, libmtls.so and the tools into $(BUILD)
#   make demo             the main job: a demo on a generated PKI
#   make check            the test suite (installs what is missing first)
#   make check-mbedtls36  the suite against mbedTLS 3.6 LTS (fetched locally)
#   make check-asan       the suite under ASan + UBSan
#   make check-tuned      the suite on a tuned static mbedTLS 3.6 (MBEDTLS=tuned)
#   make check-valgrind   the suite under valgrind memcheck: the C test
#                         programs, mtls-check and mtls-proxy (tests/run.sh)
#   make install PREFIX=/usr/local DESTDIR=
#   make deb              Debian packages: build, lintian, install, try, purge
#
# Variables: MBEDTLS_PREFIX=/path (an mbedTLS install: include/ and lib/),
# MBEDTLS=tuned (static mbedTLS 3.6 built from source, scripts/mbedtls-tuned.sh),
# BUILD=dir (default build), SANITIZE=1, CC.

VERSION      := 0.1.0
SOVERSION    := 0
PREFIX       ?= /usr/local
LIBDIR       ?= $(PREFIX)/lib
INCLUDEDIR   ?= $(PREFIX)/include
BINDIR       ?= $(PREFIX)/bin
MANDIR       ?= $(PREFIX)/share/man
BUILD        ?= build
CC           ?= cc

# ---- mbedTLS: MBEDTLS_PREFIX, else pkg-config (3.x ships .pc), else default
MULTIARCH := $(shell $(CC) -print-multiarch 2>/dev/null)
ifdef MBEDTLS_PREFIX
MBEDTLS_CFLAGS := -I$(MBEDTLS_PREFIX)/include
MBEDTLS_LIBDIRS := $(wildcard $(MBEDTLS_PREFIX)/lib/$(MULTIARCH) $(MBEDTLS_PREFIX)/lib)
MBEDTLS_LIBS := $(foreach d,$(MBEDTLS_LIBDIRS),-L$(d) -Wl,-rpath,$(abspath $(d))) \
                -lmbedtls -lmbedx509 -lmbedcrypto
else ifeq ($(shell pkg-config --exists mbedtls 2>/dev/null && echo y),y)
MBEDTLS_CFLAGS := $(shell pkg-config --cflags mbedtls)
MBEDTLS_LIBS := $(shell pkg-config --libs mbedtls mbedx509 mbedcrypto)
else
MBEDTLS_CFLAGS :=
MBEDTLS_LIBS := -lmbedtls -lmbedx509 -lmbedcrypto
endif

# ---- MBEDTLS=tuned -- BEGIN tuned block -------------------------------------
# A static mbedTLS 3.6 built from Debian's source package with our config and
# flags (scripts/mbedtls-tuned.sh, tuned/; figures in bench/tuned.md), linked
# into libmtls.so (which then exports only mtls_*) and every program.
# Default build directory build/tuned; mtls_mbedtls_version() says "(tuned)".
ifeq ($(MBEDTLS),tuned)
TUNED        ?= $(CURDIR)/.deps/mbedtls-tuned
TUNED_STAMP  := $(TUNED)/.stamp
ifeq ($(origin BUILD),file)
BUILD        := build/tuned
endif
MBEDTLS_CFLAGS := -I$(TUNED)/include -DMTLS_MBEDTLS_TUNED
MBEDTLS_LIBS := $(TUNED)/lib/libmbedtls.a $(TUNED)/lib/libmbedx509.a \
                $(TUNED)/lib/libmbedcrypto.a \
                -Wl,--exclude-libs,libmbedtls.a:libmbedx509.a:libmbedcrypto.a
# The script rebuilds only when tuned/, its patches or the script changed.
$(TUNED_STAMP): scripts/mbedtls-tuned.sh tuned/tuned_config.h $(wildcard tuned/patches/*)
	@scripts/mbedtls-tuned.sh $(TUNED)
endif
# ---- END tuned block --------------------------------------------------------

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
           -Wmissing-prototypes -Wformat=2 -Wvla
CSTD    := -std=c11 -D_DEFAULT_SOURCE -D_GNU_SOURCE
OPT     ?= -O2 -g
ifeq ($(SANITIZE),1)
OPT     := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
           -fno-sanitize-recover=all
LDSAN   := -fsanitize=address,undefined
endif
ifeq ($(FUZZ),1)
OPT     += -fsanitize=fuzzer-no-link
endif
CFLAGS_ALL := $(CSTD) $(OPT) $(WARN) -Iinclude $(MBEDTLS_CFLAGS) $(CFLAGS)
LIB_CFLAGS := $(CFLAGS_ALL) -fPIC -fvisibility=hidden -DMTLS_BUILDING -Ilib
LDLIBS_ALL := $(MBEDTLS_LIBS) -lpthread $(LDSAN) $(LDFLAGS)

LIB_SRC := $(wildcard lib/*.c)
LIB_OBJ := $(LIB_SRC:lib/%.c=$(BUILD)/lib/%.o)
STATIC  := $(BUILD)/libmtls.a
SONAME  := libmtls.so.$(SOVERSION)
SHARED  := $(BUILD)/libmtls.so.$(VERSION)
TOOLS   := $(BUILD)/mtls-check
EXAMPLES := $(patsubst examples/%.c,$(BUILD)/examples/%,$(wildcard examples/*.c))

TEST_SRC := $(wildcard tests/test_*.c)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
TEST_CFLAGS := $(CSTD) $(OPT) $(WARN) -Iinclude -Ilib -Itests \
               $(MBEDTLS_CFLAGS) $(CFLAGS)

.PHONY: all lib tools examples lint fuzz fuzz-bins demo check check-mbedtls36 check-asan check-valgrind \
        install uninstall deps clean tests
all: lib tools examples

lib: $(STATIC) $(BUILD)/libmtls.so

$(BUILD)/lib/%.o: lib/%.c lib/*.h include/mtls.h
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	@$(CC) $(LIB_CFLAGS) -c -o $@ $<

$(STATIC): $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

# Symbol versions (docs/versioning.md): lib/libmtls.map lists every
# exported function under the node of the release that added it.
LIB_MAP := lib/libmtls.map

$(SHARED): $(LIB_OBJ) $(LIB_MAP)
	$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--no-undefined \
	    -Wl,--version-script=$(LIB_MAP) -o $@ $(LIB_OBJ) $(LDLIBS_ALL)

$(BUILD)/libmtls.so: $(SHARED)
	ln -sf libmtls.so.$(VERSION) $(BUILD)/$(SONAME)
	ln -sf $(SONAME) $@

tools: $(TOOLS)

$(BUILD)/mtls-check: tools/mtls-check.c tools/connect.c tools/connect.h $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Ilib -o $@ $(filter %.c,$^) $(STATIC) $(LDLIBS_ALL)

examples: $(EXAMPLES)

# Examples build against the public header only, as a user's program would.
$(BUILD)/examples/%: examples/%.c $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(OPT) $(WARN) -Iinclude $(MBEDTLS_CFLAGS) -o $@ $< \
	    $(STATIC) $(LDLIBS_ALL)

# ---- mtls-proxy (examples/mtls-proxy/) -- BEGIN mtls-proxy block ----------
# The deployable proxy: several sources, public header only, like examples.
PROXY     := $(BUILD)/mtls-proxy
PROXY_SRC := $(wildcard examples/mtls-proxy/*.c)
PROXY_HDR := $(wildcard examples/mtls-proxy/*.h)

$(PROXY): $(PROXY_SRC) $(PROXY_HDR) $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(OPT) $(WARN) -Iinclude $(MBEDTLS_CFLAGS) -o $@ \
	    $(PROXY_SRC) $(STATIC) $(LDLIBS_ALL)

examples: $(PROXY)
tests: $(PROXY)
install: install-mtls-proxy
FORCE:

uninstall: uninstall-mtls-proxy
.PHONY: install-mtls-proxy uninstall-mtls-proxy

install-mtls-proxy: $(PROXY)
	install -d $(DESTDIR)$(BINDIR)
	install -m 0755 $(PROXY) $(DESTDIR)$(BINDIR)/mtls-proxy

uninstall-mtls-proxy:
	rm -f $(DESTDIR)$(BINDIR)/mtls-proxy
# ---- END mtls-proxy block ---------------------------------------------------

# ---- bench (bench/) -- BEGIN bench block ------------------------------------
# make bench        full run: mtls-proxy (each build of BENCH_BUILDS), nginx stream,
#                   HAProxy, stunnel, lighttpd (mod_mbedtls); server CPU per operation
#                   (primary, interleaved repetitions), callgrind instructions per
#                   operation, memory per idle connection; writes bench/RESULTS.md
#                   and bench/results.svg (about 15 minutes on 2 cores)
# make bench-smoke  CI smoke: each server starts, a few handshakes succeed,
#                   the table is written; non-zero on any failure
# BENCH_BUILDS="build build/mbedtls36 build/tuned"  mtls-proxy builds compared
#                   (default "build build/mbedtls36"; smoke: "build"); a directory
#                   other than these two is used as built and skipped if absent.
# BENCH_QUICK=1     one short repetition, fewer callgrind operations (minutes).
BENCH_BINS := $(BUILD)/bench/raw_server $(BUILD)/bench/mtls_server \
              $(BUILD)/bench/backend $(BUILD)/bench/loadgen $(BUILD)/bench/scale \
              $(BUILD)/bench/ecp_tables
.PHONY: bench bench-smoke bench-bins

bench-bins: $(BENCH_BINS)

$(BUILD)/bench/raw_server: bench/raw_server.c bench/serve.h
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(OPT) $(WARN) $(MBEDTLS_CFLAGS) -o $@ $< $(LDLIBS_ALL)

$(BUILD)/bench/mtls_server: bench/mtls_server.c bench/serve.h $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(OPT) $(WARN) -Iinclude -o $@ $< $(STATIC) $(LDLIBS_ALL)

$(BUILD)/bench/backend: bench/backend.c bench/serve.h
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(OPT) $(WARN) -o $@ $<

$(BUILD)/bench/scale: bench/scale.c $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(OPT) $(WARN) -Iinclude -o $@ $< $(STATIC) $(LDLIBS_ALL)

$(BUILD)/bench/ecp_tables: bench/ecp_tables.c
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(OPT) $(WARN) $(MBEDTLS_CFLAGS) -o $@ $< $(LDLIBS_ALL)

# The load generator uses the system OpenSSL (libssl-dev), not mbedTLS.
$(BUILD)/bench/loadgen: bench/loadgen.c
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(OPT) $(WARN) -o $@ $< -lssl -lcrypto

bench:
	@BENCH_BUILDS="$(BENCH_BUILDS)" BENCH_QUICK="$(BENCH_QUICK)" bench/run $(BENCH_ARGS)

bench-smoke:
	@BENCH_BUILDS="$(BENCH_BUILDS)" bench/run --smoke $(BENCH_ARGS)
# ---- END bench block --------------------------------------------------------

# ---- tests ----------------------------------------------------------------
$(BUILD)/tests/%: tests/%.c tests/*.h $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -o $@ $< $(STATIC) -lcmocka $(LDLIBS_ALL)

# AES-GCM checked against OpenSSL's libcrypto (libssl-dev): the tuned build's
# tuned/patches/0007, and mbedTLS's own code on the other builds.
$(BUILD)/tests/test_gcm_tuned: tests/test_gcm_tuned.c $(STATIC) $(TUNED_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -o $@ $< $(STATIC) -lcmocka $(LDLIBS_ALL) -lcrypto

# Unit tests of the proxy's private modules include their source.
$(BUILD)/tests/test_proxy_timer: examples/mtls-proxy/timer.c \
                                 examples/mtls-proxy/timer.h

# The target of the adversarial tests (tests/adversary/): a program on the
# public API, not a cmocka test.  ADV_CFLAGS=-DADV_OLD_API builds it against
# a library older than mtls_conn_host() (tests/adv_server.c).
ADV_SERVER := $(BUILD)/tests/adv_server
$(ADV_SERVER): tests/adv_server.c include/mtls.h $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(OPT) $(WARN) -Iinclude $(ADV_CFLAGS) -o $@ $< \
	    $(STATIC) $(LDLIBS_ALL)

tests: lib $(TEST_BIN) $(TOOLS) $(EXAMPLES) $(ADV_SERVER) $(BUILD)/tests/resolve_shim.so

# Test-only getaddrinfo override (tests/resolve_shim.c), preloaded into the
# proxy; built without sanitizers, which want to come first in the process.
$(BUILD)/tests/resolve_shim.so: tests/resolve_shim.c
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) -O2 $(WARN) -shared -fPIC -o $@ $< -ldl

deps:
	@scripts/deps.sh

check: deps
	@$(MAKE) --no-print-directory tests
	@tests/run.sh $(BUILD)

MBEDTLS36 := $(CURDIR)/.deps/mbedtls-3.6
check-mbedtls36: deps
	@scripts/mbedtls36.sh $(MBEDTLS36)
	@$(MAKE) --no-print-directory BUILD=build/mbedtls36 \
	    MBEDTLS_PREFIX=$(MBEDTLS36)/usr tests
	@MBEDTLS_PREFIX=$(MBEDTLS36)/usr tests/run.sh build/mbedtls36

# ---- tuned block (2) ----
ifeq ($(MBEDTLS),tuned)
$(LIB_OBJ) $(BUILD)/bench/raw_server $(BUILD)/bench/ecp_tables: $(TUNED_STAMP)
# bench/tuned.sh: one per variant of the tuned build (bench/tuned.md)
$(BUILD)/bench/tuned_bench: bench/tuned_bench.c $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(OPT) $(WARN) -Iinclude $(MBEDTLS_CFLAGS) -o $@ $< \
	    $(STATIC) $(LDLIBS_ALL)
endif
.PHONY: check-tuned
check-tuned: deps
	@$(MAKE) --no-print-directory MBEDTLS=tuned tests
	@MBEDTLS=tuned tests/run.sh build/tuned
# ---- END tuned block (2) ----

check-asan: deps
	@$(MAKE) --no-print-directory BUILD=build/asan SANITIZE=1 tests
	@ASAN_OPTIONS=detect_leaks=1 SANITIZE=1 tests/run.sh build/asan

check-valgrind: deps
	@$(MAKE) --no-print-directory tests
	@MTLS_TEST_VALGRIND=1 MTLS_TEST_WRAPPER="valgrind -q --error-exitcode=99 \
	    --leak-check=full --errors-for-leak-kinds=definite,indirect" \
	    tests/run.sh $(BUILD)

# ---- static analysis --------------------------------------------------------
lint: lint-man
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability,performance \
	    --std=c11 --inline-suppr -Iinclude -Ilib \
	    --suppress=missingIncludeSystem lib/*.c tools/*.c examples/*.c \
	    examples/mtls-proxy/*.c
	clang-tidy --quiet lib/*.c tools/*.c -- $(CSTD) -Iinclude -Ilib \
	    -DMTLS_BUILDING $(MBEDTLS_CFLAGS)
	clang-tidy --quiet examples/mtls-proxy/*.c -- $(CSTD) -Iinclude \
	    -Iexamples/mtls-proxy

# ---- fuzzing (clang's libFuzzer) --------------------------------------------
FUZZ_SECONDS ?= 60
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)

# Targets on mtls-proxy code also build the proxy sources they test, with
# the same flags: the rule compiles every .c prerequisite.
FUZZ_PROXY := $(BUILD)/fuzz/fuzz_config $(BUILD)/fuzz/fuzz_pp2
$(BUILD)/fuzz/fuzz_config: examples/mtls-proxy/config.c
$(BUILD)/fuzz/fuzz_pp2: examples/mtls-proxy/proxyproto.c
$(FUZZ_PROXY): $(PROXY_HDR)
$(FUZZ_PROXY): FUZZ_INC := -Iexamples/mtls-proxy

# Targets on the library's internal functions (hidden in libmtls.so, but
# visible in the static library they link) include its private headers.
FUZZ_INTERNAL := $(BUILD)/fuzz/fuzz_hosts $(BUILD)/fuzz/fuzz_allow
$(FUZZ_INTERNAL): lib/internal.h lib/compat.h
$(FUZZ_INTERNAL): FUZZ_INC := -Ilib

$(BUILD)/fuzz/%: tests/fuzz/%.c $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(OPT) -fsanitize=fuzzer $(WARN) -Iinclude $(FUZZ_INC) \
	    $(MBEDTLS_CFLAGS) -o $@ $(filter %.c,$^) $(STATIC) $(LDLIBS_ALL)

fuzz-bins: $(FUZZ_BIN)

fuzz: deps
	@$(MAKE) --no-print-directory BUILD=build/fuzz CC=clang SANITIZE=1 \
	    FUZZ=1 fuzz-bins
	@tests/fuzz/run.sh build/fuzz $(FUZZ_SECONDS)

demo: deps
	@$(MAKE) --no-print-directory all
	@scripts/demo.sh $(BUILD)

# ---- CMake package, ldconfig -- BEGIN packaging block ---------------------
# find_package(mtls CONFIG): $(LIBDIR)/cmake/mtls/mtls{Config,ConfigVersion}.cmake
# with the imported targets mtls::mtls (libmtls.so) and mtls::mtls_static
# (libmtls.a + the mbedTLS libraries it was built with).  The include
# directory is written relative to the file, so the install relocates.
CMAKE_PKGDIR := $(LIBDIR)/cmake/mtls
CMAKE_FILES  := $(BUILD)/cmake/mtlsConfig.cmake $(BUILD)/cmake/mtlsConfigVersion.cmake
empty :=
space := $(empty) $(empty)

$(BUILD)/cmake/%.cmake: cmake/%.cmake.in FORCE
	@mkdir -p $(dir $@)
	sed -e 's|@VERSION@|$(VERSION)|g' \
	    -e 's|@VERSION_MAJOR@|$(word 1,$(subst ., ,$(VERSION)))|g' \
	    -e 's|@SOVERSION@|$(SOVERSION)|g' \
	    -e 's|@CMAKE_REL_INCLUDEDIR@|$(shell realpath -m --relative-to=$(CMAKE_PKGDIR) $(INCLUDEDIR))|g' \
	    -e 's|@CMAKE_MBEDTLS_LIBS@|$(subst $(space),;,$(strip $(MBEDTLS_LIBS)))|g' \
	    -e 's|@SIZEOF_VOID_P@|$(shell echo | $(CC) -dM -E - | awk '/__SIZEOF_POINTER__/ { print $$3 }')|g' \
	    $< > $@

.PHONY: install-cmake uninstall-cmake
install: install-cmake
uninstall: uninstall-cmake
install-cmake: $(CMAKE_FILES)
	install -d $(DESTDIR)$(CMAKE_PKGDIR)
	install -m 0644 $(CMAKE_FILES) $(DESTDIR)$(CMAKE_PKGDIR)/

uninstall-cmake:
	rm -f $(DESTDIR)$(CMAKE_PKGDIR)/mtlsConfig.cmake \
	    $(DESTDIR)$(CMAKE_PKGDIR)/mtlsConfigVersion.cmake

# Run by "make install" once the shared library is in place: ldconfig when
# root installs into the live system (empty DESTDIR), otherwise a note.
LDCONFIG ?= ldconfig
INSTALL_LDCONFIG = \
	if [ -n "$(DESTDIR)" ]; then \
	    echo "note: DESTDIR install: ldconfig not run (the target system runs it)"; \
	elif [ "$$(id -u)" != 0 ]; then \
	    echo "note: not root, ldconfig not run: for a system LIBDIR run 'ldconfig' as root," \
	         "else use LD_LIBRARY_PATH=$(LIBDIR) or -Wl,-rpath,$(LIBDIR)"; \
	elif ! $(LDCONFIG); then \
	    echo "warning: $(LDCONFIG) failed: run it again as root"; \
	elif ! $(LDCONFIG) -p | grep -qF " => $(LIBDIR)/$(SONAME)"; then \
	    echo "note: ldconfig run, but $(LIBDIR) is not in the dynamic linker's search path:" \
	         "add it to /etc/ld.so.conf.d/ and run ldconfig, or use -Wl,-rpath,$(LIBDIR)"; \
	else \
	    echo "ldconfig: $(SONAME) is in the dynamic linker's cache"; \
	fi

# Debian packages (debian/), built in a temporary copy, checked with
# lintian, installed, used by tests/consumer/ and purged (scripts/deb.sh).
.PHONY: deb
deb:
	@scripts/deb.sh
# ---- END packaging block ----------------------------------------------------

# ---- install --------------------------------------------------------------
# Regenerated on every install: PREFIX may differ from the last one.  Paths
# under PREFIX are written relative to ${prefix}, so the file relocates.
$(BUILD)/mtls.pc: pkgconfig/mtls.pc.in FORCE
	@mkdir -p $(dir $@)
	sed -e 's|@PREFIX@|$(PREFIX)|g' \
	    -e 's|@LIBDIR@|$(patsubst $(PREFIX)/%,$${prefix}/%,$(LIBDIR))|g' \
	    -e 's|@INCLUDEDIR@|$(patsubst $(PREFIX)/%,$${prefix}/%,$(INCLUDEDIR))|g' \
	    -e 's|@VERSION@|$(VERSION)|g' \
	    -e 's|@MBEDTLS_LIBS@|$(MBEDTLS_LIBS)|g' \
	    -e 's|@MBEDTLS_CFLAGS@|$(MBEDTLS_CFLAGS)|g' $< > $@

install: all $(BUILD)/mtls.pc
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(LIBDIR)/pkgconfig \
	    $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(BINDIR)
	install -m 0644 include/mtls.h $(DESTDIR)$(INCLUDEDIR)/mtls.h
	install -m 0644 $(STATIC) $(DESTDIR)$(LIBDIR)/libmtls.a
	install -m 0755 $(SHARED) $(DESTDIR)$(LIBDIR)/libmtls.so.$(VERSION)
	ln -sf libmtls.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libmtls.so
	@$(INSTALL_LDCONFIG)
	install -m 0644 $(BUILD)/mtls.pc $(DESTDIR)$(LIBDIR)/pkgconfig/mtls.pc
	install -m 0755 $(TOOLS) $(DESTDIR)$(BINDIR)/

FORCE:

uninstall:
	rm -f $(DESTDIR)$(INCLUDEDIR)/mtls.h $(DESTDIR)$(LIBDIR)/libmtls.* \
	    $(DESTDIR)$(LIBDIR)/pkgconfig/mtls.pc $(DESTDIR)$(BINDIR)/mtls-check

# Manual pages (man/, mdoc): every page in man1, man3, man5 and man8, and a
# link per function a section 3 page documents (scripts/install-man.sh).
.PHONY: install-man uninstall-man lint-man
install: install-man
uninstall: uninstall-man
install-man:
	@scripts/install-man.sh install $(DESTDIR)$(MANDIR)

uninstall-man:
	@scripts/install-man.sh uninstall $(DESTDIR)$(MANDIR)

lint-man:
	@scripts/lint-man.sh

clean:
	rm -rf build
