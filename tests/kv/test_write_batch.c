/* test_write_batch.c — write batch encoding, iteration, append, and
 * strict rejection of malformed reps. */
#include "testutil.h"

#include "coding.h"
#include "error.h"
#include "write_batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static kv_slice S(const char *s)
{
    return kv_slice_from_str(s);
}

/* A record as the handler saw it. */
typedef struct seen_record {
    uint32_t cf_id;
    kv_seq seq;
    int type;
    char *key, *value;
    size_t key_size, value_size;
} seen_record;

typedef struct seen_list {
    seen_record *items;
    size_t count, cap;
    size_t stop_after; /* return an error after this many; 0: never */
} seen_list;

static int collect(void *arg, uint32_t cf_id, kv_seq seq, int type, kv_slice key, kv_slice value)
{
    seen_list *list = arg;
    if (list->count == list->cap) {
        list->cap = list->cap ? list->cap * 2 : 16;
        list->items = realloc(list->items, list->cap * sizeof(*list->items));
    }
    seen_record *r = &list->items[list->count++];
    r->cf_id = cf_id;
    r->seq = seq;
    r->type = type;
    r->key = kv_memdup(key.data, key.size);
    r->key_size = key.size;
    r->value = kv_memdup(value.data, value.size);
    r->value_size = value.size;
    if (list->stop_after != 0 && list->count == list->stop_after)
        return KV_SHUTDOWN;
    return 0;
}

static void seen_free(seen_list *list)
{
    for (size_t i = 0; i < list->count; i++) {
        free(list->items[i].key);
        free(list->items[i].value);
    }
    free(list->items);
    memset(list, 0, sizeof(*list));
}

static void assert_record(const seen_record *r, uint32_t cf_id, kv_seq seq, int type, kv_slice key,
                          kv_slice value)
{
    assert_int_equal(r->cf_id, cf_id);
    assert_int_equal(r->seq, seq);
    assert_int_equal(r->type, type);
    assert_true(kv_slice_equal(kv_slice_make(r->key, r->key_size), key));
    assert_true(kv_slice_equal(kv_slice_make(r->value, r->value_size), value));
}

static void test_empty(void **state)
{
    (void)state;
    kv_write_batch *batch = kv_write_batch_create();
    assert_int_equal(kv_write_batch_count(batch), 0);
    assert_int_equal(kv_write_batch_size(batch), KV_WRITE_BATCH_HEADER);
    assert_int_equal(kv_write_batch_sequence(batch), 0);
    seen_list seen = {0};
    assert_int_equal(kv_write_batch_iterate(batch, collect, &seen), 0);
    assert_int_equal(seen.count, 0);
    kv_write_batch_destroy(batch);
    kv_write_batch_destroy(NULL);
}

/* One record of each tag, with the exact bytes the format prescribes. */
static void test_all_tags(void **state)
{
    (void)state;
    kv_write_batch *batch = kv_write_batch_create();
    kv_write_batch_set_sequence(batch, 1000);
    kv_write_batch_put_cf_id(batch, 0, S("k1"), S("v1"));
    kv_write_batch_delete_cf_id(batch, 0, S("k2"));
    kv_write_batch_delete_range_cf_id(batch, 0, S("a"), S("b"));
    kv_write_batch_put_cf_id(batch, 300, S("k3"), S(""));
    kv_write_batch_delete_cf_id(batch, 2, S(""));
    kv_write_batch_delete_range_cf_id(batch, 7, S("c"), S("d"));
    assert_int_equal(kv_write_batch_count(batch), 6);
    assert_int_equal(kv_write_batch_sequence(batch), 1000);

    static const char expected[] = "\xe8\x03\0\0\0\0\0\0" /* sequence 1000 */
                                   "\x06\0\0\0"           /* count */
                                   "\x01\x02k1\x02v1"
                                   "\x00\x02k2"
                                   "\x0f\x01"
                                   "a\x01"
                                   "b"
                                   "\x05\xac\x02\x02k3\x00"
                                   "\x04\x02\x00"
                                   "\x0e\x07\x01"
                                   "c\x01"
                                   "d";
    kv_slice contents = kv_write_batch_contents(batch);
    assert_int_equal(contents.size, sizeof(expected) - 1);
    assert_memory_equal(contents.data, expected, sizeof(expected) - 1);
    assert_int_equal(kv_write_batch_size(batch), sizeof(expected) - 1);

    seen_list seen = {0};
    assert_int_equal(kv_write_batch_iterate(batch, collect, &seen), 0);
    assert_int_equal(seen.count, 6);
    assert_record(&seen.items[0], 0, 1000, KV_TYPE_VALUE, S("k1"), S("v1"));
    assert_record(&seen.items[1], 0, 1001, KV_TYPE_DELETION, S("k2"), S(""));
    assert_record(&seen.items[2], 0, 1002, KV_TYPE_RANGE_DELETION, S("a"), S("b"));
    assert_record(&seen.items[3], 300, 1003, KV_TYPE_VALUE, S("k3"), S(""));
    assert_record(&seen.items[4], 2, 1004, KV_TYPE_DELETION, S(""), S(""));
    assert_record(&seen.items[5], 7, 1005, KV_TYPE_RANGE_DELETION, S("c"), S("d"));
    seen_free(&seen);

    /* A handler error stops the walk and comes back. */
    seen.stop_after = 2;
    assert_int_equal(kv_write_batch_iterate(batch, collect, &seen), KV_SHUTDOWN);
    assert_int_equal(seen.count, 2);
    seen_free(&seen);

    /* Clear empties the batch and resets the header. */
    kv_write_batch_clear(batch);
    assert_int_equal(kv_write_batch_count(batch), 0);
    assert_int_equal(kv_write_batch_sequence(batch), 0);
    assert_int_equal(kv_write_batch_size(batch), KV_WRITE_BATCH_HEADER);
    assert_int_equal(kv_write_batch_iterate(batch, collect, &seen), 0);
    assert_int_equal(seen.count, 0);
    kv_write_batch_destroy(batch);
}

/* Random batches: iterate returns what was added; set_contents and append
 * carry records over. */
static void test_round_trip(void **state)
{
    (void)state;
    kv_test_rng rng;
    kv_test_rng_init(&rng, kv_test_seed(331));
    for (int round = 0; round < 200; round++) {
        kv_write_batch batch;
        kv_write_batch_init(&batch);
        size_t n = kv_test_rng_uniform(&rng, 50);
        seen_list model = {0};
        for (size_t i = 0; i < n; i++) {
            char key[300], value[300];
            size_t key_size = kv_test_rng_uniform(&rng, sizeof(key));
            size_t value_size = kv_test_rng_uniform(&rng, sizeof(value));
            kv_test_rng_bytes(&rng, key, key_size);
            kv_test_rng_bytes(&rng, value, value_size);
            uint32_t cf = kv_test_rng_uniform(&rng, 3) == 0 ? 0 : (uint32_t)kv_test_rng_next(&rng);
            kv_slice k = kv_slice_make(key, key_size), v = kv_slice_make(value, value_size);
            int type;
            switch (kv_test_rng_uniform(&rng, 3)) {
            case 0:
                type = KV_TYPE_VALUE;
                kv_write_batch_put_cf_id(&batch, cf, k, v);
                break;
            case 1:
                type = KV_TYPE_DELETION;
                v = kv_slice_make("", 0);
                kv_write_batch_delete_cf_id(&batch, cf, k);
                break;
            default:
                type = KV_TYPE_RANGE_DELETION;
                kv_write_batch_delete_range_cf_id(&batch, cf, k, v);
                break;
            }
            collect(&model, cf, 0, type, k, v);
        }
        kv_seq base = kv_test_rng_uniform(&rng, KV_MAX_SEQUENCE - 100);
        kv_write_batch_set_sequence(&batch, base);
        assert_int_equal(kv_write_batch_count(&batch), n);

        /* Through the serialized form, as the WAL replays it. */
        kv_write_batch copy;
        kv_write_batch_init(&copy);
        assert_int_equal(kv_write_batch_set_contents(&copy, kv_write_batch_contents(&batch)), 0);

        /* Appended twice to a batch holding one record. */
        kv_write_batch twice;
        kv_write_batch_init(&twice);
        kv_write_batch_set_sequence(&twice, 5);
        kv_write_batch_put_cf_id(&twice, 0, S("first"), S("record"));
        kv_write_batch_append(&twice, &copy);
        kv_write_batch_append(&twice, &batch);
        assert_int_equal(kv_write_batch_count(&twice), 1 + 2 * n);
        assert_int_equal(kv_write_batch_sequence(&twice), 5);

        seen_list seen = {0};
        assert_int_equal(kv_write_batch_iterate(&copy, collect, &seen), 0);
        assert_int_equal(seen.count, n);
        for (size_t i = 0; i < n; i++) {
            const seen_record *m = &model.items[i];
            assert_record(&seen.items[i], m->cf_id, base + i, m->type,
                          kv_slice_make(m->key, m->key_size),
                          kv_slice_make(m->value, m->value_size));
        }
        seen_free(&seen);

        assert_int_equal(kv_write_batch_iterate(&twice, collect, &seen), 0);
        assert_int_equal(seen.count, 1 + 2 * n);
        assert_record(&seen.items[0], 0, 5, KV_TYPE_VALUE, S("first"), S("record"));
        for (size_t i = 0; i < 2 * n; i++) {
            const seen_record *m = &model.items[i % (n ? n : 1)];
            assert_record(&seen.items[1 + i], m->cf_id, 6 + i, m->type,
                          kv_slice_make(m->key, m->key_size),
                          kv_slice_make(m->value, m->value_size));
        }
        seen_free(&seen);
        seen_free(&model);
        kv_write_batch_free(&batch);
        kv_write_batch_free(&copy);
        kv_write_batch_free(&twice);
    }
}

/* ---- malformed reps ---- */

/* Iterating a batch holding `rep` fails with KV_CORRUPTION, a message of
 * the form "write batch: ... at offset N" and no handler call. */
static void assert_corrupt(kv_slice rep, size_t expected_offset)
{
    kv_write_batch batch;
    kv_write_batch_init(&batch);
    assert_int_equal(kv_write_batch_set_contents(&batch, rep), 0);
    seen_list seen = {0};
    assert_int_equal(kv_write_batch_iterate(&batch, collect, &seen), KV_CORRUPTION);
    assert_int_equal(seen.count, 0);
    const char *msg = kv_errmsg();
    assert_true(strncmp(msg, "write batch: ", 13) == 0);
    char suffix[40];
    snprintf(suffix, sizeof(suffix), " at offset %zu", expected_offset);
    size_t len = strlen(msg);
    if (len < strlen(suffix) || strcmp(msg + len - strlen(suffix), suffix) != 0)
        fail_msg("message \"%s\" does not end in \"%s\"", msg, suffix);
    kv_write_batch_free(&batch);
}

static void test_corrupt(void **state)
{
    (void)state;
    kv_write_batch batch;
    kv_write_batch_init(&batch);

    /* Shorter than the header. */
    assert_int_equal(kv_write_batch_set_contents(&batch, kv_slice_make("12345678901", 11)),
                     KV_CORRUPTION);
    assert_non_null(strstr(kv_errmsg(), "write batch: "));
    assert_non_null(strstr(kv_errmsg(), "at offset 0"));
    assert_int_equal(kv_write_batch_count(&batch), 0); /* unchanged */

    kv_write_batch_put_cf_id(&batch, 0, S("key"), S("value"));          /* offset 12, 11 bytes */
    kv_write_batch_delete_range_cf_id(&batch, 9, S("begin"), S("end")); /* offset 23 */
    kv_write_batch_put_cf_id(&batch, 1, S("k"), S("v"));                /* offset 35 */
    kv_slice good = kv_write_batch_contents(&batch);
    assert_int_equal(good.size, 41);
    char rep[64];
    memcpy(rep, good.data, good.size);

    /* Every truncation of the records fails (a cut at a record boundary
     * leaves the count too high). */
    for (size_t len = KV_WRITE_BATCH_HEADER; len < good.size; len++) {
        kv_write_batch cut;
        kv_write_batch_init(&cut);
        assert_int_equal(kv_write_batch_set_contents(&cut, kv_slice_make(rep, len)), 0);
        assert_int_equal(kv_write_batch_iterate(&cut, collect, NULL), KV_CORRUPTION);
        kv_write_batch_free(&cut);
    }
    /* Offsets name the field that ran out. */
    assert_corrupt(kv_slice_make(rep, 12), 12); /* count 3, found 0: offset is the end */
    assert_corrupt(kv_slice_make(rep, 14), 13); /* key length says 3, 1 byte left */
    assert_corrupt(kv_slice_make(rep, 20), 17); /* value truncated */
    assert_corrupt(kv_slice_make(rep, 24), 24); /* cf id missing */
    assert_corrupt(kv_slice_make(rep, 33), 31); /* range end truncated */
    assert_corrupt(kv_slice_make(rep, 23), 23); /* whole records, count too high */

    /* Unknown tags. */
    const unsigned char bad_tags[] = {0x02, 0x03, 0x06, 0x0d, 0x12, 0x80, 0xff};
    for (size_t i = 0; i < sizeof(bad_tags); i++) {
        char copy[64];
        memcpy(copy, rep, good.size);
        copy[23] = (char)bad_tags[i];
        assert_corrupt(kv_slice_make(copy, good.size), 23);
        assert_non_null(strstr(kv_errmsg(), "tag"));
    }

    /* Count mismatch both ways. */
    char copy[64];
    memcpy(copy, rep, good.size);
    kv_encode_fixed32(copy + 8, 2);
    assert_corrupt(kv_slice_make(copy, good.size), good.size);
    kv_encode_fixed32(copy + 8, 4);
    assert_corrupt(kv_slice_make(copy, good.size), good.size);

    /* Trailing garbage after the last record is a record with a bad tag or
     * a bad body, never ignored. */
    memcpy(copy, rep, good.size);
    copy[good.size] = 0x01; /* a put with nothing after the tag */
    assert_corrupt(kv_slice_make(copy, good.size + 1), good.size + 1);

    /* An overlong column family varint. */
    memcpy(copy, rep, 12);
    kv_encode_fixed32(copy + 8, 1);
    memcpy(copy + 12, "\x05\xff\xff\xff\xff\xff\x01k\x01v", 11);
    assert_corrupt(kv_slice_make(copy, 23), 13);

    /* The intact batch still iterates. */
    seen_list seen = {0};
    assert_int_equal(kv_write_batch_iterate(&batch, collect, &seen), 0);
    assert_int_equal(seen.count, 3);
    seen_free(&seen);
    kv_write_batch_free(&batch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_all_tags),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_corrupt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
