/*
 * dbformat.h — internal keys and the lookup protocol shared by memtables
 * and tables.
 *
 * An internal key is   user_key || fixed64_le(sequence << 8 | type).
 * Internal keys sort by user key ascending (bytewise), then by sequence
 * descending, then type descending, so the newest version of a key comes
 * first. Sequence numbers are 56 bits.
 */
#ifndef KV_DBFORMAT_H
#define KV_DBFORMAT_H

#include "coding.h"
#include "slice.h"

#include <assert.h>

typedef uint64_t kv_seq;
#define KV_MAX_SEQUENCE ((((kv_seq)1) << 56) - 1)

/* Value types, stored in internal keys and (same numbers) in WriteBatch and
 * WAL records. Numbers follow RocksDB. */
enum kv_value_type {
    KV_TYPE_DELETION = 0x0,
    KV_TYPE_VALUE = 0x1,
    /* The value is a blob index (blob.h): where the real value is. (RocksDB
     * numbers it 0x11, above its seek type; here it stays below 0x0F.) */
    KV_TYPE_BLOB_INDEX = 0x2,
    KV_TYPE_RANGE_DELETION = 0xF, /* key = begin, value = end (exclusive) */
};
/* The type used when seeking: the largest, so the seek key sorts before
 * every entry with the same user key and sequence. */
#define KV_TYPE_FOR_SEEK KV_TYPE_RANGE_DELETION

static inline uint64_t kv_pack_seq_type(kv_seq seq, int type)
{
    return (seq << 8) | (uint64_t)type;
}

/* Appends user_key || trailer to dst. */
void kv_ikey_append(kv_buf *dst, kv_slice user_key, kv_seq seq, int type);

/* Splits an internal key; false if shorter than 8 bytes or the type is
 * unknown. */
bool kv_ikey_parse(kv_slice ikey, kv_slice *user_key, kv_seq *seq, int *type);

static inline kv_slice kv_ikey_user_key(kv_slice ikey)
{
    return kv_slice_make(ikey.data, ikey.size - 8);
}

/* "VALUE", "DELETION", "RANGE_DELETION", or NULL for an unknown type. */
const char *kv_value_type_name(int type);

/* The snapshot stripe of a sequence: the index of the first snapshot >= seq
 * in the ascending array `snapshots`, or n for "newer than every snapshot".
 * Two versions of a key in the same stripe are indistinguishable to every
 * reader, so flushes and compactions keep only the newer. */
size_t kv_snapshot_stripe(const kv_seq *snapshots, size_t n, kv_seq seq);

/* Three-way comparison of internal keys (the order above). */
static inline int kv_ikey_compare(kv_slice a, kv_slice b)
{
    assert(a.size >= 8 && b.size >= 8);
    int result = kv_slice_compare(kv_ikey_user_key(a), kv_ikey_user_key(b));
    if (result != 0)
        return result;
    uint64_t a_trailer = kv_decode_fixed64(a.data + a.size - 8);
    uint64_t b_trailer = kv_decode_fixed64(b.data + b.size - 8);
    /* Larger trailer (newer sequence) sorts first. */
    if (a_trailer > b_trailer)
        return -1;
    if (a_trailer < b_trailer)
        return 1;
    return 0;
}

typedef int (*kv_compare_fn)(kv_slice a, kv_slice b);

/* Result of looking a user key up in one source (memtable, immutable
 * memtable or table) at a snapshot: the newest entry with seq <= snapshot. */
enum kv_lookup_state {
    KV_LOOKUP_NONE = 0, /* the source has no entry for the key */
    KV_LOOKUP_VALUE,    /* value copied into lookup->value (is_blob: a blob index) */
    KV_LOOKUP_DELETED,  /* a point tombstone */
};

typedef struct kv_lookup {
    kv_slice user_key; /* in */
    kv_seq snapshot;   /* in: entries with seq > snapshot are invisible */
    int state;         /* out: enum kv_lookup_state */
    kv_seq seq;        /* out: sequence of the entry found */
    kv_buf *value;     /* out: filled when state == KV_LOOKUP_VALUE */
    bool is_blob;      /* out: the value is a blob index */
} kv_lookup;

/* A value stored in the tree: the value itself, or a blob index. */
static inline bool kv_type_is_value(int type)
{
    return type == KV_TYPE_VALUE || type == KV_TYPE_BLOB_INDEX;
}

/* Range tombstones are looked up separately from point entries: a point
 * entry with sequence s is deleted when some tombstone covering its key has
 * sequence t with s < t <= snapshot. Db get walks sources newest first,
 * keeping the maximum covering tombstone sequence seen so far. */

#endif
