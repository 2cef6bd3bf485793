/*
 * range_del.h — range tombstones, fragmented for fast lookup (RocksDB's
 * FragmentedRangeTombstoneList).
 *
 * A range tombstone [begin, end) @ seq deletes every entry of a user key k,
 * begin <= k < end, whose sequence is below seq. A set of possibly
 * overlapping tombstones is cut into non-overlapping fragments, sorted by
 * begin; each fragment carries the descending list of sequences of the
 * tombstones that cover it. Queries are a binary search. A list is
 * immutable once built and reference-counted, so readers share it.
 */
#ifndef KV_RANGE_DEL_H
#define KV_RANGE_DEL_H

#include "dbformat.h"
#include <stdatomic.h>

typedef struct kv_range_tombstone {
    kv_slice begin, end; /* user keys, end exclusive */
    kv_seq seq;
} kv_range_tombstone;

typedef struct kv_tombstone_fragment {
    kv_slice begin, end; /* point into the list's own storage */
    const kv_seq *seqs;  /* descending */
    size_t num_seqs;
} kv_tombstone_fragment;

typedef struct kv_frag_tombstones kv_frag_tombstones;

/* Builds from n tombstones in any order (empty ranges ignored); keys are
 * copied. Drops sequences > upper_seq (pass KV_MAX_SEQUENCE for all).
 * Returned with one reference. */
kv_frag_tombstones *kv_frag_tombstones_build(const kv_range_tombstone *tombstones, size_t n,
                                             kv_seq upper_seq);
void kv_frag_tombstones_ref(kv_frag_tombstones *list);
void kv_frag_tombstones_unref(kv_frag_tombstones *list);

size_t kv_frag_tombstones_count(const kv_frag_tombstones *list); /* fragments */
const kv_tombstone_fragment *kv_frag_tombstones_get(const kv_frag_tombstones *list, size_t i);
/* Number of original (unfragmented) tombstones the list was built from. */
size_t kv_frag_tombstones_num_input(const kv_frag_tombstones *list);

/* The largest sequence <= snapshot of a tombstone covering user_key, or 0. */
kv_seq kv_frag_tombstones_max_covering(const kv_frag_tombstones *list, kv_slice user_key,
                                       kv_seq snapshot);

/* A growable set of tombstones owning copies of its keys, used to collect
 * tombstones from several sources before building a fragmented list. */
typedef struct kv_tombstone_set {
    kv_range_tombstone *items; /* begin/end point to malloc'd copies */
    size_t count, cap;
} kv_tombstone_set; /* zero-initialized is empty */

void kv_tombstone_set_add(kv_tombstone_set *set, kv_slice begin, kv_slice end, kv_seq seq);
/* Adds each fragment of `list` once per sequence it carries (equivalent
 * tombstones: the same keys are deleted at the same sequences). */
void kv_tombstone_set_add_list(kv_tombstone_set *set, const kv_frag_tombstones *list);
void kv_tombstone_set_free(kv_tombstone_set *set);

#endif
