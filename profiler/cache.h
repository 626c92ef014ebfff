/* profiler/cache.h - measurements kept on disk, so that a second run reuses them and an
 * interrupted one resumes.
 *
 *     char key[512];
 *     snprintf(key, sizeof(key), "cost/1 K=%lld N=%lld ... target=%s", ...);
 *     double v[8];
 *     if (prof_cache_get(dir, key, v, 8) == 8) ... use v ...
 *     else { measure; prof_cache_put(dir, key, v, 8); }
 *
 * One file per entry, named by a hash of the key and holding the whole key (a hash
 * collision reads as a miss) and the values as text with 17 significant digits. Writes
 * are atomic (temporary file + rename). A damaged file is a miss, never an error.
 *
 * The default folder: $MIXQ_CACHE_DIR, else $XDG_CACHE_HOME/mixq, else ~/.cache/mixq.
 *
 * Dependency rule: profiler/ depends on model/, llm/, backends/ and core/ only.
 */
#ifndef MQ_PROFILER_CACHE_H
#define MQ_PROFILER_CACHE_H

#include <stddef.h>

/* The default cache folder into buf (created on first put). */
void prof_cache_default_dir(char *buf, size_t size);

/* Number of values read (n on a hit), or 0 on a miss. */
int prof_cache_get(const char *dir, const char *key, double *vals, int n);
/* MQ_OK, or a negative status (printed) when the folder cannot be written. */
int prof_cache_put(const char *dir, const char *key, const double *vals, int n);

#endif
