/*
 * merging_iterator.c — LevelDB's MergingIterator: one ordered stream over
 * several ordered children (memtables, tables, levels).
 *
 * The children's current entries sit in a binary heap: a min-heap while
 * moving forward, a max-heap while moving backward; the top is the current
 * entry. Equal keys are ordered by child index, so the stream is a total
 * order over (key, child) and prev retraces next exactly.
 *
 * Invariant while moving forward with current entry (K, c): every other
 * child is at its first entry after (K, c) in (key, child) order. Moving
 * backward: every other child is at its last entry before (K, c). Changing
 * direction re-establishes the invariant by seeking the other children.
 */
/* dbformat.h first: iterator.h uses kv_compare_fn without including it. */
#include "dbformat.h"
#include "iterator.h"

#include <assert.h>
#include <stdlib.h>

enum merge_direction { MERGE_FORWARD, MERGE_REVERSE };

typedef struct merging_iter {
    kv_iter base;
    kv_compare_fn compare;
    kv_iter **children;
    size_t count;
    size_t *heap;   /* indexes of the valid children */
    kv_slice *keys; /* each valid child's current key, cached: a heap step
                       compares without calls through the children */
    size_t heap_size;
    enum merge_direction direction;
} merging_iter;

static merging_iter *as_merging_iter(kv_iter *it)
{
    return (merging_iter *)it;
}

/* ---- heap ---- */

/* True when child a's entry comes before child b's in the current
 * direction: smaller first going forward, larger first going backward. */
static bool heap_before(const merging_iter *mi, size_t a, size_t b)
{
    int result = mi->compare(mi->keys[a], mi->keys[b]);
    if (result == 0)
        result = a < b ? -1 : 1;
    return mi->direction == MERGE_FORWARD ? result < 0 : result > 0;
}

static void heap_sift_down(merging_iter *mi, size_t i)
{
    for (;;) {
        size_t best = i;
        size_t left = 2 * i + 1, right = 2 * i + 2;
        if (left < mi->heap_size && heap_before(mi, mi->heap[left], mi->heap[best]))
            best = left;
        if (right < mi->heap_size && heap_before(mi, mi->heap[right], mi->heap[best]))
            best = right;
        if (best == i)
            return;
        size_t tmp = mi->heap[i];
        mi->heap[i] = mi->heap[best];
        mi->heap[best] = tmp;
        i = best;
    }
}

/* Rebuilds the heap from the valid children, for the current direction. */
static void heap_rebuild(merging_iter *mi)
{
    mi->heap_size = 0;
    for (size_t i = 0; i < mi->count; i++) {
        if (kv_iter_valid(mi->children[i])) {
            mi->keys[i] = kv_iter_key(mi->children[i]);
            mi->heap[mi->heap_size++] = i;
        }
    }
    for (size_t i = mi->heap_size / 2; i-- > 0;)
        heap_sift_down(mi, i);
}

/* After the top child moved: put it back in order, or drop it when it ran
 * out. */
static void heap_fix_top(merging_iter *mi)
{
    assert(mi->heap_size > 0);
    size_t top = mi->heap[0];
    if (kv_iter_valid(mi->children[top]))
        mi->keys[top] = kv_iter_key(mi->children[top]);
    else
        mi->heap[0] = mi->heap[--mi->heap_size];
    heap_sift_down(mi, 0);
}

static size_t current_child(const merging_iter *mi)
{
    assert(mi->heap_size > 0);
    return mi->heap[0];
}

/* ---- positioning ---- */

static bool merging_iter_valid(kv_iter *it)
{
    return as_merging_iter(it)->heap_size > 0;
}

static void merging_iter_seek_to_first(kv_iter *it)
{
    merging_iter *mi = as_merging_iter(it);
    for (size_t i = 0; i < mi->count; i++)
        kv_iter_seek_to_first(mi->children[i]);
    mi->direction = MERGE_FORWARD;
    heap_rebuild(mi);
}

static void merging_iter_seek_to_last(kv_iter *it)
{
    merging_iter *mi = as_merging_iter(it);
    for (size_t i = 0; i < mi->count; i++)
        kv_iter_seek_to_last(mi->children[i]);
    mi->direction = MERGE_REVERSE;
    heap_rebuild(mi);
}

static void merging_iter_seek(kv_iter *it, kv_slice target)
{
    merging_iter *mi = as_merging_iter(it);
    for (size_t i = 0; i < mi->count; i++)
        kv_iter_seek(mi->children[i], target);
    mi->direction = MERGE_FORWARD;
    heap_rebuild(mi);
}

/* Moves child to its first entry with key > target (skip_equal) or
 * >= target. */
static void seek_after(merging_iter *mi, kv_iter *child, kv_slice target, bool skip_equal)
{
    kv_iter_seek(child, target);
    while (skip_equal && kv_iter_valid(child) && mi->compare(kv_iter_key(child), target) == 0)
        kv_iter_next(child);
}

static void merging_iter_next(kv_iter *it)
{
    merging_iter *mi = as_merging_iter(it);
    size_t current = current_child(mi);
    if (mi->direction == MERGE_REVERSE) {
        /* Others are before (K, current); move each to its first entry
         * after it: key > K for lower children, key >= K for higher. */
        kv_slice key = kv_iter_key(mi->children[current]);
        for (size_t i = 0; i < mi->count; i++)
            if (i != current)
                seek_after(mi, mi->children[i], key, i < current);
        mi->direction = MERGE_FORWARD;
        kv_iter_next(mi->children[current]);
        heap_rebuild(mi);
        return;
    }
    kv_iter_next(mi->children[current]);
    heap_fix_top(mi);
}

static void merging_iter_prev(kv_iter *it)
{
    merging_iter *mi = as_merging_iter(it);
    size_t current = current_child(mi);
    if (mi->direction == MERGE_FORWARD) {
        /* Others are after (K, current); move each to its last entry
         * before it: key <= K for lower children, key < K for higher. */
        kv_slice key = kv_iter_key(mi->children[current]);
        for (size_t i = 0; i < mi->count; i++) {
            if (i == current)
                continue;
            kv_iter *child = mi->children[i];
            seek_after(mi, child, key, i < current);
            if (kv_iter_valid(child))
                kv_iter_prev(child);
            else if (kv_iter_status(child) == 0)
                kv_iter_seek_to_last(child);
        }
        mi->direction = MERGE_REVERSE;
        kv_iter_prev(mi->children[current]);
        heap_rebuild(mi);
        return;
    }
    kv_iter_prev(mi->children[current]);
    heap_fix_top(mi);
}

static kv_slice merging_iter_key(kv_iter *it)
{
    merging_iter *mi = as_merging_iter(it);
    return mi->keys[current_child(mi)];
}

static kv_slice merging_iter_value(kv_iter *it)
{
    merging_iter *mi = as_merging_iter(it);
    return kv_iter_value(mi->children[current_child(mi)]);
}

/* The first child error, in child order. */
static int merging_iter_status(kv_iter *it)
{
    merging_iter *mi = as_merging_iter(it);
    for (size_t i = 0; i < mi->count; i++) {
        int status = kv_iter_status(mi->children[i]);
        if (status != 0)
            return status;
    }
    return 0;
}

static void merging_iter_destroy(kv_iter *it)
{
    merging_iter *mi = as_merging_iter(it);
    for (size_t i = 0; i < mi->count; i++)
        kv_iter_destroy(mi->children[i]);
    free(mi->children);
    free(mi->heap);
    free(mi->keys);
    free(mi);
}

static const struct kv_iter_ops merging_iter_ops = {
    .valid = merging_iter_valid,
    .seek_to_first = merging_iter_seek_to_first,
    .seek_to_last = merging_iter_seek_to_last,
    .seek = merging_iter_seek,
    .next = merging_iter_next,
    .prev = merging_iter_prev,
    .key = merging_iter_key,
    .value = merging_iter_value,
    .status = merging_iter_status,
    .destroy = merging_iter_destroy,
};

kv_iter *kv_merging_iter_create(kv_compare_fn compare, kv_iter **children, size_t count)
{
    merging_iter *mi = kv_calloc(1, sizeof(*mi));
    mi->base.ops = &merging_iter_ops;
    mi->compare = compare;
    mi->count = count;
    size_t slots = count > 0 ? count : 1;
    mi->children = kv_malloc(slots * sizeof(*mi->children));
    mi->heap = kv_malloc(slots * sizeof(*mi->heap));
    mi->keys = kv_malloc(slots * sizeof(*mi->keys));
    for (size_t i = 0; i < count; i++)
        mi->children[i] = children[i];
    mi->direction = MERGE_FORWARD;
    return &mi->base;
}
