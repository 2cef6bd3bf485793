/*
 * crc32c.c — CRC-32C (Castagnoli, reflected polynomial 0x82f63b78), the
 * checksum of every kv file. Two implementations that must agree bit for bit:
 *
 *  - hardware: the SSE4.2 crc32 instruction, 8 bytes per instruction, chosen
 *    once at run time when the CPU has it;
 *  - portable: slicing-by-8 (eight 256-entry tables, 8 bytes per step).
 *
 * Both use the usual convention: the register starts at ~0 and the result is
 * inverted, so kv_crc32c_extend(0, ...) is the standard CRC-32C and extending
 * a crc with more data equals the crc of the concatenation.
 */
#include "crc32c.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <nmmintrin.h>
#define KV_CRC32C_HAVE_SSE42 1
#endif

#define CRC32C_POLY 0x82f63b78u /* bit-reversed 0x1edc6f41 */

/* table[0] is the classic byte-at-a-time table; table[k][b] is the crc
 * contribution of byte b followed by k zero bytes, which is what lets
 * slicing-by-8 fold eight independent lookups into one step. */
static uint32_t crc_table[8][256];
static pthread_once_t crc_table_once = PTHREAD_ONCE_INIT;

static void crc_table_init(void)
{
    for (uint32_t byte = 0; byte < 256; byte++) {
        uint32_t crc = byte;
        for (int bit = 0; bit < 8; bit++)
            crc = (crc >> 1) ^ ((crc & 1) ? CRC32C_POLY : 0);
        crc_table[0][byte] = crc;
    }
    for (int k = 1; k < 8; k++) {
        for (int byte = 0; byte < 256; byte++) {
            uint32_t prev = crc_table[k - 1][byte];
            crc_table[k][byte] = (prev >> 8) ^ crc_table[0][prev & 0xff];
        }
    }
}

/* Little-endian load, independent of host byte order (compilers turn the
 * loop into one load on little-endian machines). */
static inline uint64_t load_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

uint32_t kv_crc32c_extend_portable(uint32_t crc, const void *data, size_t n)
{
    pthread_once(&crc_table_once, crc_table_init);
    const unsigned char *p = data;
    uint32_t l = ~crc;

    /* Bytewise until 8-aligned, so the main loop reads aligned words. */
    while (n > 0 && ((uintptr_t)p & 7) != 0) {
        l = (l >> 8) ^ crc_table[0][(l ^ *p++) & 0xff];
        n--;
    }
    while (n >= 8) {
        uint64_t word = load_le64(p);
        uint32_t lo = l ^ (uint32_t)word;
        uint32_t hi = (uint32_t)(word >> 32);
        l = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
            crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^ crc_table[3][hi & 0xff] ^
            crc_table[2][(hi >> 8) & 0xff] ^ crc_table[1][(hi >> 16) & 0xff] ^
            crc_table[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n > 0) {
        l = (l >> 8) ^ crc_table[0][(l ^ *p++) & 0xff];
        n--;
    }
    return ~l;
}

#ifdef KV_CRC32C_HAVE_SSE42
/* Only called after __builtin_cpu_supports("sse4.2") said yes. */
__attribute__((target("sse4.2"))) static uint32_t crc32c_extend_sse42(uint32_t crc,
                                                                      const void *data, size_t n)
{
    const unsigned char *p = data;
    uint32_t l = ~crc;

    while (n > 0 && ((uintptr_t)p & 7) != 0) {
        l = _mm_crc32_u8(l, *p++);
        n--;
    }
#if defined(__x86_64__)
    uint64_t l64 = l;
    while (n >= 8) {
        uint64_t word;
        memcpy(&word, p, sizeof(word));
        l64 = _mm_crc32_u64(l64, word);
        p += 8;
        n -= 8;
    }
    l = (uint32_t)l64;
#endif
    while (n >= 4) {
        uint32_t word;
        memcpy(&word, p, sizeof(word));
        l = _mm_crc32_u32(l, word);
        p += 4;
        n -= 4;
    }
    while (n > 0) {
        l = _mm_crc32_u8(l, *p++);
        n--;
    }
    return ~l;
}
#endif

typedef uint32_t (*crc_extend_fn)(uint32_t, const void *, size_t);
static crc_extend_fn crc_extend_impl;
static pthread_once_t crc_impl_once = PTHREAD_ONCE_INIT;

static void crc_impl_choose(void)
{
    crc_extend_impl = kv_crc32c_extend_portable;
#ifdef KV_CRC32C_HAVE_SSE42
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse4.2"))
        crc_extend_impl = crc32c_extend_sse42;
#endif
}

uint32_t kv_crc32c_extend(uint32_t crc, const void *data, size_t n)
{
    pthread_once(&crc_impl_once, crc_impl_choose);
    return crc_extend_impl(crc, data, n);
}

int kv_crc32c_hardware(void)
{
    pthread_once(&crc_impl_once, crc_impl_choose);
    return crc_extend_impl != kv_crc32c_extend_portable;
}
