/*
 * iterator.c — the empty iterator: no entries, a fixed status. Stands in
 * for a source that has nothing, or for one that failed to open.
 */
/* dbformat.h first: iterator.h uses kv_compare_fn without including it. */
#include "dbformat.h"
#include "iterator.h"

#include <assert.h>
#include <stdlib.h>

typedef struct empty_iter {
    kv_iter base;
    int status;
} empty_iter;

static bool empty_iter_valid(kv_iter *it)
{
    return false;
}

static void empty_iter_seek_to_first(kv_iter *it) {}

static void empty_iter_seek_to_last(kv_iter *it) {}

static void empty_iter_seek(kv_iter *it, kv_slice target) {}

static void empty_iter_step(kv_iter *it)
{
    assert(!"next/prev on an iterator that is never valid");
}

static kv_slice empty_iter_entry(kv_iter *it)
{
    assert(!"key/value on an iterator that is never valid");
    return kv_slice_make("", 0);
}

static int empty_iter_status(kv_iter *it)
{
    return ((empty_iter *)it)->status;
}

static void empty_iter_destroy(kv_iter *it)
{
    free(it);
}

static const struct kv_iter_ops empty_iter_ops = {
    .valid = empty_iter_valid,
    .seek_to_first = empty_iter_seek_to_first,
    .seek_to_last = empty_iter_seek_to_last,
    .seek = empty_iter_seek,
    .next = empty_iter_step,
    .prev = empty_iter_step,
    .key = empty_iter_entry,
    .value = empty_iter_entry,
    .status = empty_iter_status,
    .destroy = empty_iter_destroy,
};

kv_iter *kv_empty_iter_create(int status)
{
    assert(status <= 0);
    empty_iter *it = kv_malloc(sizeof(*it));
    it->base.ops = &empty_iter_ops;
    it->status = status;
    return &it->base;
}
