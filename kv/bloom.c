/*
 * bloom.c — the per-file bloom filter (layout in bloom.h). One 32-bit hash
 * per key; the k probe positions are derived from it by double hashing
 * (Kirsch and Mitzenmacher), so building needs only the stored hashes.
 * The probe step is forced odd: the bit count is a multiple of 8, and an
 * even step would revisit a smaller set of bits.
 */
#include "bloom.h"

#include "coding.h"

#include <assert.h>

/* Probe counts above this are reserved for other filter encodings; a
 * reader treats them as "may match". */
#define BLOOM_MAX_PROBES 30

static uint32_t rotate_left32(uint32_t x, int r)
{
    return (x << r) | (x >> (32 - r));
}

/* MurmurHash3 (x86, 32-bit) with a fixed seed. */
uint32_t kv_bloom_hash(kv_slice key)
{
    const uint32_t c1 = 0xcc9e2d51u, c2 = 0x1b873593u;
    const unsigned char *p = (const unsigned char *)key.data;
    size_t n = key.size;
    uint32_t h = 0x9747b28cu;
    while (n >= 4) {
        uint32_t k = kv_decode_fixed32((const char *)p);
        k *= c1;
        k = rotate_left32(k, 15);
        k *= c2;
        h ^= k;
        h = rotate_left32(h, 13);
        h = h * 5 + 0xe6546b64u;
        p += 4;
        n -= 4;
    }
    uint32_t tail = 0;
    switch (n) {
    case 3:
        tail ^= (uint32_t)p[2] << 16;
        /* fall through */
    case 2:
        tail ^= (uint32_t)p[1] << 8;
        /* fall through */
    case 1:
        tail ^= p[0];
        tail *= c1;
        tail = rotate_left32(tail, 15);
        tail *= c2;
        h ^= tail;
    }
    h ^= (uint32_t)key.size;
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

void kv_bloom_build(int bits_per_key, const uint32_t *hashes, size_t n, kv_buf *out)
{
    assert(bits_per_key > 0);
    /* k = ln(2) * bits_per_key minimizes the false positive rate. */
    int probes = bits_per_key * 69 / 100;
    if (probes < 1)
        probes = 1;
    if (probes > BLOOM_MAX_PROBES)
        probes = BLOOM_MAX_PROBES;

    /* Small filters have a high false positive rate: use at least 64 bits. */
    uint64_t bits = (uint64_t)n * (uint64_t)bits_per_key;
    if (bits < 64)
        bits = 64;
    size_t bytes = (size_t)((bits + 7) / 8);
    bits = (uint64_t)bytes * 8;

    size_t start = out->size;
    kv_buf_resize(out, start + bytes + 1);
    unsigned char *array = (unsigned char *)out->data + start;
    memset(array, 0, bytes);
    array[bytes] = (unsigned char)probes;
    for (size_t i = 0; i < n; i++) {
        uint32_t h = hashes[i];
        uint32_t delta = rotate_left32(h, 15) | 1;
        for (int j = 0; j < probes; j++) {
            uint64_t bit = h % bits;
            array[bit / 8] |= (unsigned char)(1u << (bit % 8));
            h += delta;
        }
    }
}

bool kv_bloom_may_match(kv_slice filter, kv_slice key)
{
    if (filter.size < 2)
        return true;
    const unsigned char *array = (const unsigned char *)filter.data;
    size_t bytes = filter.size - 1;
    uint64_t bits = (uint64_t)bytes * 8;
    int probes = array[bytes];
    if (probes < 1 || probes > BLOOM_MAX_PROBES)
        return true;
    uint32_t h = kv_bloom_hash(key);
    uint32_t delta = rotate_left32(h, 15) | 1;
    for (int j = 0; j < probes; j++) {
        uint64_t bit = h % bits;
        if ((array[bit / 8] & (1u << (bit % 8))) == 0)
            return false;
        h += delta;
    }
    return true;
}
