/* core/file.c - reading a whole regular file (core/file.h). */
#include "core/file.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/status.h"

int mq_file_read(const char *path, const char *what, size_t max_bytes, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    const char *sp = what ? " " : "";
    what = what ? what : "";
    FILE *f = fopen(path, "rb");
    if (!f)
        return mq_error(MQ_EIO, "cannot open %s%s'%s': %s", what, sp, path, strerror(errno));
    struct stat st;
    int rc = MQ_OK;
    char *buf = NULL;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = mq_error(MQ_EIO, "%s%s'%s' is not a regular file", what, sp, path);
        goto done;
    }
    if ((uint64_t)st.st_size > max_bytes) {
        rc = mq_error(MQ_EFORMAT, "%s%s'%s' has %lld bytes (at most %zu are read)", what, sp, path,
                      (long long)st.st_size, max_bytes);
        goto done;
    }
    if (!(buf = malloc((size_t)st.st_size + 1))) {
        rc = mq_error(MQ_ENOMEM, "cannot allocate %lld bytes for '%s'", (long long)st.st_size, path);
        goto done;
    }
    size_t n = fread(buf, 1, (size_t)st.st_size, f);
    if (ferror(f) || n != (size_t)st.st_size) {
        rc = mq_error(MQ_EIO, "cannot read %s%s'%s'", what, sp, path);
        goto done;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    buf = NULL;
done:
    free(buf);
    fclose(f);
    return rc;
}

bool mq_file_executable(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

int mq_file_find_in_path(const char *name, char *buf, size_t size)
{
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        size_t n = strcspn(path, ":");
        char cand[4096];
        if (n > 0 && n + strlen(name) + 2 < sizeof(cand)) {
            snprintf(cand, sizeof(cand), "%.*s/%s", (int)n, path, name);
            if (mq_file_executable(cand)) {
                snprintf(buf, size, "%s", cand);
                return MQ_OK;
            }
        }
        path += n + (path[n] == ':');
    }
    return MQ_ENOTFOUND;
}
