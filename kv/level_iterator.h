/*
 * level_iterator.h — one iterator over a sorted, non-overlapping run of SST
 * files (a level >= 1): opens each file's table only when the cursor
 * reaches it (LevelDB's two-level iterator over a level's file list), so a
 * level of thousands of files costs one open table at a time.
 */
#ifndef KV_LEVEL_ITERATOR_H
#define KV_LEVEL_ITERATOR_H

#include "iterator.h"
#include "table_cache.h"
#include "version_edit.h"

/* `files` (sorted by smallest key, disjoint) must outlive the iterator: the
 * caller holds a reference to the version (or compaction) owning them. */
kv_iter *kv_level_iter_create(kv_table_cache *tc, kv_file_meta *const *files, size_t count,
                              bool fill_cache);

/* Index of the first file whose largest internal key is >= ikey (count if
 * none): the only file of a sorted level that may hold ikey. */
size_t kv_find_file(kv_file_meta *const *files, size_t count, kv_slice ikey);

#endif
