/* cli/cli.h - the mixq command table and helpers shared by subcommands.
 *
 * Each subcommand is `int cmd_NAME(int argc, char **argv)` in cli/cmd_NAME.c, listed
 * once in cli/main.c's table. argv[0] is the subcommand's name. Return values are exit
 * codes: 0 success, 1 failure (an error line was printed), 2 bad usage.
 *
 * Only cli/ exits; everything it calls returns status codes.
 */
#ifndef MQ_CLI_CLI_H
#define MQ_CLI_CLI_H

#include <stdbool.h>
#include <stdint.h>

#define CLI_OK 0
#define CLI_FAIL 1
#define CLI_USAGE 2

int cmd_info(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_backends(int argc, char **argv);
int cmd_profile(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_sensitivity(int argc, char **argv);
int cmd_search(int argc, char **argv);
int cmd_memory(int argc, char **argv);
int cmd_agent(int argc, char **argv);
int cmd_tune(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_imatrix(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_memory_probe(int argc, char **argv); /* hidden: the child side of profile's memory check */

/* A command that measures latency (profile, tune) under mpirun with several ranks on this
 * machine and no --threads (threads 0): warns that rank 0 measures with its share of the
 * cores (core/dist.h), once. */
void cli_dist_latency_note(long long threads);

/* Prints "mixq: error: <msg>" and a hint to run `mixq CMD --help`; returns CLI_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The error for getopt_long's '?': names the offending argument (argv[optind - 1]).
 * Commands set opterr = 0 so that getopt prints nothing itself. */
int cli_bad_option(const char *cmd, char **argv);

/* Strict integer parsing: the whole string, in [lo, hi]. */
int cli_parse_int(const char *cmd, const char *opt, const char *s, long long lo, long long hi, long long *out);

/* Strict real parsing: the whole string, a finite number in [lo, hi], or (lo, hi] when
 * lo_open; `what` names it in the error ("seconds": "--max-seconds wants seconds in (0, 3600]"). */
int cli_parse_real(const char *cmd, const char *opt, const char *s, double lo, bool lo_open, double hi,
                   const char *what, double *out);

/* The profile cache folder: arg when given, else prof_cache_default_dir's. */
void cli_cache_dir(const char *arg, char *buf, size_t size);

/* "f16,q8_0,q4_k" -> a bit per enum mq_dtype (core/dtype.h mq_dtype_parse_formats); only plan
 * formats; usage error otherwise. */
int cli_parse_formats(const char *cmd, const char *list, uint32_t *mask);

/* Maps a library status to an exit code: bad usage (MQ_EINVAL from argument checks is
 * still a failure of the command, so only explicit usage errors give 2). */
static inline int cli_exit(int rc) { return rc < 0 ? CLI_FAIL : CLI_OK; }

/* Where bundled data lives: $MIXQ_DATADIR, else the source tree mixq was built from. */
const char *cli_datadir(void);
/* datadir + "/" + rel into buf. */
void cli_data_path(char *buf, size_t size, const char *rel);

struct mq_model;
struct mq_plan;

/* --shapes NAME:D0xD1x...[,NAME:...] (model/shapes.h), the option every command that loads
 * a model takes; getopt code CLI_OPT_SHAPES. cli_check_shapes: a usage error (exit 2) when
 * the argument does not parse. cli_model_load: mq_model_load_shaped with that argument
 * (NULL: none); the model's own refusals (a name it lacks, a GGUF file) are one line and a
 * negative status (exit 1). */
#define CLI_OPT_SHAPES 0x5348
int cli_check_shapes(const char *cmd, const char *arg);
int cli_model_load(const char *path, const char *shapes, struct mq_model **out);

/* --inputs PATH (ONNX models' input arrays, onnx/onnx_inputs.h): getopt code
 * CLI_OPT_INPUTS, the evaluation data's slot. cli_check_inputs: an error line (exit 1)
 * when the model given --inputs is no ONNX model. */
#define CLI_OPT_INPUTS 0x494E
int cli_check_inputs(const char *cmd, const struct mq_model *m, bool given);
/* cli_model_load for a command that also takes a plan: without --shapes, a front.yaml plan's
 * model.shapes (the shapes its tune was given, which its content hash includes) are used,
 * and said once. */
int cli_model_load_for_plan(const char *path, const char *shapes, const char *plan_arg, struct mq_model **out);
/* A plan from the command line: a format for every layer, 'source', a llama.cpp preset
 * (model/preset.h: a name that is not a format's, or preset:NAME), a plan file (plan/1),
 * or a front.yaml (its chosen plan, or point >= 0). One-line errors. */
int cli_load_plan(const struct mq_model *m, const char *arg, long long point, struct mq_plan **out);

/* Reads the importance matrix at path (llama.cpp's GGUF or legacy .dat) and makes every
 * quantization of m's layers use it (model/imatrix.h); logs how many layers it covers (-v).
 * path NULL: nothing. One-line errors. */
int cli_apply_imatrix(struct mq_model *m, const char *path);

/* Whether path is a readable front.yaml (mixq_schema: front/N); quiet otherwise. */
bool cli_is_front(const char *path);

/* cli_load_plan, and the importance matrix the plan is quantized with, applied to m
 * (cli_apply_imatrix) and described in *ref (unset: none): none with no_imatrix; the
 * user's file (imatrix); otherwise, when plan_arg is a front.yaml that records one (mixq
 * tune), that file, checked against its recorded sha256 (*from_front set). A preset sees
 * the imatrix when its rules are computed (they depend on one, as in llama-quantize); a
 * plan file or front is read and checked against m first. One-line errors: those of
 * cli_load_plan, an unreadable, changed or malformed imatrix file. On success *plan is the
 * caller's (mq_plan_free). */
struct rpt_imatrix_ref;
int cli_load_plan_imatrix(struct mq_model *m, const char *plan_arg, long long point, const char *imatrix,
                          bool no_imatrix, struct mq_plan **plan, struct rpt_imatrix_ref *ref, bool *from_front);
/* "LABEL PATH (where it came from)" or "LABEL none" on stdout. */
void cli_print_imatrix(const char *label, const struct rpt_imatrix_ref *ref, bool from_front, bool no_imatrix);

/* A file given by path (what: "evaluation data", "calibration text"): a readable,
 * non-empty regular file, or one error line naming it. */
int cli_check_file(const char *what, const char *path);
/* Evaluation data of model m: such a file; for ONNX models also input arrays (a .npy,
 * .npz or folder, read and matched against the inputs here, so that a mistake stops the
 * command before anything is measured). */
int cli_check_data(const struct mq_model *m, const char *path);

/* An output folder, with its missing parents (mkdir -p); one-line error naming it. */
int cli_make_dir(const char *path);

/* "1.23 MiB" style sizes into buf. */
const char *cli_fmt_bytes(char *buf, size_t size, uint64_t bytes);

#endif
