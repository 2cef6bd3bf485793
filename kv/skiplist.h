/*
 * skiplist.h — the memtable's ordered index (LevelDB's SkipList, in C).
 * Keys are pointers to entries allocated in an arena; the list never
 * deletes. Concurrency: inserts must be serialized by the caller (one writer
 * at a time); any number of readers may run concurrently with the writer and
 * with each other without locks (next pointers are published with release
 * stores and read with acquire loads).
 */
#ifndef KV_SKIPLIST_H
#define KV_SKIPLIST_H

#include "arena.h"
#include <stdbool.h>

/* Compares two entries (pointers previously inserted, or a lookup key
 * encoded the same way). */
typedef int (*kv_skiplist_compare_fn)(const char *a, const char *b);

typedef struct kv_skiplist kv_skiplist;

/* The list itself lives in the arena. */
kv_skiplist *kv_skiplist_create(kv_arena *arena, kv_skiplist_compare_fn compare);
/* Requires: nothing equal to key is in the list; external write lock. */
void kv_skiplist_insert(kv_skiplist *list, const char *key);
/* Insertion with the key stored right after its node, so that a scan
 * touches one place per entry: allocate_key returns room for key_size
 * bytes (8-byte aligned, valid as long as the arena); the caller fills it
 * and passes the same pointer to insert_allocated, before any other
 * allocate_key on this list. Same requirements as kv_skiplist_insert. */
char *kv_skiplist_allocate_key(kv_skiplist *list, size_t key_size);
void kv_skiplist_insert_allocated(kv_skiplist *list, const char *key);
bool kv_skiplist_contains(const kv_skiplist *list, const char *key);
size_t kv_skiplist_count(const kv_skiplist *list); /* acquire load */

typedef struct kv_skiplist_iter {
    const kv_skiplist *list;
    const void *node;
} kv_skiplist_iter;

void kv_skiplist_iter_init(kv_skiplist_iter *it, const kv_skiplist *list);
bool kv_skiplist_iter_valid(const kv_skiplist_iter *it);
const char *kv_skiplist_iter_key(const kv_skiplist_iter *it);
void kv_skiplist_iter_next(kv_skiplist_iter *it);
void kv_skiplist_iter_prev(kv_skiplist_iter *it);
void kv_skiplist_iter_seek(kv_skiplist_iter *it, const char *target); /* first >= target */
void kv_skiplist_iter_seek_to_first(kv_skiplist_iter *it);
void kv_skiplist_iter_seek_to_last(kv_skiplist_iter *it);

#endif
