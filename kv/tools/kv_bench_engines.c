/*
 * kv_bench_engines.c — kv_bench's engine adapters: kv through kv.h, and the
 * peers RocksDB (rocksdb/c.h) and LevelDB (leveldb/c.h) when
 * KV_BENCH_ROCKSDB / KV_BENCH_LEVELDB are defined. Each opens its database
 * with the settings common to all engines (write buffer, compression, bloom
 * bits, block cache, 4096-byte blocks; WAL on, fsync only on sync writes)
 * and leaves everything else at that engine's default.
 */
#include "kv.h"
#include "kv_bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef KV_BENCH_ROCKSDB
#include <rocksdb/c.h>
#endif
#ifdef KV_BENCH_LEVELDB
#include <leveldb/c.h>
#endif

/* kv, through kv.h. */

typedef struct kv_bench_db {
    kv_db *db;
    kv_cf *cf;
} kv_bench_db;

static const char *kv_engine_version(void)
{
    return KV_VERSION_STRING;
}

static int kv_engine_open(const bench_settings *settings, const char *dir, void **out)
{
    kv_options options;
    kv_options_init(&options);
    options.create_if_missing = true;
    options.block_cache_size = settings->cache_size;
    options.cf.write_buffer_size = settings->write_buffer_size;
    options.cf.block_size = BENCH_BLOCK_SIZE;
    options.cf.bloom_bits_per_key = settings->bloom_bits;
    options.cf.compression = settings->snappy ? KV_COMPRESSION_SNAPPY : KV_COMPRESSION_NONE;
    kv_bench_db *handle = bench_calloc(1, sizeof *handle);
    int rc = kv_open(&options, dir, &handle->db);
    if (rc != 0) {
        bench_set_error("kv_open %s: %s: %s", dir, kv_strerror(rc), kv_errmsg());
        free(handle);
        return -1;
    }
    handle->cf = kv_default_cf(handle->db);
    *out = handle;
    return 0;
}

static int kv_engine_close(void *db)
{
    kv_bench_db *handle = db;
    /* KV_BENCH_STATS=1: the engine's own account of the run, on stderr. */
    const char *want_stats = getenv("KV_BENCH_STATS");
    if (want_stats != NULL && want_stats[0] != '\0' && strcmp(want_stats, "0") != 0) {
        const char *names[] = {"kv.stats", "kv.levelstats"};
        for (size_t i = 0; i < 2; i++) {
            char *text = NULL;
            if (kv_get_property(handle->db, NULL, names[i], &text) == 0)
                fprintf(stderr, "%s", text);
            kv_free(text);
        }
    }
    int rc = kv_close(handle->db);
    free(handle);
    if (rc != 0) {
        bench_set_error("kv_close: %s: %s", kv_strerror(rc), kv_errmsg());
        return -1;
    }
    return 0;
}

static int kv_engine_put(void *db, const char *key, size_t key_len, const char *value,
                         size_t value_len, bool sync)
{
    kv_bench_db *handle = db;
    kv_write_options wo = {.sync = sync};
    int rc = kv_put(handle->db, &wo, handle->cf, key, key_len, value, value_len);
    if (rc != 0) {
        bench_set_error("kv_put: %s: %s", kv_strerror(rc), kv_errmsg());
        return -1;
    }
    return 0;
}

static int kv_engine_get(void *db, const char *key, size_t key_len, bool *found, size_t *value_len)
{
    kv_bench_db *handle = db;
    char *value = NULL;
    int rc = kv_get(handle->db, NULL, handle->cf, key, key_len, &value, value_len);
    if (rc == KV_NOT_FOUND) {
        *found = false;
        *value_len = 0;
        return 0;
    }
    if (rc != 0) {
        bench_set_error("kv_get: %s: %s", kv_strerror(rc), kv_errmsg());
        return -1;
    }
    *found = true;
    kv_free(value);
    return 0;
}

static int kv_engine_delete(void *db, const char *key, size_t key_len)
{
    kv_bench_db *handle = db;
    int rc = kv_delete(handle->db, NULL, handle->cf, key, key_len);
    if (rc != 0) {
        bench_set_error("kv_delete: %s: %s", kv_strerror(rc), kv_errmsg());
        return -1;
    }
    return 0;
}

static int kv_engine_scan(void *db, uint64_t limit, uint64_t *entries, uint64_t *bytes)
{
    kv_bench_db *handle = db;
    kv_iterator *it = kv_iterator_create(handle->db, NULL, handle->cf);
    if (it == NULL) {
        bench_set_error("kv_iterator_create: %s", kv_errmsg());
        return -1;
    }
    uint64_t count = 0, total = 0;
    for (kv_iterator_seek_to_first(it); count < limit && kv_iterator_valid(it);
         kv_iterator_next(it)) {
        size_t key_len, value_len;
        kv_iterator_key(it, &key_len);
        kv_iterator_value(it, &value_len);
        total += key_len + value_len;
        count++;
    }
    int rc = kv_iterator_status(it);
    if (rc != 0)
        bench_set_error("kv iterator: %s: %s", kv_strerror(rc), kv_errmsg());
    kv_iterator_destroy(it);
    *entries = count;
    *bytes = total;
    return rc == 0 ? 0 : -1;
}

const bench_engine bench_kv_engine = {
    .name = "kv",
    .version = kv_engine_version,
    .open = kv_engine_open,
    .close = kv_engine_close,
    .put = kv_engine_put,
    .get = kv_engine_get,
    .del = kv_engine_delete,
    .scan = kv_engine_scan,
};

#ifdef KV_BENCH_ROCKSDB
/* RocksDB, through rocksdb/c.h. */

typedef struct rocksdb_bench_db {
    rocksdb_t *db;
    rocksdb_options_t *options;
    rocksdb_block_based_table_options_t *table_options;
    rocksdb_cache_t *cache;
    rocksdb_writeoptions_t *write_options;
    rocksdb_writeoptions_t *sync_write_options;
    rocksdb_readoptions_t *read_options;
} rocksdb_bench_db;

/* Moves a RocksDB error string into bench_error; returns -1 if there was one. */
static int rocksdb_take_error(const char *what, char *err)
{
    if (err == NULL)
        return 0;
    bench_set_error("%s: %s", what, err);
    rocksdb_free(err);
    return -1;
}

static void rocksdb_bench_free(rocksdb_bench_db *handle)
{
    if (handle->read_options)
        rocksdb_readoptions_destroy(handle->read_options);
    if (handle->sync_write_options)
        rocksdb_writeoptions_destroy(handle->sync_write_options);
    if (handle->write_options)
        rocksdb_writeoptions_destroy(handle->write_options);
    if (handle->options)
        rocksdb_options_destroy(handle->options);
    if (handle->table_options)
        rocksdb_block_based_options_destroy(handle->table_options);
    if (handle->cache)
        rocksdb_cache_destroy(handle->cache);
    free(handle);
}

static int rocksdb_engine_open(const bench_settings *settings, const char *dir, void **out)
{
    rocksdb_bench_db *handle = bench_calloc(1, sizeof *handle);
    handle->options = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(handle->options, 1);
    rocksdb_options_set_write_buffer_size(handle->options, settings->write_buffer_size);
    rocksdb_options_set_compression(handle->options, settings->snappy ? rocksdb_snappy_compression
                                                                      : rocksdb_no_compression);
    handle->table_options = rocksdb_block_based_options_create();
    rocksdb_block_based_options_set_block_size(handle->table_options, BENCH_BLOCK_SIZE);
    handle->cache = rocksdb_cache_create_lru(settings->cache_size);
    rocksdb_block_based_options_set_block_cache(handle->table_options, handle->cache);
    if (settings->bloom_bits > 0) {
        /* The table options take ownership of the policy. */
        rocksdb_block_based_options_set_filter_policy(
            handle->table_options, rocksdb_filterpolicy_create_bloom_full(settings->bloom_bits));
    }
    rocksdb_options_set_block_based_table_factory(handle->options, handle->table_options);
    handle->write_options = rocksdb_writeoptions_create();
    handle->sync_write_options = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(handle->sync_write_options, 1);
    handle->read_options = rocksdb_readoptions_create();

    char *err = NULL;
    handle->db = rocksdb_open(handle->options, dir, &err);
    if (rocksdb_take_error("rocksdb_open", err) != 0) {
        rocksdb_bench_free(handle);
        return -1;
    }
    *out = handle;
    return 0;
}

static int rocksdb_engine_close(void *db)
{
    rocksdb_bench_db *handle = db;
    rocksdb_close(handle->db);
    rocksdb_bench_free(handle);
    return 0;
}

static int rocksdb_engine_put(void *db, const char *key, size_t key_len, const char *value,
                              size_t value_len, bool sync)
{
    rocksdb_bench_db *handle = db;
    char *err = NULL;
    rocksdb_put(handle->db, sync ? handle->sync_write_options : handle->write_options, key, key_len,
                value, value_len, &err);
    return rocksdb_take_error("rocksdb_put", err);
}

static int rocksdb_engine_get(void *db, const char *key, size_t key_len, bool *found,
                              size_t *value_len)
{
    rocksdb_bench_db *handle = db;
    char *err = NULL;
    size_t len = 0;
    char *value = rocksdb_get(handle->db, handle->read_options, key, key_len, &len, &err);
    if (rocksdb_take_error("rocksdb_get", err) != 0)
        return -1;
    *found = value != NULL;
    *value_len = value != NULL ? len : 0;
    rocksdb_free(value);
    return 0;
}

static int rocksdb_engine_delete(void *db, const char *key, size_t key_len)
{
    rocksdb_bench_db *handle = db;
    char *err = NULL;
    rocksdb_delete(handle->db, handle->write_options, key, key_len, &err);
    return rocksdb_take_error("rocksdb_delete", err);
}

static int rocksdb_engine_scan(void *db, uint64_t limit, uint64_t *entries, uint64_t *bytes)
{
    rocksdb_bench_db *handle = db;
    rocksdb_iterator_t *it = rocksdb_create_iterator(handle->db, handle->read_options);
    uint64_t count = 0, total = 0;
    for (rocksdb_iter_seek_to_first(it); count < limit && rocksdb_iter_valid(it);
         rocksdb_iter_next(it)) {
        size_t key_len, value_len;
        rocksdb_iter_key(it, &key_len);
        rocksdb_iter_value(it, &value_len);
        total += key_len + value_len;
        count++;
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    *entries = count;
    *bytes = total;
    return rocksdb_take_error("rocksdb iterator", err);
}

static const bench_engine ROCKSDB_ENGINE = {
    .name = "rocksdb",
    .version = NULL,
    .open = rocksdb_engine_open,
    .close = rocksdb_engine_close,
    .put = rocksdb_engine_put,
    .get = rocksdb_engine_get,
    .del = rocksdb_engine_delete,
    .scan = rocksdb_engine_scan,
};
#endif /* KV_BENCH_ROCKSDB */

#ifdef KV_BENCH_LEVELDB
/* LevelDB, through leveldb/c.h. */

typedef struct leveldb_bench_db {
    leveldb_t *db;
    leveldb_options_t *options;
    leveldb_cache_t *cache;
    leveldb_filterpolicy_t *filter_policy; /* not owned by the options */
    leveldb_writeoptions_t *write_options;
    leveldb_writeoptions_t *sync_write_options;
    leveldb_readoptions_t *read_options;
} leveldb_bench_db;

static int leveldb_take_error(const char *what, char *err)
{
    if (err == NULL)
        return 0;
    bench_set_error("%s: %s", what, err);
    leveldb_free(err);
    return -1;
}

static void leveldb_bench_free(leveldb_bench_db *handle)
{
    if (handle->read_options)
        leveldb_readoptions_destroy(handle->read_options);
    if (handle->sync_write_options)
        leveldb_writeoptions_destroy(handle->sync_write_options);
    if (handle->write_options)
        leveldb_writeoptions_destroy(handle->write_options);
    if (handle->options)
        leveldb_options_destroy(handle->options);
    if (handle->filter_policy)
        leveldb_filterpolicy_destroy(handle->filter_policy);
    if (handle->cache)
        leveldb_cache_destroy(handle->cache);
    free(handle);
}

static const char *leveldb_engine_version(void)
{
    static char version[32];
    snprintf(version, sizeof version, "%d.%d", leveldb_major_version(), leveldb_minor_version());
    return version;
}

static int leveldb_engine_open(const bench_settings *settings, const char *dir, void **out)
{
    leveldb_bench_db *handle = bench_calloc(1, sizeof *handle);
    handle->options = leveldb_options_create();
    leveldb_options_set_create_if_missing(handle->options, 1);
    leveldb_options_set_write_buffer_size(handle->options, settings->write_buffer_size);
    leveldb_options_set_compression(handle->options, settings->snappy ? leveldb_snappy_compression
                                                                      : leveldb_no_compression);
    leveldb_options_set_block_size(handle->options, BENCH_BLOCK_SIZE);
    handle->cache = leveldb_cache_create_lru(settings->cache_size);
    leveldb_options_set_cache(handle->options, handle->cache);
    if (settings->bloom_bits > 0) {
        handle->filter_policy = leveldb_filterpolicy_create_bloom(settings->bloom_bits);
        leveldb_options_set_filter_policy(handle->options, handle->filter_policy);
    }
    handle->write_options = leveldb_writeoptions_create();
    handle->sync_write_options = leveldb_writeoptions_create();
    leveldb_writeoptions_set_sync(handle->sync_write_options, 1);
    handle->read_options = leveldb_readoptions_create();

    char *err = NULL;
    handle->db = leveldb_open(handle->options, dir, &err);
    if (leveldb_take_error("leveldb_open", err) != 0) {
        leveldb_bench_free(handle);
        return -1;
    }
    *out = handle;
    return 0;
}

static int leveldb_engine_close(void *db)
{
    leveldb_bench_db *handle = db;
    leveldb_close(handle->db);
    leveldb_bench_free(handle);
    return 0;
}

static int leveldb_engine_put(void *db, const char *key, size_t key_len, const char *value,
                              size_t value_len, bool sync)
{
    leveldb_bench_db *handle = db;
    char *err = NULL;
    leveldb_put(handle->db, sync ? handle->sync_write_options : handle->write_options, key, key_len,
                value, value_len, &err);
    return leveldb_take_error("leveldb_put", err);
}

static int leveldb_engine_get(void *db, const char *key, size_t key_len, bool *found,
                              size_t *value_len)
{
    leveldb_bench_db *handle = db;
    char *err = NULL;
    size_t len = 0;
    char *value = leveldb_get(handle->db, handle->read_options, key, key_len, &len, &err);
    if (leveldb_take_error("leveldb_get", err) != 0)
        return -1;
    *found = value != NULL;
    *value_len = value != NULL ? len : 0;
    leveldb_free(value);
    return 0;
}

static int leveldb_engine_delete(void *db, const char *key, size_t key_len)
{
    leveldb_bench_db *handle = db;
    char *err = NULL;
    leveldb_delete(handle->db, handle->write_options, key, key_len, &err);
    return leveldb_take_error("leveldb_delete", err);
}

static int leveldb_engine_scan(void *db, uint64_t limit, uint64_t *entries, uint64_t *bytes)
{
    leveldb_bench_db *handle = db;
    leveldb_iterator_t *it = leveldb_create_iterator(handle->db, handle->read_options);
    uint64_t count = 0, total = 0;
    for (leveldb_iter_seek_to_first(it); count < limit && leveldb_iter_valid(it);
         leveldb_iter_next(it)) {
        size_t key_len, value_len;
        leveldb_iter_key(it, &key_len);
        leveldb_iter_value(it, &value_len);
        total += key_len + value_len;
        count++;
    }
    char *err = NULL;
    leveldb_iter_get_error(it, &err);
    leveldb_iter_destroy(it);
    *entries = count;
    *bytes = total;
    return leveldb_take_error("leveldb iterator", err);
}

static const bench_engine LEVELDB_ENGINE = {
    .name = "leveldb",
    .version = leveldb_engine_version,
    .open = leveldb_engine_open,
    .close = leveldb_engine_close,
    .put = leveldb_engine_put,
    .get = leveldb_engine_get,
    .del = leveldb_engine_delete,
    .scan = leveldb_engine_scan,
};
#endif /* KV_BENCH_LEVELDB */

const bench_engine *const bench_engines[] = {
    &bench_kv_engine,
#ifdef KV_BENCH_ROCKSDB
    &ROCKSDB_ENGINE,
#endif
#ifdef KV_BENCH_LEVELDB
    &LEVELDB_ENGINE,
#endif
};
const size_t bench_engine_count = sizeof bench_engines / sizeof bench_engines[0];
