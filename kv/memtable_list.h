/*
 * memtable_list.h — the immutable memtables of one column family, oldest
 * first (RocksDB's MemTableList). A memtable joins when it is switched out;
 * a FlushJob picks (PickMemTable) the ones not being flushed, and after the
 * flush is installed they are removed, in memtable order. Requires the db
 * mutex; readers see the list through a SuperVersion's copy.
 */
#ifndef KV_MEMTABLE_LIST_H
#define KV_MEMTABLE_LIST_H

#include "memtable.h"

typedef struct kv_memtable_list {
    kv_memtable **mems; /* oldest first; the list holds a reference to each */
    bool *flush_in_progress;
    size_t count, cap;
} kv_memtable_list;

void kv_memtable_list_init(kv_memtable_list *list);
void kv_memtable_list_free(kv_memtable_list *list); /* unrefs every memtable */
/* Takes over the caller's reference. */
void kv_memtable_list_add(kv_memtable_list *list, kv_memtable *mem);
/* Number not yet picked by a FlushJob. */
size_t kv_memtable_list_num_not_flushing(const kv_memtable_list *list);
/* Marks the oldest memtables not in progress as in progress and stores
 * references in *picked (malloc'd array, *count entries). */
void kv_memtable_list_pick(kv_memtable_list *list, kv_memtable ***picked, size_t *count);
/* Picked memtables go back to waiting (the flush failed). */
void kv_memtable_list_rollback(kv_memtable_list *list, kv_memtable **picked, size_t count);
/* Removes the picked memtables after their flush is installed. */
void kv_memtable_list_remove(kv_memtable_list *list, kv_memtable **picked, size_t count);
size_t kv_memtable_list_memory_usage(const kv_memtable_list *list);

#endif
