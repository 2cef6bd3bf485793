/*
 * fuzz_manifest.c — recovery of the file set: the input is a MANIFEST file
 * (the log format of wal_reader.c holding VersionEdits, version_edit.c),
 * replayed by kv_version_set_recover (version_set.c) through the
 * in-memory env, with a CURRENT file that names it.
 *
 * When recovery succeeds the recovered state must survive a round trip:
 * kv_version_set_write_snapshot writes it as a new MANIFEST (and switches
 * CURRENT), and recovering that gives the same families, files, counters.
 *
 * Runs on the input as given and on a copy with every fragment's CRC
 * repaired (checksum_repair.h), so the edit decoder and recover_apply see
 * mutated records too.
 */
#include "checksum_repair.h"
#include "fuzz_checks.h"
#include "fuzz_env.h"

#include "version_set.h"

#include "kv.h"

#include <stdint.h>
#include <stdlib.h>

#define DB_PATH "/fuzz"
#define MANIFEST_PATH DB_PATH "/MANIFEST-000003"
#define CURRENT_PATH DB_PATH "/CURRENT"

static bool same_file_meta(const kv_file_meta *a, const kv_file_meta *b)
{
    return a->number == b->number && a->file_size == b->file_size &&
           kv_slice_equal(kv_buf_slice(&a->smallest), kv_buf_slice(&b->smallest)) &&
           kv_slice_equal(kv_buf_slice(&a->largest), kv_buf_slice(&b->largest)) &&
           a->smallest_seq == b->smallest_seq && a->largest_seq == b->largest_seq &&
           a->num_entries == b->num_entries && a->num_deletions == b->num_deletions &&
           a->num_range_deletions == b->num_range_deletions;
}

static void check_same_version(const kv_version *a, const kv_version *b, uint32_t cf)
{
    for (int level = 0; level < KV_NUM_LEVELS; level++) {
        FUZZ_CHECK(a->num_files[level] == b->num_files[level],
                   "family %u level %d: %zu files before the round trip, %zu after", cf, level,
                   a->num_files[level], b->num_files[level]);
        for (size_t i = 0; i < a->num_files[level]; i++)
            FUZZ_CHECK(same_file_meta(a->files[level][i], b->files[level][i]),
                       "family %u level %d file %zu differs after the round trip", cf, level, i);
    }
}

/* The live families of `after` (recovered from the snapshot) must be those
 * of `before`, with the same names, log numbers and files. */
static void check_same_state(kv_version_set *before, kv_version_set *after)
{
    FUZZ_CHECK(after->next_file_number == before->next_file_number, "next file %llu != %llu",
               (unsigned long long)after->next_file_number,
               (unsigned long long)before->next_file_number);
    FUZZ_CHECK(kv_version_set_last_sequence(after) == kv_version_set_last_sequence(before),
               "last sequence %llu != %llu",
               (unsigned long long)kv_version_set_last_sequence(after),
               (unsigned long long)kv_version_set_last_sequence(before));
    FUZZ_CHECK(after->max_column_family == before->max_column_family, "max column family %u != %u",
               after->max_column_family, before->max_column_family);
    size_t live_before = 0, live_after = 0;
    for (size_t i = 0; i < before->num_cfs; i++) {
        const kv_cf_record *cf = &before->cfs[i];
        if (cf->dropped)
            continue;
        live_before++;
        kv_cf_record *copy = kv_version_set_find_cf(after, cf->id);
        FUZZ_CHECK(copy != NULL, "family %u lost in the round trip", cf->id);
        FUZZ_CHECK(strcmp(copy->name, cf->name) == 0, "family %u renamed", cf->id);
        FUZZ_CHECK(copy->log_number == cf->log_number, "family %u log number changed", cf->id);
        check_same_version(cf->version, copy->version, cf->id);
    }
    for (size_t i = 0; i < after->num_cfs; i++)
        live_after += !after->cfs[i].dropped;
    FUZZ_CHECK(live_after == live_before, "%zu live families before the round trip, %zu after",
               live_before, live_after);
}

/* What recovery promises of any version it builds: levels >= 1 sorted by
 * smallest key (overlap is not checked: recovery does not promise it); and
 * what the engine requires of the state it opens with: sequence numbers
 * fit in 56 bits (dbformat.h). A larger last sequence becomes the snapshot
 * of every read after open, and kv_memtable_get asserts snapshot <=
 * KV_MAX_SEQUENCE: the first kv_get would abort the process. */
static void check_recovered(kv_version_set *vs)
{
    FUZZ_CHECK(kv_version_set_last_sequence(vs) <= KV_MAX_SEQUENCE,
               "recovered last sequence %llu is past 2^56 - 1: the first read after open would "
               "abort (kv_memtable_get asserts snapshot <= KV_MAX_SEQUENCE)",
               (unsigned long long)kv_version_set_last_sequence(vs));
    for (size_t i = 0; i < vs->num_cfs; i++) {
        const kv_version *v = vs->cfs[i].version;
        for (int level = 1; level < KV_NUM_LEVELS; level++)
            for (size_t f = 1; f < v->num_files[level]; f++)
                FUZZ_CHECK(kv_ikey_compare(kv_buf_slice(&v->files[level][f - 1]->smallest),
                                           kv_buf_slice(&v->files[level][f]->smallest)) <= 0,
                           "level %d files out of order", level);
        kv_version_total_files(v);
        for (int level = 0; level < KV_NUM_LEVELS; level++)
            kv_version_level_bytes(v, level);
    }
}

static void recover_manifest(const char *manifest, size_t size)
{
    kv_env *env = fuzz_env_create();
    fuzz_env_put_file(env, CURRENT_PATH, "MANIFEST-000003\n", 16);
    fuzz_env_put_file(env, MANIFEST_PATH, manifest, size);

    kv_version_set vs;
    kv_version_set_init(&vs, env, DB_PATH, NULL, 64u << 20);
    int rc = kv_version_set_recover(&vs);
    FUZZ_CHECK(rc == 0 || rc == KV_CORRUPTION || rc == KV_NOT_SUPPORTED,
               "kv_version_set_recover returned %d: %s", rc, kv_errmsg());
    if (rc == 0) {
        check_recovered(&vs);
        rc = kv_version_set_write_snapshot(&vs);
        FUZZ_CHECK(rc == 0, "writing a snapshot of a recovered state failed: %s", kv_errmsg());
        kv_version_set again;
        kv_version_set_init(&again, env, DB_PATH, NULL, 64u << 20);
        rc = kv_version_set_recover(&again);
        FUZZ_CHECK(rc == 0, "the snapshot of a recovered state does not recover: %s", kv_errmsg());
        check_same_state(&vs, &again);
        kv_version_set_free(&again);
    }
    kv_version_set_free(&vs);
    fuzz_env_destroy(env);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    recover_manifest((const char *)data, size);
    char *repaired = kv_memdup(data, size);
    fuzz_repair_log_checksums(repaired, size);
    recover_manifest(repaired, size);
    free(repaired);
    return 0;
}
