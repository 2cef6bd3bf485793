/*
 * table_cache.c — open SST readers by file number (contract in
 * table_cache.h), kept in a kv_cache with a charge of 1 per table and a
 * capacity of max_open_files: a table evicted from the cache is closed
 * (and its descriptor with it) once no iterator or lookup holds it.
 */
#include "table_cache.h"

#include "coding.h"
#include "error.h"
#include "filename.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

struct kv_table_cache {
    kv_env *env;
    char *dbpath;
    kv_cache *cache; /* number -> kv_table */
    kv_cache *block_cache;
};

/* Few shards for few files: the bound on open files is per shard
 * (capacity / shards, rounded up), so small capacities use one shard. */
static int table_cache_shard_bits(int max_open_files)
{
    int bits = 0;
    while (bits < 4 && (max_open_files >> (bits + 1)) >= 64)
        bits++;
    return bits;
}

kv_table_cache *kv_table_cache_create(kv_env *env, const char *dbpath, int max_open_files,
                                      kv_cache *block_cache)
{
    assert(max_open_files > 0);
    kv_table_cache *tc = kv_calloc(1, sizeof(*tc));
    tc->env = env ? env : kv_env_posix();
    tc->dbpath = kv_strdup(dbpath);
    tc->cache = kv_cache_create((size_t)max_open_files, table_cache_shard_bits(max_open_files));
    tc->block_cache = block_cache;
    return tc;
}

void kv_table_cache_destroy(kv_table_cache *tc)
{
    if (tc == NULL)
        return;
    kv_cache_destroy(tc->cache);
    free(tc->dbpath);
    free(tc);
}

static void delete_table(kv_slice key, void *value)
{
    (void)key;
    kv_table_close(value);
}

int kv_table_cache_find(kv_table_cache *tc, uint64_t number, uint64_t file_size,
                        kv_cache_handle **handle)
{
    char key[8];
    kv_encode_fixed64(key, number);
    kv_slice cache_key = kv_slice_make(key, sizeof(key));
    *handle = kv_cache_lookup(tc->cache, cache_key);
    if (*handle)
        return 0;

    /* Open outside any lock. Two threads may open the same table at once;
     * the second insert replaces the first, which closes when released.
     * Failures are not cached, so a transient error is retried. */
    char *path = kv_table_file_name(tc->dbpath, number);
    kv_random *file;
    int rc = kv_env_new_random(tc->env, path, &file);
    if (rc == 0) {
        const char *slash = strrchr(path, '/');
        kv_table *table;
        rc = kv_table_open(file, file_size, slash ? slash + 1 : path, tc->block_cache, &table);
        if (rc == 0)
            *handle = kv_cache_insert(tc->cache, cache_key, table, 1, delete_table);
    }
    free(path);
    return rc;
}

kv_table *kv_table_cache_table(kv_cache_handle *handle)
{
    return kv_cache_value(handle);
}

void kv_table_cache_release(kv_table_cache *tc, kv_cache_handle *handle)
{
    kv_cache_release(tc->cache, handle);
}

int kv_table_cache_get(kv_table_cache *tc, uint64_t number, uint64_t file_size, kv_lookup *lookup,
                       bool fill_cache)
{
    kv_cache_handle *handle;
    int rc = kv_table_cache_find(tc, number, file_size, &handle);
    if (rc < 0)
        return rc;
    rc = kv_table_get(kv_table_cache_table(handle), lookup, fill_cache);
    kv_table_cache_release(tc, handle);
    return rc;
}

typedef struct table_iter_ref {
    kv_table_cache *tc;
    kv_cache_handle *handle;
} table_iter_ref;

static void release_iter_table(void *arg)
{
    table_iter_ref *ref = arg;
    kv_table_cache_release(ref->tc, ref->handle);
    free(ref);
}

kv_iter *kv_table_cache_iter(kv_table_cache *tc, uint64_t number, uint64_t file_size,
                             bool fill_cache)
{
    kv_cache_handle *handle;
    int rc = kv_table_cache_find(tc, number, file_size, &handle);
    if (rc < 0)
        return kv_empty_iter_create(rc);
    table_iter_ref *ref = kv_malloc(sizeof(*ref));
    ref->tc = tc;
    ref->handle = handle;
    return kv_table_iter_create(kv_table_cache_table(handle), fill_cache, release_iter_table, ref);
}

void kv_table_cache_evict(kv_table_cache *tc, uint64_t number)
{
    char key[8];
    kv_encode_fixed64(key, number);
    kv_cache_erase(tc->cache, kv_slice_make(key, sizeof(key)));
}
