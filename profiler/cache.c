/* profiler/cache.c - one small text file per cached measurement. */
#include "profiler/cache.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/status.h"
#include "model/model.h"

void prof_cache_default_dir(char *buf, size_t size)
{
    const char *d = getenv("MIXQ_CACHE_DIR");
    if (d && *d) {
        snprintf(buf, size, "%s", d);
        return;
    }
    d = getenv("XDG_CACHE_HOME");
    if (d && *d) {
        snprintf(buf, size, "%s/mixq", d);
        return;
    }
    d = getenv("HOME");
    snprintf(buf, size, "%s/.cache/mixq", d && *d ? d : "/tmp");
}

static void entry_path(const char *dir, const char *key, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%016llx.v1", dir, (unsigned long long)mq_hash64(key, strlen(key), 0x63616368ULL));
}

int prof_cache_get(const char *dir, const char *key, double *vals, int n)
{
    char path[4200];
    entry_path(dir, key, path, sizeof(path));
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[2048];
    int got = 0;
    if (fgets(line, sizeof(line), f) && strncmp(line, "key ", 4) == 0) {
        line[strcspn(line, "\n")] = '\0';
        if (strcmp(line + 4, key) == 0)
            for (got = 0; got < n && fscanf(f, "%lf", &vals[got]) == 1; got++)
                ;
    }
    fclose(f);
    return got == n ? n : 0;
}

static int mkdirs(const char *dir)
{
    char p[4096];
    snprintf(p, sizeof(p), "%s", dir);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST)
            return -1;
        *s = '/';
    }
    return mkdir(p, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

int prof_cache_put(const char *dir, const char *key, const double *vals, int n)
{
    if (mkdirs(dir) != 0)
        return mq_error(MQ_EIO, "cannot create cache folder '%s': %s", dir, strerror(errno));
    char path[4200], tmp[4220];
    entry_path(dir, key, path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path);
    int fd = mkstemp(tmp);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        if (fd >= 0)
            close(fd);
        return mq_error(MQ_EIO, "cannot write to cache folder '%s': %s", dir, strerror(errno));
    }
    fprintf(f, "key %s\n", key);
    for (int i = 0; i < n; i++)
        fprintf(f, "%.17g\n", vals[i]);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad || rename(tmp, path) != 0) {
        unlink(tmp);
        return mq_error(MQ_EIO, "cannot write cache entry '%s': %s", path, strerror(errno));
    }
    return MQ_OK;
}
