/* reports/export.h - recipes: a plan (a front.yaml point, a plan file, a format) said in
 * the terms of the tools people deploy with, and the provenance mixq writes into the
 * files it quantizes. docs/recipes.md is the user's manual of this module.
 *
 *     struct rpt_front_point pt;
 *     if (rpt_front_point_read("front.yaml", -1, &pt) < 0) return -1;   // the chosen point
 *     ... load pt.model_path, read the plan: rpt_front_read_plan(m, "front.yaml", pt.index, &plan)
 *     const struct rpt_export_target *t = rpt_export_find("llama.cpp");
 *     struct rpt_export_input in = {.m = m, .plan = plan, .pt = &pt, .plan_from = "front.yaml"};
 *     if (t->write(&in, stdout, "tensor-types.txt") < 0) return -1;     // one line printed
 *
 * The exporter is a table of targets (rpt_export_targets), one row per tool: its name on
 * the command line, the kind of model it takes, and a writer that prints the recipe (notes
 * as '#' lines, then the command) and, given a file, writes the recipe's file form:
 *   llama.cpp    (GGUF llama models) the llama-quantize command that rebuilds the plan from
 *                the source model: --pure, the base type, and --tensor-type REGEX=TYPE
 *                overrides; the file form is llama-quantize's --tensor-type-file. With an
 *                importance matrix, --imatrix names it (a copy beside the output model),
 *                so llama-quantize writes the tensors mixq quantize writes, byte for byte.
 *   trtexec      (ONNX models) TensorRT's per-layer precisions: --precisionConstraints=obey
 *                --layerPrecisions with layers named as TensorRT's ONNX parser names them
 *                (the node's name, or "node_of_" + its first output); file form: a script.
 *   onnxruntime  (ONNX models) the onnxruntime.quantization configuration: nodes kept in
 *                float, MatMul nodes to 4 or 8-bit blocks of 32 (MatMulNBits), Conv nodes to
 *                int8 weights per channel with 16-bit activations (QDQ, quantize_static,
 *                calibrated on inputs the user gives); file form: JSON (schema
 *                ort-recipe/1) that the printed python snippet applies, failing when
 *                onnxruntime leaves a node of the recipe in float (subgraphs).
 * What a tool cannot express is rounded to the nearest plan it can express, towards more
 * precision, and each rounding is listed in the recipe's notes; a plan with nothing
 * expressible is refused (MQ_EUNSUPPORTED, one line).
 *
 * llama-quantize's overrides (tools/quantize and src/llama-quant.cpp of the vendored
 * llama.cpp): each --tensor-type NAME=TYPE is lowercased and compiled as a std::regex
 * (ECMAScript), and a tensor takes the type of the first pattern that regex_search finds
 * in its name; only tensors llama-quantize quantizes at all are asked (2-D or more, name
 * ending in "weight", not "_norm.weight"), and only when the base type is a quantized one.
 * mixq writes every pattern anchored (^...$) with only escaped literals, "[0-9]+",
 * "(a|b)" groups and no upper case, which ECMAScript and POSIX extended regexes read the
 * same way, and rpt_llama_rules_check replays the selection with regcomp/regexec over the
 * model's tensor list: every tensor must get exactly its planned type.
 *
 * Ownership: the input structs are borrowed; rpt_llama_rules returns an array the caller
 * frees with rpt_llama_rules_free.
 *
 * Dependency rule: reports/ reads plain structs from model/ (and gguf/, onnx/),
 * profiler/ and search/.
 */
#ifndef MQ_REPORTS_EXPORT_H
#define MQ_REPORTS_EXPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "gguf/gguf.h"
#include "model/model.h"
#include "model/plan.h"

/* ---- the importance matrix plans were quantized with ---- */

/* Recorded in front.yaml (`imatrix`, mixq tune) and in the GGUF files mixq quantize writes
 * (mixq.imatrix.file, mixq.imatrix.sha256), so that quantize and export use the file tune
 * measured with, and can tell when it changed. */
struct rpt_imatrix_ref {
    bool set;            /* an importance matrix was used; false: plain quantization */
    char source[16];     /* "computed" (by mixq tune, kept in its cache) or "given" (--imatrix) */
    char path[4096];     /* the imatrix file */
    char sha256[65];     /* of the file's bytes */
    char text[4096];     /* computed: the calibration text; "" otherwise */
    long long chunks;    /* computed: chunks of the text summed, and tokens per chunk */
    long long ctx;
    int compensated;     /* layers error-compensated with the file's Gram matrices (not in files) */
};

/* A given file: set, source "given", path and its sha256 (MQ_EIO, one line, when it
 * cannot be read). */
int rpt_imatrix_ref_given(const char *path, struct rpt_imatrix_ref *out);

/* MQ_OK when ref's file is there with the recorded sha256; otherwise one line naming the
 * file, what changed and `what` ("the front's importance matrix"): MQ_EIO when it cannot
 * be read, MQ_EFORMAT when its bytes changed. */
int rpt_imatrix_ref_check(const struct rpt_imatrix_ref *ref, const char *what);

/* The `imatrix` of a front/1 file (unset when it has none, or null). One-line errors: not
 * a front, a malformed imatrix entry. */
int rpt_front_imatrix_read(const char *path, struct rpt_imatrix_ref *out);

/* ---- a front.yaml point and its context (front/1, docs/front-schema.md) ---- */

struct rpt_front_point {
    int index;                 /* the point's index (the chosen one when asked for -1) */
    bool chosen;               /* it is the front's chosen point */
    char model_path[4096], model_name[256], model_hash[32];
    int model_layers;
    char workload[64], target_cpu[128], target_backend[32];
    int threads;
    bool has_mem_budget, has_lat_budget, has_size_budget;
    double mem_budget_bytes, lat_budget_us, size_budget_bytes;
    bool has_max_kl;           /* budgets.max_kl: the bound on measured KL (--max-kl) */
    double max_kl;
    char metric_name[32];
    double pred_mem_bytes, pred_lat_us, pred_loss;
    bool measured;             /* validated end to end: the figures below are set */
    double mem_bytes, lat_us, lat_mad_us, kl, kl_stderr, metric;
    int reps;
    struct rpt_imatrix_ref imatrix; /* the front's (every point's) importance matrix */
};

/* model.shapes of a front/1 file (the --shapes its tune was given) into buf, "" when it has
 * none. One-line errors: not a front, shapes longer than size - 1. */
int rpt_front_shapes_read(const char *path, char *buf, size_t size);

/* Reads point `index` (-1: the chosen one) of a front/1 file with its budgets, target
 * and model. One-line errors: not a front, no such point, no chosen point. */
int rpt_front_point_read(const char *path, int index, struct rpt_front_point *out);

/* ---- provenance: the mixq.* keys of a quantized GGUF (docs/recipes.md lists them) ---- */

struct rpt_provenance {
    const struct mq_model *m;           /* the source */
    const struct mq_plan *plan;
    const char *plan_from;              /* what the plan was given as: a path, a format */
    const struct rpt_front_point *pt;   /* NULL unless the plan is a front point */
    const struct rpt_imatrix_ref *imatrix; /* the importance matrix the file is quantized
                                              with; NULL or unset: none */
};

/* An mq_quantize_meta_fn (model/quantize.h): ctx is a struct rpt_provenance. Writes the
 * measured figures only when the front was measured on this very source (same content
 * hash); otherwise it warns and writes mixq.measured_on = "another file". With an
 * importance matrix: mixq.imatrix.file and mixq.imatrix.sha256. */
int rpt_provenance_write(void *ctx, struct mq_gguf_writer *w);

/* ---- llama-quantize --tensor-type rules ---- */

#define RPT_RULE_MAX 2048 /* bytes of one pattern */

struct rpt_tt_rule {
    char pattern[RPT_RULE_MAX]; /* anchored regex, as llama-quantize takes it */
    enum mq_dtype fmt;
    int n_tensors;              /* tensors it selects */
};

struct rpt_llama_recipe {
    enum mq_dtype base;         /* the type argument of llama-quantize */
    int n_rules;
    struct rpt_tt_rule *rules;  /* malloc'd */
};

/* The rules for a plan: base = the plan's most common quantized format (a plan of one
 * float format: that format and no rules; floats only, mixed: q8_0 with a rule for every
 * layer, since llama-quantize applies overrides only under a quantized base); for each
 * other format, one rule per group of roles that share the same set of blocks ("all
 * blocks" becomes [0-9]+), a lone tensor by its exact name. Errors: a GGUF llama model
 * only; names llama-quantize cannot take (upper case, '=' or white space). */
int rpt_llama_rules(const struct mq_model *m, const struct mq_plan *plan, struct rpt_llama_recipe *out);
void rpt_llama_rules_free(struct rpt_llama_recipe *r);

/* Replays llama-quantize's selection over every tensor of the model's file: MQ_OK when
 * each quantizable layer gets exactly its planned format, every rule selects at least one
 * tensor and no other tensor is touched; MQ_EINTERNAL with one line naming the first
 * tensor that does not. Fills each rule's n_tensors. */
int rpt_llama_rules_check(const struct mq_model *m, const struct mq_plan *plan, struct rpt_llama_recipe *r);

/* ---- the targets ---- */

struct rpt_export_input {
    const struct mq_model *m;
    const struct mq_plan *plan;
    const char *plan_from;             /* for the notes: "front.yaml point 3", "q4_0" */
    const struct rpt_front_point *pt;  /* NULL unless the plan is a front point */
    const char *output;                /* the model file the recipe makes; NULL: a name from the source */
    bool default_file;                 /* without a file: the target may write its file form to a
                                          default path (llama.cpp: the rules' --tensor-type-file,
                                          named after the output model) */
    const struct rpt_imatrix_ref *imatrix; /* llama.cpp: the importance matrix the plan is
                                              quantized with (NULL or unset: none); the recipe
                                              names it (--imatrix), copied as OUT.imatrix.gguf
                                              beside the recipe's file (the output model when
                                              there is none) with default_file */
};

struct rpt_export_target {
    const char *name;           /* on the command line: "llama.cpp" */
    enum mq_model_kind kind;    /* the models it takes */
    const char *summary;
    const char *file_form;      /* what -o FILE receives */
    /* Prints the recipe to `out`; writes its file form to `file` (atomically) unless NULL. */
    int (*write)(const struct rpt_export_input *in, FILE *out, const char *file);
};

extern const struct rpt_export_target rpt_export_targets[];
extern const int rpt_export_n_targets;

/* The target named `name` (case-insensitive), or NULL. */
const struct rpt_export_target *rpt_export_find(const char *name);

#endif
