/*
 * table_cache.h — open SST readers by file number, in an LRU cache of at
 * most max_open_files entries (LevelDB's TableCache). This is what bounds
 * the engine's open descriptors: a table is opened on demand and closed when
 * evicted and no longer in use.
 */
#ifndef KV_TABLE_CACHE_H
#define KV_TABLE_CACHE_H

#include "cache.h"
#include "env.h"
#include "iterator.h"
#include "table.h"

typedef struct kv_table_cache kv_table_cache;

kv_table_cache *kv_table_cache_create(kv_env *env, const char *dbpath, int max_open_files,
                                      kv_cache *block_cache);
void kv_table_cache_destroy(kv_table_cache *tc);

/* Finds or opens table `number`; *handle must be released. */
int kv_table_cache_find(kv_table_cache *tc, uint64_t number, uint64_t file_size,
                        kv_cache_handle **handle);
kv_table *kv_table_cache_table(kv_cache_handle *handle);
void kv_table_cache_release(kv_table_cache *tc, kv_cache_handle *handle);

/* Point lookup in table `number` (opened if needed). */
int kv_table_cache_get(kv_table_cache *tc, uint64_t number, uint64_t file_size, kv_lookup *lookup,
                       bool fill_cache);
/* An iterator over table `number` that keeps the table open until it is
 * destroyed; on open failure, an empty iterator carrying the error. */
kv_iter *kv_table_cache_iter(kv_table_cache *tc, uint64_t number, uint64_t file_size,
                             bool fill_cache);
/* Drops a deleted file's reader. */
void kv_table_cache_evict(kv_table_cache *tc, uint64_t number);

#endif
