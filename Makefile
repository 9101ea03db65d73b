# gad: build, test and developer targets. Plain make, C99, no dependencies.
#   make            ./gad (tuned for this machine; GENERIC=1 for a portable build)
#   make test       build and run every test; ends with "N passed, N failed"
#   make asan       the whole test suite under AddressSanitizer + UBSan
#   make test-report  the report page at phone and laptop widths in headless Chromium
#   THREADS=0       build without pthreads
#   REFERENCE=1     build/reference/gad: every pass on the reference path (naive kernels,
#                   plain executor; see plan_new_reference in include/nn/model.h)
#   make build/peak the machine's fp32 peak and sgemm against it (tools/bench/peak.c)
#   make perfcheck  fails when sgemm 1024^3 falls below PERF_MIN of the peak
#   make build/pingpong  the core-to-core round trip (tools/bench/pingpong.c)
#   make CC=tcc DEPFLAGS=   tcc (it has no -MMD)
#   .ci/cross TARGET        build and test for i686, aarch64, s390x (qemu-user) or tcc
CC      ?= cc
OPT     ?= -O2
WARN     = -std=c99 -Wall -Wextra -pedantic
# _FILE_OFFSET_BITS=64: 64-bit file sizes and offsets on 32-bit machines too
CPPFLAGS = -Iinclude -D_POSIX_C_SOURCE=200809L -D_FILE_OFFSET_BITS=64
# No contraction: a*b + c rounds twice, as C99 writes it, under every compiler and
# tuning; the kernels that need fused multiply-adds write them out (core/simd.h), so
# every path that must give the same bits runs the same operations. No -ffast-math:
# NaN checks and IEEE semantics stay. -fno-math-errno only stops sqrtf from setting
# errno (nothing reads it), which lets the compiler vectorise loops that call it (and
# inline fmaf); results are the same bits.
CFLAGS  ?= $(OPT) -ffp-contract=off -fno-math-errno
ifeq ($(GENERIC),1)
ARCH    :=
else
ARCH    := $(shell $(CC) -march=native -E -x c /dev/null >/dev/null 2>&1 && echo -march=native)
endif
# Float arithmetic must be done in float (FLT_EVAL_METHOD 0; include/core/port.h
# refuses the build otherwise). C99 also allows wider evaluation: 32-bit x86 gets
# float precision from SSE2 instead of the x87 (long double), gcc on s390x by not
# emulating the promotion to double that its ABI names (-fexcess-precision=fast;
# the hardware computes floats in float). The first of these that gives 0 is used.
FPMATH  := $(shell for f in '' '-msse2 -mfpmath=sse' -fexcess-precision=fast; do \
             $(CC) $(WARN) $(ARCH) $(EXTRA) $$f -dM -E -x c /dev/null 2>/dev/null | \
             grep -q '^.define __FLT_EVAL_METHOD__ 0$$' && { echo "$$f"; break; }; done)
ifeq ($(THREADS),0)
CPPFLAGS += -DGAD_NO_THREADS
LIBS     = -lm
else
LIBS     = -lm -lpthread
endif
ifeq ($(REFERENCE),1)
CPPFLAGS += -DGAD_REFERENCE
BUILD   ?= build/reference
BIN      = $(BUILD)/gad
endif
BUILD   ?= build
BIN     ?= gad
# DEPFLAGS: header dependencies (tcc has no -MMD: DEPFLAGS= there); LDFLAGS: e.g. -static
DEPFLAGS ?= -MMD -MP
LDFLAGS ?=
ALLFLAGS = $(WARN) $(CPPFLAGS) $(CFLAGS) $(ARCH) $(FPMATH) $(EXTRA)

LAYERS   = core io ops nn train attr gad api
LIB_SRC  = $(foreach l,$(LAYERS),$(wildcard src/$(l)/*.c src/$(l)/*/*.c))
CLI_SRC  = $(wildcard src/cli/*.c)
TEST_SRC = $(wildcard tests/*.c)
LIB_OBJ  = $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  = $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_OBJ = $(TEST_SRC:%.c=$(BUILD)/%.o)
# the CLI's command files (all but main.c) are linked into the tests too
CLI_LIB_OBJ = $(filter-out $(BUILD)/src/cli/main.o,$(CLI_OBJ))

.PHONY: all test asan clean
all: $(BIN)

$(BIN): $(CLI_OBJ) $(BUILD)/libgad.a
	$(CC) $(ALLFLAGS) $(LDFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libgad.a $(LIBS)

$(BUILD)/libgad.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $(LIB_OBJ)

# Every object depends on the compiler and flags it was built with: changing CC,
# CFLAGS, ARCH, EXTRA, OPT or KERNEL_OPT (or pulling a Makefile that changes them)
# rebuilds everything, so no build mixes objects compiled two ways.
FLAGS_STAMP = $(BUILD)/.flags
FLAGS_NOW   = $(CC) $(ALLFLAGS) $(KERNEL_OPT) $(LIBS)
$(FLAGS_STAMP): FORCE
	@mkdir -p $(BUILD)
	@echo '$(FLAGS_NOW)' | cmp -s - $@ || echo '$(FLAGS_NOW)' > $@
.PHONY: FORCE
FORCE:

$(BUILD)/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(ALLFLAGS) $(DEPFLAGS) -c $< -o $@

# Adam's element loop, wino.c's transforms and the convolution routes' row loops (col2im,
# epilogues) are vectorised by gcc only at -O3 (figures in docs/perf.md). No -ffast-math:
# the same bits at either level (tested against references compiled at -O2). OPT on
# the command line (e.g. make asan) still wins.
KERNEL_OPT ?= -O3
CONV_OBJ = $(patsubst %.c,$(BUILD)/%.o,$(wildcard src/ops/conv*.c))
$(BUILD)/src/core/gemm.o $(BUILD)/src/train/adam.o $(BUILD)/src/ops/wino.o $(CONV_OBJ): OPT = $(KERNEL_OPT)

# fp32 peak for the build's ISA and sgemm against it, in one process (tools/bench/peak.c);
# a tool, not part of ./gad. It needs only core.
CORE_OBJ = $(filter $(BUILD)/src/core/%,$(LIB_OBJ))
$(BUILD)/peak: tools/bench/peak.c include/core/simd.h $(CORE_OBJ) $(FLAGS_STAMP)
	@mkdir -p $(BUILD)
	$(CC) $(WARN) $(CPPFLAGS) $(CFLAGS) $(ARCH) $(FPMATH) $(EXTRA) $(KERNEL_OPT) -o $@ tools/bench/peak.c $(CORE_OBJ) $(LIBS)

# A speed cliff cannot land unseen (run by .ci/run, not by make test): one thread's
# sgemm 1024^3 against the fp32 peak, measured in turn in one process, best of
# PERF_ROUNDS rounds; below PERF_MIN of the peak it measures once more before failing
# (a shared machine has slow seconds). PERF_MIN: see docs/perf.md for the measurements.
PERF_MIN ?= 0.50
PERF_ROUNDS ?= 8
.PHONY: perfcheck
perfcheck: $(BUILD)/peak
	./$(BUILD)/peak --rounds $(PERF_ROUNDS) --check $(PERF_MIN) || \
	  { echo "perfcheck: once more"; ./$(BUILD)/peak --rounds $(PERF_ROUNDS) --check $(PERF_MIN); }

# round trip of a cache line between two threads (tools/bench/pingpong.c); a tool, not part of ./gad
$(BUILD)/pingpong: tools/bench/pingpong.c
	@mkdir -p $(BUILD)
	$(CC) $(WARN) $(CPPFLAGS) $(CFLAGS) -o $@ $< -lpthread

# every TEST(name) line of tests/*.c becomes X(name) in the runner's registry
$(BUILD)/test_registry.h: $(TEST_SRC)
	@mkdir -p $(BUILD)
	@grep -h '^TEST(' $(TEST_SRC) | sed 's/^TEST(\([A-Za-z0-9_]*\)).*/X(\1)/' > $@.tmp && mv $@.tmp $@

$(BUILD)/tests/main.o: $(BUILD)/test_registry.h
$(BUILD)/tests/main.o: CPPFLAGS += -I$(BUILD)

$(BUILD)/run_tests: $(TEST_OBJ) $(CLI_LIB_OBJ) $(BUILD)/libgad.a
	$(CC) $(ALLFLAGS) $(LDFLAGS) -o $@ $(TEST_OBJ) $(CLI_LIB_OBJ) $(BUILD)/libgad.a $(LIBS)

test: $(BIN) $(BUILD)/run_tests
	./$(BUILD)/run_tests $(T)

asan:
	$(MAKE) BUILD=build/asan OPT="-O1 -g" EXTRA="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" build/asan/run_tests
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ./build/asan/run_tests $(T)

# the report's page at 390 and 1366 px wide in headless Chromium: screenshots and
# overflow checks (tests/report/responsive.sh, which installs Debian's chromium if
# missing); not part of `make test`, run by .ci/run
.PHONY: test-report
test-report: $(BIN)
	tests/report/responsive.sh

clean:
	rm -rf build gad

# ---- the installed tool and library -----------------------------------------------------
#   make install PREFIX=/usr/local DESTDIR=   bin/gad, lib/libgad.a, lib/libgad.so(.0),
#       include/gad/gad.h, lib/pkgconfig/gad.pc, share/man/man1/gad.1, share/gad/{data,weights}
#   make uninstall PREFIX=... DESTDIR=...     removes exactly those
# The installed libraries export only the API of include/gad.h (gad_ names): their
# objects are built apart (build/pic: -fPIC -fvisibility=hidden, the API marked
# visible), libgad.so exports the visible ones, and libgad.a holds one object linked
# with `ld -r` whose hidden symbols objcopy makes local, so gad's internal names (gemm,
# model_load, ...) cannot clash with an embedding program's. ./gad and the tests link
# build/libgad.a, which keeps every name.
PREFIX  ?= /usr/local
DESTDIR ?=
LD      ?= ld
OBJCOPY ?= objcopy
VERSION := $(shell sed -n 's/^\#define GAD_VERSION "\(.*\)"/\1/p' include/gad.h)
PIC      = $(BUILD)/pic
PIC_OBJ  = $(LIB_SRC:%.c=$(PIC)/%.o)
$(PIC)/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(ALLFLAGS) -fPIC -fvisibility=hidden -MMD -MP -c $< -o $@
$(PIC)/src/core/gemm.o $(PIC)/src/train/adam.o $(PIC)/src/ops/wino.o $(CONV_OBJ:$(BUILD)/%=$(PIC)/%): OPT = $(KERNEL_OPT)
-include $(PIC_OBJ:.o=.d)

$(PIC)/libgad.so: $(PIC_OBJ)
	$(CC) $(ALLFLAGS) -shared -Wl,-soname,libgad.so.0 -o $@ $(PIC_OBJ) $(LIBS)
$(PIC)/libgad.a: $(PIC_OBJ)
	@command -v $(OBJCOPY) >/dev/null || { echo "make: $(OBJCOPY) (GNU binutils) is needed to make libgad.a export only gad_ names; install binutils or give OBJCOPY=..."; exit 1; }
	@command -v $(LD) >/dev/null || { echo "make: $(LD) is needed for libgad.a (ld -r); give LD=..."; exit 1; }
	$(LD) -r -o $(PIC)/gad-all.o $(PIC_OBJ)
	$(OBJCOPY) --localize-hidden $(PIC)/gad-all.o
	@rm -f $@
	ar rcs $@ $(PIC)/gad-all.o
# gad(1) from the binary's own --help texts (the top level's, then each command's), so
# the page cannot drift from them.
$(PIC)/gad.1: $(BIN) Makefile
	@mkdir -p $(PIC)
	{ printf '.TH GAD 1 "" "gad $(VERSION)" "User Commands"\n.SH NAME\ngad \\- gradient-based explanations made interpretable (GAD)\n.SH SYNOPSIS\n.B gad\n[\\fICOMMAND\\fR [\\fIFLAGS\\fR]]\n.SH DESCRIPTION\n.nf\n'; \
	  ./$(BIN) --help | sed -e 's/\\/\\e/g' -e "s/^[.']/\\\\\&&/"; \
	  for c in $$(./$(BIN) --help | sed -n 's/^  \([a-z][a-z-]*\) .*/\1/p'); do \
	    printf '.fi\n.SH "gad %s"\n.nf\n' "$$c"; ./$(BIN) $$c --help | sed -e 's/\\/\\e/g' -e "s/^[.']/\\\\\&&/"; done; \
	  printf '.fi\n.SH FILES\nThe bundled data and weights: beside the executable, else in \\fIPREFIX/share/gad\\fR.\n'; } > $@.tmp && mv $@.tmp $@

.PHONY: install uninstall
INSTALLED = bin/gad lib/libgad.a lib/libgad.so.0 lib/libgad.so include/gad/gad.h lib/pkgconfig/gad.pc \
            share/man/man1/gad.1 $(addprefix share/gad/,$(wildcard data/* weights/*))
install: $(BIN) $(PIC)/libgad.so $(PIC)/libgad.a $(PIC)/gad.1
	D='$(DESTDIR)$(PREFIX)'; set -e; \
	mkdir -p "$$D/bin" "$$D/lib/pkgconfig" "$$D/include/gad" "$$D/share/man/man1" "$$D/share/gad/data" "$$D/share/gad/weights"; \
	cp $(BIN) "$$D/bin/gad"; cp $(PIC)/libgad.a "$$D/lib/"; cp $(PIC)/libgad.so "$$D/lib/libgad.so.0"; \
	ln -sf libgad.so.0 "$$D/lib/libgad.so"; cp include/gad.h "$$D/include/gad/gad.h"; \
	printf 'prefix=%s\nexec_prefix=$${prefix}\nlibdir=$${prefix}/lib\nincludedir=$${prefix}/include\n\nName: gad\nDescription: GAD (Gradient Artificial Distancing): gradient-based explanations made interpretable\nVersion: %s\nCflags: -I$${includedir}\nLibs: -L$${libdir} -lgad\nLibs.private: %s\n' '$(PREFIX)' '$(VERSION)' '$(LIBS)' > "$$D/lib/pkgconfig/gad.pc"; \
	cp $(PIC)/gad.1 "$$D/share/man/man1/"; cp data/* "$$D/share/gad/data/"; cp weights/* "$$D/share/gad/weights/"
uninstall:
	D='$(DESTDIR)$(PREFIX)'; for f in $(INSTALLED); do rm -f "$$D/$$f"; done; \
	rmdir "$$D/share/gad/data" "$$D/share/gad/weights" "$$D/share/gad" "$$D/include/gad" 2>/dev/null || true

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_OBJ:.o=.d)

# ---- fuzzing (clang + libFuzzer; not part of `make test` or CI) ----------------------
#   make fuzz     build/fuzz/fuzz_<name> for every tests/fuzz/fuzz_<name>.c, linked with
#                 core + io built with ASan + UBSan + fuzzer coverage (build/fuzz/obj)
#   build/fuzz/fuzz_png tests/fuzz/corpus/png     run one (see tests/fuzz/README.md)
# Debian: apt-get install -y libclang-rt-14-dev if -fsanitize=fuzzer does not link.
FUZZ_CC  ?= clang
FUZZ_SAN  = -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_SRC  = $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN  = $(FUZZ_SRC:tests/fuzz/%.c=build/fuzz/%)
.PHONY: fuzz fuzz-lib
fuzz: fuzz-lib
	$(MAKE) $(FUZZ_BIN)
fuzz-lib:
	$(MAKE) BUILD=build/fuzz/obj CC=$(FUZZ_CC) LAYERS="core io" OPT="-O1 -g" GENERIC=1 \
	    EXTRA="-fsanitize=fuzzer-no-link $(FUZZ_SAN)" build/fuzz/obj/libgad.a
build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h build/fuzz/obj/libgad.a
	$(FUZZ_CC) $(WARN) $(CPPFLAGS) -O1 -g -fsanitize=fuzzer $(FUZZ_SAN) -o $@ $< build/fuzz/obj/libgad.a -lm -lpthread
