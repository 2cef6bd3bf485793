/*
 * fuzz_sst.c — the table reader (table.c, table_format.c, block.c, bloom.c,
 * range_del.c): the input is an NNNNNN.sst file. It is opened through the
 * in-memory env (mapped, as env_posix.c maps tables) with a block cache,
 * then read every way the engine reads a table: all entries forward and
 * backward, seeks to keys it holds and to keys around them with direction
 * changes after each, point lookups (bloom filter first), the range
 * tombstones, the properties, size estimates and kv_table_verify.
 *
 * Runs on the input as given and on a copy with every block CRC repaired
 * (checksum_repair.h), so block contents get mutated too.
 */
#include "checksum_repair.h"
#include "fuzz_checks.h"
#include "fuzz_env.h"

#include "cache.h"
#include "coding.h"
#include "kv.h"
#include "table.h"

#include <stdint.h>
#include <stdlib.h>

#define TABLE_PATH "/fuzz/000012.sst"
/* Bounds the work on one input: steps of a full scan, and the number of
 * keys kept as seek and lookup targets. */
#define MAX_SCAN_STEPS 20000
#define MAX_TARGETS 24

typedef struct key_set {
    kv_buf keys[MAX_TARGETS];
    size_t count;
} key_set;

static void key_set_add(key_set *set, kv_slice key)
{
    if (set->count == MAX_TARGETS)
        return;
    kv_buf *slot = &set->keys[set->count++];
    memset(slot, 0, sizeof(*slot));
    kv_buf_set(slot, key.data, key.size);
}

static void key_set_free(key_set *set)
{
    for (size_t i = 0; i < set->count; i++)
        kv_buf_free(&set->keys[i]);
    set->count = 0;
}

/* A table iterator's promise to its callers: a valid position has an
 * internal-key-sized key (anything shorter becomes corruption). */
static void check_position(kv_iter *it)
{
    if (kv_iter_valid(it)) {
        kv_slice key = kv_iter_key(it);
        FUZZ_CHECK(key.size >= 8, "table iterator key of %zu bytes", key.size);
        kv_iter_value(it);
    } else {
        int status = kv_iter_status(it);
        FUZZ_CHECK(status == 0 || status == KV_CORRUPTION, "table iterator status %d", status);
    }
}

/* Full scans both ways; keeps some of the keys met as later targets. */
static void scan_table(kv_iter *it, key_set *targets)
{
    size_t steps = 0;
    for (kv_iter_seek_to_first(it); kv_iter_valid(it) && steps < MAX_SCAN_STEPS;
         kv_iter_next(it), steps++) {
        check_position(it);
        if (steps < MAX_TARGETS / 3 || steps % 64 == 0)
            key_set_add(targets, kv_iter_key(it));
    }
    check_position(it);
    steps = 0;
    for (kv_iter_seek_to_last(it); kv_iter_valid(it) && steps < MAX_SCAN_STEPS;
         kv_iter_prev(it), steps++) {
        check_position(it);
        if (steps < 4)
            key_set_add(targets, kv_iter_key(it));
    }
    check_position(it);
}

/* Seeks to `target` and moves next, prev, prev, next: direction changes
 * are where two-level iterators go wrong. */
static void seek_and_wander(kv_iter *it, kv_slice target)
{
    kv_iter_seek(it, target);
    check_position(it);
    void (*moves[4])(kv_iter *) = {kv_iter_next, kv_iter_prev, kv_iter_prev, kv_iter_next};
    for (int i = 0; i < 4 && kv_iter_valid(it); i++) {
        moves[i](it);
        check_position(it);
    }
}

/* Seeks to each target, and to the same user key at the newest and oldest
 * sequence, and to its user key cut short. */
static void seek_targets(kv_iter *it, const key_set *targets)
{
    kv_buf variant = {0};
    for (size_t i = 0; i < targets->count; i++) {
        kv_slice key = kv_buf_slice(&targets->keys[i]);
        seek_and_wander(it, key);
        if (key.size < 8)
            continue;
        kv_slice user_key = kv_ikey_user_key(key);
        kv_buf_clear(&variant);
        kv_ikey_append(&variant, user_key, KV_MAX_SEQUENCE, KV_TYPE_FOR_SEEK);
        seek_and_wander(it, kv_buf_slice(&variant));
        kv_buf_clear(&variant);
        kv_ikey_append(&variant, user_key, 0, KV_TYPE_DELETION);
        seek_and_wander(it, kv_buf_slice(&variant));
        if (user_key.size > 0) {
            kv_buf_clear(&variant);
            kv_ikey_append(&variant, kv_slice_make(user_key.data, user_key.size - 1), 1,
                           KV_TYPE_VALUE);
            seek_and_wander(it, kv_buf_slice(&variant));
        }
    }
    kv_buf_free(&variant);
}

/* Point lookups of every target's user key at the latest state and at the
 * target's own sequence, with and without filling the cache. */
static void get_targets(kv_table *table, const key_set *targets)
{
    kv_buf value = {0};
    for (size_t i = 0; i < targets->count; i++) {
        kv_slice key = kv_buf_slice(&targets->keys[i]);
        if (key.size < 8)
            continue;
        kv_slice user_key = kv_ikey_user_key(key);
        kv_seq seq = kv_decode_fixed64(key.data + key.size - 8) >> 8;
        kv_seq snapshots[2] = {KV_MAX_SEQUENCE, seq};
        for (int s = 0; s < 2; s++) {
            kv_lookup lookup = {.user_key = user_key, .snapshot = snapshots[s], .value = &value};
            int rc = kv_table_get(table, &lookup, s == 0);
            FUZZ_CHECK(rc == 0 || rc == KV_CORRUPTION, "kv_table_get returned %d", rc);
            if (rc == 0 && lookup.state != KV_LOOKUP_NONE)
                FUZZ_CHECK(lookup.seq <= lookup.snapshot,
                           "lookup at snapshot %llu found sequence %llu",
                           (unsigned long long)lookup.snapshot, (unsigned long long)lookup.seq);
        }
        kv_table_approximate_offset(table, key);
    }
    kv_buf_free(&value);
}

static void check_range_tombstones(kv_table *table, const key_set *targets)
{
    kv_frag_tombstones *tombstones = kv_table_range_tombstones(table);
    if (tombstones == NULL)
        return;
    fuzz_check_tombstones(tombstones);
    for (size_t i = 0; i < targets->count; i++) {
        kv_slice key = kv_buf_slice(&targets->keys[i]);
        if (key.size >= 8)
            kv_frag_tombstones_max_covering(tombstones, kv_ikey_user_key(key), KV_MAX_SEQUENCE);
    }
}

/* Opens the table at TABLE_PATH of `env` and reads all of it. */
static void read_table(kv_env *env)
{
    kv_random *file;
    if (kv_env_new_random(env, TABLE_PATH, &file) != 0)
        abort();
    kv_cache *block_cache = kv_cache_create(64 * 1024, 0);
    kv_table *table;
    int rc = kv_table_open(file, file->size, "000012.sst", block_cache, &table);
    if (rc != 0) {
        FUZZ_CHECK(rc == KV_CORRUPTION || rc == KV_NOT_SUPPORTED, "kv_table_open returned %d", rc);
        kv_cache_destroy(block_cache);
        return;
    }
    const kv_table_properties *props = kv_table_get_properties(table);
    (void)props;

    key_set targets = {.count = 0};
    kv_iter *it = kv_table_iter_create(table, true, NULL, NULL);
    scan_table(it, &targets);
    seek_targets(it, &targets);
    kv_iter_destroy(it);
    /* The same reads again without filling the cache: blocks then come
     * from the file each time and are freed with the iterator. */
    it = kv_table_iter_create(table, false, NULL, NULL);
    seek_targets(it, &targets);
    kv_iter_destroy(it);

    get_targets(table, &targets);
    check_range_tombstones(table, &targets);
    rc = kv_table_verify(table);
    FUZZ_CHECK(rc == 0 || rc == KV_CORRUPTION, "kv_table_verify returned %d", rc);
    FUZZ_CHECK(kv_table_bloom_useful(table) <= kv_table_bloom_checked(table),
               "bloom filter counters");

    key_set_free(&targets);
    kv_table_close(table);
    kv_cache_destroy(block_cache);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kv_env *env = fuzz_env_create();
    fuzz_env_put_file(env, TABLE_PATH, data, size);
    read_table(env);

    char *repaired = kv_memdup(data, size);
    fuzz_repair_table_checksums(repaired, size);
    fuzz_env_put_file(env, TABLE_PATH, repaired, size);
    free(repaired);
    read_table(env);

    fuzz_env_destroy(env);
    return 0;
}
