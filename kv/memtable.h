/*
 * memtable.h — the in-memory write buffer of one column family
 * (LevelDB/RocksDB MemTable): a skiplist of entries in an arena, plus a
 * second skiplist holding range tombstones.
 *
 * Entry encoding in the arena:
 *   varint32 internal_key_size || internal key || varint32 value_size || value
 *
 * Concurrency: kv_memtable_add is called by one writer at a time (the
 * write-group leader, or recovery). Gets and iterators run concurrently
 * with the writer without locks. Reference counted: the active memtable,
 * the immutable list, SuperVersions and iterators hold references.
 */
#ifndef KV_MEMTABLE_H
#define KV_MEMTABLE_H

#include "blob.h"
#include "dbformat.h"
#include "iterator.h"
#include "range_del.h"

typedef struct kv_memtable kv_memtable;

/* A new empty memtable with one reference. `id` orders memtables of a
 * family (creation order). */
kv_memtable *kv_memtable_create(uint64_t id);
void kv_memtable_ref(kv_memtable *mem);
void kv_memtable_unref(kv_memtable *mem); /* frees at zero */

uint64_t kv_memtable_id(const kv_memtable *mem);

/* Adds an entry. For KV_TYPE_RANGE_DELETION, key is begin and value is end.
 * Requires: (key, seq) not already present; serialized with other adds. */
void kv_memtable_add(kv_memtable *mem, kv_seq seq, int type, kv_slice key, kv_slice value);
/* Holds a reference to blob file `file` until the memtable is freed (the
 * writer calls it for each blob file it adds indexes into). */
void kv_memtable_pin_blob(kv_memtable *mem, kv_blob_file *file);
/* The smallest blob file number pinned (UINT64_MAX: none); any thread. */
uint64_t kv_memtable_min_blob(const kv_memtable *mem);

/* Point lookup of lookup->user_key at lookup->snapshot (see kv_lookup);
 * ignores range tombstones. */
void kv_memtable_get(kv_memtable *mem, kv_lookup *lookup);

/* The largest sequence <= snapshot of a range tombstone in this memtable
 * covering user_key, or 0. */
kv_seq kv_memtable_max_covering_tombstone(kv_memtable *mem, kv_slice user_key, kv_seq snapshot);

/* The memtable's range tombstones as a fragmented list (a new reference;
 * NULL when it has none). Cached: rebuilt only after new tombstones. */
kv_frag_tombstones *kv_memtable_range_tombstones(kv_memtable *mem);

/* Iterator over point entries (internal keys; range tombstones excluded).
 * Holds a reference to the memtable until destroyed. */
kv_iter *kv_memtable_iter_create(kv_memtable *mem);

size_t kv_memtable_memory_usage(const kv_memtable *mem); /* bytes, any thread */
uint64_t kv_memtable_num_entries(const kv_memtable *mem);
uint64_t kv_memtable_num_deletes(const kv_memtable *mem); /* point tombstones */
uint64_t kv_memtable_num_range_deletes(const kv_memtable *mem);
uint64_t kv_memtable_data_size(const kv_memtable *mem); /* key + value bytes */
kv_seq kv_memtable_first_seq(const kv_memtable *mem);   /* 0 when empty */
kv_seq kv_memtable_last_seq(const kv_memtable *mem);

/* Bookkeeping used by the flush path (set by the db under its mutex). */
void kv_memtable_set_next_log_number(kv_memtable *mem, uint64_t log_number);
uint64_t kv_memtable_next_log_number(const kv_memtable *mem);

#endif
