/* reports/profile_io.h - profile.yaml: writing a profile, and reading it back for the
 * search and for comparison reports.
 *
 *     rpt_profile_write(profile, "out/profile.yaml");   // atomic
 *     struct prof_profile *p;
 *     rpt_profile_read("out/profile.yaml", &p);          // caller frees with prof_profile_free
 *
 * Schema profile/1 (times in microseconds, sizes in bytes; formats by name):
 *   mixq_schema, mixq_version, model {path, name, arch, content_hash, layers},
 *   workload, formats [..], target {cpu, arch, features, topology, cores, llc_bytes,
 *   backend, backend_detail, threads, pinned, pin_note, emulated, emulated_why, remote
 *   (only when an agent measured it: the command),
 *   timer_overhead_ns, limits {dram_read_gb_s, f32_fma_gflop_s, int8_dot_gop_s,
 *   bf16_dot_gflop_s, f32_fma_instructions, int8_dot_instructions}},
 *   counters {papi, used [..], missing [{event, why}], multiplexed},
 *   cache_state {warm, note},
 *   costs [{k, n, m, format, reps, min_us, median_us, mad_us, rel_ci, weight_bytes, copies,
 *           cached, weight_gb_s, gop_s, ops_per_byte, counters {EVENT: per call}, derived
 *           {ipc, task_clock_us, cpu_utilization, l1_misses_per_kinst ...}}],
 *   layers [{name, in, out, us {FORMAT: per workload run}}],
 *   end_to_end {glue_us, plans [{plan, reps, median_us, min_us, mad_us, sum_layers_us,
 *               additivity_error, memory {predicted {weights, kv_cache, scratch, overhead,
 *               total}, measured_peak_rss, error}}]},
 *   wall_seconds, measured, cached.
 * A file of another schema or a newer version, a missing field the reader needs, or a
 * value of the wrong kind is MQ_EFORMAT/MQ_EUNSUPPORTED with one line naming file, line
 * and field.
 *
 * Dependency rule: reports/ reads plain structs from model/ (and gguf/, onnx/),
 * profiler/ and search/.
 */
#ifndef MQ_REPORTS_PROFILE_IO_H
#define MQ_REPORTS_PROFILE_IO_H

#include "profiler/profile.h"

int rpt_profile_write(const struct prof_profile *p, const char *path);
int rpt_profile_read(const char *path, struct prof_profile **out);

#endif
