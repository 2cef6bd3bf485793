/*
 * test_crc32c.c — CRC-32C: standard vectors, extension, agreement of the
 * hardware and portable paths, and masking.
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
        cmocka_unit_test(test_detects_bit_flips),
        cmocka_unit_test(test_mask),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
