/*
 * range_del.c — fragmentation of range tombstones (RocksDB's
 * FragmentedRangeTombstoneList) and the tombstone set used to gather them.
 *
 * Building is a sweep line: every tombstone contributes a begin and an end
 * event; events are sorted by key, and walking them keeps the multiset of
 * sequences of the tombstones currently open. Between two consecutive
 * distinct boundary keys that multiset is exactly the set covering the
 * elementary interval. Cost: O(n log n) for the sort plus the size of the
 * output (the sequences written), never a pairwise comparison of
 * tombstones.
 */
#include "range_del.h"

#include <assert.h>
#include <stdlib.h>

struct kv_frag_tombstones {
    atomic_int refs;
    size_t num_input;
    size_t num_fragments;
    kv_tombstone_fragment *fragments;
    char *keys;   /* distinct boundary keys, back to back */
    kv_seq *seqs; /* the fragments' sequence lists, back to back */
};

/* ---- building ---- */

typedef struct sweep_event {
    kv_slice key;
    kv_seq seq;
    bool is_begin;
} sweep_event;

static int compare_events(const void *a, const void *b)
{
    const sweep_event *x = a, *y = b;
    return kv_slice_compare(x->key, y->key);
}

/* The sequences of the open tombstones: distinct values, descending, each
 * with the number of open tombstones carrying it. */
typedef struct open_seqs {
    kv_seq *seqs;
    size_t *counts;
    size_t size, cap;
} open_seqs;

/* Index of seq in the descending array, or where it would be inserted. */
static size_t open_seqs_find(const open_seqs *open, kv_seq seq)
{
    size_t lo = 0, hi = open->size;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (open->seqs[mid] > seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void open_seqs_add(open_seqs *open, kv_seq seq)
{
    size_t i = open_seqs_find(open, seq);
    if (i < open->size && open->seqs[i] == seq) {
        open->counts[i]++;
        return;
    }
    if (open->size == open->cap) {
        open->cap = open->cap ? open->cap * 2 : 16;
        open->seqs = kv_realloc(open->seqs, open->cap * sizeof(*open->seqs));
        open->counts = kv_realloc(open->counts, open->cap * sizeof(*open->counts));
    }
    memmove(open->seqs + i + 1, open->seqs + i, (open->size - i) * sizeof(*open->seqs));
    memmove(open->counts + i + 1, open->counts + i, (open->size - i) * sizeof(*open->counts));
    open->seqs[i] = seq;
    open->counts[i] = 1;
    open->size++;
}

static void open_seqs_remove(open_seqs *open, kv_seq seq)
{
    size_t i = open_seqs_find(open, seq);
    assert(i < open->size && open->seqs[i] == seq);
    if (--open->counts[i] > 0)
        return;
    memmove(open->seqs + i, open->seqs + i + 1, (open->size - i - 1) * sizeof(*open->seqs));
    memmove(open->counts + i, open->counts + i + 1, (open->size - i - 1) * sizeof(*open->counts));
    open->size--;
}

/* A fragment while building: boundaries by index into the distinct keys,
 * sequences by offset into the sequence array (both arrays still grow). */
typedef struct pending_fragment {
    size_t begin_index, end_index;
    size_t seq_offset, num_seqs;
} pending_fragment;

typedef struct fragment_builder {
    kv_buf keys;
    size_t *key_offsets; /* num_keys + 1 entries once finished */
    size_t num_keys, key_offsets_cap;
    kv_seq *seqs;
    size_t num_seqs, seqs_cap;
    pending_fragment *fragments;
    size_t num_fragments, fragments_cap;
} fragment_builder;

static void builder_add_key(fragment_builder *b, kv_slice key)
{
    if (b->num_keys + 2 > b->key_offsets_cap) {
        b->key_offsets_cap = b->key_offsets_cap ? b->key_offsets_cap * 2 : 16;
        b->key_offsets = kv_realloc(b->key_offsets, b->key_offsets_cap * sizeof(size_t));
    }
    b->key_offsets[b->num_keys++] = b->keys.size;
    kv_buf_append(&b->keys, key.data, key.size);
    b->key_offsets[b->num_keys] = b->keys.size;
}

static bool same_seqs(const fragment_builder *b, const pending_fragment *f, const open_seqs *open)
{
    return f->num_seqs == open->size &&
           memcmp(b->seqs + f->seq_offset, open->seqs, open->size * sizeof(kv_seq)) == 0;
}

/* Emits [key begin_index, key begin_index + 1) covered by `open`, extending
 * the previous fragment instead when it ends right here with the same
 * sequences. */
static void builder_emit(fragment_builder *b, size_t begin_index, const open_seqs *open)
{
    assert(open->size > 0);
    if (b->num_fragments > 0) {
        pending_fragment *last = &b->fragments[b->num_fragments - 1];
        if (last->end_index == begin_index && same_seqs(b, last, open)) {
            last->end_index = begin_index + 1;
            return;
        }
    }
    if (b->num_fragments == b->fragments_cap) {
        b->fragments_cap = b->fragments_cap ? b->fragments_cap * 2 : 16;
        b->fragments = kv_realloc(b->fragments, b->fragments_cap * sizeof(*b->fragments));
    }
    while (b->num_seqs + open->size > b->seqs_cap) {
        b->seqs_cap = b->seqs_cap ? b->seqs_cap * 2 : 64;
        b->seqs = kv_realloc(b->seqs, b->seqs_cap * sizeof(kv_seq));
    }
    pending_fragment *f = &b->fragments[b->num_fragments++];
    f->begin_index = begin_index;
    f->end_index = begin_index + 1;
    f->seq_offset = b->num_seqs;
    f->num_seqs = open->size;
    memcpy(b->seqs + b->num_seqs, open->seqs, open->size * sizeof(kv_seq));
    b->num_seqs += open->size;
}

/* Turns indexes and offsets into the final pointers; takes the builder's
 * arrays. */
static kv_frag_tombstones *builder_finish(fragment_builder *b, size_t num_input)
{
    kv_frag_tombstones *list = kv_calloc(1, sizeof(*list));
    atomic_init(&list->refs, 1);
    list->num_input = num_input;
    list->num_fragments = b->num_fragments;
    list->keys = b->keys.data;
    list->seqs = b->seqs;
    list->fragments = kv_calloc(b->num_fragments ? b->num_fragments : 1, sizeof(*list->fragments));
    for (size_t i = 0; i < b->num_fragments; i++) {
        const pending_fragment *p = &b->fragments[i];
        kv_tombstone_fragment *f = &list->fragments[i];
        size_t begin = b->key_offsets[p->begin_index];
        size_t end = b->key_offsets[p->end_index];
        f->begin = kv_slice_make(list->keys + begin, b->key_offsets[p->begin_index + 1] - begin);
        f->end = kv_slice_make(list->keys + end, b->key_offsets[p->end_index + 1] - end);
        f->seqs = list->seqs + p->seq_offset;
        f->num_seqs = p->num_seqs;
    }
    free(b->key_offsets);
    free(b->fragments);
    return list;
}

kv_frag_tombstones *kv_frag_tombstones_build(const kv_range_tombstone *tombstones, size_t n,
                                             kv_seq upper_seq)
{
    sweep_event *events = kv_malloc((2 * n + 1) * sizeof(*events));
    size_t num_events = 0;
    for (size_t i = 0; i < n; i++) {
        const kv_range_tombstone *t = &tombstones[i];
        if (t->seq > upper_seq || kv_slice_compare(t->begin, t->end) >= 0)
            continue;
        events[num_events++] = (sweep_event){t->begin, t->seq, true};
        events[num_events++] = (sweep_event){t->end, t->seq, false};
    }
    qsort(events, num_events, sizeof(*events), compare_events);

    fragment_builder b = {0};
    open_seqs open = {0};
    size_t i = 0;
    while (i < num_events) {
        /* Apply every event at this boundary, then the open set covers
         * [this boundary, next boundary). */
        kv_slice key = events[i].key;
        builder_add_key(&b, key);
        for (; i < num_events && kv_slice_equal(events[i].key, key); i++) {
            if (events[i].is_begin)
                open_seqs_add(&open, events[i].seq);
            else
                open_seqs_remove(&open, events[i].seq);
        }
        if (open.size > 0) {
            assert(i < num_events); /* some end event is still ahead */
            builder_emit(&b, b.num_keys - 1, &open);
        }
    }
    assert(open.size == 0);
    free(open.seqs);
    free(open.counts);
    free(events);
    return builder_finish(&b, n);
}

void kv_frag_tombstones_ref(kv_frag_tombstones *list)
{
    atomic_fetch_add_explicit(&list->refs, 1, memory_order_relaxed);
}

void kv_frag_tombstones_unref(kv_frag_tombstones *list)
{
    if (list == NULL)
        return;
    int before = atomic_fetch_sub_explicit(&list->refs, 1, memory_order_acq_rel);
    assert(before > 0);
    if (before != 1)
        return;
    free(list->fragments);
    free(list->keys);
    free(list->seqs);
    free(list);
}

size_t kv_frag_tombstones_count(const kv_frag_tombstones *list)
{
    return list->num_fragments;
}

const kv_tombstone_fragment *kv_frag_tombstones_get(const kv_frag_tombstones *list, size_t i)
{
    assert(i < list->num_fragments);
    return &list->fragments[i];
}

size_t kv_frag_tombstones_num_input(const kv_frag_tombstones *list)
{
    return list->num_input;
}

kv_seq kv_frag_tombstones_max_covering(const kv_frag_tombstones *list, kv_slice user_key,
                                       kv_seq snapshot)
{
    /* The first fragment whose begin is > user_key; the one before it is
     * the only candidate. */
    size_t lo = 0, hi = list->num_fragments;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (kv_slice_compare(list->fragments[mid].begin, user_key) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return 0;
    const kv_tombstone_fragment *f = &list->fragments[lo - 1];
    if (kv_slice_compare(user_key, f->end) >= 0)
        return 0;
    /* The first sequence <= snapshot in the descending list. */
    lo = 0;
    hi = f->num_seqs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (f->seqs[mid] > snapshot)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < f->num_seqs ? f->seqs[lo] : 0;
}

/* ---- tombstone sets ---- */

static kv_slice copy_key(kv_slice key)
{
    /* An empty key may come as {NULL, 0}; give memdup a real pointer. */
    return kv_slice_make(kv_memdup(key.size ? key.data : "", key.size), key.size);
}

void kv_tombstone_set_add(kv_tombstone_set *set, kv_slice begin, kv_slice end, kv_seq seq)
{
    if (set->count == set->cap) {
        set->cap = set->cap ? set->cap * 2 : 16;
        set->items = kv_realloc(set->items, set->cap * sizeof(*set->items));
    }
    kv_range_tombstone *t = &set->items[set->count++];
    t->begin = copy_key(begin);
    t->end = copy_key(end);
    t->seq = seq;
}

void kv_tombstone_set_add_list(kv_tombstone_set *set, const kv_frag_tombstones *list)
{
    if (list == NULL)
        return;
    for (size_t i = 0; i < list->num_fragments; i++) {
        const kv_tombstone_fragment *f = &list->fragments[i];
        for (size_t j = 0; j < f->num_seqs; j++)
            kv_tombstone_set_add(set, f->begin, f->end, f->seqs[j]);
    }
}

void kv_tombstone_set_free(kv_tombstone_set *set)
{
    for (size_t i = 0; i < set->count; i++) {
        free((char *)set->items[i].begin.data);
        free((char *)set->items[i].end.data);
    }
    free(set->items);
    set->items = NULL;
    set->count = set->cap = 0;
}
