/* cli/remote.h - measuring on another machine: `mixq agent` at the far end of a pipe, and
 * the host side that drives it (`mixq tune --remote CMD`).
 *
 *     struct cli_remote *r;
 *     if (cli_remote_open("ssh board mixq agent", 600, &r) < 0) return -1;
 *     printf("%s\n", cli_remote_target(r));               // the board's identity
 *     cli_remote_profile(r, &req, &profile);              // profile.yaml made on the board
 *     cli_remote_measure(r, &req, plan, &lat, &peak, &base);
 *     cli_remote_close(r);
 *
 * The protocol, mixq-agent/1: the host runs CMD with `sh -c`, writes requests to its
 * stdin and reads responses from its stdout; the agent's stderr passes through (its
 * progress messages). Every message is a frame: the line "mixq-agent/1 LENGTH\n", then
 * LENGTH bytes of YAML (one mapping). Requests carry `request:` (hello, profile, measure,
 * bye); responses carry `ok:` and either the result or `error:` (the agent's one-line
 * error; the agent goes on serving). A profile response is followed by a second frame, the
 * profile.yaml the agent wrote (schema profile/1). Lengths are bounded (64 MiB), so a
 * garbled stream is an error, not an allocation.
 *
 *   hello    -> agent (mixq-agent/1), mixq_version, target {cpu, arch, features, topology,
 *               emulated, why}
 *   profile  model, content_hash, shapes (optional), backend, threads, workload, formats, cache_mode,
 *            max_seconds, memory -> the profile (run with the agent's own cache, so an
 *            interrupted profile resumes where it stopped when the agent runs again)
 *   measure  model, content_hash, shapes (optional), backend, threads, workload, plan (mq_plan_to_string's
 *            text), max_seconds, memory -> latency {reps, min_ns, median_ns, mad_ns, mean_ns,
 *            max_ns, rel_ci}, memory {peak_rss, baseline_rss} (0: not measured)
 *   bye      -> ok, and the agent exits
 * The model is the agent's file at the path given (the same path by default: --remote-model
 * names another); the agent checks that its content hash is the host's, so both sides
 * mean the same model.
 *
 * Failures are one line naming the command: the agent could not be started, exited (with
 * its status) or closed its output mid-message, sent something that is not a frame, a
 * frame that is not YAML or lacks what the request asked for, speaks another protocol
 * version, or stayed silent past the timeout (it is then killed).
 *
 * Ownership: a cli_remote owns the agent process and its pipes until cli_remote_close.
 *
 * Only cli/ uses it (it joins profiler/, search/ and reports/).
 */
#ifndef MQ_CLI_REMOTE_H
#define MQ_CLI_REMOTE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "model/plan.h"
#include "model/workload.h"
#include "profiler/measure.h"
#include "profiler/profile.h"

#define CLI_AGENT_PROTOCOL "mixq-agent/1"

struct cli_remote;

/* What every model request names: the model on the agent's side and how to run it. */
struct cli_remote_req {
    const char *model;     /* path on the agent's machine */
    uint64_t content_hash; /* the host's model's: the agent refuses another */
    const char *shapes;    /* the host's --shapes (model/shapes.h), or NULL: the agent loads
                              the model with them, so that the content hashes agree */
    const char *backend;
    int threads;           /* 0: the agent's default */
    const struct mq_workload *workload;
    uint32_t formats;          /* profile: formats to profile */
    enum prof_cache_mode cache_mode;
    double max_seconds;        /* per measured region (0: the defaults) */
    bool memory;               /* measure peak RSS where the agent can */
    bool cache_refresh;        /* profile: measure again */
};

int cli_remote_open(const char *cmd, double timeout_s, struct cli_remote **out);
/* "AMD EPYC (aarch64; asimd asimddp ...; 1 package, 4 cores ...)": the agent's identity. */
const char *cli_remote_target(const struct cli_remote *r);
const char *cli_remote_cmd(const struct cli_remote *r);
int cli_remote_profile(struct cli_remote *r, const struct cli_remote_req *q, struct prof_profile **out);
int cli_remote_measure(struct cli_remote *r, const struct cli_remote_req *q, const struct mq_plan *plan,
                       struct prof_stats *lat, uint64_t *peak, uint64_t *baseline);
/* Says bye, waits for the agent (killing it after the timeout). NULL is a no-op. */
void cli_remote_close(struct cli_remote *r);

/* The agent's side: serves requests from in_fd, answers on out_fd, until bye or the end
 * of its input. MQ_OK after bye or a clean end of input. */
int cli_agent_serve(int in_fd, int out_fd);

#endif
