/*
 * fuzz_wal.c — the write-ahead log as recovery reads it: the input is a
 * NNNNNN.log file. Every record the log reader (wal_reader.c) returns is
 * decoded as a write batch (write_batch.c) and its entries are added to
 * per-family memtables exactly as db.c's replay_wal/replay_entry do; the
 * memtables are then read back (iterators both ways, point lookups, the
 * fragmented range tombstones).
 *
 * Runs on the input as given and on a copy with every fragment's CRC
 * repaired (checksum_repair.h), so the batch decoder and the memtable see
 * mutated records too.
 */
#include "checksum_repair.h"
#include "fuzz_checks.h"
#include "fuzz_env.h"

#include "memtable.h"
#include "wal.h"
#include "write_batch.h"

#include <stdint.h>
#include <stdlib.h>

#define LOG_PATH "/fuzz/000007.log"
/* Families the replay knows; entries of others are skipped, as replay
 * skips dropped or unknown families. */
#define NUM_FAMILIES 3
/* Lookups per memtable after the replay. */
#define MAX_LOOKUPS 32

typedef struct replay_state {
    kv_memtable *mems[NUM_FAMILIES];
    size_t entries_added[NUM_FAMILIES];
    kv_seq last_sequence; /* published as replay_wal does */
    kv_seq batch_sequence;
    uint32_t batch_count;
    uint32_t entries_seen; /* in the current batch */
} replay_state;

/* kv_write_batch_iterate's handler: db.c's replay_entry, minus the db. */
static int replay_entry(void *arg, uint32_t cf_id, kv_seq seq, int type, kv_slice key,
                        kv_slice value)
{
    replay_state *state = arg;
    FUZZ_CHECK(seq == state->batch_sequence + state->entries_seen,
               "entry %u of a batch at sequence %llu has sequence %llu", state->entries_seen,
               (unsigned long long)state->batch_sequence, (unsigned long long)seq);
    FUZZ_CHECK(kv_type_is_value(type) || type == KV_TYPE_DELETION || type == KV_TYPE_RANGE_DELETION,
               "unknown type %d", type);
    state->entries_seen++;
    if (cf_id >= NUM_FAMILIES)
        return 0;
    kv_memtable_add(state->mems[cf_id], seq, type, key, value);
    state->entries_added[cf_id]++;
    return 0;
}

/* Walks the memtable both ways (the counts must agree: a skiplist holds
 * what was added) and looks up the first keys it holds, at the newest
 * sequence and at `last_sequence`, the snapshot a kv_get right after
 * recovery reads at. */
static void read_back_memtable(kv_memtable *mem, size_t entries_added, kv_seq last_sequence)
{
    uint64_t point_entries = kv_memtable_num_entries(mem) - kv_memtable_num_range_deletes(mem);
    FUZZ_CHECK(kv_memtable_num_entries(mem) == entries_added, "memtable counts %llu entries of %zu",
               (unsigned long long)kv_memtable_num_entries(mem), entries_added);

    kv_iter *it = kv_memtable_iter_create(mem);
    kv_buf user_keys[MAX_LOOKUPS];
    size_t num_keys = 0;
    uint64_t forward = 0;
    for (kv_iter_seek_to_first(it); kv_iter_valid(it); kv_iter_next(it)) {
        kv_slice ikey = kv_iter_key(it);
        FUZZ_CHECK(ikey.size >= 8, "memtable key of %zu bytes", ikey.size);
        if (num_keys < MAX_LOOKUPS) {
            memset(&user_keys[num_keys], 0, sizeof(kv_buf));
            kv_buf_set(&user_keys[num_keys], ikey.data, ikey.size - 8);
            num_keys++;
        }
        forward++;
    }
    uint64_t backward = 0;
    for (kv_iter_seek_to_last(it); kv_iter_valid(it); kv_iter_prev(it))
        backward++;
    FUZZ_CHECK(forward == point_entries && backward == point_entries,
               "memtable iterates %llu entries forward, %llu backward, holds %llu",
               (unsigned long long)forward, (unsigned long long)backward,
               (unsigned long long)point_entries);

    kv_frag_tombstones *tombstones = kv_memtable_range_tombstones(mem);
    kv_buf value = {0};
    for (size_t i = 0; i < num_keys; i++) {
        kv_slice user_key = kv_buf_slice(&user_keys[i]);
        kv_lookup lookup = {.user_key = user_key, .snapshot = KV_MAX_SEQUENCE, .value = &value};
        kv_memtable_get(mem, &lookup);
        FUZZ_CHECK(lookup.state != KV_LOOKUP_NONE, "a key the iterator returned is not found");
        lookup.snapshot = last_sequence;
        kv_memtable_get(mem, &lookup);
        kv_buf seek_key = {0};
        kv_ikey_append(&seek_key, user_key, KV_MAX_SEQUENCE, KV_TYPE_FOR_SEEK);
        kv_iter_seek(it, kv_buf_slice(&seek_key));
        FUZZ_CHECK(kv_iter_valid(it), "seeking to a key the memtable holds finds nothing");
        kv_buf_free(&seek_key);
        kv_memtable_max_covering_tombstone(mem, user_key, last_sequence);
        if (tombstones)
            kv_frag_tombstones_max_covering(tombstones, user_key, KV_MAX_SEQUENCE);
        kv_buf_free(&user_keys[i]);
    }
    if (tombstones) {
        fuzz_check_tombstones(tombstones);
        kv_frag_tombstones_unref(tombstones);
    }
    kv_buf_free(&value);
    kv_iter_destroy(it);
}

/* Replays the log file at LOG_PATH of `env` into fresh memtables. */
static void replay_log(kv_env *env)
{
    kv_random *file;
    if (kv_env_new_random(env, LOG_PATH, &file) != 0)
        abort();
    uint64_t file_size = file->size;
    kv_log_reader *reader = kv_log_reader_create(file, file_size, "000007.log");
    replay_state state = {{NULL}, {0}, 0, 0, 0, 0};
    for (int i = 0; i < NUM_FAMILIES; i++)
        state.mems[i] = kv_memtable_create((uint64_t)i + 1);

    kv_buf scratch = {0};
    kv_write_batch batch;
    kv_write_batch_init(&batch);
    kv_slice record;
    int rc;
    bool batch_failed = false;
    while ((rc = kv_log_reader_read_record(reader, &record, &scratch)) == 1) {
        FUZZ_CHECK(record.size <= file_size, "record of %zu bytes in a file of %llu", record.size,
                   (unsigned long long)file_size);
        FUZZ_CHECK(kv_log_reader_last_record_offset(reader) < file_size,
                   "record offset %llu past the end",
                   (unsigned long long)kv_log_reader_last_record_offset(reader));
        /* Like replay_wal, stop at the first malformed batch. */
        rc = kv_write_batch_set_contents(&batch, record);
        batch_failed = rc != 0;
        if (batch_failed)
            break;
        state.batch_sequence = kv_write_batch_sequence(&batch);
        state.batch_count = kv_write_batch_count(&batch);
        state.entries_seen = 0;
        /* A memtable must not be given the same (key, sequence) twice
         * (skiplist.c asserts it is not), so a replay must refuse a batch
         * whose sequences do not follow those replayed before it, as the
         * writer never writes one. db.c's replay_wal did not when this
         * target first ran (tests/fuzz/crashes/wal/duplicate-sequence.log);
         * this replay does what the fixed one does. */
        if (state.batch_count > 0 && state.batch_sequence <= state.last_sequence) {
            rc = KV_CORRUPTION;
            batch_failed = true;
            break;
        }
        rc = kv_write_batch_iterate(&batch, replay_entry, &state);
        FUZZ_CHECK(rc == 0 || (rc == KV_CORRUPTION && state.entries_seen == 0),
                   "a batch that failed (%d) reached the handler %u times", rc, state.entries_seen);
        batch_failed = rc != 0;
        if (batch_failed)
            break;
        FUZZ_CHECK(state.entries_seen == state.batch_count,
                   "batch counts %u entries, handler saw %u", state.batch_count,
                   state.entries_seen);
        kv_seq last = state.batch_sequence + state.batch_count - 1;
        if (state.batch_count > 0 && last > state.last_sequence)
            state.last_sequence = last;
    }
    FUZZ_CHECK(rc == 0 || rc == KV_CORRUPTION, "replay ended with %d", rc);
    FUZZ_CHECK(kv_log_reader_dropped_tail(reader) <= file_size, "dropped tail %llu",
               (unsigned long long)kv_log_reader_dropped_tail(reader));
    if (rc < 0 && !batch_failed)
        FUZZ_CHECK(kv_log_reader_read_record(reader, &record, &scratch) == rc,
                   "a reader that failed returned something else on the next call");

    for (int i = 0; i < NUM_FAMILIES; i++) {
        read_back_memtable(state.mems[i], state.entries_added[i], state.last_sequence);
        kv_memtable_unref(state.mems[i]);
    }
    kv_write_batch_free(&batch);
    kv_buf_free(&scratch);
    kv_log_reader_destroy(reader);
    kv_random_close(file);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kv_env *env = fuzz_env_create();
    fuzz_env_put_file(env, LOG_PATH, data, size);
    replay_log(env);

    char *repaired = kv_memdup(data, size);
    fuzz_repair_log_checksums(repaired, size);
    fuzz_env_put_file(env, LOG_PATH, repaired, size);
    free(repaired);
    replay_log(env);

    fuzz_env_destroy(env);
    return 0;
}
