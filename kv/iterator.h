/*
 * iterator.h — the internal iterator interface: a cursor over (internal
 * key, value) pairs in kv_ikey_compare order (or bytewise order for blocks
 * holding plain keys). Memtables, blocks, tables, levels and the merging
 * iterator all implement it. key() and value() stay valid until the
 * iterator moves. An error makes the iterator invalid with status() != 0.
 */
#ifndef KV_ITERATOR_H
#define KV_ITERATOR_H

#include "slice.h"

typedef struct kv_iter kv_iter;

struct kv_iter_ops {
    bool (*valid)(kv_iter *it);
    void (*seek_to_first)(kv_iter *it);
    void (*seek_to_last)(kv_iter *it);
    void (*seek)(kv_iter *it, kv_slice target); /* first entry >= target */
    void (*next)(kv_iter *it);                  /* requires valid */
    void (*prev)(kv_iter *it);                  /* requires valid */
    kv_slice (*key)(kv_iter *it);
    kv_slice (*value)(kv_iter *it);
    int (*status)(kv_iter *it);
    void (*destroy)(kv_iter *it);
};

struct kv_iter {
    const struct kv_iter_ops *ops;
};

static inline bool kv_iter_valid(kv_iter *it)
{
    return it->ops->valid(it);
}
static inline void kv_iter_seek_to_first(kv_iter *it)
{
    it->ops->seek_to_first(it);
}
static inline void kv_iter_seek_to_last(kv_iter *it)
{
    it->ops->seek_to_last(it);
}
static inline void kv_iter_seek(kv_iter *it, kv_slice target)
{
    it->ops->seek(it, target);
}
static inline void kv_iter_next(kv_iter *it)
{
    it->ops->next(it);
}
static inline void kv_iter_prev(kv_iter *it)
{
    it->ops->prev(it);
}
static inline kv_slice kv_iter_key(kv_iter *it)
{
    return it->ops->key(it);
}
static inline kv_slice kv_iter_value(kv_iter *it)
{
    return it->ops->value(it);
}
static inline int kv_iter_status(kv_iter *it)
{
    return it->ops->status(it);
}
static inline void kv_iter_destroy(kv_iter *it)
{
    if (it)
        it->ops->destroy(it);
}

/* An iterator with no entries and the given status. */
kv_iter *kv_empty_iter_create(int status);

/* Merges children (ownership taken; they may be empty) into one ordered
 * stream using `compare`; equal keys come out in child order. Supports
 * both directions (LevelDB's MergingIterator). */
kv_iter *kv_merging_iter_create(kv_compare_fn compare, kv_iter **children, size_t count);

#endif
