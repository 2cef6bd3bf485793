/*
 * test_crc32c.c — CRC-32C: standard vectors, extension, agreement of the
 * hardware (single- and three-stream) and portable paths with each other
 * and with a bit-at-a-time reference, and masking.
 */
#include "testutil.h"

#include "crc32c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* RFC 3720 (iSCSI) appendix B.4 vectors, plus the classic check value. */
static void test_known_vectors(void **state)
{
    (void)state;
    unsigned char buf[32];

    memset(buf, 0, sizeof(buf));
    assert_int_equal(kv_crc32c(buf, sizeof(buf)), 0x8a9136aa);
    assert_int_equal(kv_crc32c_extend_portable(0, buf, sizeof(buf)), 0x8a9136aa);

    memset(buf, 0xff, sizeof(buf));
    assert_int_equal(kv_crc32c(buf, sizeof(buf)), 0x62a8ab43);
    assert_int_equal(kv_crc32c_extend_portable(0, buf, sizeof(buf)), 0x62a8ab43);

    for (int i = 0; i < 32; i++)
        buf[i] = (unsigned char)i;
    assert_int_equal(kv_crc32c(buf, sizeof(buf)), 0x46dd794e);
    assert_int_equal(kv_crc32c_extend_portable(0, buf, sizeof(buf)), 0x46dd794e);

    for (int i = 0; i < 32; i++)
        buf[i] = (unsigned char)(31 - i);
    assert_int_equal(kv_crc32c(buf, sizeof(buf)), 0x113fdb5c);
    assert_int_equal(kv_crc32c_extend_portable(0, buf, sizeof(buf)), 0x113fdb5c);

    assert_int_equal(kv_crc32c("123456789", 9), 0xe3069283);
    assert_int_equal(kv_crc32c_extend_portable(0, "123456789", 9), 0xe3069283);

    /* The empty string has crc 0, and extending by nothing changes nothing. */
    assert_int_equal(kv_crc32c("", 0), 0);
    assert_int_equal(kv_crc32c_extend(0x12345678, "", 0), 0x12345678);
    assert_int_equal(kv_crc32c_extend_portable(0x12345678, "", 0), 0x12345678);
}

/* The iSCSI read-command PDU of RFC 3720 B.4: a vector longer than 32 bytes
 * whose bytes are not a simple pattern. */
static void test_iscsi_pdu(void **state)
{
    (void)state;
    static const unsigned char pdu[48] = {
        0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
        0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    };
    assert_int_equal(kv_crc32c(pdu, sizeof(pdu)), 0xd9963a56);
    assert_int_equal(kv_crc32c_extend_portable(0, pdu, sizeof(pdu)), 0xd9963a56);
}

/* crc(A || B) == extend(crc(A), B) at every split point, both paths. */
static void test_extend_equals_whole(void **state)
{
    (void)state;
    kv_test_rng rng;
    kv_test_rng_init(&rng, kv_test_seed(31));
    char buf[300];
    kv_test_rng_bytes(&rng, buf, sizeof(buf));
    uint32_t whole = kv_crc32c(buf, sizeof(buf));
    assert_int_equal(whole, kv_crc32c_extend_portable(0, buf, sizeof(buf)));
    for (size_t split = 0; split <= sizeof(buf); split++) {
        uint32_t a = kv_crc32c(buf, split);
        assert_int_equal(kv_crc32c_extend(a, buf + split, sizeof(buf) - split), whole);
        uint32_t pa = kv_crc32c_extend_portable(0, buf, split);
        assert_int_equal(pa, a);
        assert_int_equal(kv_crc32c_extend_portable(pa, buf + split, sizeof(buf) - split), whole);
    }
    /* Byte-at-a-time extension. */
    uint32_t crc = 0;
    for (size_t i = 0; i < sizeof(buf); i++)
        crc = kv_crc32c_extend(crc, buf + i, 1);
    assert_int_equal(crc, whole);
}

/* Hardware and portable paths agree on random data at random alignments and
 * lengths (covers the unaligned head, the 8-byte body and the tail). */
static void test_hardware_matches_portable(void **state)
{
    (void)state;
    if (!kv_crc32c_hardware())
        print_message("note: CPU lacks SSE4.2; kv_crc32c_extend is the portable path\n");
    kv_test_rng rng;
    kv_test_rng_init(&rng, kv_test_seed(4242));
    enum { MAX_LEN = 4096 + 64 };
    char *buf = malloc(MAX_LEN + 16);
    assert_non_null(buf);
    int rounds = kv_test_long_mode() ? 200000 : 20000;
    for (int r = 0; r < rounds; r++) {
        size_t offset = kv_test_rng_uniform(&rng, 16);
        size_t len =
            r % 4 == 0 ? kv_test_rng_uniform(&rng, MAX_LEN) : kv_test_rng_uniform(&rng, 40);
        kv_test_rng_bytes(&rng, buf + offset, len);
        uint32_t seed_crc = r % 2 ? (uint32_t)kv_test_rng_next(&rng) : 0;
        uint32_t hw = kv_crc32c_extend(seed_crc, buf + offset, len);
        uint32_t sw = kv_crc32c_extend_portable(seed_crc, buf + offset, len);
        if (hw != sw) {
            fprintf(stderr, "round %d: offset %zu len %zu: %08x != %08x\n", r, offset, len, hw, sw);
            fail();
        }
    }
    free(buf);
}

/* CRC-32C straight from its definition, one bit at a time: slow, but
 * shares nothing with either implementation under test. */
static uint32_t reference_crc32c(uint32_t crc, const void *data, size_t n)
{
    const unsigned char *p = data;
    uint32_t reg = ~crc;
    for (size_t i = 0; i < n; i++) {
        reg ^= p[i];
        for (int bit = 0; bit < 8; bit++)
            reg = (reg >> 1) ^ ((reg & 1) ? 0x82f63b78u : 0);
    }
    return ~reg;
}

/* Fills buf with a fixed pattern whose crcs were computed elsewhere (a
 * table-driven Python implementation). */
static void fill_pattern(unsigned char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = (unsigned char)(i * 7 + (i >> 11));
}

/* Check values of long inputs, which go through the three-stream path. */
static void test_long_known_vectors(void **state)
{
    (void)state;
    enum { MIB = 1 << 20 };
    unsigned char *buf = malloc(MIB);
    assert_non_null(buf);
    memset(buf, 0, MIB);
    assert_int_equal(kv_crc32c(buf, MIB), 0x14298c12);
    assert_int_equal(kv_crc32c_extend_portable(0, buf, MIB), 0x14298c12);
    fill_pattern(buf, MIB);
    assert_int_equal(kv_crc32c(buf, MIB), 0x513fd0bd);
    assert_int_equal(kv_crc32c_extend_portable(0, buf, MIB), 0x513fd0bd);
    assert_int_equal(kv_crc32c(buf, 10000), 0x0915b2c3);
    assert_int_equal(kv_crc32c_extend_portable(0, buf, 10000), 0x0915b2c3);
    assert_int_equal(reference_crc32c(0, buf, 10000), 0x0915b2c3);
    free(buf);
}

/* The crc of buf computed whole by both paths, and by the hardware path
 * extended in three pieces cut at random points, all agree with `expect`.
 * Returns false (after printing what differed) if not. */
static bool all_paths_agree(kv_test_rng *rng, uint32_t seed_crc, const char *buf, size_t len,
                            size_t offset, uint32_t expect)
{
    uint32_t hw = kv_crc32c_extend(seed_crc, buf, len);
    uint32_t sw = kv_crc32c_extend_portable(seed_crc, buf, len);
    size_t cut1 = (size_t)kv_test_rng_uniform(rng, len + 1);
    size_t cut2 = cut1 + (size_t)kv_test_rng_uniform(rng, len - cut1 + 1);
    uint32_t pieces = kv_crc32c_extend(seed_crc, buf, cut1);
    pieces = kv_crc32c_extend(pieces, buf + cut1, cut2 - cut1);
    pieces = kv_crc32c_extend(pieces, buf + cut2, len - cut2);
    if (hw == expect && sw == expect && pieces == expect)
        return true;
    fprintf(stderr,
            "len %zu offset %zu seed %08x: expected %08x, hardware %08x, portable %08x, "
            "pieces %zu+%zu+%zu %08x\n",
            len, offset, seed_crc, expect, hw, sw, cut1, cut2 - cut1, len - cut2, pieces);
    return false;
}

/* Every length 0..4096 at every alignment 0..15: the hardware path (one
 * stream below its three-stream threshold, three streams and a tail
 * above it), the portable path and piecewise extension agree. */
static void test_every_length_every_alignment(void **state)
{
    (void)state;
    if (!kv_crc32c_hardware())
        print_message("note: CPU lacks SSE4.2; kv_crc32c_extend is the portable path\n");
    enum { MAX_LEN = 4096, ALIGNMENTS = 16 };
    kv_test_rng rng;
    kv_test_rng_init(&rng, kv_test_seed(3));
    char *buf = malloc(MAX_LEN + 64);
    assert_non_null(buf);
    kv_test_rng_bytes(&rng, buf, MAX_LEN + 64);
    size_t failures = 0;
    for (size_t offset = 0; offset < ALIGNMENTS; offset++) {
        for (size_t len = 0; len <= MAX_LEN; len++) {
            uint32_t seed_crc = len % 3 == 0 ? 0 : (uint32_t)kv_test_rng_next(&rng);
            uint32_t expect = kv_crc32c_extend_portable(seed_crc, buf + offset, len);
            if (len % 64 == 0)
                assert_int_equal(reference_crc32c(seed_crc, buf + offset, len), expect);
            if (!all_paths_agree(&rng, seed_crc, buf + offset, len, offset, expect) &&
                ++failures >= 10)
                fail();
        }
    }
    assert_int_equal(failures, 0);
    free(buf);
}

/* Long inputs, at every alignment: lengths around the edges of the
 * three-stream rounds (multiples of 3 x 256 and 3 x 2048 bytes, give or
 * take), and large ones, against the bit-at-a-time reference. */
static void test_long_inputs(void **state)
{
    (void)state;
    static const size_t lengths[] = {
        767,   768,   769,   775,   776,   1535,    1536,          1537,    6143,           6144,
        6145,  6151,  6912,  6913,  7679,  7680,    12288,         12289,   16384,          32761,
        32768, 65536, 65543, 98304, 99999, 1 << 18, (1 << 20) - 1, 1 << 20, (1 << 20) + 13,
    };
    enum { MAX_LEN = (1 << 20) + 13, ALIGNMENTS = 16 };
    kv_test_rng rng;
    kv_test_rng_init(&rng, kv_test_seed(77));
    char *buf = malloc(MAX_LEN + 64);
    assert_non_null(buf);
    kv_test_rng_bytes(&rng, buf, MAX_LEN + 64);
    for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
        size_t len = lengths[i];
        uint32_t seed_crc = (uint32_t)kv_test_rng_next(&rng);
        uint32_t reference[2] = {reference_crc32c(0, buf, len),
                                 reference_crc32c(seed_crc, buf, len)};
        /* Each step moves the data one byte up: the same bytes at every
         * alignment. */
        for (size_t offset = 0; offset < ALIGNMENTS; offset++) {
            if (offset > 0)
                memmove(buf + offset, buf + offset - 1, len);
            for (int seeded = 0; seeded < 2; seeded++)
                assert_true(all_paths_agree(&rng, seeded ? seed_crc : 0, buf + offset, len, offset,
                                            reference[seeded]));
        }
        kv_test_rng_bytes(&rng, buf, MAX_LEN + 64);
    }
    free(buf);
}

/* A single flipped bit changes the crc (CRCs detect all 1-bit errors). */
static void test_detects_bit_flips(void **state)
{
    (void)state;
    char buf[64];
    kv_test_rng rng;
    kv_test_rng_init(&rng, kv_test_seed(7));
    kv_test_rng_bytes(&rng, buf, sizeof(buf));
    uint32_t orig = kv_crc32c(buf, sizeof(buf));
    for (size_t bit = 0; bit < sizeof(buf) * 8; bit++) {
        buf[bit / 8] ^= (char)(1 << (bit % 8));
        assert_int_not_equal(kv_crc32c(buf, sizeof(buf)), orig);
        assert_int_not_equal(kv_crc32c_extend_portable(0, buf, sizeof(buf)), orig);
        buf[bit / 8] ^= (char)(1 << (bit % 8));
    }
    assert_int_equal(kv_crc32c(buf, sizeof(buf)), orig);
}

static void test_mask(void **state)
{
    (void)state;
    uint32_t crc = kv_crc32c("foo", 3);
    assert_int_not_equal(kv_crc32c_mask(crc), crc);
    assert_int_not_equal(kv_crc32c_mask(kv_crc32c_mask(crc)), crc);
    assert_int_equal(kv_crc32c_unmask(kv_crc32c_mask(crc)), crc);
    assert_int_equal(kv_crc32c_unmask(kv_crc32c_unmask(kv_crc32c_mask(kv_crc32c_mask(crc)))), crc);

    kv_test_rng rng;
    kv_test_rng_init(&rng, kv_test_seed(99));
    for (int i = 0; i < 100000; i++) {
        uint32_t v = (uint32_t)kv_test_rng_next(&rng);
        assert_int_equal(kv_crc32c_unmask(kv_crc32c_mask(v)), v);
        assert_int_not_equal(kv_crc32c_mask(v), v);
    }
    /* Edge values. */
    uint32_t edges[] = {0, 1, 0xffffffffu, 0x80000000u, KV_CRC32C_MASK_DELTA};
    for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) {
        assert_int_equal(kv_crc32c_unmask(kv_crc32c_mask(edges[i])), edges[i]);
        assert_int_not_equal(kv_crc32c_mask(edges[i]), edges[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_vectors),
        cmocka_unit_test(test_iscsi_pdu),
        cmocka_unit_test(test_extend_equals_whole),
        cmocka_unit_test(test_hardware_matches_portable),
        cmocka_unit_test(test_long_known_vectors),
        cmocka_unit_test(test_every_length_every_alignment),
        cmocka_unit_test(test_long_inputs),
        cmocka_unit_test(test_detects_bit_flips),
        cmocka_unit_test(test_mask),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
