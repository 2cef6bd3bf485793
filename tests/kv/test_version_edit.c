/* test_version_edit.c — VersionEdit encoding (every field round trips;
 * truncated, garbage and unknown input is refused cleanly) and the file
 * metadata helpers. */
#include "testutil.h"

#include "coding.h"
#include "error.h"
#include "version_edit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void make_ikey(kv_buf *dst, const char *user_key, kv_seq seq, int type)
{
    kv_buf_clear(dst);
    kv_buf_append(dst, user_key, strlen(user_key));
    kv_put_fixed64(dst, kv_pack_seq_type(seq, type));
}

static kv_file_meta *make_meta(uint64_t number, const char *smallest, const char *largest,
                               uint64_t base)
{
    kv_file_meta *f = kv_file_meta_create();
    f->number = number;
    f->file_size = base * 1000 + 17;
    make_ikey(&f->smallest, smallest, base + 1, KV_TYPE_VALUE);
    make_ikey(&f->largest, largest, base + 9, KV_TYPE_DELETION);
    f->smallest_seq = base + 1;
    f->largest_seq = base + 9;
    f->num_entries = base * 3 + 1;
    f->num_deletions = base + 2;
    f->num_range_deletions = base + 3;
    return f;
}

/* An edit with every field set. */
static void make_full_edit(kv_version_edit *edit)
{
    kv_version_edit_init(edit);
    edit->has_format_version = true;
    edit->format_version = KV_MANIFEST_FORMAT_VERSION;
    kv_version_edit_set_cf_add(edit, 3, "meta");
    edit->has_log_number = true;
    edit->log_number = 12;
    edit->has_next_file_number = true;
    edit->next_file_number = UINT64_MAX;
    edit->has_last_sequence = true;
    edit->last_sequence = KV_MAX_SEQUENCE;
    edit->has_max_column_family = true;
    edit->max_column_family = 0xffffffffu;
    kv_version_edit_delete_file(edit, 0, 5);
    kv_version_edit_delete_file(edit, KV_NUM_LEVELS - 1, 1ull << 40);
    kv_version_edit_delete_file(edit, 3, 0);
    for (int i = 0; i < 3; i++) {
        kv_file_meta *f = make_meta(20 + (uint64_t)i, i == 1 ? "" : "apple",
                                    i == 2 ? "zebra\xff\x01x" : "mango", (uint64_t)i * 100);
        if (i == 1) { /* a table with blob indexes, links added out of order */
            kv_blob_links_add(&f->blob_links, &f->num_blob_links, 1ull << 40, 7);
            kv_blob_links_add(&f->blob_links, &f->num_blob_links, 9, 4096);
            kv_blob_links_add(&f->blob_links, &f->num_blob_links, 9, 100);
        }
        kv_version_edit_add_file(edit, i * 3, f);
        kv_file_meta_unref(f);
    }
}

static void assert_meta_equal(const kv_file_meta *a, const kv_file_meta *b)
{
    assert_int_equal(a->number, b->number);
    assert_int_equal(a->file_size, b->file_size);
    assert_true(kv_slice_equal(kv_buf_slice(&a->smallest), kv_buf_slice(&b->smallest)));
    assert_true(kv_slice_equal(kv_buf_slice(&a->largest), kv_buf_slice(&b->largest)));
    assert_int_equal(a->smallest_seq, b->smallest_seq);
    assert_int_equal(a->largest_seq, b->largest_seq);
    assert_int_equal(a->num_entries, b->num_entries);
    assert_int_equal(a->num_deletions, b->num_deletions);
    assert_int_equal(a->num_range_deletions, b->num_range_deletions);
    assert_int_equal(a->num_blob_links, b->num_blob_links);
    for (size_t i = 0; i < a->num_blob_links; i++) {
        assert_int_equal(a->blob_links[i].number, b->blob_links[i].number);
        assert_int_equal(a->blob_links[i].bytes, b->blob_links[i].bytes);
    }
}

static void assert_edit_equal(const kv_version_edit *a, const kv_version_edit *b)
{
    assert_int_equal(a->has_format_version, b->has_format_version);
    if (a->has_format_version)
        assert_int_equal(a->format_version, b->format_version);
    assert_int_equal(a->column_family, b->column_family);
    assert_int_equal(a->is_column_family_add, b->is_column_family_add);
    if (a->is_column_family_add)
        assert_string_equal(a->column_family_name, b->column_family_name);
    assert_int_equal(a->is_column_family_drop, b->is_column_family_drop);
    assert_int_equal(a->has_log_number, b->has_log_number);
    if (a->has_log_number)
        assert_int_equal(a->log_number, b->log_number);
    assert_int_equal(a->has_next_file_number, b->has_next_file_number);
    if (a->has_next_file_number)
        assert_int_equal(a->next_file_number, b->next_file_number);
    assert_int_equal(a->has_last_sequence, b->has_last_sequence);
    if (a->has_last_sequence)
        assert_int_equal(a->last_sequence, b->last_sequence);
    assert_int_equal(a->has_max_column_family, b->has_max_column_family);
    if (a->has_max_column_family)
        assert_int_equal(a->max_column_family, b->max_column_family);
    assert_int_equal(a->num_deleted, b->num_deleted);
    for (size_t i = 0; i < a->num_deleted; i++) {
        assert_int_equal(a->deleted[i].level, b->deleted[i].level);
        assert_int_equal(a->deleted[i].number, b->deleted[i].number);
    }
    assert_int_equal(a->num_added, b->num_added);
    for (size_t i = 0; i < a->num_added; i++) {
        assert_int_equal(a->added[i].level, b->added[i].level);
        assert_meta_equal(a->added[i].meta, b->added[i].meta);
        assert_int_equal(b->added[i].meta->refs, 1);
    }
}

/* Encodes, decodes, compares, and checks the re-encoding is identical. */
static void check_round_trip(const kv_version_edit *edit)
{
    kv_buf encoded = {0};
    kv_version_edit_encode(edit, &encoded);
    kv_version_edit decoded;
    kv_version_edit_init(&decoded);
    int rc = kv_version_edit_decode(&decoded, kv_buf_slice(&encoded), "MANIFEST-000001");
    if (rc != 0)
        fail_msg("decode: %s", kv_errmsg());
    assert_edit_equal(edit, &decoded);
    kv_buf again = {0};
    kv_version_edit_encode(&decoded, &again);
    assert_true(kv_slice_equal(kv_buf_slice(&encoded), kv_buf_slice(&again)));
    kv_buf_free(&again);
    kv_buf_free(&encoded);
    kv_version_edit_free(&decoded);
}

static void test_round_trip_every_field(void **state)
{
    (void)state;
    kv_version_edit edit;
    make_full_edit(&edit);
    check_round_trip(&edit);
    kv_version_edit_free(&edit);

    /* Each field alone. */
    kv_version_edit_init(&edit);
    check_round_trip(&edit);
    edit.column_family = 7;
    edit.is_column_family_drop = true;
    check_round_trip(&edit);
    kv_version_edit_free(&edit);

    kv_version_edit_init(&edit);
    edit.has_log_number = true; /* zero values are still present */
    edit.has_last_sequence = true;
    edit.has_next_file_number = true;
    edit.has_max_column_family = true;
    check_round_trip(&edit);
    kv_version_edit_free(&edit);

    kv_version_edit_init(&edit);
    kv_version_edit_set_cf_add(&edit, 0, ""); /* the default family, empty name */
    check_round_trip(&edit);
    kv_version_edit_free(&edit);
}

static void test_empty_edit(void **state)
{
    (void)state;
    kv_version_edit edit;
    kv_version_edit_init(&edit);
    kv_buf encoded = {0};
    kv_version_edit_encode(&edit, &encoded);
    assert_int_equal(encoded.size, 0);
    assert_int_equal(kv_version_edit_decode(&edit, kv_slice_make("", 0), "m"), 0);
    assert_false(edit.has_log_number);
    assert_int_equal(edit.num_added, 0);
    kv_version_edit_free(&edit);
    kv_buf_free(&encoded);
}

/* Every prefix of a valid encoding either fails with KV_CORRUPTION or ends
 * exactly at a field boundary (and then decodes to that prefix). */
static void test_truncated(void **state)
{
    (void)state;
    kv_version_edit edit;
    make_full_edit(&edit);
    kv_buf encoded = {0};
    kv_version_edit_encode(&edit, &encoded);
    size_t failures = 0;
    for (size_t len = 0; len < encoded.size; len++) {
        kv_version_edit decoded;
        kv_version_edit_init(&decoded);
        int rc = kv_version_edit_decode(&decoded, kv_slice_make(encoded.data, len), "MANIFEST-9");
        if (rc == 0) {
            kv_buf again = {0};
            kv_version_edit_encode(&decoded, &again);
            assert_true(kv_slice_equal(kv_buf_slice(&again), kv_slice_make(encoded.data, len)));
            kv_buf_free(&again);
        } else {
            assert_int_equal(rc, KV_CORRUPTION);
            assert_true(strncmp(kv_errmsg(), "MANIFEST-9: malformed VersionEdit: ", 35) == 0);
            failures++;
        }
        kv_version_edit_free(&decoded);
    }
    /* 14 fields (one of them blob links), so 14 cuts (0 included) fall
     * between fields. */
    assert_int_equal(failures, encoded.size - 14);
    kv_buf_free(&encoded);
    kv_version_edit_free(&edit);
}

static int decode_bytes(const char *bytes, size_t n)
{
    kv_version_edit edit;
    kv_version_edit_init(&edit);
    int rc = kv_version_edit_decode(&edit, kv_slice_make(bytes, n), "MANIFEST-000004");
    kv_version_edit_free(&edit);
    return rc;
}

static void test_unknown_tags(void **state)
{
    (void)state;
    const uint32_t unknown[] = {0, 5, 9, 99, 100, 199, 204, 1000, 0xffffffffu};
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        kv_buf encoded = {0};
        kv_put_varint32(&encoded, 2); /* log number 12 */
        kv_put_varint64(&encoded, 12);
        kv_put_varint32(&encoded, unknown[i]);
        kv_put_varint64(&encoded, 1);
        assert_int_equal(decode_bytes(encoded.data, encoded.size), KV_CORRUPTION);
        char expected[128];
        snprintf(expected, sizeof(expected),
                 "MANIFEST-000004: malformed VersionEdit: unknown tag %u at byte 2 of %zu",
                 unknown[i], encoded.size);
        assert_string_equal(kv_errmsg(), expected);
        kv_buf_free(&encoded);
    }
    /* An overlong tag varint. */
    const char bad_varint[] = "\xff\xff\xff\xff\xff\xff";
    assert_int_equal(decode_bytes(bad_varint, 6), KV_CORRUPTION);
    assert_non_null(strstr(kv_errmsg(), "bad tag at byte 0"));
}

static void test_bad_fields(void **state)
{
    (void)state;
    kv_buf b = {0};

    /* Level out of range, for a deleted and a new file. */
    kv_put_varint32(&b, 6);
    kv_put_varint32(&b, KV_NUM_LEVELS);
    kv_put_varint64(&b, 1);
    assert_int_equal(decode_bytes(b.data, b.size), KV_CORRUPTION);
    assert_non_null(strstr(kv_errmsg(), "bad deleted file field at byte 1"));

    kv_version_edit edit;
    kv_version_edit_init(&edit);
    kv_file_meta *f = make_meta(9, "a", "b", 1);
    kv_version_edit_add_file(&edit, KV_NUM_LEVELS - 1, f);
    kv_file_meta_unref(f);
    kv_buf_clear(&b);
    kv_version_edit_encode(&edit, &b);
    kv_version_edit_free(&edit);
    assert_int_equal(decode_bytes(b.data, b.size), 0);
    b.data[1] = KV_NUM_LEVELS; /* the level follows the one-byte tag */
    assert_int_equal(decode_bytes(b.data, b.size), KV_CORRUPTION);
    assert_non_null(strstr(kv_errmsg(), "bad new file field"));

    /* An internal key shorter than its 8-byte trailer. */
    kv_buf_clear(&b);
    kv_put_varint32(&b, 7);
    kv_put_varint32(&b, 0);
    kv_put_varint64(&b, 9);
    kv_put_varint64(&b, 100);
    kv_put_length_prefixed(&b, kv_slice_from_str("short"));
    kv_put_length_prefixed(&b, kv_slice_from_str("long enough key"));
    for (int i = 0; i < 5; i++)
        kv_put_varint64(&b, 1);
    assert_int_equal(decode_bytes(b.data, b.size), KV_CORRUPTION);

    /* Blob links: of a table the edit does not add, twice for one table,
     * empty, or not in ascending order. */
    kv_buf_clear(&b);
    kv_put_varint32(&b, 8);
    kv_put_varint64(&b, 9);
    kv_put_varint32(&b, 1);
    kv_put_varint64(&b, 3);
    kv_put_varint64(&b, 100);
    assert_int_equal(decode_bytes(b.data, b.size), KV_CORRUPTION);
    assert_non_null(strstr(kv_errmsg(), "bad blob links field at byte 1"));
    kv_version_edit_init(&edit);
    f = make_meta(9, "a", "b", 1);
    kv_version_edit_add_file(&edit, 1, f);
    kv_file_meta_unref(f);
    kv_buf table = {0};
    kv_version_edit_encode(&edit, &table);
    kv_version_edit_free(&edit);
    const uint64_t bad_links[][4] = {
        {1, 3, 0, 0}, /* count 1 */
        {0, 0, 0, 0}, /* count 0 */
        {2, 5, 4, 0}, /* 5 then 4 */
        {2, 5, 5, 0}, /* 5 twice */
    };
    for (size_t i = 0; i < sizeof(bad_links) / sizeof(bad_links[0]); i++) {
        kv_buf_clear(&b);
        kv_buf_append(&b, table.data, table.size);
        for (int twice = 0; twice < (i == 0 ? 2 : 1); twice++) {
            kv_put_varint32(&b, 8);
            kv_put_varint64(&b, 9);
            kv_put_varint32(&b, (uint32_t)bad_links[i][0]);
            for (uint64_t j = 0; j < bad_links[i][0]; j++) {
                kv_put_varint64(&b, bad_links[i][1 + j]);
                kv_put_varint64(&b, 4096);
            }
        }
        assert_int_equal(decode_bytes(b.data, b.size), KV_CORRUPTION);
        assert_non_null(strstr(kv_errmsg(), "bad blob links field"));
    }
    kv_buf_free(&table);

    /* A column family name with a NUL in it. */
    kv_buf_clear(&b);
    kv_put_varint32(&b, 201);
    kv_put_length_prefixed(&b, kv_slice_make("a\0b", 3));
    assert_int_equal(decode_bytes(b.data, b.size), KV_CORRUPTION);

    /* Format versions: 0 is malformed, a newer one is not supported. */
    kv_buf_clear(&b);
    kv_put_varint32(&b, 1);
    kv_put_varint32(&b, 0);
    assert_int_equal(decode_bytes(b.data, b.size), KV_CORRUPTION);
    kv_buf_clear(&b);
    kv_put_varint32(&b, 1);
    kv_put_varint32(&b, KV_MANIFEST_FORMAT_VERSION + 1);
    kv_put_varint32(&b, 250); /* a tag from that future version */
    assert_int_equal(decode_bytes(b.data, b.size), KV_NOT_SUPPORTED);
    char expected[128];
    snprintf(expected, sizeof(expected),
             "MANIFEST-000004: MANIFEST format version %d is newer than this library's (%d)",
             KV_MANIFEST_FORMAT_VERSION + 1, KV_MANIFEST_FORMAT_VERSION);
    assert_string_equal(kv_errmsg(), expected);

    /* A 64-bit value in a 32-bit field. */
    kv_buf_clear(&b);
    kv_put_varint32(&b, 200);
    kv_put_varint64(&b, 1ull << 33);
    assert_int_equal(decode_bytes(b.data, b.size), KV_CORRUPTION);

    kv_buf_free(&b);
}

/* Random bytes and bit-flipped encodings never crash or leak (ASan), and
 * failures are KV_CORRUPTION / KV_NOT_SUPPORTED with a message. */
static void test_garbage(void **state)
{
    (void)state;
    kv_test_rng rng;
    kv_test_rng_init(&rng, kv_test_seed(11));
    size_t rounds = kv_test_long_mode() ? 1000000 : 50000;
    char buf[256];
    for (size_t i = 0; i < rounds; i++) {
        size_t n = kv_test_rng_uniform(&rng, sizeof(buf));
        kv_test_rng_bytes(&rng, buf, n);
        /* Mostly valid tags, so decoding gets past the first byte. */
        static const unsigned char tags[] = {1, 2, 3, 4, 6, 7, 0xc8, 0xc9, 0xca, 0xcb};
        if (n > 0 && i % 2 == 0)
            buf[0] = (char)tags[kv_test_rng_uniform(&rng, sizeof(tags))];
        int rc = decode_bytes(buf, n);
        assert_true(rc == 0 || rc == KV_CORRUPTION || rc == KV_NOT_SUPPORTED);
    }

    kv_version_edit edit;
    make_full_edit(&edit);
    kv_buf encoded = {0};
    kv_version_edit_encode(&edit, &encoded);
    kv_version_edit_free(&edit);
    for (size_t i = 0; i < encoded.size * 8; i++) {
        encoded.data[i / 8] ^= (char)(1 << (i % 8));
        int rc = decode_bytes(encoded.data, encoded.size);
        assert_true(rc == 0 || rc == KV_CORRUPTION || rc == KV_NOT_SUPPORTED);
        encoded.data[i / 8] ^= (char)(1 << (i % 8));
    }
    kv_buf_free(&encoded);
}

static void test_file_meta(void **state)
{
    (void)state;
    kv_file_meta *f = make_meta(42, "a", "z", 5);
    assert_int_equal(f->refs, 1);
    f->being_compacted = true;
    kv_file_meta *copy = kv_file_meta_copy(f);
    assert_int_equal(copy->refs, 1);
    assert_false(copy->being_compacted);
    assert_meta_equal(f, copy);
    assert_ptr_not_equal(copy->smallest.data, f->smallest.data);
    kv_file_meta_ref(f);
    assert_int_equal(f->refs, 2);
    kv_file_meta_unref(f);
    assert_int_equal(f->refs, 1);
    kv_file_meta_unref(f);
    /* The copy is independent. */
    assert_int_equal(copy->number, 42);
    kv_file_meta_unref(copy);

    /* The edit holds its own copy. */
    kv_version_edit edit;
    kv_version_edit_init(&edit);
    f = make_meta(7, "b", "c", 1);
    kv_version_edit_add_file(&edit, 2, f);
    assert_ptr_not_equal(edit.added[0].meta, f);
    assert_int_equal(f->refs, 1);
    kv_file_meta_unref(f);
    assert_int_equal(edit.added[0].meta->number, 7);
    kv_file_meta *held = edit.added[0].meta;
    kv_file_meta_ref(held); /* a Version keeps it past the edit */
    kv_version_edit_free(&edit);
    assert_int_equal(held->refs, 1);
    assert_int_equal(held->number, 7);
    kv_file_meta_unref(held);

    /* A freed edit is reusable after init. */
    kv_version_edit_init(&edit);
    kv_version_edit_delete_file(&edit, 1, 3);
    check_round_trip(&edit);
    kv_version_edit_free(&edit);
}

static void test_debug_string(void **state)
{
    (void)state;
    kv_version_edit edit;
    make_full_edit(&edit);
    edit.is_column_family_drop = true;
    kv_buf s = {0};
    kv_version_edit_debug_string(&edit, &s);
    kv_buf_append_byte(&s, '\0');
    const char *text = s.data;
    const char *expected[] = {
        "format_version: 2\n",
        "column_family: 3\n",
        "column_family_add: 'meta'\n",
        "column_family_drop\n",
        "log_number: 12\n",
        "next_file_number: 18446744073709551615\n",
        "last_sequence: 72057594037927935\n",
        "max_column_family: 4294967295\n",
        "deleted_file: level 0 #000005\n",
        "deleted_file: level 6 #1099511627776\n",
        "new_file: level 0 #000020 size 17 keys ['apple' @ 1 : VALUE .. 'mango' @ 9 : DELETION] "
        "seqs [1 .. "
        "9] entries 1 deletions 2 range_deletions 3\n",
        "new_file: level 3 #000021 size 100017 keys ['' @ 101 : VALUE",
        "'zebra\\xff\\x01x' @ 209 : DELETION]",
    };
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++)
        if (strstr(text, expected[i]) == NULL)
            fail_msg("missing \"%s\" in:\n%s", expected[i], text);
    kv_buf_free(&s);
    kv_version_edit_free(&edit);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_every_field),
        cmocka_unit_test(test_empty_edit),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_unknown_tags),
        cmocka_unit_test(test_bad_fields),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_file_meta),
        cmocka_unit_test(test_debug_string),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
