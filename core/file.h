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

#include <stddef.h>

int mq_file_read(const char *path, const char *what, size_t max_bytes, char **out, size_t *len);

#endif
