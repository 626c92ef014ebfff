# mixq - one non-recursive Makefile.
#
#   make                 build build/mixq
#   make check           install what is missing, build, run every test (incl. a sanitizer build)
#   make demo            install what is missing, build, run mixq on the bundled model
#   make fuzz            run the libFuzzer targets for a bounded time (FUZZ_SECONDS, default 60)
#   make format          clang-format every C file
#   make clean
#
# Options: DEVELOPER=1 (strict warnings as errors), SANITIZE=address,undefined,
#          WITH_CUDA=auto|yes|no, WITH_NEON=auto|yes|no, BUILD=dir (default build),
#          CC=compiler, V=1 (show commands).

BUILD ?= build
CC ?= cc
PYTHON ?= python3
SANITIZE ?=
DEVELOPER ?=
WITH_CUDA ?= auto
WITH_NEON ?= auto
FUZZ_SECONDS ?= 60
MIXQ_VERSION := 0.1.0

ifeq ($(V),1)
Q :=
else
Q := @
endif

# ---- dependencies (pkg-config) ------------------------------------------------------------
PKGS := papi yaml-0.1 hwloc
PKG_OK := $(shell pkg-config --exists $(PKGS) && echo yes)
ifeq ($(PKG_OK),yes)
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS := $(shell pkg-config --libs $(PKGS))
else ifeq ($(filter clean format deps,$(MAKECMDGOALS)),)
ifeq ($(filter check demo,$(MAKECMDGOALS)),)
$(error pkg-config cannot find $(PKGS): run scripts/install-deps (or make check / make demo, which run it))
endif
endif

# ---- probes: print what was found, once ---------------------------------------------------
TARGET_ARCH_NAME := $(shell $(CC) -dumpmachine 2>/dev/null | cut -d- -f1)

NVCC := $(shell command -v nvcc 2>/dev/null)
ifeq ($(WITH_CUDA),no)
HAVE_CUDA := no
CUDA_WHY := disabled by WITH_CUDA=no
else ifneq ($(NVCC),)
HAVE_CUDA := yes
CUDA_WHY := nvcc $(shell $(NVCC) --version 2>/dev/null | sed -n 's/.*release \([0-9.]*\).*/\1/p') at $(NVCC)
else
HAVE_CUDA := no
CUDA_WHY := nvcc not found
endif
ifeq ($(WITH_CUDA)-$(HAVE_CUDA),yes-no)
$(error WITH_CUDA=yes but $(CUDA_WHY))
endif

ifeq ($(WITH_NEON),no)
HAVE_NEON := no
NEON_WHY := disabled by WITH_NEON=no
else ifeq ($(TARGET_ARCH_NAME),aarch64)
HAVE_NEON := $(shell echo 'int main(void){return 0;}' | $(CC) -x c -march=armv8.2-a+dotprod+fp16 -o /dev/null - 2>/dev/null && echo yes || echo no)
NEON_WHY := $(CC) targets aarch64$(if $(filter no,$(HAVE_NEON)), but rejects -march=armv8.2-a+dotprod+fp16)
else
HAVE_NEON := no
NEON_WHY := $(CC) targets $(TARGET_ARCH_NAME), not aarch64
endif
ifeq ($(WITH_NEON)-$(HAVE_NEON),yes-no)
$(error WITH_NEON=yes but $(NEON_WHY))
endif

ifeq ($(MAKELEVEL),0)
ifeq ($(filter clean format,$(MAKECMDGOALS)),)
$(info probe: cc     $(CC) -> $(TARGET_ARCH_NAME))
$(info probe: cuda   $(HAVE_CUDA) ($(CUDA_WHY); the cuda backend plugin is not written yet))
$(info probe: neon   $(HAVE_NEON) ($(NEON_WHY); the neon backend is not written yet))
endif
endif

# ---- flags ----------------------------------------------------------------------------------
CPPFLAGS += -I. -D_GNU_SOURCE -DMIXQ_VERSION='"$(MIXQ_VERSION)"' -DMIXQ_DATADIR='"$(CURDIR)"'
# -ffp-contract=off: no silent FMA contraction, so reference quantization and reference
# kernels give the same bits whatever the compiler and flags (ggml's ref code is exact too).
CFLAGS ?= -O2 -g
CFLAGS += -std=c11 -ffp-contract=off -fno-strict-aliasing -pthread $(PKG_CFLAGS) -MMD -MP
WARN := -Wall -Wextra -Wno-unused-parameter
ifeq ($(DEVELOPER),1)
WARN += -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wpointer-arith -Wformat=2 \
        -Wundef -Wcast-align -Wvla -Wno-format-nonliteral
endif
CFLAGS += $(WARN)
LDLIBS += $(PKG_LIBS) -lm -lpthread -ldl
ifneq ($(SANITIZE),)
CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SANITIZE)
endif

# ---- sources --------------------------------------------------------------------------------
LIB_DIRS := core model backends backends/ref backends/cpu profiler search reports
LIB_SRCS := $(filter-out backends/cpu/kern_%.c,$(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.c)))
# cpu backend kernels: each instruction-set path is its own object with its own -m flags;
# the avx512 source is compiled twice (plain AVX-512, and with VNNI + BF16)
CPU_KERN_OBJS := $(BUILD)/obj/backends/cpu/kern_scalar.o
ifeq ($(TARGET_ARCH_NAME),x86_64)
CPU_KERN_OBJS += $(BUILD)/obj/backends/cpu/kern_avx2.o $(BUILD)/obj/backends/cpu/kern_avx512.o \
                 $(BUILD)/obj/backends/cpu/kern_avx512vnni.o
endif
AVX2_FLAGS := -mavx2 -mfma -mf16c
AVX512_FLAGS := $(AVX2_FLAGS) -mavx512f -mavx512bw -mavx512vl -mavx512dq
AVX512VNNI_FLAGS := $(AVX512_FLAGS) -mavx512vnni -mavx512bf16 -DCPU_VNNI -DCPU_BF16
CLI_SRCS := $(wildcard cli/*.c)
TEST_SRCS := $(wildcard tests/unit/*.c)

LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o) $(CPU_KERN_OBJS)
CLI_OBJS := $(CLI_SRCS:%.c=$(BUILD)/obj/%.o)
TEST_OBJS := $(TEST_SRCS:%.c=$(BUILD)/obj/%.o)

MIXQ := $(BUILD)/mixq
LIBMIXQ := $(BUILD)/libmixq.a
TEST_UNIT := $(BUILD)/test-unit
BENCH_KERNELS := $(BUILD)/bench-kernels
BENCH_E2E := $(BUILD)/bench-e2e
BENCH_OBJS := $(BUILD)/obj/bench/kernels.o $(BUILD)/obj/bench/limits.o $(BUILD)/obj/bench/e2e.o

.PHONY: all check check-unit check-cli check-corpus check-asan check-data check-interop demo fuzz format clean deps bench
.DEFAULT_GOAL := all

all: $(MIXQ) $(TEST_UNIT) $(BENCH_KERNELS) $(BENCH_E2E)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/obj/backends/cpu/kern_avx2.o: CFLAGS += $(AVX2_FLAGS)
$(BUILD)/obj/backends/cpu/kern_avx512.o: CFLAGS += $(AVX512_FLAGS)
$(BUILD)/obj/backends/cpu/kern_avx512vnni.o: backends/cpu/kern_avx512.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $< (vnni)")
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(AVX512VNNI_FLAGS) -c $< -o $@

$(LIBMIXQ): $(LIB_OBJS)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(MIXQ): $(CLI_OBJS) $(LIBMIXQ)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(CLI_OBJS) $(LIBMIXQ) $(LDLIBS)

$(TEST_UNIT): $(TEST_OBJS) $(LIBMIXQ)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(TEST_OBJS) $(LIBMIXQ) $(LDLIBS)

$(BENCH_KERNELS): $(BUILD)/obj/bench/kernels.o $(BUILD)/obj/bench/limits.o $(LIBMIXQ)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIBMIXQ) $(LDLIBS)

$(BENCH_E2E): $(BUILD)/obj/bench/e2e.o $(LIBMIXQ)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIBMIXQ) $(LDLIBS)

# ---- benchmarks (machine-readable YAML; they never assert times) -------------------------
# bench-kernels needs nothing else; bench/e2e.py builds llama.cpp (scripts/build-llama-cpp)
# and fetches SmolLM2 (scripts/fetch-models), both cached under .cache/.
bench: $(BENCH_KERNELS) $(BENCH_E2E)
	$(BENCH_KERNELS) --out $(BUILD)/bench/kernels.yaml
	$(PYTHON) bench/e2e.py --mixq-bench $(BENCH_E2E) --out $(BUILD)/bench/e2e.yaml

# ---- set-up ---------------------------------------------------------------------------------
deps:
	$(Q)scripts/install-deps

# ---- tests ----------------------------------------------------------------------------------
# check: the normal build (strict warnings), then the same tests under ASan+UBSan.
check: deps
	$(Q)$(MAKE) --no-print-directory DEVELOPER=1 check-unit check-cli check-corpus check-data
	$(Q)$(MAKE) --no-print-directory DEVELOPER=1 check-asan
	@echo "make check: all passed"

check-unit: $(TEST_UNIT)
	@echo "== unit tests ($(BUILD))"
	$(Q)$(TEST_UNIT)

check-cli: $(MIXQ)
	@echo "== command-line tests ($(BUILD))"
	$(Q)MIXQ=$(MIXQ) PYTHON=$(PYTHON) tests/cli/run.sh

check-corpus: $(MIXQ)
	@echo "== malformed-file corpus ($(BUILD))"
	$(Q)$(PYTHON) tests/fuzz/make-gguf-corpus.py $(BUILD)/corpus/gguf
	$(Q)MIXQ=$(MIXQ) tests/fuzz/run-corpus.sh $(BUILD)/corpus/gguf

check-data:
	@echo "== evaluation texts regenerate byte for byte"
	$(Q)$(PYTHON) scripts/prepare-data.py --check; rc=$$?; \
	  if [ $$rc -eq 77 ]; then echo "skipped"; elif [ $$rc -ne 0 ]; then exit $$rc; fi

# The interop tier: mixq against llama.cpp's own tools (built from the llama-cpp-python
# sdist, cached in .cache/) on the bundled model and SmolLM2. Skips (exit 77) where they
# cannot be had.
check-interop: deps $(MIXQ)
	@echo "== interop tier: llama.cpp as the oracle"
	$(Q)MIXQ=$(MIXQ) BUILD=$(BUILD) tests/interop/run.sh; rc=$$?; \
	  if [ $$rc -eq 77 ]; then echo "interop tier skipped"; elif [ $$rc -ne 0 ]; then exit $$rc; fi

ASAN_BUILD := $(BUILD)/asan
check-asan:
	@echo "== sanitizer build (address,undefined)"
	$(Q)$(MAKE) --no-print-directory BUILD=$(ASAN_BUILD) SANITIZE=address,undefined \
	    $(ASAN_BUILD)/mixq $(ASAN_BUILD)/test-unit
	$(Q)ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 $(ASAN_BUILD)/test-unit
	$(Q)$(PYTHON) tests/fuzz/make-gguf-corpus.py $(ASAN_BUILD)/corpus/gguf
	$(Q)ASAN_OPTIONS=detect_leaks=1 MIXQ=$(ASAN_BUILD)/mixq tests/fuzz/run-corpus.sh $(ASAN_BUILD)/corpus/gguf

# ---- demo -----------------------------------------------------------------------------------
DEMO_MODEL := examples/tinyllm/tinyllm.gguf
demo: deps
	$(Q)$(MAKE) --no-print-directory $(MIXQ)
	$(MIXQ) info $(DEMO_MODEL)
	$(MIXQ) eval $(DEMO_MODEL) --text examples/data/kjv-eval.txt --plan f16
	$(MIXQ) eval $(DEMO_MODEL) --text examples/data/kjv-eval.txt --plan q8_0
	$(MIXQ) eval $(DEMO_MODEL) --text examples/data/kjv-eval.txt --plan q4_0

# ---- fuzzing (clang's libFuzzer) ------------------------------------------------------------
FUZZ_BUILD := $(BUILD)/fuzz
FUZZ_LIB_SRCS := $(wildcard core/*.c) model/gguf.c
$(FUZZ_BUILD)/fuzz-gguf: tests/fuzz/fuzz_gguf.c $(FUZZ_LIB_SRCS)
	@mkdir -p $(dir $@)
	$(Q)clang $(CPPFLAGS) -std=c11 -g -O1 -pthread -fsanitize=fuzzer,address,undefined $(PKG_CFLAGS) \
	    -o $@ $^ $(PKG_LIBS) -lm -lpthread -ldl

fuzz: $(FUZZ_BUILD)/fuzz-gguf
	$(Q)$(PYTHON) tests/fuzz/make-gguf-corpus.py $(FUZZ_BUILD)/seeds
	$(Q)mkdir -p $(FUZZ_BUILD)/corpus-gguf
	$(FUZZ_BUILD)/fuzz-gguf -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -close_fd_mask=2 \
	    $(FUZZ_BUILD)/corpus-gguf $(FUZZ_BUILD)/seeds

# ---- housekeeping ---------------------------------------------------------------------------
format:
	clang-format -i $(shell git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD)

-include $(LIB_OBJS:.o=.d) $(CLI_OBJS:.o=.d) $(TEST_OBJS:.o=.d) $(BENCH_OBJS:.o=.d)
