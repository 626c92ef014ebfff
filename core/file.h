/* core/file.h - reading a whole regular file into memory, bounded.
 *
 *     char *buf; size_t len;
 *     if (mq_file_read(path, "evaluation data", 256 << 20, &buf, &len) < 0) ... one line said
 *     ... buf[len] == '\0' ...
 *     free(buf);
 *
 * The file must be a regular file of at most max_bytes (SIZE_MAX: any). `what` names it in
 * the error lines ("cannot open evaluation data 'x.txt': ..."; NULL: the path alone). The
 * buffer gets a NUL after the last byte (len excludes it) and is the caller's to free.
 *
 * Dependency rule: core/ depends on nothing above it.
 */
#ifndef MQ_CORE_FILE_H
#define MQ_CORE_FILE_H

#include <stdbool.h>
#include <stddef.h>

int mq_file_read(const char *path, const char *what, size_t max_bytes, char **out, size_t *len);

/* Whether path is a regular file this process may execute. */
bool mq_file_executable(const char *path);

/* The first PATH folder (PATH unset or empty: /usr/local/bin:/usr/bin:/bin) holding an
 * executable `name`: its path into buf; MQ_ENOTFOUND, quietly, where there is none. */
int mq_file_find_in_path(const char *name, char *buf, size_t size);

#endif
