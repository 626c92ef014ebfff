/* onnx/onnx_task.h - what an ONNX model is for: its task, recognized from the graph's
 * signature, says what one inference feeds it (input shapes at a batch size, inputs bound
 * to constants), what its default evaluation data are, and how its quality is measured.
 *
 *   silero-vad   Silero VAD (inputs input/state/sr): 16 kHz audio in frames of 512
 *                samples with 64 samples of context, the LSTM state carried from frame
 *                to frame, sr bound to 16000 (so the model's If takes the 16 kHz branch).
 *                Metric: frame F1 against labelled speech; loss: mean Bernoulli KL of the
 *                speech probability against f32; also mean |p - p_f32|.
 *   ppocr-rec    PP-OCR text recognition (a CTC head whose characters are in the model's
 *                metadata 'character'): lines 48 px high, padded to 320 wide. Metric:
 *                character error rate; loss: mean KL of the per-step distributions.
 *   ppocr-cls    PP-OCR text direction classifier (input x [N,3,H,W], output [N,2]):
 *                lines 48 px high, padded to 192 wide, 0 or 180 degrees. Metric: accuracy;
 *                loss: mean KL of the two-class distributions.
 *   generic      anything else: inputs of static shape except a batch dimension 0 (or
 *                --shapes). Samples: the user's arrays (onnx/onnx_inputs.h), else 8
 *                seeded random ones (synthetic, and the quality note says so). Loss per
 *                output, by the node that makes it: mean KL of a Softmax's or LogSoftmax's
 *                distributions, mean Bernoulli KL of a Sigmoid's values, else relative MSE
 *                (error energy / signal energy); the mean over outputs, then over samples.
 *                Metric: SQNR in dB over every output value ("sqnr_db", full precision
 *                +inf). A known task's model given arrays (--inputs x.npz) is measured
 *                the same way.
 *
 * Evaluation data are a manifest (formats in examples/onnx/README.md) naming WAV (16-bit
 * PCM, mono, 16 kHz) or PGM (P5, 8-bit) files beside it.
 *
 * Dependency rule: onnx/ depends on model/, backends/ and core/ only.
 */
#ifndef MQ_ONNX_ONNX_TASK_H
#define MQ_ONNX_ONNX_TASK_H

#include <stdint.h>

#include "model/runner.h"
#include "onnx/onnx_internal.h"

struct onnx_quality;

struct onnx_task {
    const char *name;
    const char *summary;
    const char *default_data; /* relative to the data folder (MIXQ_DATADIR) */
    const char *bind_name;    /* an input fixed to bind_value, or NULL */
    int64_t bind_value;
    bool (*match)(const struct mq_onnx_file *f);
    /* The shape of input `in` for one inference of `batch`. */
    int (*input_dims)(const struct ox_graph *g, const struct ox_input *in, int64_t batch, int *nd, int64_t *dims);
    /* Quality (NULL for generic): loads data from a manifest; runs every sample through
     * an exec, writing [n_items][n_classes] probabilities; the task metric of them. */
    int (*load)(struct onnx_quality *q, const char *path);
    int (*infer)(struct onnx_quality *q, struct mq_onnx_exec *x, float **probs);
    double (*metric)(const struct onnx_quality *q, const float *probs);
    const char *metric_name;
    bool higher_is_better;
};

extern const struct onnx_task *const onnx_tasks[];

/* Whether input_dims() will give the input's shape (quietly, without an error line). */
bool onnx_task_dims_known(const struct ox_graph *g, const struct ox_input *in);

/* The shape of input `in` for one inference of `batch`: the user's (--shapes; dimension 0
 * times batch where the file leaves it dynamic), else the task's input_dims. */
int onnx_task_input_dims(const struct ox_graph *g, const struct ox_input *in, int64_t batch, int *nd, int64_t *dims);

/* Fills io[] (names, types, shapes; data NULL) for one inference of `batch`; returns the
 * count (<= g->n_inputs). */
int onnx_task_inputs(const struct ox_graph *g, int64_t batch, struct mq_onnx_io *io);

/* Quality (model/runner.h's quality_* ops for ONNX models). */
/* What the loss is with cfg's data: "kl" (known tasks; generic models whose outputs are
 * all distributions), "rel_mse" (none is) or "kl+rel_mse". */
const char *onnx_loss_name(const struct mq_model *m, const struct mq_quality_config *cfg);
int onnx_quality_new(const struct mq_model *m, struct be_backend *be, const struct mq_quality_config *cfg, void **out);
int onnx_quality_eval(void *q, const struct mq_plan *p, struct mq_quality *out);
void onnx_quality_free(void *q);
/* The first `max` images of an OCR task's evaluation data (`data`, or the task's
 * default), preprocessed as its evaluation feeds them: *out [*n][3][*h][*w], malloc'd (the
 * caller frees). MQ_EUNSUPPORTED for tasks without images. For the interop check. */
int onnx_task_images(const struct mq_model *m, const char *data, int max, float **out, int *n, int64_t *h,
                     int64_t *w);

/* runner.h's capture: the f32 model on the first samples of the evaluation data (VAD: 32
 * frames; OCR: one batch of 8 lines), or on pseudo-random inputs for generic models. */
int onnx_capture(const struct mq_model *m, struct be_backend *be, const struct mq_quality_config *cfg,
                 mq_capture_fn fn, void *arg);

#endif
