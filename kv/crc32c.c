/*
 * crc32c.c — CRC-32C (Castagnoli, reflected polynomial 0x82f63b78), the
 * checksum of every kv file. Two implementations that must agree bit for bit:
 *
 *  - hardware: the SSE4.2 crc32 instruction, 8 bytes per instruction, chosen
 *    once at run time when the CPU has it; long inputs run three independent
 *    instruction streams at once (see "Three streams" below);
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
#if defined(__x86_64__)
/*
 * Three streams. The crc32 instruction has a latency of three cycles but
 * can start one per cycle, so a single chain of crc32q uses a third of it.
 * A long input is therefore cut into rounds of three adjacent chunks A, B,
 * C of `chunk` bytes each, crc'd as three independent chains, and the
 * three registers are combined.
 *
 * Why combining works. Let R(s, M) be the raw register (no inversions)
 * after feeding message M to a register that starts at s. R is linear over
 * GF(2) in (s, M), so R(s, M) = R(s, 0^|M|) ^ R(0, M); and feeding a zero
 * byte multiplies the register by x^8 modulo P, so R(s, 0^n) = s * x^(8n)
 * mod P. Hence, with |A| = |B| = |C| = chunk and K = x^(8 chunk) mod P:
 *
 *   R(s, A || B || C) = ((R(s, A) * K ^ R(0, B)) * K) ^ R(0, C)
 *
 * The first chain starts at s, the other two at 0. Multiplying a 32-bit
 * register by the constant K is linear in the register, so it is the XOR
 * of four lookups, one per byte, in tables of (byte << 8i) * K mod P built
 * once at start-up. Two chunk lengths keep both the combining cost small
 * for long inputs and the single-chain remainder short for medium ones.
 */
enum { CRC_LONG_CHUNK = 2048, CRC_SHORT_CHUNK = 256 };

/* Multiplication by x^(8 chunk) mod P: table[i][byte] is (byte << 8i)
 * times that constant. */
typedef struct crc_shift_table {
    uint32_t table[4][256];
} crc_shift_table;
static crc_shift_table crc_shift_long, crc_shift_short;

/* a * b mod P, both in the reflected representation the crc uses (bit 31
 * holds the coefficient of x^0, bit 0 that of x^31). */
static uint32_t multiply_mod_p(uint32_t a, uint32_t b)
{
    uint32_t product = 0;
    for (uint32_t coefficient = 0x80000000u; coefficient != 0; coefficient >>= 1) {
        if (a & coefficient)
            product ^= b;
        b = (b >> 1) ^ ((b & 1) ? CRC32C_POLY : 0); /* b *= x */
    }
    return product;
}

/* x^(8n) mod P, by square and multiply. */
static uint32_t x_pow_8n_mod_p(size_t n)
{
    uint32_t result = 0x80000000u; /* x^0 */
    uint32_t power = 0x00800000u;  /* x^8 */
    for (; n > 0; n >>= 1) {
        if (n & 1)
            result = multiply_mod_p(result, power);
        power = multiply_mod_p(power, power);
    }
    return result;
}

static void crc_shift_table_init(crc_shift_table *shift, size_t chunk)
{
    uint32_t factor = x_pow_8n_mod_p(chunk);
    for (int i = 0; i < 4; i++)
        for (uint32_t byte = 0; byte < 256; byte++)
            shift->table[i][byte] = multiply_mod_p(byte << (8 * i), factor);
}

/* The register crc advanced over the table's chunk of zero bytes. */
static inline uint32_t crc_shift(const crc_shift_table *shift, uint32_t crc)
{
    return shift->table[0][crc & 0xff] ^ shift->table[1][(crc >> 8) & 0xff] ^
           shift->table[2][(crc >> 16) & 0xff] ^ shift->table[3][crc >> 24];
}

/* Feeds *data (8-aligned) to the raw register crc in rounds of three
 * chunks while at least one round is left; advances *data and *n past
 * what it consumed. `chunk` is a multiple of 8. */
__attribute__((target("sse4.2"))) static uint64_t crc32c_rounds_sse42(uint64_t crc,
                                                                      const unsigned char **data,
                                                                      size_t *n, size_t chunk,
                                                                      const crc_shift_table *shift)
{
    const unsigned char *p = *data;
    size_t left = *n;
    while (left >= 3 * chunk) {
        uint64_t a = crc, b = 0, c = 0;
        for (const unsigned char *end = p + chunk; p < end; p += 8) {
            uint64_t word_a, word_b, word_c;
            memcpy(&word_a, p, sizeof(word_a));
            memcpy(&word_b, p + chunk, sizeof(word_b));
            memcpy(&word_c, p + 2 * chunk, sizeof(word_c));
            a = _mm_crc32_u64(a, word_a);
            b = _mm_crc32_u64(b, word_b);
            c = _mm_crc32_u64(c, word_c);
        }
        crc = crc_shift(shift, (uint32_t)a) ^ (uint32_t)b;
        crc = crc_shift(shift, (uint32_t)crc) ^ (uint32_t)c;
        p += 2 * chunk;
        left -= 3 * chunk;
    }
    *data = p;
    *n = left;
    return crc;
}
#endif

/* Only called after __builtin_cpu_supports("sse4.2") said yes (and, on
 * x86-64, after crc_impl_choose built the shift tables). */
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
    if (n >= 3 * CRC_SHORT_CHUNK) {
        l64 = crc32c_rounds_sse42(l64, &p, &n, CRC_LONG_CHUNK, &crc_shift_long);
        l64 = crc32c_rounds_sse42(l64, &p, &n, CRC_SHORT_CHUNK, &crc_shift_short);
    }
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
    if (__builtin_cpu_supports("sse4.2")) {
#if defined(__x86_64__)
        crc_shift_table_init(&crc_shift_long, CRC_LONG_CHUNK);
        crc_shift_table_init(&crc_shift_short, CRC_SHORT_CHUNK);
#endif
        crc_extend_impl = crc32c_extend_sse42;
    }
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
