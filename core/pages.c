/* core/pages.c - mq_pages_release (contract in core/pages.h). */
#include "core/pages.h"

#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

size_t mq_pages_release(const void *src, size_t n)
{
    long ps = sysconf(_SC_PAGESIZE);
    uintptr_t page = ps > 0 ? (uintptr_t)ps : 4096;
    uintptr_t lo = ((uintptr_t)src + page - 1) / page * page, hi = ((uintptr_t)src + n) / page * page;
    if (hi <= lo)
        return 0;
    return madvise((void *)lo, hi - lo, MADV_DONTNEED) == 0 ? (size_t)(hi - lo) : 0;
}
