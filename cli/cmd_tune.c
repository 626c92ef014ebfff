/* cli/cmd_tune.c - `mixq tune [MODEL] --budget SIZE --latency TIME`: the main job.
 *
 * Chains profile -> sensitivity -> search -> validation on the target, each step reusing
 * the cache, and writes profile.yaml, sensitivity.yaml, front.yaml and their plots.
 *
 * Several targets (--target SPEC, repeatable): each target is a `mixq agent` (this binary,
 * with MIXQ_CPU_ISA or MIXQ_NEON_PATH set for isa=, or the command after '@'), profiled
 * there; the search runs on the combined profile (srch_tune_worst_profile: per layer and
 * format the slowest target's time) and every validated plan is measured on every target
 * (search/tune.h). --per-target adds one plan per target, searched on its own profile and
 * measured there. Sensitivity and KL are measured here, with --host-backend.
 *
 * --runtime llama.cpp[=BINDIR]: every validated plan is also written as a GGUF file and
 * measured by llama.cpp's llama-bench and llama-perplexity (cli/tune_runtime.c), and meets
 * the latency budget only where it does there (search/tune.h). */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <unistd.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "cli/cli.h"
#include "cli/remote.h"
#include "cli/tune_common.h"
#include "core/dist.h"
#include "core/log.h"
#include "core/status.h"
#include "model/imatrix.h"
#include "model/model.h"
#include "model/runner.h"
#include "onnx/onnx.h"
#include "profiler/cache.h"
#include "profiler/measure.h"
#include "profiler/profile.h"
#include "reports/plot.h"
#include "reports/profile_io.h"
#include "reports/sensitivity_io.h"
#include "search/budget.h"
#include "search/pins.h"
#include "search/sensitivity.h"
#include "search/tune.h"

#define TUNE_DEFAULT_CHUNKS 4
/* the evaluation text of LLMs: disjoint from the calibration text MQ_IMATRIX_DEFAULT_TEXT
 * (the 16 KiB of the held-out KJV after it; scripts/prepare-data.py) */
#define TUNE_DEFAULT_EVAL_TEXT "examples/data/kjv-tune.txt"
/* long options without a short one (values past any character) */
enum {
    TUNE_OPT_IMATRIX = 0x1501,
    TUNE_OPT_NO_IMATRIX,
    TUNE_OPT_CALIB,
    TUNE_OPT_CALIB_CHUNKS,
    TUNE_OPT_NO_COMPENSATE,
    TUNE_OPT_RUNTIME
};

static void tune_usage(FILE *f)
{
    fprintf(f,
            "usage: mixq tune [MODEL] [--budget SIZE] [--size SIZE] [--latency TIME] [--max-kl X]\n"
            "                 [options]\n\n"
            "Finds the mixed-precision plans (a format per layer) that trade memory, latency and\n"
            "quality best on this machine, and the one to use within the budgets: profiles every\n"
            "layer in every format here, measures each layer's sensitivity, computes the Pareto\n"
            "front over (memory, latency, loss), then builds and runs the front points nearest the\n"
            "budgets, the uniform f16 and q8_0 plans and llama.cpp's presets Q3_K_M, Q4_K_M,\n"
            "Q5_K_M and Q6_K (as llama-quantize makes them; ONNX models: uniform q4_0) end to end.\n"
            "The chosen plan is the lowest measured KL divergence among the validated front\n"
            "points that meet every budget as measured; with --max-kl, the fastest (then smallest)\n"
            "of those whose measured KL is within it. Every step is cached: a second run with\n"
            "other budgets only searches and validates.\n\n"
            "Cost: measured sensitivity is one evaluation of --chunks chunks per layer and format\n"
            "(a layer's stored format is free); calibrated about 3 per group of layers, whatever\n"
            "the menu (weight errors predict the rest); grouped one per group and format; proxy\n"
            "one pass. Default: measured up to %d evaluations, calibrated above (the bundled\n"
            "model: 226, so calibrated); the first message says which. The progress line shows\n"
            "the evaluations done, left, and the time left.\n\n"
            "With no MODEL it tunes the bundled model (examples/tinyllm) on the bundled\n"
            "evaluation text, offline.\n\n"
            "As llama.cpp users do (llama-quantize --imatrix), it quantizes every format with an\n"
            "importance matrix, computed once on a calibration text kept apart from the evaluation\n"
            "text (--calib; --imatrix FILE, --no-imatrix); the summary names both texts. Beside\n"
            "it, where a model's layer inputs are small enough, it collects their Gram matrices\n"
            "and quantizes with error compensation (GPTQ): each block's rounding error is moved\n"
            "onto the weights still to be rounded, so the layer's output over the calibration\n"
            "text, not each weight, stays close. The blocks are ordinary ones of each format\n"
            "(llama.cpp runs the file), but llama-quantize cannot make them (--no-compensate).\n\n"
            "Writes DIR/profile.yaml, sensitivity.yaml and front.yaml, with plots: layer-times,\n"
            "roofline, sensitivity, front-memory-loss, front-latency-loss, front-memory-latency,\n"
            "validation and plan (.png, .svg, and the .gp/.dat that redraw them).\n\n"
            "options:\n"
            "  --budget SIZE         memory budget: B, KB, MB, GB, KiB, MiB, GiB (e.g. 8GB; default none)\n"
            "  --size SIZE           file size budget: the bytes of the GGUF file 'mixq quantize' writes\n"
            "                        for the plan (what presets are compared by; llama.cpp's\n"
            "                        --target-size), same units (default none; GGUF models)\n"
            "  --latency TIME        latency budget per workload run: us, ms, s (e.g. 200ms; default none)\n"
            "  --max-kl X            quality bound: choose the fastest plan (then the smallest) whose\n"
            "                        measured mean KL divergence from full precision, in nats (the\n"
            "                        validation's KL column; ONNX models: of the output distributions,\n"
            "                        not the task metric), is at most X, within the other budgets.\n"
            "                        Predicted loss (a sum of per-layer losses) steers which plans are\n"
            "                        measured, around X; only measured KL decides. Below the smallest\n"
            "                        KL any plan reaches (the most precise plan's): an error naming it\n"
            "  --workload W          decode[:CTX] (default decode:512), prefill:N, generate:P,G;\n"
            "                        ONNX models: infer[:BATCH] (default: the model config's)\n"
            "  --formats LIST        formats layers may take (default f16,q8_0,q6_k,q5_k,q4_k,q3_k\n"
            "                        where rows allow; a layer's stored format always)\n"
            "  --pin LAYER=FORMAT    fix a layer's format (a name or a glob such as 'blk.*.attn_v.weight');\n"
            "                        repeatable; added to the model config's pins\n"
            "  --config FILE|none    model config (default: the one in configs/models matching MODEL)\n"
            "  --sensitivity M       measured (each layer alone), calibrated (weight errors mapped to\n"
            "                        KL by a fit to a few measured groups), grouped (groups of layers)\n"
            "                        or proxy (one pass, blind to how errors reach the output); default\n"
            "                        as above; see 'mixq sensitivity --help'\n"
            "  --groups N            grouped, calibrated: groups per role along depth (default %d)\n"
            "  --eval FILE           evaluation data of sensitivity and validation KL (LLMs: a text;\n"
            "                        default the model config's, or the bundled\n"
            "                        %s, disjoint from the calibration text)\n"
            "  --inputs PATH         ONNX models: the inputs, NumPy arrays: a .npy (one input), a\n"
            "                        .npz (NAME.npy per input) or a folder of them (a data set);\n"
            "                        without, a model of no known task runs %d seeded random\n"
            "                        samples (synthetic: the output says so). Loss per output: KL\n"
            "                        after Softmax/LogSoftmax/Sigmoid, else relative MSE\n"
            "  --calib FILE          LLMs: the calibration text of the importance matrix (default the\n"
            "                        bundled %s): computed once per model, text,\n"
            "                        --ctx and --calib-chunks and kept in the cache, and every format\n"
            "                        (the presets too) is quantized with it, as llama-quantize --imatrix\n"
            "                        does; front.yaml records the file, for 'mixq quantize --plan\n"
            "                        DIR/front.yaml' and 'mixq export'. A warning says when the\n"
            "                        calibration and evaluation texts overlap. ONNX models: none\n"
            "  --calib-chunks N      chunks of --ctx tokens of the calibration text (default: every\n"
            "                        whole chunk, as llama-imatrix)\n"
            "  --imatrix FILE        quantize with this importance matrix instead (llama-imatrix's GGUF\n"
            "                        or .dat, or one 'mixq imatrix' wrote)\n"
            "  --no-imatrix          quantize plainly, without an importance matrix\n"
            "  --no-compensate       no error compensation: the computed importance matrix holds no\n"
            "                        Gram matrices, and every tensor is what llama-quantize makes with\n"
            "                        it ('mixq export --to llama.cpp' reproduces it byte for byte)\n"
            "  --ctx N, --chunks N   LLMs: chunk length and chunks of the text scored (default\n"
            "                        min(training context, 512) and %d); other models: --chunks N\n"
            "                        takes the first N samples (default all)\n"
            "  --validate N          front points re-measured on the target (default and minimum 8)\n"
            "  --max-seconds S       time cap per measured region: each layer and format profiled\n"
            "                        (default 1) and each plan validated (default 2)\n"
            "  --backend NAME        backend (default cpu; see 'mixq backends')\n"
            "  --threads N           threads (default: the online CPUs, shared among the MPI\n"
            "                        ranks on this machine)\n"
            "  --out DIR             output folder (default ./mixq-out)\n"
            "  --no-memory           no peak-RSS probes: memory from the memory model alone\n"
            "  --no-cache            measure everything again (results still refresh the cache)\n"
            "  --cache-dir DIR       cache folder (default $MIXQ_CACHE_DIR or ~/.cache/mixq)\n"
            "  --no-plots            YAML files only\n"
            "  --remote CMD          measure on another machine: CMD runs 'mixq agent' there, e.g.\n"
            "                        'ssh board mixq agent' (profile, latency and peak RSS are\n"
            "                        measured there with --backend; sensitivity and KL here)\n"
            "  --remote-model PATH   the model's path on the remote machine (default: MODEL's)\n"
            "  --remote-timeout S    longest wait for one answer of the agent (default 1800)\n"
            "  --host-backend NAME   with --remote or --target: the backend for quality here (default cpu)\n"
            "  --target SPEC         tune for several targets at once (repeatable, at most %d): one plan\n"
            "                        measured to meet the budgets on every one. SPEC is\n"
            "                          BACKEND[:isa=PATH][@CMD]\n"
            "                        BACKEND as in --backend; isa= forces a kernel path (cpu:\n"
            "                        MIXQ_CPU_ISA=scalar|avx2|avx512|avx512vnni|avx512amx; neon:\n"
            "                        MIXQ_NEON_PATH);\n"
            "                        @CMD measures through 'mixq agent' run by CMD, as --remote\n"
            "                        (isa= is then set in CMD's environment on this machine). e.g.\n"
            "                          --target cpu --target cpu:isa=scalar\n"
            "                          --target 'neon@qemu-aarch64 -cpu max build-aarch64/mixq agent'\n"
            "                        Each target is profiled by an agent (this binary without '@'); the\n"
            "                        search prices each layer at its slowest target's time (a sum of\n"
            "                        per-layer maxima is at least any one target's sum: conservative),\n"
            "                        and each validated plan is run on every target; the chosen plan\n"
            "                        meets both budgets on each as measured. Writes DIR/front.yaml (per\n"
            "                        target figures under each measured point) and DIR/tN-NAME/profile.yaml\n"
            "  --per-target          with --target: also one plan per target, searched on that target's\n"
            "                        profile and measured there (DIR/tN-NAME/front.yaml)\n"
            "  --runtime llama.cpp[=BINDIR]\n"
            "                        GGUF models: also measure every validated plan in llama.cpp, the\n"
            "                        runtime it is deployed with: each plan is written as a GGUF file,\n"
            "                        timed by BINDIR/llama-bench (same threads, the workload's shape:\n"
            "                        decode:C as -n 16 -d C-1, prefill:P as -p P, generate:P,G as -pg)\n"
            "                        and its KL measured by BINDIR/llama-perplexity against llama.cpp's\n"
            "                        run of the source model on the evaluation text; a plan meets the\n"
            "                        latency budget only if it does in llama.cpp. front.yaml records both\n"
            "                        tools' figures (measured.runtime); the summary gives the gap between\n"
            "                        mixq's predicted and llama.cpp's measured latency. BINDIR default:\n"
            "                        the folder of llama-bench on PATH. LLAMA_ARG_REPACK=0 is passed on\n"
            "                        to llama-bench as --repack 0\n"
            "  --shapes S            ONNX models: input shapes, trtexec's syntax\n"
            "                        NAME:1x3x640x640[,NAME:...]; needed where an input has a\n"
            "                        dynamic dimension other than the batch\n"
            "  -v, -q                more or fewer messages\n"
            "  --help                this text\n",
            SRCH_SENS_AUTO_MAX_EVALS, SRCH_SENS_DEFAULT_DEPTH_GROUPS, TUNE_DEFAULT_EVAL_TEXT, MQ_ONNX_RANDOM_SAMPLES, MQ_IMATRIX_DEFAULT_TEXT, TUNE_DEFAULT_CHUNKS, SRCH_TUNE_MAX_TARGETS);
}

/* Validation on a remote target: each plan's latency and peak RSS from the agent, kept in
 * the host's cache as they arrive (a dead agent loses none of them). */
struct remote_measure {
    struct cli_remote *r;
    const struct cli_remote_req *q;
    const char *cache_dir;
    bool refresh;
};

static int remote_measure_plan(void *ctx, const struct mq_plan *plan, struct prof_stats *lat, double *mem,
                               bool *mem_measured)
{
    struct remote_measure *rm = ctx;
    char *text;
    int rc = mq_plan_to_string(plan, &text);
    if (rc < 0)
        return rc;
    /* the command is in the key: agents of one machine with different kernel paths forced
     * (--target cpu:isa=scalar) report the same identity */
    char key[2800];
    snprintf(key, sizeof(key), "remote-measure/2 target=%.900s cmd=%.600s model=%016llx plan=%016llx backend=%s "
             "threads=%d workload=%s max_seconds=%g memory=%d",
             cli_remote_target(rm->r), cli_remote_cmd(rm->r), (unsigned long long)rm->q->content_hash,
             (unsigned long long)mq_hash64(text, strlen(text), 0x706c616eULL), rm->q->backend, rm->q->threads,
             rm->q->workload->label, rm->q->max_seconds, rm->q->memory);
    free(text);
    double v[9];
    uint64_t peak = 0, base = 0;
    if (!rm->refresh && prof_cache_get(rm->cache_dir, key, v, 9) == 9) {
        *lat = (struct prof_stats){.reps = (int)v[0], .min_ns = v[1], .median_ns = v[2], .mad_ns = v[3],
                                   .mean_ns = v[4], .max_ns = v[5], .rel_ci = v[6]};
        peak = (uint64_t)v[7];
    } else {
        if ((rc = cli_remote_measure(rm->r, rm->q, plan, lat, &peak, &base)) < 0)
            return rc;
        double w[9] = {lat->reps, lat->min_ns, lat->median_ns, lat->mad_ns, lat->mean_ns, lat->max_ns,
                       lat->rel_ci, (double)peak, (double)base};
        prof_cache_put(rm->cache_dir, key, w, 9);
    }
    *mem = (double)peak;
    *mem_measured = peak > 0;
    return MQ_OK;
}

/* One target of --target: an agent, its request and what it measured. */
struct tune_target {
    char label[96]; /* the spec without the command, and the command's program: "neon@qemu-aarch64" */
    char slug[64];  /* "t2-cpu-isa-scalar": its folder under --out */
    char backend[32];
    char cmd[8192]; /* what `sh -c` runs */
    struct cli_remote *r;
    struct cli_remote_req q;
    struct remote_measure rm;
    struct prof_profile *prof;
};

static bool spec_word(const char *s, size_t n)
{
    if (!n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == '-'))
            return false;
    return true;
}

/* Parses BACKEND[:isa=PATH][@CMD] into tg (index i, from 0). self: this binary; cache_dir:
 * passed to the agents this binary runs (NULL: their default), which also get this
 * process's log level (-q, -v). Errors are usage errors
 * (one line). */
static int target_parse(const char *spec, int i, const char *self, const char *cache_dir, struct tune_target *tg)
{
    memset(tg, 0, sizeof(*tg));
    const char *at = strchr(spec, '@');
    size_t head = at ? (size_t)(at - spec) : strlen(spec);
    const char *colon = memchr(spec, ':', head);
    size_t nb = colon ? (size_t)(colon - spec) : head;
    if (!spec_word(spec, nb) || nb >= sizeof(tg->backend))
        return cli_usage_error("tune", "--target '%s': want BACKEND[:isa=PATH][@CMD], e.g. cpu:isa=scalar", spec);
    memcpy(tg->backend, spec, nb);
    char env[96] = "";
    if (colon) {
        const char *opt = colon + 1;
        size_t no = head - (size_t)(opt - spec);
        if (no < 5 || strncmp(opt, "isa=", 4) || !spec_word(opt + 4, no - 4) || no - 4 > 40)
            return cli_usage_error("tune", "--target '%s': the only option is isa=PATH (e.g. cpu:isa=scalar)", spec);
        const char *var = !strcmp(tg->backend, "cpu")    ? "MIXQ_CPU_ISA"
                          : !strcmp(tg->backend, "neon") ? "MIXQ_NEON_PATH"
                                                         : NULL;
        if (!var)
            return cli_usage_error("tune", "--target '%s': isa= applies to the cpu and neon backends", spec);
        snprintf(env, sizeof(env), "%s=%.*s ", var, (int)(no - 4), opt + 4);
    }
    if (at) {
        const char *cmd = at + 1;
        if (!*cmd)
            return cli_usage_error("tune", "--target '%s': nothing after '@' (want the command that runs "
                                   "'mixq agent')", spec);
        if (snprintf(tg->cmd, sizeof(tg->cmd), "%s%s", env, cmd) >= (int)sizeof(tg->cmd))
            return cli_usage_error("tune", "--target '%s': the command is too long", spec);
        /* the program's name: the first word that is not an environment assignment */
        const char *w = cmd, *prog = "agent";
        size_t np = 5;
        while (*w) {
            w += strspn(w, " \t");
            size_t n = strcspn(w, " \t");
            if (!n)
                break;
            if (!memchr(w, '=', n)) {
                const char *base = w;
                for (const char *c = w; c < w + n; c++)
                    if (*c == '/')
                        base = c + 1;
                prog = base;
                np = (size_t)(w + n - base);
                break;
            }
            w += n;
        }
        snprintf(tg->label, sizeof(tg->label), "%.*s@%.*s", (int)(head < 40 ? head : 40), spec,
                 (int)(np < 40 ? np : 40), prog);
    } else {
        if (strchr(self, '\'') || (cache_dir && strchr(cache_dir, '\'')))
            return cli_usage_error("tune", "--target: this program's path or the cache folder has a quote in it");
        size_t n = (size_t)snprintf(tg->cmd, sizeof(tg->cmd), "%s", env);
        if (cache_dir)
            n += (size_t)snprintf(tg->cmd + n, sizeof(tg->cmd) - n, "MIXQ_CACHE_DIR='%s' ", cache_dir);
        if (n >= sizeof(tg->cmd) ||
            snprintf(tg->cmd + n, sizeof(tg->cmd) - n, "exec '%s' agent%s", self,
                     mq_log_enabled(MQ_LOG_DEBUG) ? " -v"
                     : mq_log_enabled(MQ_LOG_INFO) ? ""
                                                   : " -q") >= (int)(sizeof(tg->cmd) - n))
            return cli_usage_error("tune", "--target '%s': the agent's command is too long", spec);
        snprintf(tg->label, sizeof(tg->label), "%.*s", (int)(head < 90 ? head : 90), spec);
    }
    size_t n = (size_t)snprintf(tg->slug, sizeof(tg->slug), "t%d-", i + 1);
    for (const char *c = tg->label; *c && n + 1 < sizeof(tg->slug); c++)
        if (isalnum((unsigned char)*c))
            tg->slug[n++] = *c;
        else if (tg->slug[n - 1] != '-')
            tg->slug[n++] = '-';
    while (tg->slug[n - 1] == '-')
        n--;
    tg->slug[n] = '\0';
    return CLI_OK;
}

static int targets_measure(void *ctx, int target, const struct mq_plan *plan, struct prof_stats *lat, double *mem,
                           bool *mem_measured)
{
    struct tune_target *tg = ctx; /* the first target this tuning measures on */
    return remote_measure_plan(&tg[target].rm, plan, lat, mem, mem_measured);
}


int cmd_tune(int argc, char **argv)
{
    static const struct option opts[] = {
        {"budget", required_argument, NULL, 'B'},      {"latency", required_argument, NULL, 'L'},
        {"size", required_argument, NULL, 'Z'},        {"max-kl", required_argument, NULL, 'K'},
        {"workload", required_argument, NULL, 'w'},    {"formats", required_argument, NULL, 'f'},
        {"pin", required_argument, NULL, 'p'},         {"config", required_argument, NULL, 'g'},
        {"sensitivity", required_argument, NULL, 'S'}, {"groups", required_argument, NULL, 'G'},
        {"eval", required_argument, NULL, 'e'},    {"inputs", required_argument, NULL, CLI_OPT_INPUTS},
        {"imatrix", required_argument, NULL, TUNE_OPT_IMATRIX},
        {"no-imatrix", no_argument, NULL, TUNE_OPT_NO_IMATRIX},
        {"no-compensate", no_argument, NULL, TUNE_OPT_NO_COMPENSATE},
        {"calib", required_argument, NULL, TUNE_OPT_CALIB},
        {"calib-chunks", required_argument, NULL, TUNE_OPT_CALIB_CHUNKS},
        {"runtime", required_argument, NULL, TUNE_OPT_RUNTIME},
        {"ctx", required_argument, NULL, 'c'},         {"chunks", required_argument, NULL, 'n'},
        {"validate", required_argument, NULL, 'V'},    {"max-seconds", required_argument, NULL, 's'},
        {"backend", required_argument, NULL, 'b'},     {"threads", required_argument, NULL, 'j'},
        {"out", required_argument, NULL, 'o'},         {"no-memory", no_argument, NULL, 'M'},
        {"no-cache", no_argument, NULL, 'C'},          {"cache-dir", required_argument, NULL, 'd'},
        {"no-plots", no_argument, NULL, 'P'},          {"help", no_argument, NULL, 'h'},
        {"remote", required_argument, NULL, 'R'},      {"remote-model", required_argument, NULL, 'm'},
        {"remote-timeout", required_argument, NULL, 'T'}, {"host-backend", required_argument, NULL, 'H'},
        {"target", required_argument, NULL, 'X'},      {"per-target", no_argument, NULL, 'Y'},
        {"verbose", no_argument, NULL, 'v'},           {"quiet", no_argument, NULL, 'q'},
        {"shapes", required_argument, NULL, CLI_OPT_SHAPES}, {NULL, 0, NULL, 0},
    };
    const char *workload = NULL, *formats = NULL, *config = NULL, *eval = NULL, *backend = "cpu";
    const char *out_dir = "mixq-out", *cache_arg = NULL, *remote = NULL, *remote_model = NULL, *host_backend = "cpu";
    double remote_timeout = 1800;
    double mem_budget = SRCH_NO_BUDGET, lat_budget = SRCH_NO_BUDGET, size_budget = SRCH_NO_BUDGET, max_seconds = 0;
    double max_kl = 0;
    bool has_max_kl = false;
    long long ctx = 0, chunks = -1, n_validate = 8, threads = 0, groups = 0;
    enum srch_sens_method method = SRCH_SENS_AUTO;
    bool probe = true, no_cache = false, plots = true, backend_given = false, per_target = false;
    const char *imatrix = NULL, *calib = NULL; /* the importance matrix: cli_tune_imatrix */
    const char *runtime = NULL;                /* --runtime llama.cpp[=BINDIR] */
    bool no_imatrix = false, no_compensate = false, inputs_given = false;
    long long calib_chunks = 0;
    const char *target_spec[SRCH_TUNE_MAX_TARGETS];
    int n_targets = 0;
    static struct srch_pins cli_pins, pins; /* large: off the stack */
    memset(&cli_pins, 0, sizeof(cli_pins));
    memset(&pins, 0, sizeof(pins));
    const char *shapes = NULL;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "hvq", opts, NULL)) != -1) {
        int u = CLI_OK;
        switch (c) {
        case 'B':
            if (srch_budget_parse_bytes(optarg, &mem_budget) < 0)
                return CLI_USAGE;
            break;
        case 'L':
            if (srch_budget_parse_time(optarg, &lat_budget) < 0)
                return CLI_USAGE;
            break;
        case 'Z':
            if (srch_budget_parse_bytes(optarg, &size_budget) < 0)
                return CLI_USAGE;
            break;
        case 'K':
            if (srch_budget_parse_kl(optarg, &max_kl) < 0)
                return CLI_USAGE;
            has_max_kl = true;
            break;
        case 'w': workload = optarg; break;
        case 'f': formats = optarg; break;
        case 'p':
            if (srch_pins_parse(&cli_pins, optarg, "--pin") < 0)
                return CLI_USAGE;
            break;
        case 'g': config = optarg; break;
        case 'S':
            if (srch_sens_method_parse(optarg, &method) < 0 || method == SRCH_SENS_AUTO)
                return cli_usage_error("tune", "--sensitivity is measured, calibrated, grouped or proxy, not '%s'",
                                       optarg);
            break;
        case 'G': u = cli_parse_int("tune", "--groups", optarg, 1, 1 << 20, &groups); break;
        case 'e': eval = optarg; break;
        case CLI_OPT_INPUTS:
            eval = optarg;
            inputs_given = true;
            break;
        case TUNE_OPT_IMATRIX: imatrix = optarg; break;
        case TUNE_OPT_NO_IMATRIX: no_imatrix = true; break;
        case TUNE_OPT_NO_COMPENSATE: no_compensate = true; break;
        case TUNE_OPT_CALIB: calib = optarg; break;
        case TUNE_OPT_RUNTIME:
            if (cli_runtime_spec_check("tune", optarg) != CLI_OK)
                return CLI_USAGE;
            runtime = optarg;
            break;
        case TUNE_OPT_CALIB_CHUNKS:
            u = cli_parse_int("tune", "--calib-chunks", optarg, 1, 1 << 30, &calib_chunks);
            break;
        case 'c': u = cli_parse_int("tune", "--ctx", optarg, 4, 1 << 20, &ctx); break;
        case 'n': u = cli_parse_int("tune", "--chunks", optarg, 1, 1 << 30, &chunks); break;
        case 'V': u = cli_parse_int("tune", "--validate", optarg, 8, 4096, &n_validate); break;
        case 's': u = cli_parse_real("tune", "--max-seconds", optarg, 0, true, 3600, "seconds", &max_seconds); break;
        case 'b': backend = optarg; backend_given = true; break;
        case 'X':
            if (n_targets == SRCH_TUNE_MAX_TARGETS)
                return cli_usage_error("tune", "at most %d --target", SRCH_TUNE_MAX_TARGETS);
            target_spec[n_targets++] = optarg;
            break;
        case 'Y': per_target = true; break;
        case 'j': u = cli_parse_int("tune", "--threads", optarg, 1, 1024, &threads); break;
        case 'o': out_dir = optarg; break;
        case 'M': probe = false; break;
        case 'C': no_cache = true; break;
        case 'd': cache_arg = optarg; break;
        case 'P': plots = false; break;
        case 'R': remote = optarg; break;
        case 'm': remote_model = optarg; break;
        case 'H': host_backend = optarg; break;
        case 'T':
            u = cli_parse_real("tune", "--remote-timeout", optarg, 0, true, 86400, "seconds", &remote_timeout);
            break;
        case 'v': mq_log_set_level(MQ_LOG_DEBUG); break;
        case 'q': mq_log_set_level(MQ_LOG_WARN); break;
        case 'h': tune_usage(stdout); return CLI_OK;
        case CLI_OPT_SHAPES:
            if (cli_check_shapes("tune", optarg) != CLI_OK)
                return CLI_USAGE;
            shapes = optarg;
            break;
        default: return cli_bad_option("tune", argv);
        }
        if (u != CLI_OK)
            return u;
    }
    if (imatrix && no_imatrix)
        return cli_usage_error("tune", "--imatrix and --no-imatrix: give one");
    if ((calib || calib_chunks) && (imatrix || no_imatrix))
        return cli_usage_error("tune", "--calib and --calib-chunks compute the importance matrix: not with %s",
                               imatrix ? "--imatrix" : "--no-imatrix");
    if (argc - optind > 1)
        return cli_usage_error("tune", "want at most one MODEL argument");
    if (n_targets && (remote || backend_given))
        return cli_usage_error("tune", "--target names each target's backend and command: not with %s",
                               remote ? "--remote" : "--backend");
    if (per_target && !n_targets)
        return cli_usage_error("tune", "--per-target wants at least one --target");
    if (runtime && (remote || n_targets))
        return cli_usage_error("tune", "--runtime measures plans in llama.cpp on this machine: not with %s",
                               remote ? "--remote" : "--target");
    uint32_t fmask = 0; /* 0: the default menu (core/dtype.h) */
    if (formats && cli_parse_formats("tune", formats, &fmask) != CLI_OK)
        return CLI_USAGE;
    char model_path[4096], default_text[4096], cfg_data[4096], cache_dir[4096];
    if (optind < argc)
        snprintf(model_path, sizeof(model_path), "%s", argv[optind]);
    else
        cli_data_path(model_path, sizeof(model_path), "examples/tinyllm/tinyllm.gguf");
    cli_data_path(default_text, sizeof(default_text), TUNE_DEFAULT_EVAL_TEXT);
    cli_cache_dir(cache_arg, cache_dir, sizeof(cache_dir));
    static struct tune_target tg[SRCH_TUNE_MAX_TARGETS]; /* large: off the stack */
    if (n_targets) {
        char self[4096];
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (n <= 0)
            return cli_usage_error("tune", "--target: cannot find this program to run its agents: %s",
                                   n < 0 ? strerror(errno) : "empty path");
        self[n] = '\0';
        for (int i = 0; i < n_targets; i++) {
            int u = target_parse(target_spec[i], i, self, cache_arg ? cache_dir : NULL, &tg[i]);
            if (u != CLI_OK)
                return u;
            for (int j = 0; j < i; j++)
                if (!strcmp(tg[j].label, tg[i].label))
                    return cli_usage_error("tune", "--target '%s' is given twice", tg[i].label);
        }
    }

    uint64_t t0 = prof_now_ns();
    struct mq_model *m = NULL;
    struct be_backend *be = NULL;
    struct prof_profile *prof = NULL;
    struct srch_sensitivity *sens = NULL;
    struct srch_tune *t = NULL;
    struct cli_remote *rem = NULL;
    struct srch_tune *tt = NULL; /* --per-target: the tuning of one target */
    static struct rpt_model_config cfg;
    bool have_cfg;
    int rc;
    if ((rc = cli_model_load(model_path, shapes, &m)) < 0 || (rc = cli_check_inputs("tune", m, inputs_given)) < 0)
        goto done;
    if ((rc = cli_tune_config("tune", m, config, &cfg, &have_cfg, &pins)) < 0)
        goto done;
    for (int i = 0; i < cli_pins.n; i++)
        if ((rc = srch_pins_add(&pins, cli_pins.pin[i].layer, cli_pins.pin[i].fmt, "--pin")) < 0)
            goto done;
    if (!eval && have_cfg && cfg.data[0]) {
        cli_data_path(cfg_data, sizeof(cfg_data), cfg.data);
        eval = cfg_data;
    }
    if (!eval && m->kind == MQ_MODEL_LLAMA)
        eval = default_text;
    if (chunks < 0) /* LLMs: the first chunks of the text; other tasks: every sample */
        chunks = m->kind == MQ_MODEL_LLAMA ? TUNE_DEFAULT_CHUNKS : 0;
    if (!workload)
        workload = have_cfg && cfg.workload[0] ? cfg.workload : m->runner->default_workload;
    struct prof_options po = {.formats = fmask, .cache_dir = cache_dir, .cache_refresh = no_cache,
                              .max_seconds = max_seconds, .progress = true};
    /* what can be checked before minutes of measuring: the pins, the evaluation data */
    uint8_t *pinned = malloc((size_t)m->n_layers + 1);
    if (!pinned) {
        rc = mq_error(MQ_ENOMEM, "cannot allocate %d layer flags", m->n_layers);
        goto done;
    }
    rc = srch_pins_apply(&pins, m, pinned);
    for (int l = 0; rc == MQ_OK && l < m->n_layers; l++) /* pinned formats are profiled too */
        if (pinned[l] < MQ_DTYPE_COUNT)
            po.formats |= 1u << pinned[l];
    free(pinned);
    if (rc < 0 || (eval && (rc = cli_check_data(m, eval)) < 0))
        goto done;
    if ((rc = mq_workload_parse(workload, &po.workload)) < 0 || (rc = mq_runner_check(m, &po.workload)) < 0)
        goto done;
    if ((rc = cli_make_dir(out_dir)) < 0)
        goto done;
    bool agents = remote || n_targets; /* measured by agents; quality here on host_backend */
    if (!agents)
        cli_dist_latency_note(threads);
    if ((rc = be_open(agents ? host_backend : backend, &(struct be_config){.n_threads = agents ? 0 : (int)threads},
                      &be)) < 0 ||
        (rc = mq_model_lend(m, be)) < 0)
        goto done;
    if (remote && (rc = cli_remote_open(remote, remote_timeout, &rem)) < 0)
        goto done;
    static struct cli_runtime rt; /* large: off the stack */
    if (runtime && (rc = cli_runtime_open(&rt, runtime, m, out_dir, &po.workload, be_threads(be), eval, ctx,
                                          chunks)) < 0)
        goto done;
    /* the importance matrix every format is quantized with, set before anything is measured */
    static struct cli_tune_texts tx; /* large: off the stack */
    memset(&tx, 0, sizeof(tx));
    tx.eval = eval;
    tx.chunks = chunks;
    if ((rc = cli_tune_imatrix(m, be, imatrix, no_imatrix, no_compensate, calib, ctx, calib_chunks, cache_dir,
                               no_cache, &tx)) < 0)
        goto done;
    struct cli_remote_req rq = {.model = remote_model ? remote_model : model_path, .content_hash = m->content_hash,
                                .shapes = m->input_shapes,
                                .backend = backend, .threads = (int)threads, .workload = &po.workload,
                                .formats = po.formats, .cache_mode = PROF_AUTO, .max_seconds = max_seconds,
                                .memory = probe, .cache_refresh = no_cache};
    struct remote_measure rm = {.r = rem, .q = &rq, .cache_dir = cache_dir, .refresh = no_cache};
    char why[256];
    if (probe && prof_memory_probe_unusable(why, sizeof(why))) {
        mq_warn("peak RSS not measured: %s; memory comes from the memory model alone", why);
        probe = false;
    }
    char gp[4096];
    bool draw = plots && rpt_gnuplot_find(gp, sizeof(gp)) == MQ_OK;
    if (plots && !draw)
        mq_warn("gnuplot is not installed: no plots (scripts/install-deps installs it)");

    /* 1. what each layer costs here */
    char path[4200];
    if (n_targets) {
        const struct prof_profile *profs[SRCH_TUNE_MAX_TARGETS];
        for (int i = 0; i < n_targets; i++) {
            struct tune_target *g = &tg[i];
            mq_info("step 1/4: profile on target %d/%d, %s (%s backend, workload %s)", i + 1, n_targets, g->label,
                    g->backend, po.workload.label);
            g->q = rq;
            g->q.backend = g->backend;
            g->rm = (struct remote_measure){.q = &g->q, .cache_dir = cache_dir, .refresh = no_cache};
            if ((rc = cli_remote_open(g->cmd, remote_timeout, &g->r)) < 0)
                goto done;
            g->rm.r = g->r;
            if ((rc = cli_remote_profile(g->r, &g->q, &g->prof)) < 0 || (rc = prof_profile_matches(g->prof, m)) < 0)
                goto done;
            if (g->prof->target.emulated) { /* said wherever its figures are shown */
                size_t n = strlen(g->label);
                snprintf(g->label + n, sizeof(g->label) - n, " (EMULATED)");
            }
            snprintf(path, sizeof(path), "%s/%s", out_dir, g->slug);
            if ((rc = cli_make_dir(path)) < 0)
                goto done;
            snprintf(path, sizeof(path), "%s/%s/profile.yaml", out_dir, g->slug);
            if ((rc = rpt_profile_write(g->prof, path)) < 0)
                goto done;
            snprintf(path, sizeof(path), "%s/%s", out_dir, g->slug);
            if (draw && ((rc = rpt_plot_layer_times(path, g->prof)) < 0 || (rc = rpt_plot_roofline(path, g->prof)) < 0))
                goto done;
            profs[i] = g->prof;
        }
        if ((rc = srch_tune_worst_profile(profs, n_targets, &prof)) < 0)
            goto done;
    } else if (rem) {
        mq_info("step 1/4: profile on the remote target (%s backend, workload %s)", backend, po.workload.label);
        if ((rc = cli_remote_profile(rem, &rq, &prof)) < 0)
            goto done;
        if ((rc = prof_profile_matches(prof, m)) < 0)
            goto done;
    } else {
        mq_info("step 1/4: profile (%s backend, workload %s)", be_name(be), po.workload.label);
        if ((rc = prof_profile_run(m, be, &po, &prof)) < 0)
            goto done;
        if (probe && (rc = prof_profile_probe_memory(m, prof, backend, be_threads(be))) < 0)
            goto done;
    }
    snprintf(path, sizeof(path), "%s/profile.yaml", out_dir);
    if (!n_targets && (rc = rpt_profile_write(prof, path)) < 0)
        goto done;
    if (!n_targets && draw && ((rc = rpt_plot_layer_times(out_dir, prof)) < 0 || (rc = rpt_plot_roofline(out_dir, prof)) < 0))
        goto done;

    /* 2. what each layer loses */
    struct mq_quality_config qc = {.data = eval, .ctx = ctx, .max_chunks = chunks};
    int n_meas = 0;
    if (method == SRCH_SENS_AUTO && (method = srch_sens_auto(m, fmask, &pins, &n_meas)) == SRCH_SENS_CALIBRATED)
        mq_info("step 2/4: calibrated sensitivity (measured would take %d evaluations, more than %d)", n_meas,
                SRCH_SENS_AUTO_MAX_EVALS);
    else
        mq_info("step 2/4: %s sensitivity", srch_sens_method_name(method));
    struct srch_sens_options so = {.method = method, .formats = fmask, .pins = &pins, .quality = qc,
                                   .depth_groups = (int)groups,
                                   .cache_dir = cache_dir, .cache_refresh = no_cache, .progress = true};
    if ((rc = srch_sensitivity_run(m, be, &so, &sens)) < 0)
        goto done;
    snprintf(path, sizeof(path), "%s/sensitivity.yaml", out_dir);
    if ((rc = rpt_sensitivity_write(sens, path)) < 0)
        goto done;
    if (draw && (rc = rpt_plot_sensitivity(out_dir, sens)) < 0)
        goto done;

    /* 3. the front, 4. measured on the target */
    struct cli_file_size fsz;
    cli_file_size_init(&fsz, m, prof, out_dir, mem_budget, lat_budget, size_budget, &tx.imatrix);
    fsz.pt.has_max_kl = has_max_kl; /* quantize records it too */
    fsz.pt.max_kl = max_kl;
    struct srch_tune_options to = {.mem_budget = mem_budget, .lat_budget = lat_budget, .size_budget = size_budget,
                                   .file_bytes = cli_file_size_bytes, .file_bytes_ctx = &fsz, .formats = fmask,
                                   .has_max_kl = has_max_kl, .max_kl = max_kl,
                                   .pins = &pins, .n_validate = (int)n_validate, .max_seconds = max_seconds,
                                   .probe_memory = probe, .backend = backend, .quality = qc, .progress = true,
                                   .measure_plan = rem ? remote_measure_plan : NULL, .measure_ctx = &rm,
                                   .runtime_measure = runtime ? cli_runtime_measure : NULL, .runtime_ctx = &rt,
                                   .runtime_name = "llama.cpp", .runtime_detail = rt.bindir};
    if (n_targets) {
        to.n_targets = n_targets;
        to.measure_target = targets_measure;
        to.measure_ctx = tg;
        for (int i = 0; i < n_targets; i++)
            to.target_labels[i] = tg[i].label;
    }
    mq_info("step 3/4: search");
    if ((rc = srch_tune_search(m, prof, sens, &to, &t)) < 0)
        goto done;
    mq_info("step 4/4: validation on the target%s%s", n_targets > 1 ? "s" : "",
            mq_dist_size() > 1 ? " (on MPI rank 0 alone: it measures latency)" : "");
    if ((rc = srch_tune_validate(m, be, prof, &to, t)) < 0 || (rc = cli_tune_write(out_dir, m, prof, sens, t, draw, &tx.imatrix)) < 0)
        goto done;
    printf("\n");
    cli_tune_summary(m, prof, sens, t, &tx);
    if (n_targets)
        printf("wrote        %s/sensitivity.yaml, front.yaml, and each target's profile.yaml in %s/%s ...%s\n",
               out_dir, out_dir, tg[0].slug, draw ? "; plots" : "");
    else
        printf("wrote        %s/profile.yaml, sensitivity.yaml, front.yaml%s\n", out_dir,
               draw ? " and plots (front-memory-loss.png, validation.png, plan.png, ...)" : "");
    int missed = 0; /* --per-target: targets without a plan of their own */
    for (int i = 0; per_target && i < n_targets; i++) {
        struct srch_tune_options o1 = to;
        o1.n_targets = 1;
        o1.measure_ctx = &tg[i];
        o1.target_labels[0] = tg[i].label;
        printf("\n==== %s alone (--per-target)\n", tg[i].label);
        mq_info("per target %d/%d, %s: search and validation", i + 1, n_targets, tg[i].label);
        srch_tune_free(tt);
        tt = NULL;
        if ((rc = srch_tune_search(m, tg[i].prof, sens, &o1, &tt)) < 0 ||
            (rc = srch_tune_validate(m, be, tg[i].prof, &o1, tt)) < 0)
            goto done;
        snprintf(path, sizeof(path), "%s/%s", out_dir, tg[i].slug);
        if ((rc = cli_tune_write(path, m, tg[i].prof, sens, tt, draw, &tx.imatrix)) < 0)
            goto done;
        cli_tune_summary(m, tg[i].prof, sens, tt, &tx);
        printf("wrote        %s/front.yaml\n", path);
        missed += tt->chosen < 0;
    }
    printf("wall time    %.1f s\n", (double)(prof_now_ns() - t0) * 1e-9);
    if (t->chosen < 0)
        rc = cli_tune_unmet(t, n_targets > 1 ? " on every target"
                               : runtime    ? " (latency: llama.cpp's, --runtime)"
                                            : "");
    else if (missed)
        rc = mq_error(MQ_ERANGE, "--per-target: %d target%s had no validated plan within the budgets (see "
                      "their front.yaml)", missed, missed == 1 ? "" : "s");
done:
    for (int i = 0; i < n_targets; i++) {
        cli_remote_close(tg[i].r);
        prof_profile_free(tg[i].prof);
        tg[i].r = NULL;
        tg[i].prof = NULL;
    }
    srch_tune_free(tt);
    srch_tune_free(t);
    srch_sensitivity_free(sens);
    prof_profile_free(prof);
    cli_remote_close(rem);
    be_close(be);
    mq_model_free(m);
    return cli_exit(rc);
}
