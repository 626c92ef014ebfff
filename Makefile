# mixq - one non-recursive Makefile.
#
#   make                 build build/mixq
#   make check           install what is missing, build, run every test (incl. a sanitizer build)
#   make demo            install what is missing, build, fetch SmolLM2-135M and `mixq tune` it
#   make fuzz            run the libFuzzer targets for a bounded time (FUZZ_SECONDS, default 60)
#   make format          clang-format every C file
#   make clean
#
# Options: DEVELOPER=1 (strict warnings as errors), SANITIZE=address,undefined,
#          WITH_CUDA=auto|yes|no, WITH_NEON=auto|yes|no, WITH_MPI=auto|yes|no, BUILD=dir (default build),
#          CC=compiler, V=1 (show commands), ARCH=aarch64 (cross build, see below).

# ---- aarch64 / NEON: cross build settings ---------------------------------------------------
# make ARCH=aarch64 cross-compiles mixq and the unit tests with Debian's gcc-aarch64-linux-gnu
# (CROSS_CC) into build-aarch64/. PAPI, libyaml and hwloc come from the arm64 multiarch -dev
# packages (scripts/install-deps) and are linked statically, glibc and libudev dynamically
# (AARCH64_LIBS=shared links all of them shared), so that the binaries copy onto a board as
# plain files. make check-aarch64 runs the unit tests under qemu-aarch64 on two CPU models.
ARCH ?=
CROSS_CC ?= aarch64-linux-gnu-gcc
AARCH64_LIBS ?= static
ifeq ($(ARCH),aarch64)
override CC := $(CROSS_CC)
BUILD ?= build-aarch64
WITH_CUDA ?= no# the host's nvcc would build an x86 plugin
PKG_CONFIG := PKG_CONFIG_LIBDIR=/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig pkg-config
endif
PKG_CONFIG ?= pkg-config
# ---- end of aarch64 / NEON cross build settings ----------------------------------------------

BUILD ?= build
CC ?= cc
PYTHON ?= python3
SANITIZE ?=
DEVELOPER ?=
WITH_CUDA ?= auto
WITH_NEON ?= auto
WITH_MPI ?= auto
FUZZ_SECONDS ?= 60
MIXQ_VERSION := 0.1.0

ifeq ($(V),1)
Q :=
else
Q := @
endif

# ---- dependencies (pkg-config) ------------------------------------------------------------
PKGS := papi yaml-0.1 hwloc
PKG_OK := $(shell $(PKG_CONFIG) --exists $(PKGS) && echo yes)
ifeq ($(PKG_OK),yes)
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS))
PKG_LIBS := $(shell $(PKG_CONFIG) --libs $(PKGS))
else ifeq ($(filter clean format deps,$(MAKECMDGOALS)),)
ifeq ($(filter check demo,$(MAKECMDGOALS)),)
$(error pkg-config cannot find $(PKGS): run scripts/install-deps (or make check / make demo, which run it))
endif
endif
# aarch64 / NEON: the three libraries static (with what they need), the C library shared
ifeq ($(ARCH)-$(AARCH64_LIBS)-$(PKG_OK),aarch64-static-yes)
AARCH64_STATIC_LIBS := -lpapi -lpfm -lyaml -lhwloc
PKG_LIBS := $(shell $(PKG_CONFIG) --static --libs $(PKGS))
PKG_LIBS := -Wl,-Bstatic $(filter $(AARCH64_STATIC_LIBS),$(PKG_LIBS)) -Wl,-Bdynamic \
            $(filter-out $(AARCH64_STATIC_LIBS),$(PKG_LIBS))
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
NEON_WHY := $(CC) targets aarch64$(if $(filter no,$(HAVE_NEON)), but rejects -march=armv8.2-a+dotprod+fp16,; paths fallback, fp16, dotprod, dotprod+fp16 chosen at run time)
else
HAVE_NEON := no
NEON_WHY := $(CC) targets $(TARGET_ARCH_NAME), not aarch64; make ARCH=aarch64 cross-compiles
endif
ifeq ($(WITH_NEON)-$(HAVE_NEON),yes-no)
$(error WITH_NEON=yes but $(NEON_WHY))
endif

# MPI (core/dist.h: `mpirun -np N mixq tune ...` spreads sensitivity and imatrix passes over
# ranks): found through pkg-config's mpi-c (Debian's libopenmpi-dev; MPICH's works too).
# Only core/dist.c is compiled against it, into the twin $(BUILD)/mixq-mpi (below); without it,
# mixq refuses a launch of several ranks.
ifeq ($(WITH_MPI),no)
HAVE_MPI := no
MPI_WHY := disabled by WITH_MPI=no
else ifeq ($(shell $(PKG_CONFIG) --exists mpi-c && echo yes),yes)
HAVE_MPI := yes
MPI_WHY := $(shell $(PKG_CONFIG) --modversion mpi-c) through pkg-config mpi-c; builds $(BUILD)/mixq-mpi, which mixq becomes under mpirun
MPI_CFLAGS := $(shell $(PKG_CONFIG) --cflags mpi-c)
MPI_LIBS := $(shell $(PKG_CONFIG) --libs mpi-c)
else
HAVE_MPI := no
MPI_WHY := pkg-config finds no mpi-c (libopenmpi-dev); mixq runs as one process and refuses mpirun of several ranks
endif
ifeq ($(WITH_MPI)-$(HAVE_MPI),yes-no)
$(error WITH_MPI=yes but $(MPI_WHY))
endif

ifeq ($(MAKELEVEL),0)
ifeq ($(filter clean format,$(MAKECMDGOALS)),)
$(info probe: cc     $(CC) -> $(TARGET_ARCH_NAME))
$(info probe: cuda   $(HAVE_CUDA) ($(CUDA_WHY)$(if $(filter yes,$(HAVE_CUDA)),; builds the cuda backend plugin $(BUILD)/plugins/libmixq-cuda.so,; no cuda plugin: mixq lists the cuda backend as disabled)))
$(info probe: neon   $(HAVE_NEON) ($(NEON_WHY)))
$(info probe: mpi    $(HAVE_MPI) ($(MPI_WHY)))
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
# The x86 SIMD kernels (fully unrolled tiles of intrinsics): UBSan and ASan's stack
# instrumentation make gcc take 700 s for kern_avx512.c alone (80 s without; measured on
# this 2-core machine), three such files, so those objects keep ASan's checks of the heap
# (weights, activations, outputs: what a kernel can overrun) at -O1 and drop the others
# (140 s). The scalar kernels and everything else keep every sanitizer.
KERN_SAN_FLAGS := -O1 -fno-sanitize=undefined --param asan-stack=0
endif

# ---- sources --------------------------------------------------------------------------------
LIB_DIRS := core gguf tokenizer model llm onnx backends backends/ref backends/cpu profiler search \
            reports
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

# ---- aarch64 / NEON: the neon backend's objects ----------------------------------------------
# kern_neon.c is compiled once per path with that path's -march flags; neon.c picks one at
# run time from AT_HWCAP (backends/neon/neon.h).
NEON_PATHS := fallback fp16 dotprod dotprod_fp16
NEON_KERN_OBJS := $(NEON_PATHS:%=$(BUILD)/obj/backends/neon/kern_%.o)
NEON_FLAGS_fallback :=
NEON_FLAGS_fp16 := -march=armv8.2-a+fp16 -DNEON_FP16
NEON_FLAGS_dotprod := -march=armv8.2-a+dotprod -DNEON_DOTPROD
NEON_FLAGS_dotprod_fp16 := -march=armv8.2-a+dotprod+fp16 -DNEON_DOTPROD -DNEON_FP16
ifeq ($(HAVE_NEON),yes)
LIB_OBJS += $(BUILD)/obj/backends/neon/neon.o $(NEON_KERN_OBJS)
else ifeq ($(TARGET_ARCH_NAME),aarch64)
CPPFLAGS += -DMIXQ_NO_NEON
endif
# GCC 12's aarch64 loop vectorizer stops with an internal compiler error on some reductions
# in the unit tests (fmax over doubles in tests/unit/test_onnx.c); tests need no vectorizing.
ifeq ($(ARCH),aarch64)
$(TEST_OBJS): CFLAGS += -fno-tree-loop-vectorize
endif
# ---- end of aarch64 / NEON objects -----------------------------------------------------------

MIXQ := $(BUILD)/mixq
LIBMIXQ := $(BUILD)/libmixq.a
TEST_UNIT := $(BUILD)/test-unit
TEST_HW_COUNTERS := $(BUILD)/test-hw-counters
BENCH_KERNELS := $(BUILD)/bench-kernels
BENCH_E2E := $(BUILD)/bench-e2e
BENCH_OBJS := $(BUILD)/obj/bench/kernels.o $(BUILD)/obj/bench/e2e.o $(BUILD)/obj/bench/mm.o

.PHONY: all check check-unit check-bench check-cli check-mpi check-scripts check-corpus check-asan check-data check-interop demo fuzz format clean deps bench
.DEFAULT_GOAL := all

all: $(MIXQ) $(TEST_UNIT) $(TEST_HW_COUNTERS) $(BENCH_KERNELS) $(BENCH_E2E)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

# the Gram matrices' accumulation and the compensated quantization's updates: loops over
# independent elements that -O2's very cheap cost model leaves scalar (no reassociation:
# the same results either way)
$(BUILD)/obj/model/imatrix.o $(BUILD)/obj/core/compensate.o: CFLAGS += -fvect-cost-model=dynamic
$(BUILD)/obj/backends/cpu/kern_avx2.o: CFLAGS += $(AVX2_FLAGS) $(KERN_SAN_FLAGS)
$(BUILD)/obj/backends/cpu/kern_avx512.o: CFLAGS += $(AVX512_FLAGS) $(KERN_SAN_FLAGS)
$(BUILD)/obj/backends/cpu/kern_avx512vnni.o: backends/cpu/kern_avx512.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $< (vnni)")
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(AVX512VNNI_FLAGS) $(KERN_SAN_FLAGS) -c $< -o $@

$(NEON_KERN_OBJS): $(BUILD)/obj/backends/neon/kern_%.o: backends/neon/kern_neon.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $< ($*)")
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(NEON_FLAGS_$*) -c $< -o $@

# $(BUILD)/libmixq.a, and beside it link-flags: what a program linking it also needs (the
# interop tier's C helpers: cc prog.c $(BUILD)/libmixq.a $$(cat $(BUILD)/link-flags))
LINK_FLAGS := $(BUILD)/link-flags
$(LINK_FLAGS): Makefile
	@mkdir -p $(dir $@)
	$(Q)echo '$(strip $(LDFLAGS) $(LDLIBS))' >$@
$(LIBMIXQ): $(LIB_OBJS) $(LINK_FLAGS)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $(filter %.o,$^)

$(MIXQ): $(CLI_OBJS) $(LIBMIXQ)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(CLI_OBJS) $(LIBMIXQ) $(LDLIBS)

# The second bundled model is committed in two pieces (each under 16 MB; its f32 weights do
# not compress: xz leaves 17.9 MB): joined here and checked against its sha256.
TINY256 := examples/tinyllm256/tinyllm256.gguf
$(TINY256): $(TINY256).part1 $(TINY256).part2 $(TINY256).sha256
	@echo "  JOIN    $@"
	$(Q)cat $(TINY256).part1 $(TINY256).part2 >$@.tmp && \
	  [ "$$(sha256sum <$@.tmp | cut -d' ' -f1)" = "$$(cut -d' ' -f1 $(TINY256).sha256)" ] || \
	  { rm -f $@.tmp; echo "$@: the joined pieces do not match $(TINY256).sha256" >&2; exit 1; }
	$(Q)mv $@.tmp $@
all: $(TINY256)

# The MPI twin (core/dist.h): mixq itself never links MPI (its libraries cost every run about
# 1 MiB of RSS); started by an MPI launcher with several ranks, mixq execs mixq-mpi beside it,
# the same program with core/dist.c compiled against MPI.
ifeq ($(HAVE_MPI),yes)
MIXQ_MPI := $(BUILD)/mixq-mpi
$(BUILD)/obj/core/dist-mpi.o: core/dist.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $< (mpi)")
	$(Q)$(CC) $(CPPFLAGS) -DMQ_WITH_MPI $(MPI_CFLAGS) $(CFLAGS) -c $< -o $@
$(MIXQ_MPI): $(CLI_OBJS) $(BUILD)/obj/core/dist-mpi.o $(LIBMIXQ)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(CLI_OBJS) $(BUILD)/obj/core/dist-mpi.o $(LIBMIXQ) $(LDLIBS) \
	    $(MPI_LIBS)
all: $(MIXQ_MPI)
check-mpi: $(MIXQ_MPI)
endif

$(TEST_UNIT): $(TEST_OBJS) $(LIBMIXQ)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(TEST_OBJS) $(LIBMIXQ) $(LDLIBS)

$(BENCH_KERNELS): $(BUILD)/obj/bench/kernels.o $(BUILD)/obj/bench/mm.o $(LIBMIXQ)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIBMIXQ) $(LDLIBS)

$(TEST_HW_COUNTERS): $(BUILD)/obj/tests/hw/counters.o $(LIBMIXQ)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIBMIXQ) $(LDLIBS)

$(BENCH_E2E): $(BUILD)/obj/bench/e2e.o $(LIBMIXQ)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIBMIXQ) $(LDLIBS)

# ==== CUDA backend plugin =====================================================================
# With nvcc (WITH_CUDA=auto finds it, WITH_CUDA=yes insists) `all` also builds
# $(BUILD)/plugins/libmixq-cuda.so: the kernels (backends/cuda/*.cu) by nvcc, the backend
# (backends/cuda/*.c, C11) and the core files it uses by $(CC) with -fPIC, linked by nvcc
# with the static CUDA runtime (only the driver, libcuda.so.1, is needed at run time) and
# cuBLAS (dynamic; found through the RUNPATH below or the system's library path). Only the
# symbol mixq_cuda_plugin_v1 is exported (backends/cuda/plugin.map). mixq itself never links
# CUDA: backends/cuda_loader.c dlopens the plugin, and lists cuda as disabled, with the
# reason, where it is absent or cannot run. bench-cuda is host code, always built; it skips
# (exit 77) where the cuda backend is unusable.
#   CUDA_ARCHS  SASS targets (default 80 89 90: A100/A10/RTX 30xx, L4/L40/RTX 40xx, H100/H200)
#   CUDA_PTX    the PTX target that newer GPUs JIT-compile (default 90)
#   NVCCFLAGS   default -O3; DEVELOPER=1 adds -Werror all-warnings and the host warnings
# Never --use_fast_math: the device quantizer must give the reference quantizer's bits.
CUDA_ARCHS ?= 80 89 90
CUDA_PTX ?= 90
BENCH_CUDA := $(BUILD)/bench-cuda
BENCH_OBJS += $(BUILD)/obj/bench/cuda.o
.PHONY: bench-cuda
all: $(BENCH_CUDA)
bench: bench-cuda

$(BENCH_CUDA): $(BUILD)/obj/bench/cuda.o $(BUILD)/obj/bench/mm.o $(LIBMIXQ)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIBMIXQ) $(LDLIBS)

bench-cuda: $(BENCH_CUDA)
	$(Q)$(BENCH_CUDA) --out $(BUILD)/bench/cuda.yaml; rc=$$?; \
	  if [ $$rc -eq 77 ]; then echo "bench-cuda skipped"; elif [ $$rc -ne 0 ]; then exit $$rc; fi

ifeq ($(HAVE_CUDA),yes)
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(realpath $(NVCC)))
CUDA_LIBDIR := $(firstword $(wildcard $(CUDA_HOME)/lib64 $(CUDA_HOME)/lib) $(CUDA_HOME)/lib64)
NVCC_VERSION := $(shell $(NVCC) --version 2>/dev/null | sed -n 's/.*release \([0-9.]*\).*/\1/p')
NVCC_GENCODE := $(foreach a,$(CUDA_ARCHS),-gencode arch=compute_$(a),code=sm_$(a)) \
                -gencode arch=compute_$(CUDA_PTX),code=compute_$(CUDA_PTX)
NVCCFLAGS ?= -O3
NVCCFLAGS += -std=c++17 -lineinfo -Xcompiler -fPIC,-fvisibility=hidden $(NVCC_GENCODE)
ifeq ($(DEVELOPER),1)
NVCCFLAGS += -Werror all-warnings -Xcompiler -Wall,-Wextra,-Wshadow,-Werror
endif
PLUGIN_CFLAGS := $(filter-out -fsanitize=% -fno-sanitize-recover=%,$(CFLAGS)) -fPIC -fvisibility=hidden \
                 -isystem $(CUDA_HOME)/include \
                 -DMQ_CUDA_BUILD='"nvcc $(NVCC_VERSION); $(CUDA_ARCHS:%=sm_%) compute_$(CUDA_PTX)"'
CUDA_PLUGIN := $(BUILD)/plugins/libmixq-cuda.so
CUDA_CU_OBJS := $(patsubst %.cu,$(BUILD)/plugin-obj/%.o,$(wildcard backends/cuda/*.cu))
CUDA_C_OBJS := $(patsubst %.c,$(BUILD)/plugin-obj/%.o,$(wildcard backends/cuda/*.c) \
                 core/status.c core/dtype.c core/dtype_kquants.c core/dtype_quant.c \
                 core/compensate.c core/pool.c core/log.c core/dist.c)
all: $(CUDA_PLUGIN)
# the tests and the benchmark use the plugin where a GPU is usable
check-unit check-cli bench-cuda: $(CUDA_PLUGIN)

# objects are rebuilt when the CUDA flags change (CUDA_ARCHS=... on the command line)
CUDA_STAMP := $(BUILD)/plugin-obj/flags
CUDA_STAMP_NOW := $(NVCC_VERSION) $(NVCCFLAGS) $(PLUGIN_CFLAGS)
ifneq ($(filter-out clean format,$(or $(MAKECMDGOALS),all)),)
$(shell mkdir -p $(BUILD)/plugin-obj && \
  (printf '%s\n' "$(subst ",,$(subst ',,$(CUDA_STAMP_NOW)))" | cmp -s - $(CUDA_STAMP) || \
   printf '%s\n' "$(subst ",,$(subst ',,$(CUDA_STAMP_NOW)))" >$(CUDA_STAMP)))
endif
$(CUDA_CU_OBJS) $(CUDA_C_OBJS): $(CUDA_STAMP)

$(BUILD)/plugin-obj/%.o: %.cu
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  NVCC    $<")
	$(Q)$(NVCC) -I. $(NVCCFLAGS) -MMD -MP -MF $(@:.o=.d) -c $< -o $@

$(BUILD)/plugin-obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $< (plugin)")
	$(Q)$(CC) $(CPPFLAGS) $(PLUGIN_CFLAGS) -c $< -o $@

$(CUDA_PLUGIN): $(CUDA_CU_OBJS) $(CUDA_C_OBJS) backends/cuda/plugin.map
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  NVCC    $@")
	$(Q)$(NVCC) -shared -cudart static -o $@ $(CUDA_CU_OBJS) $(CUDA_C_OBJS) -L$(CUDA_LIBDIR) -lcublas -lcublasLt \
	    -ldl -lpthread -lrt -lm -Xlinker --version-script=backends/cuda/plugin.map -Xlinker -z,defs \
	    -Xlinker -rpath=$(CUDA_LIBDIR)

-include $(CUDA_CU_OBJS:.o=.d) $(CUDA_C_OBJS:.o=.d)
endif
# ==== end of the CUDA backend plugin ==========================================================

# ---- benchmarks (machine-readable YAML; they never assert times) -------------------------
# bench-kernels needs nothing else; bench/e2e.py builds llama.cpp (scripts/build-llama-cpp)
# and fetches SmolLM2 (scripts/fetch-models), both cached under .cache/.
bench: $(BENCH_KERNELS) $(BENCH_E2E)
	$(BENCH_KERNELS) --out $(BUILD)/bench/kernels.yaml
	$(PYTHON) bench/e2e.py --mixq-bench $(BENCH_E2E) --out $(BUILD)/bench/e2e.yaml

# bench-mpi: mpirun -np 2 against one process on measured sensitivity (skips without MPI)
bench: bench-mpi
bench-mpi: $(MIXQ) $(TINY256)
	$(Q)mkdir -p $(BUILD)/bench
	$(Q)$(PYTHON) bench/mpi.py --mixq $(MIXQ) --out $(BUILD)/bench/mpi.yaml; rc=$$?; \
	  if [ $$rc -eq 77 ]; then true; elif [ $$rc -ne 0 ]; then exit $$rc; fi

# ==== bench-search: the search engine's speed, and its DP against an ILP (GLPK) ================
# GLPK (libglpk-dev, in scripts/install-deps) is the comparison only, linked into bench-search
# and never into mixq; without it bench-search still runs and reports the ILP as skipped.
BENCH_SEARCH := $(BUILD)/bench-search
BENCH_OBJS += $(BUILD)/obj/bench/search.o
ifneq ($(filter-out clean format deps,$(or $(MAKECMDGOALS),all)),)
HAVE_GLPK := $(shell printf '\043include <glpk.h>\nint main(void){return glp_version()==0;}\n' | \
               $(CC) -x c - -lglpk -o /dev/null 2>/dev/null && echo yes || echo no)
endif
ifeq ($(MAKELEVEL)-$(HAVE_GLPK),0-no)
$(info probe: glpk   no (libglpk-dev not found; bench-search skips its ILP comparison))
endif
.PHONY: bench-search bench-mpi
all: $(BENCH_SEARCH)
bench: bench-search
$(BUILD)/obj/bench/search.o: CPPFLAGS += $(if $(filter yes,$(HAVE_GLPK)),-DHAVE_GLPK)
$(BENCH_SEARCH): $(BUILD)/obj/bench/search.o $(LIBMIXQ)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIBMIXQ) $(LDLIBS) $(if $(filter yes,$(HAVE_GLPK)),-lglpk)
bench-search: $(BENCH_SEARCH)
	$(Q)$(BENCH_SEARCH) --out $(BUILD)/bench/search.yaml
# ==== end of bench-search =====================================================================

# ---- set-up ---------------------------------------------------------------------------------
deps:
	$(Q)scripts/install-deps

# ---- tests ----------------------------------------------------------------------------------
# check: the normal build (strict warnings), then the same tests under ASan+UBSan.
# Builds run on every CPU (unless make was given -j); the tests after them run one at a time.
NPROC := $(shell nproc 2>/dev/null || echo 1)
PARALLEL = $(if $(filter -j%,$(MAKEFLAGS)),,-j$(NPROC))
check: deps
	$(Q)$(MAKE) --no-print-directory $(PARALLEL) DEVELOPER=1 $(TEST_UNIT) $(TEST_HW_COUNTERS) $(MIXQ) \
	    $(MIXQ_MPI) $(BENCH_KERNELS) $(BENCH_CUDA) $(CUDA_PLUGIN) $(TINY256)
	$(Q)$(MAKE) --no-print-directory DEVELOPER=1 check-unit check-cli check-mpi check-scripts check-corpus check-data \
	    check-report check-bench
	$(Q)$(MAKE) --no-print-directory DEVELOPER=1 check-asan
	$(Q)$(MAKE) --no-print-directory DEVELOPER=1 check-aarch64
	@echo "make check: all passed"

check-unit: $(TEST_UNIT) $(TEST_HW_COUNTERS) $(MIXQ) $(TINY256)
	@echo "== unit tests ($(BUILD))"
	$(Q)MIXQ_EXE=$(abspath $(MIXQ)) $(TEST_UNIT)
	@echo "== hardware counters (skip, exit 77, where the machine has none)"
	$(Q)$(TEST_HW_COUNTERS); rc=$$?; if [ $$rc -eq 77 ]; then echo "skipped"; elif [ $$rc -ne 0 ]; then exit $$rc; fi

# check-bench: the kernel benchmarks run (--quick) and write what they should; their times
# are reported by `make bench`, never asserted. bench-cuda skips (77) without a GPU.
check-bench: $(BENCH_KERNELS) $(BENCH_CUDA) $(BENCH_E2E)
	@echo "== benchmark harness (bench-kernels --quick; bench-e2e on the bundled model; bench-cuda --quick where a GPU is usable)"
	$(Q)mkdir -p $(BUILD)/bench
	$(Q)$(BENCH_KERNELS) --quick --out $(BUILD)/bench/kernels-quick.yaml >/dev/null 2>$(BUILD)/bench/kernels-quick.log || \
	  { tail -5 $(BUILD)/bench/kernels-quick.log; exit 1; }
	$(Q)$(PYTHON) -c 'import sys, yaml; d = yaml.safe_load(open(sys.argv[1])); \
	  r = [k for k in d["kernels"] if k["median_us"] > 0]; \
	  assert {k["kernel"] for k in r} >= {"gemv", "gemm"} and len(r) == len(d["kernels"]), "bench-kernels: missing or empty results"; \
	  print("bench-kernels: %d results" % len(r))' $(BUILD)/bench/kernels-quick.yaml
	@# weight bytes per decoded token in q8_0: 6 blocks (q, o 192x192; k, v 192 -> 64; gate, up 192 -> 512; down
	@# 512 -> 192), the output matrix (192 -> 259 tokens) and one row of the token embedding
	$(Q)$(BENCH_E2E) examples/tinyllm/tinyllm.gguf --plan q8_0 --reps 2 --prompt 16 --gen 4 --bandwidth \
	  >$(BUILD)/bench/e2e-quick.yaml
	$(Q)$(PYTHON) -c 'import sys, yaml; d = yaml.safe_load(open(sys.argv[1])); \
	  q8 = lambda k, n: k // 32 * 34 * n; \
	  w = 6 * (2 * q8(192, 192) + 2 * q8(192, 64) + 2 * q8(192, 512) + q8(512, 192)) + q8(192, 259) + q8(192, 1); \
	  assert d["pp"]["median"] > 0 and d["tg"]["median"] > 0 and d["dram_read_gbs"] > 0, "bench-e2e: empty results"; \
	  assert d["weight_bytes_per_token"] == w, "bench-e2e: %s weight bytes per token, want %d" % (d["weight_bytes_per_token"], w); \
	  print("bench-e2e: pp %.0f, tg %.0f tokens/s; %.0f weight bytes per token" % (d["pp"]["median"], d["tg"]["median"], w))' \
	  $(BUILD)/bench/e2e-quick.yaml
	$(Q)$(BENCH_CUDA) --quick --out $(BUILD)/bench/cuda-quick.yaml >/dev/null; rc=$$?; \
	  if [ $$rc -eq 77 ]; then echo "bench-cuda skipped"; elif [ $$rc -ne 0 ]; then exit $$rc; else echo "bench-cuda: ran"; fi

check-cli: $(MIXQ)
	@echo "== command-line tests ($(BUILD))"
	$(Q)MIXQ=$(MIXQ) PYTHON=$(PYTHON) tests/cli/run.sh

# check-mpi: mpirun -np 2 of sensitivity, imatrix and tune against one process (core/dist.h);
# skips (exit 77) without MPI, after checking that a build without it refuses several ranks
check-mpi: $(MIXQ) $(TINY256)
	@echo "== MPI ranks ($(BUILD), mpi $(HAVE_MPI))"
	$(Q)MIXQ=$(MIXQ) MIXQ_MPI=$(HAVE_MPI) CC="$(CC)" tests/mpi/run.sh; rc=$$?; \
	  if [ $$rc -eq 77 ]; then echo "skipped"; elif [ $$rc -ne 0 ]; then exit $$rc; fi

# check-scripts: scripts/fetch-models' lock parsing and joining, offline (made-up wheels)
check-scripts:
	@echo "== scripts (fetch-models, offline)"
	$(Q)$(PYTHON) tests/scripts/fetch-models.py

check-corpus: $(MIXQ)
	@echo "== malformed-file corpus ($(BUILD))"
	$(Q)$(PYTHON) tests/fuzz/make-gguf-corpus.py $(BUILD)/corpus/gguf
	$(Q)MIXQ=$(MIXQ) tests/fuzz/run-corpus.sh $(BUILD)/corpus/gguf
	$(Q)$(PYTHON) tests/fuzz/make-onnx-corpus.py $(BUILD)/corpus/onnx
	$(Q)MIXQ=$(MIXQ) tests/fuzz/run-corpus.sh $(BUILD)/corpus/onnx

check-data:
	@echo "== evaluation texts regenerate byte for byte"
	$(Q)$(PYTHON) scripts/prepare-data.py --check; rc=$$?; \
	  if [ $$rc -eq 77 ]; then echo "skipped"; elif [ $$rc -ne 0 ]; then exit $$rc; fi
	$(Q)$(PYTHON) scripts/make-onnx-data.py --check; rc=$$?; \
	  if [ $$rc -eq 77 ]; then echo "skipped"; elif [ $$rc -ne 0 ]; then exit $$rc; fi

# The interop tier: mixq against llama.cpp's own tools (built from the llama-cpp-python
# sdist, cached in .cache/) on the bundled model and SmolLM2. Skips (exit 77) where they
# cannot be had.
check-interop: deps $(MIXQ) $(TINY256)
	@echo "== interop tier: llama.cpp as the oracle"
	$(Q)MIXQ=$(MIXQ) BUILD=$(BUILD) tests/interop/run.sh; rc=$$?; \
	  if [ $$rc -eq 77 ]; then echo "interop tier skipped"; elif [ $$rc -ne 0 ]; then exit $$rc; fi

ASAN_BUILD := $(BUILD)/asan
check-asan: $(TINY256)
	@echo "== sanitizer build (address,undefined)"
	$(Q)$(MAKE) --no-print-directory $(PARALLEL) BUILD=$(ASAN_BUILD) SANITIZE=address,undefined \
	    $(ASAN_BUILD)/mixq $(ASAN_BUILD)/test-unit
	$(Q)ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 MIXQ_EXE=$(abspath $(ASAN_BUILD)/mixq) $(ASAN_BUILD)/test-unit
	$(Q)$(PYTHON) tests/fuzz/make-gguf-corpus.py $(ASAN_BUILD)/corpus/gguf
	$(Q)ASAN_OPTIONS=detect_leaks=1 MIXQ=$(ASAN_BUILD)/mixq tests/fuzz/run-corpus.sh $(ASAN_BUILD)/corpus/gguf
	$(Q)$(PYTHON) tests/fuzz/make-onnx-corpus.py $(ASAN_BUILD)/corpus/onnx
	$(Q)ASAN_OPTIONS=detect_leaks=1 MIXQ=$(ASAN_BUILD)/mixq tests/fuzz/run-corpus.sh $(ASAN_BUILD)/corpus/onnx

# ==== mixq compare: the comparison report in a browser, and the example report ==============
# check-report (in check, about 20 s): headless Chromium renders a report of the bundled model
# and fails on any console error or external request, after proving that it fails on a page
# with a deliberate script error; screenshots in $(BUILD)/report-shots. Skips (exit 77) without
# chromium. report-example: the report issue 11 asks for (cpu best path, cpu scalar, neon
# under qemu, fronts) in $(BUILD)/report-example (minutes; scripts/report-example).
.PHONY: check-report report-example
check-report: $(MIXQ)
	@echo "== comparison report in headless Chromium ($(BUILD))"
	$(Q)MIXQ=$(MIXQ) PYTHON=$(PYTHON) tests/report/run.sh $(BUILD)/report-shots; rc=$$?; \
	  if [ $$rc -eq 77 ]; then echo "skipped"; elif [ $$rc -ne 0 ]; then exit $$rc; fi
report-example: $(MIXQ)
	$(Q)MIXQ=$(MIXQ) scripts/report-example $(BUILD)/report-example
# ==== end of mixq compare =====================================================================

# ---- aarch64 / NEON: the cross build's unit tests under qemu-user ---------------------------
# Twice: on a CPU model with FEAT_DotProd and FEAT_FP16 (every neon path runs) and on one
# without them (only the fallback runs; the other paths must refuse). Left out under
# emulation, where they take minutes: the whole-model evaluations of the eval and cpu
# suites and the search suite (portable arithmetic, tested natively); the neon suite's
# forward pass runs on every path and format, shortened (MIXQ_TEST_QUICK=1).
# Skips (and says why) only where the cross compiler or qemu is missing.
AARCH64_BUILD ?= build-aarch64
QEMU_AARCH64 ?= qemu-aarch64
QEMU_CPU_FULL ?= max
QEMU_PATHS_FULL ?= fallback,fp16,dotprod,dotprod+fp16
QEMU_CPU_BASE ?= cortex-a57
QEMU_PATHS_BASE ?= fallback
AARCH64_TESTS_FULL ?= core/ gguf/ model/ architecture/ backend/ backend_ops/ yaml/ quant_src/ quant/ compensate/ \
                      tokenizer/ synth/ cuda/ \
                      profile/ plot/ onnx/ neon/ cpu/quantize cpu/nonfinite cpu/ops eval/refusals
# (the base CPU model's only path, fallback, ran the forward pass in the first run already)
AARCH64_TESTS_BASE ?= backend/ backend_ops/ neon/paths neon/quantize neon/f16 neon/ops neon/nonfinite
.PHONY: check-aarch64
check-aarch64: $(TINY256)
	@echo "== aarch64: cross build ($(CROSS_CC)), unit tests under $(QEMU_AARCH64)"
	$(Q)if ! command -v $(CROSS_CC) >/dev/null 2>&1; then \
	    echo "check-aarch64 skipped: no $(CROSS_CC) (scripts/install-deps installs gcc-aarch64-linux-gnu)"; \
	    exit 0; fi; \
	  if ! command -v $(QEMU_AARCH64) >/dev/null 2>&1; then \
	    echo "check-aarch64 skipped: no $(QEMU_AARCH64) (scripts/install-deps installs qemu-user)"; exit 0; fi; \
	  $(MAKE) --no-print-directory $(PARALLEL) ARCH=aarch64 BUILD=$(AARCH64_BUILD) $(AARCH64_BUILD)/test-unit \
	      $(AARCH64_BUILD)/mixq && \
	  $(QEMU_AARCH64) -cpu $(QEMU_CPU_FULL) $(AARCH64_BUILD)/mixq backends | grep -A1 '^neon' && \
	  echo "-- $(QEMU_AARCH64) -cpu $(QEMU_CPU_FULL): neon paths $(QEMU_PATHS_FULL)" && \
	  MIXQ_TEST_QUICK=1 MIXQ_EXPECT_EMULATED=1 MIXQ_EXPECT_NEON_PATHS=$(QEMU_PATHS_FULL) \
	      $(QEMU_AARCH64) -cpu $(QEMU_CPU_FULL) $(AARCH64_BUILD)/test-unit $(AARCH64_TESTS_FULL) && \
	  echo "-- $(QEMU_AARCH64) -cpu $(QEMU_CPU_BASE): neon paths $(QEMU_PATHS_BASE)" && \
	  MIXQ_TEST_QUICK=1 MIXQ_EXPECT_EMULATED=1 MIXQ_EXPECT_NEON_PATHS=$(QEMU_PATHS_BASE) \
	      $(QEMU_AARCH64) -cpu $(QEMU_CPU_BASE) $(AARCH64_BUILD)/test-unit $(AARCH64_TESTS_BASE)
clean: clean-aarch64
.PHONY: clean-aarch64
clean-aarch64:
	rm -rf $(AARCH64_BUILD)
# ---- end of aarch64 / NEON checks ------------------------------------------------------------

# ---- demo -----------------------------------------------------------------------------------
# The main job on a real model: fetch SmolLM2-135M-Instruct (PyPI, checksummed), then tune it
# for a memory budget between its uniform q4_0 and q8_0 sizes, so the plan must be mixed. The
# grouped sensitivity (about 60 evaluations on 2 chunks of 256 tokens) keeps it within
# minutes on 2 cores; every step is cached, so a second `make demo` only searches and
# validates. DEMO_ARGS changes the budgets (e.g. DEMO_ARGS='--budget 160MB --latency 15ms').
DEMO_MODEL := models/SmolLM2-135M-Instruct.Q4_1.gguf
DEMO_OUT ?= mixq-out/demo
DEMO_ARGS ?= --budget 145MB
DEMO_TUNE := --sensitivity grouped --ctx 256 --chunks 2
demo: deps
	$(Q)$(MAKE) --no-print-directory $(MIXQ)
	$(Q)scripts/fetch-models smollm2
	$(Q)start=$$(date +%s); \
	  $(MIXQ) tune $(DEMO_MODEL) $(DEMO_TUNE) $(DEMO_ARGS) --out $(DEMO_OUT) || exit $$?; \
	  echo; echo "plots in $(DEMO_OUT)/:"; ls $(DEMO_OUT)/*.png | sed 's/^/  /'; \
	  echo "make demo: tune took $$(( $$(date +%s) - start )) s"

# ---- fuzzing (clang's libFuzzer) ------------------------------------------------------------
FUZZ_BUILD := $(BUILD)/fuzz
FUZZ_LIB_SRCS := $(wildcard core/*.c) $(wildcard gguf/*.c)
$(FUZZ_BUILD)/fuzz-gguf: tests/fuzz/fuzz_gguf.c $(FUZZ_LIB_SRCS)
	@mkdir -p $(dir $@)
	$(Q)clang $(CPPFLAGS) -std=c11 -g -O1 -pthread -fsanitize=fuzzer,address,undefined $(PKG_CFLAGS) \
	    -o $@ $^ $(PKG_LIBS) -lm -lpthread -ldl

# the ONNX target runs the whole model loader (gguf/, tokenizer/, model/, llm/, onnx/ and the
# dispatcher, no backends)
FUZZ_ONNX_SRCS := $(wildcard core/*.c) \
                  $(foreach d,gguf tokenizer model llm onnx,$(wildcard $(d)/*.c)) \
                  backends/dispatch.c
$(FUZZ_BUILD)/fuzz-onnx: tests/fuzz/fuzz_onnx.c $(FUZZ_ONNX_SRCS)
	@mkdir -p $(dir $@)
	$(Q)clang $(CPPFLAGS) -std=c11 -g -O1 -pthread -fsanitize=fuzzer,address,undefined \
	    -fno-sanitize-recover=undefined $(PKG_CFLAGS) -o $@ $^ $(PKG_LIBS) -lm -lpthread -ldl

fuzz: $(FUZZ_BUILD)/fuzz-gguf $(FUZZ_BUILD)/fuzz-onnx
	$(Q)$(PYTHON) tests/fuzz/make-gguf-corpus.py $(FUZZ_BUILD)/seeds
	$(Q)mkdir -p $(FUZZ_BUILD)/corpus-gguf
	$(FUZZ_BUILD)/fuzz-gguf -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -close_fd_mask=2 \
	    $(FUZZ_BUILD)/corpus-gguf $(FUZZ_BUILD)/seeds
	$(Q)$(PYTHON) tests/fuzz/make-onnx-corpus.py $(FUZZ_BUILD)/seeds-onnx
	$(Q)$(PYTHON) tests/cli/make-inputs.py $(FUZZ_BUILD)/seeds-npy
	$(Q)mkdir -p $(FUZZ_BUILD)/corpus-onnx
	$(FUZZ_BUILD)/fuzz-onnx -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -close_fd_mask=2 \
	    -rss_limit_mb=4096 $(FUZZ_BUILD)/corpus-onnx $(FUZZ_BUILD)/seeds-onnx $(FUZZ_BUILD)/seeds-npy

# ---- housekeeping ---------------------------------------------------------------------------
format:
	clang-format -i $(shell git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD)

-include $(LIB_OBJS:.o=.d) $(CLI_OBJS:.o=.d) $(TEST_OBJS:.o=.d) $(BENCH_OBJS:.o=.d) $(BUILD)/obj/tests/hw/counters.d
