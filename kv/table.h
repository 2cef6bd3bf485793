/*
 * table.h — reads one SST file (LevelDB's Table). Opening reads the footer,
 * index, filter, properties and range tombstones; data blocks are read on
 * demand through the shared block cache. Thread-safe once open.
 */
#ifndef KV_TABLE_H
#define KV_TABLE_H

#include "cache.h"
#include "dbformat.h"
#include "env.h"
#include "iterator.h"
#include "range_del.h"
#include "table_format.h"

typedef struct kv_table kv_table;

/* Takes ownership of `file` (closed at kv_table_close, also on error).
 * `name` is used in messages. block_cache may be NULL. */
int kv_table_open(kv_random *file, uint64_t file_size, const char *name, kv_cache *block_cache,
                  kv_table **out);
void kv_table_close(kv_table *table);

/* Point lookup in the table (bloom filter first): fills `lookup` with the
 * newest entry for the key with seq <= snapshot. Returns 0 or an error
 * (KV_CORRUPTION...). Range tombstones are not applied here. */
int kv_table_get(kv_table *table, kv_lookup *lookup, bool fill_cache);

/* Iterator over point entries. on_destroy(arg), when given, runs when the
 * iterator is destroyed (the table cache releases its handle there). */
kv_iter *kv_table_iter_create(kv_table *table, bool fill_cache, void (*on_destroy)(void *arg),
                              void *arg);

/* The table's range tombstones (borrowed; lives as long as the table), or
 * NULL when there are none. */
kv_frag_tombstones *kv_table_range_tombstones(kv_table *table);
const kv_table_properties *kv_table_get_properties(const kv_table *table);
/* Byte offset in the file where data for ikey would begin (for size
 * estimates). */
uint64_t kv_table_approximate_offset(kv_table *table, kv_slice ikey);
/* Bloom filter statistics. */
uint64_t kv_table_bloom_checked(const kv_table *table);
uint64_t kv_table_bloom_useful(const kv_table *table);

/* Verifies the checksum of every block; for fsck and kv_dump. */
int kv_table_verify(kv_table *table);

#endif
