/*
 * cache.h — a sharded LRU cache with reference-counted handles (LevelDB's
 * ShardedLRUCache). Used as the block cache (uncompressed blocks) and the
 * table cache (open SST readers, which bounds open descriptors).
 *
 * An entry stays alive while it is in the cache or a handle to it is held;
 * its deleter runs when both end. Capacity is in "charge" units (bytes for
 * blocks, 1 per table); entries in use are not evicted, so usage may exceed
 * capacity while many handles are held. Thread-safe (a mutex per shard).
 */
#ifndef KV_CACHE_H
#define KV_CACHE_H

#include "slice.h"

typedef struct kv_cache kv_cache;
typedef struct kv_cache_handle kv_cache_handle;
typedef void (*kv_cache_deleter_fn)(kv_slice key, void *value);

/* 2^num_shard_bits shards (-1: a default of 16 shards). */
kv_cache *kv_cache_create(size_t capacity, int num_shard_bits);
void kv_cache_destroy(kv_cache *cache); /* requires: no handles held */

/* Inserts (replacing an entry with the same key) and returns a handle the
 * caller must release. */
kv_cache_handle *kv_cache_insert(kv_cache *cache, kv_slice key, void *value, size_t charge,
                                 kv_cache_deleter_fn deleter);
/* A handle to the entry, or NULL. Counts a hit or a miss. */
kv_cache_handle *kv_cache_lookup(kv_cache *cache, kv_slice key);
void kv_cache_release(kv_cache *cache, kv_cache_handle *handle);
void *kv_cache_value(kv_cache_handle *handle);
void kv_cache_erase(kv_cache *cache, kv_slice key);
/* Evicts every entry not in use. */
void kv_cache_prune(kv_cache *cache);
/* A new id, unique for this cache: prefixes keys of distinct clients. */
uint64_t kv_cache_new_id(kv_cache *cache);
size_t kv_cache_total_charge(kv_cache *cache);
uint64_t kv_cache_hits(kv_cache *cache);
uint64_t kv_cache_misses(kv_cache *cache);

#endif
