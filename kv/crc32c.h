/*
 * crc32c.h — CRC-32C (Castagnoli), the one checksum of every kv file.
 * Uses the SSE4.2 crc32 instruction when the CPU has it (checked once at
 * run time), else a portable slicing-by-8 table implementation.
 */
#ifndef KV_CRC32C_H
#define KV_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* crc of (A || data) given crc = crc32c(A). */
uint32_t kv_crc32c_extend(uint32_t crc, const void *data, size_t n);
static inline uint32_t kv_crc32c(const void *data, size_t n)
{
    return kv_crc32c_extend(0, data, n);
}

/* The portable implementation, exposed so tests can compare both paths. */
uint32_t kv_crc32c_extend_portable(uint32_t crc, const void *data, size_t n);
/* True when the hardware path is in use. */
int kv_crc32c_hardware(void);

/* Stored CRCs are masked (LevelDB): a CRC of data that itself contains CRCs
 * is otherwise prone to degenerate values. */
#define KV_CRC32C_MASK_DELTA 0xa282ead8u
static inline uint32_t kv_crc32c_mask(uint32_t crc)
{
    return ((crc >> 15) | (crc << 17)) + KV_CRC32C_MASK_DELTA;
}
static inline uint32_t kv_crc32c_unmask(uint32_t masked)
{
    uint32_t rot = masked - KV_CRC32C_MASK_DELTA;
    return (rot >> 17) | (rot << 15);
}

#endif
