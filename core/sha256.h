/* core/sha256.h - SHA-256 (FIPS 180-4), for checking files against recorded checksums
 * (model configs, scripts/models.lock).
 *
 *     char hex[65];
 *     if (mq_sha256_file("model.onnx", hex) < 0) return -1;
 *
 * Dependency rule: core/ depends on nothing but libc.
 */
#ifndef MQ_CORE_SHA256_H
#define MQ_CORE_SHA256_H

#include <stddef.h>
#include <stdint.h>

struct mq_sha256 {
    uint32_t h[8];
    uint64_t len;
    uint8_t buf[64];
    size_t n;
};

void mq_sha256_init(struct mq_sha256 *s);
void mq_sha256_update(struct mq_sha256 *s, const void *data, size_t n);
/* Writes 64 lowercase hex digits and a NUL. */
void mq_sha256_final(struct mq_sha256 *s, char hex[65]);
/* The checksum of a file's bytes; MQ_EIO (printed) when it cannot be read. */
int mq_sha256_file(const char *path, char hex[65]);

#endif
