/* core/pages.h - giving back the resident pages of a read-only file mapping.
 *
 *     size_t dropped = mq_pages_release(t->data, t->nbytes);   // whole pages only
 *
 * The pages wholly inside [src, src + n) are dropped (madvise MADV_DONTNEED): for a
 * read-only private file mapping they are read from the file again on the next access, so
 * this is only ever a memory saving, never a change of contents. The partial pages at
 * either end stay (they may hold a neighbour's bytes). Never call it on heap or written
 * memory: its contents would be lost.
 *
 * Dependency rule: core/ depends on nothing above it.
 */
#ifndef MQ_CORE_PAGES_H
#define MQ_CORE_PAGES_H

#include <stddef.h>

/* Returns the bytes released (0 when the range holds no whole page or madvise failed: the
 * pages then stay resident, which is correct, only larger). */
size_t mq_pages_release(const void *src, size_t n);

#endif
