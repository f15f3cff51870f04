# Sutra — one GNU Makefile for the library, the coordinator, the tools, the
# tests and the benchmarks.  `make help` lists the targets.
#
# Build variants live in their own directories so they never mix objects:
#   make            -> build/
#   make asan       -> build-asan/   (AddressSanitizer + LeakSanitizer)
#   make ubsan      -> build-ubsan/  (UndefinedBehaviorSanitizer)
#   make tsan       -> build-tsan/   (ThreadSanitizer)

PREFIX  ?= /usr/local
LIBDIR  ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
BINDIR  ?= $(PREFIX)/bin
DOCDIR  ?= $(PREFIX)/share/doc/sutra
DESTDIR ?=
BUILD   ?= build
CC      ?= cc
SAN     ?=

SUTRA_SOVERSION := 0
SUTRA_VERSION   := 0.1.0

WARN    := -Wall -Wextra -Wshadow -Werror -Wno-missing-field-initializers
OPT     ?= -O2 -g
ALL_CFLAGS = $(OPT) -std=c11 -D_GNU_SOURCE $(WARN) -fPIC -MMD -MP -I. -Iinclude \
             $(SAN) $(CFLAGS)
LDFLAGS += $(SAN)

# Debian 12's NNG ships no pkg-config file: fall back to -lnng (whose static
# archive needs mbed TLS).
NNG_LIBS  := $(shell pkg-config --libs nng 2>/dev/null || echo -lnng)
NNG_STATIC_LIBS := $(shell pkg-config --static --libs nng 2>/dev/null || \
                     echo -lnng -lmbedtls -lmbedx509 -lmbedcrypto)
URCU_LIBS := -lurcu-common
XXH_LIBS  := -lxxhash
LIBS      := $(NNG_LIBS) $(URCU_LIBS) $(XXH_LIBS) -lpthread -lm

LAYOUT_SRC := $(wildcard layout/*.c)
READER_SRC := $(wildcard reader/*.c)
COORD_SRC  := $(filter-out coordinator/main.c,$(wildcard coordinator/*.c))
TOOL_SRC   := $(wildcard tools/*.c)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
INTEG_SRC  := $(wildcard tests/integration/test_*.c)
INTEG_HELP := $(filter-out tests/integration/test_%,$(wildcard tests/integration/*.c))
BENCH_SRC  := $(wildcard bench/bench_*.c)
BENCH_HELP := $(filter-out bench/bench_%,$(wildcard bench/*.c))
FUZZ_SRC   := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS  := $(patsubst tests/fuzz/%.c,build-fuzz/%,$(FUZZ_SRC))
FUZZ_SECONDS ?= 300
CRASH_CYCLES ?= 200
SOAK_SECONDS ?= 180

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

LIBSUTRA_OBJ := $(call obj,$(LAYOUT_SRC) $(READER_SRC))
COORD_OBJ    := $(call obj,$(COORD_SRC))
# What programs link: one object whose only global symbols are sutra_*, so
# the library's internals (layout_*, wire_*, reader_*...) can clash with
# nothing of theirs.  The coordinator, tools, tests and benchmarks link
# every symbol from LIBSUTRA_INT.
LIBSUTRA_ONE := $(BUILD)/lib/libsutra.o
LIBSUTRA_A   := $(BUILD)/lib/libsutra.a
LIBSUTRA_INT := $(BUILD)/lib/libsutra_internal.a
LIBSUTRA_SO  := $(BUILD)/lib/libsutra.so.$(SUTRA_VERSION)
LIBCOORD_A   := $(BUILD)/lib/libcoord.a
COORDINATOR  := $(BUILD)/bin/sutra-coordinator
TOOLS        := $(patsubst tools/%.c,$(BUILD)/bin/%,$(TOOL_SRC))
UNIT_TESTS   := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
INTEG_TESTS  := $(patsubst tests/integration/%.c,$(BUILD)/tests/%,$(INTEG_SRC))
BENCHES      := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))

DEPS_PKGS       := liburcu-dev libnng-dev libxxhash-dev libcmocka-dev pkg-config
BENCH_DEPS_PKGS := liblmdb-dev
SAN_DEPS_PKGS   := clang libclang-rt-14-dev
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps bench-deps san-deps run test bench install uninstall asan ubsan tsan \
        clean help lint fuzz fuzz-smoke crashtest soak check-deps
.DEFAULT_GOAL := all
.SECONDARY:

all: $(LIBSUTRA_A) $(LIBSUTRA_SO) $(COORDINATOR) $(TOOLS) ## build the library, the coordinator and the tools

deps: ## install missing Debian packages (liburcu, NNG, xxHash, cmocka)
	@missing=""; for p in $(DEPS_PKGS); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

bench-deps: deps ## install the benchmark peers (LMDB)
	@missing=""; for p in $(BENCH_DEPS_PKGS); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "bench-deps: installing$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

san-deps: deps ## install clang and its sanitizer runtimes
	@missing=""; for p in $(SAN_DEPS_PKGS); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "san-deps: installing$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

# ---- compile -------------------------------------------------------------

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(LIBSUTRA_INT): $(LIBSUTRA_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(LIBSUTRA_ONE): $(LIBSUTRA_OBJ)
	@mkdir -p $(dir $@)
	$(LD) -r -o $@.all $^
	nm -g --defined-only $@.all | awk '$$3 ~ /^sutra_/ { print $$3 }' > $@.syms
	objcopy --keep-global-symbols=$@.syms $@.all $@
	rm -f $@.all $@.syms

$(LIBSUTRA_A): $(LIBSUTRA_ONE)
	rm -f $@ && ar rcs $@ $^

$(LIBSUTRA_SO): $(LIBSUTRA_ONE)
	@mkdir -p $(dir $@)
	$(CC) -shared -Wl,-soname,libsutra.so.$(SUTRA_SOVERSION) $(LDFLAGS) -o $@ $^ $(LIBS)
	ln -sf libsutra.so.$(SUTRA_VERSION) $(BUILD)/lib/libsutra.so.$(SUTRA_SOVERSION)
	ln -sf libsutra.so.$(SUTRA_SOVERSION) $(BUILD)/lib/libsutra.so

$(LIBCOORD_A): $(COORD_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(COORDINATOR): $(call obj,coordinator/main.c) $(LIBCOORD_A) $(LIBSUTRA_INT)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/bin/%: $(BUILD)/obj/tools/%.o $(LIBCOORD_A) $(LIBSUTRA_INT)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(LIBCOORD_A) $(LIBSUTRA_INT)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka $(LIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/integration/%.o $(call obj,$(INTEG_HELP)) $(LIBCOORD_A) $(LIBSUTRA_INT)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka $(LIBS)

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(call obj,$(BENCH_HELP)) $(LIBCOORD_A) $(LIBSUTRA_INT)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -llmdb $(LIBS)

# ---- run, test, bench ----------------------------------------------------

run: deps all ## start a coordinator on ./data, write from one process, read from another, stop
	@BUILD=$(BUILD) sh tools/demo.sh

test: deps all $(UNIT_TESTS) $(INTEG_TESTS) ## build and run every test (cmocka)
	@sh tests/check_exports.sh $(LIBSUTRA_A) $(LIBSUTRA_SO)
	@BUILD=$(BUILD) sh tests/run.sh $(UNIT_TESTS) $(INTEG_TESTS)

bench: bench-deps all $(BENCHES) ## run the benchmarks against their peers (not part of test)
	@BUILD=$(BUILD) sh bench/run.sh $(BENCHES)

crashtest: deps all $(BUILD)/tests/test_crashkill ## kill -9 the coordinator CRASH_CYCLES (200) times under load and check every acknowledged write
	SUTRA_CRASH_CYCLES=$(CRASH_CYCLES) BUILD=$(BUILD) sh tests/run.sh $(BUILD)/tests/test_crashkill

soak: deps all $(BUILD)/tests/test_soak ## alternate write-heavy and read-heavy phases for SOAK_SECONDS (180)
	SUTRA_SOAK_SECONDS=$(SOAK_SECONDS) BUILD=$(BUILD) sh tests/run.sh $(BUILD)/tests/test_soak

# Fuzz targets link the library sources directly, built with libFuzzer.
build-fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(LAYOUT_SRC) $(READER_SRC) $(COORD_SRC) | san-deps
	@mkdir -p $(dir $@)
	clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	  -std=c11 -D_GNU_SOURCE \
	  -I. -Iinclude $^ -o $@ $(LIBS)

fuzz: $(FUZZ_BINS) ## run each libFuzzer target for FUZZ_SECONDS (default 300) on its corpus
	@for f in $(FUZZ_BINS); do \
	  name=$$(basename $$f); corpus=tests/fuzz/corpus/$${name#fuzz_}; \
	  mkdir -p build-fuzz/corpus/$$name; \
	  echo "== $$name for $(FUZZ_SECONDS)s"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    build-fuzz/corpus/$$name $$corpus || exit 1; \
	done

fuzz-smoke: ## a short fuzz run of every target (CI)
	$(MAKE) fuzz FUZZ_SECONDS=30

asan: san-deps ## run the tests under AddressSanitizer (build-asan/)
	$(MAKE) test BUILD=build-asan CC=clang SAN="-fsanitize=address -fno-omit-frame-pointer" \
	  OPT="-O1 -g"

ubsan: san-deps ## run the tests under UndefinedBehaviorSanitizer (build-ubsan/)
	$(MAKE) test BUILD=build-ubsan CC=clang \
	  SAN="-fsanitize=undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" OPT="-O1 -g"

tsan: san-deps ## run the tests under ThreadSanitizer (build-tsan/)
	$(MAKE) test BUILD=build-tsan CC=clang SAN="-fsanitize=thread" OPT="-O1 -g"

# clang-tidy runs once per file: clang-tidy 14 carries analyzer state from
# one file to the next (false valist.Uninitialized reports).  .clang-tidy
# makes every finding an error.
lint: ## clang-tidy and cppcheck over the sources
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability \
	  --suppress=missingIncludeSystem -I. -Iinclude layout reader coordinator tools
	@rc=0; for f in $(LAYOUT_SRC) $(READER_SRC) $(COORD_SRC); do \
	  clang-tidy --quiet $$f -- -std=c11 -D_GNU_SOURCE -I. -Iinclude || rc=1; \
	done; exit $$rc

# ---- install -------------------------------------------------------------

# Written at install time, so it names the prefix of this install.
define SUTRA_PC
prefix=$(PREFIX)
libdir=$(LIBDIR)
includedir=$(INCLUDEDIR)

Name: sutra
Description: Sutra zero-copy knowledge store (reader and client library)
Version: $(SUTRA_VERSION)
Libs: -L$${libdir} -lsutra
Libs.private: $(NNG_STATIC_LIBS) $(URCU_LIBS) $(XXH_LIBS) -lpthread -lm
Cflags: -I$${includedir}
endef
export SUTRA_PC

# Programs shipped: the coordinator and the inspector (sutra-demo is make
# run's helper and stays in the build tree).
INSTALL_BINS := $(COORDINATOR) $(BUILD)/bin/sutra-inspect
INSTALL_DOCS := README.md $(wildcard docs/*.md) docs/deploy/sutra-coordinator.service

install: all ## install under PREFIX (/usr/local; also LIBDIR, INCLUDEDIR, BINDIR, DOCDIR, DESTDIR)
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR)/sutra \
	  $(DESTDIR)$(BINDIR) $(DESTDIR)$(DOCDIR)
	install -m 0644 include/sutra/*.h $(DESTDIR)$(INCLUDEDIR)/sutra/
	install -m 0644 $(LIBSUTRA_A) $(DESTDIR)$(LIBDIR)/
	install -m 0755 $(LIBSUTRA_SO) $(DESTDIR)$(LIBDIR)/
	ln -sf libsutra.so.$(SUTRA_VERSION) $(DESTDIR)$(LIBDIR)/libsutra.so.$(SUTRA_SOVERSION)
	ln -sf libsutra.so.$(SUTRA_SOVERSION) $(DESTDIR)$(LIBDIR)/libsutra.so
	printf '%s\n' "$$SUTRA_PC" > $(DESTDIR)$(LIBDIR)/pkgconfig/sutra.pc
	chmod 0644 $(DESTDIR)$(LIBDIR)/pkgconfig/sutra.pc
	install -m 0755 $(INSTALL_BINS) $(DESTDIR)$(BINDIR)/
	install -m 0644 $(INSTALL_DOCS) $(DESTDIR)$(DOCDIR)/
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && command -v ldconfig >/dev/null; then \
	  echo ldconfig; ldconfig; fi

# Files only, by name (DOCDIR may be set to a shared directory); the
# libsutra.so.* glob also takes the versions of earlier installs.

uninstall: ## remove what install put under PREFIX (same variables)
	rm -f $(DESTDIR)$(LIBDIR)/libsutra.a $(DESTDIR)$(LIBDIR)/libsutra.so \
	  $(DESTDIR)$(LIBDIR)/libsutra.so.* \
	  $(DESTDIR)$(LIBDIR)/pkgconfig/sutra.pc \
	  $(addprefix $(DESTDIR)$(INCLUDEDIR)/sutra/,$(notdir $(wildcard include/sutra/*.h))) \
	  $(patsubst $(BUILD)/bin/%,$(DESTDIR)$(BINDIR)/%,$(INSTALL_BINS)) \
	  $(DESTDIR)$(BINDIR)/sutra-demo \
	  $(addprefix $(DESTDIR)$(DOCDIR)/,$(notdir $(INSTALL_DOCS)))
	-rmdir $(DESTDIR)$(INCLUDEDIR)/sutra $(DESTDIR)$(DOCDIR) 2>/dev/null
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && command -v ldconfig >/dev/null; then \
	  echo ldconfig; ldconfig; fi

clean: ## remove every build directory
	rm -rf build build-asan build-ubsan build-tsan build-fuzz

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' Makefile | \
	  awk -F':.*## ' '{ printf "  %-12s %s\n", $$1, $$2 }'

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
