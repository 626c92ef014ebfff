/* search/budget.h - strict parsing of memory, latency and KL budgets, and their printing.
 *
 *     double bytes, ns;
 *     if (srch_budget_parse_bytes("8GB", &bytes) < 0) return 2;       // 8e9
 *     if (srch_budget_parse_time("200ms", &ns) < 0) return 2;         // 2e8
 *     char buf[32];
 *     srch_budget_format_bytes(4.213e9, buf, sizeof(buf));            // "4.213 GB"
 *
 * Grammar: a number, then a unit, nothing else: no spaces, no sign, no "nan"/"inf", no
 * hexadecimal. The number is digits with an optional fraction ("8", "1.5", ".5", "2.") and
 * an optional decimal exponent ("1e3"). Units are case-sensitive:
 *   memory  B; KB, MB, GB (powers of 1000); KiB, MiB, GiB (powers of 1024)
 *   time    us, ms, s
 * Values must be finite and within [SRCH_BUDGET_MIN_BYTES, SRCH_BUDGET_MAX_BYTES] (1 B ..
 * 1 PiB) or [SRCH_BUDGET_MIN_NS, SRCH_BUDGET_MAX_NS] (1 ns .. 1 day). Numbers are read in
 * the C locale (a '.' decimal point), as the command line never changes the locale.
 *
 * Errors: one line, MQ_EINVAL, quoting the text and listing the units, e.g.
 *   memory budget '8gb': unknown unit 'gb' (units are case-sensitive: B, KB, MB, GB are
 *   powers of 1000, KiB, MiB, GiB of 1024; did you mean 'GB'?)
 *
 * Ownership: nothing is allocated; text is borrowed.
 *
 * Dependency rule: search/ depends on profiler/, model/, llm/, gguf/, backends/ and
 * core/; this module uses core/ only.
 */
#ifndef MQ_SEARCH_BUDGET_H
#define MQ_SEARCH_BUDGET_H

#include <stdbool.h>
#include <stddef.h>

#define SRCH_BUDGET_MIN_BYTES 1.0
#define SRCH_BUDGET_MAX_BYTES 1125899906842624.0 /* 1 PiB */
#define SRCH_BUDGET_MIN_NS 1.0
#define SRCH_BUDGET_MAX_NS 86400e9 /* 1 day */
#define SRCH_BUDGET_MAX_KL 100.0   /* nats: far past any plan worth measuring */

/* MQ_OK and *bytes (not rounded: "1.5KiB" is 1536, "0.5KB" 500), or MQ_EINVAL printed. */
int srch_budget_parse_bytes(const char *text, double *bytes);
/* MQ_OK and *ns, or MQ_EINVAL printed. */
int srch_budget_parse_time(const char *text, double *ns);

/* A bound on the measured KL divergence (mixq tune --max-kl): a number in nats with no unit,
 * in the grammar above ("0.01", "1e-3", ".05"; 0 is allowed: a plan as precise as the
 * reference), at most SRCH_BUDGET_MAX_KL. MQ_OK and *kl, or MQ_EINVAL printed: empty, a sign,
 * "nan"/"inf", a unit or other trailing text, out of range. */
int srch_budget_parse_kl(const char *text, double *kl);

/* "4.213 GB", "512 MB", "800 B": 4 significant digits in the largest power-of-1000 unit
 * that keeps the number >= 1 (binary: KiB, MiB, GiB). Non-finite values print as "inf". */
void srch_budget_format_bytes(double bytes, bool binary, char *buf, size_t size);
/* "180.2 ms", "750 us", "1.5 s", "12 ns": 4 significant digits. */
void srch_budget_format_time(double ns, char *buf, size_t size);

#endif
