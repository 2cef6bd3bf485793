/*
 * write_batch.h — internals of kv_write_batch (public API in kv.h).
 *
 * rep := fixed64 sequence || fixed32 count || record*
 * record :=
 *    0x01 (VALUE)                 varstring key  varstring value
 *    0x00 (DELETION)              varstring key
 *    0x0F (RANGE_DELETION)        varstring begin varstring end
 *    0x05 (CF_VALUE)          varint32 cf  varstring key  varstring value
 *    0x04 (CF_DELETION)       varint32 cf  varstring key
 *    0x0E (CF_RANGE_DELETION) varint32 cf  varstring begin varstring end
 *    0x11 (BLOB_INDEX)            varstring key  varstring blob index
 *    0x10 (CF_BLOB_INDEX)     varint32 cf  varstring key  varstring blob index
 * varstring := varint32 length || bytes
 * The records without a cf use family 0 (default). Record i gets sequence
 * sequence + i. The WAL stores rep verbatim (see FORMAT.md).
 */
#ifndef KV_WRITE_BATCH_H
#define KV_WRITE_BATCH_H

#include "coding.h"
#include "dbformat.h"
#include "kv.h"

#define KV_WRITE_BATCH_HEADER 12

enum kv_batch_tag {
    KV_TAG_DELETION = 0x00,
    KV_TAG_VALUE = 0x01,
    KV_TAG_CF_DELETION = 0x04,
    KV_TAG_CF_VALUE = 0x05,
    KV_TAG_CF_RANGE_DELETION = 0x0E,
    KV_TAG_RANGE_DELETION = 0x0F,
    KV_TAG_CF_BLOB_INDEX = 0x10,
    KV_TAG_BLOB_INDEX = 0x11,
};

struct kv_write_batch {
    kv_buf rep;        /* always at least KV_WRITE_BATCH_HEADER bytes */
    bool keep_in_tree; /* no value to a blob file (not in rep) */
};

/* The most bytes a put record of a key and a value of these sizes takes
 * (tag, family id, two lengths, the bytes): what to kv_buf_reserve on rep
 * so that filling a batch with large values never regrows and recopies
 * it. */
static inline size_t kv_write_batch_put_record_max(size_t key_len, size_t value_len)
{
    return 1 + 3 * KV_MAX_VARINT32_LENGTH + key_len + value_len;
}

/* In-place init/free for batches embedded in other structs. */
void kv_write_batch_init(kv_write_batch *batch);
void kv_write_batch_free(kv_write_batch *batch);

/* Adds a record by family id (the public functions take a kv_cf). */
void kv_write_batch_put_cf_id(kv_write_batch *batch, uint32_t cf_id, kv_slice key, kv_slice value);
void kv_write_batch_delete_cf_id(kv_write_batch *batch, uint32_t cf_id, kv_slice key);
/* A value moved to a blob file: its blob index (written by the write path
 * only; kv_write refuses batches that carry one). */
void kv_write_batch_put_blob_index_cf_id(kv_write_batch *batch, uint32_t cf_id, kv_slice key,
                                         kv_slice index);
void kv_write_batch_delete_range_cf_id(kv_write_batch *batch, uint32_t cf_id, kv_slice begin,
                                       kv_slice end);

kv_seq kv_write_batch_sequence(const kv_write_batch *batch);
void kv_write_batch_set_sequence(kv_write_batch *batch, kv_seq seq);
void kv_write_batch_set_count(kv_write_batch *batch, uint32_t count);
/* Appends src's records to dst (count updated, dst's sequence kept). */
void kv_write_batch_append(kv_write_batch *dst, const kv_write_batch *src);
/* Replaces the contents with a serialized rep (from the WAL); KV_CORRUPTION
 * if shorter than the header. */
int kv_write_batch_set_contents(kv_write_batch *batch, kv_slice rep);
static inline kv_slice kv_write_batch_contents(const kv_write_batch *batch)
{
    return kv_buf_slice(&batch->rep);
}

/* Calls handler for each record in order with its sequence and type
 * (KV_TYPE_VALUE, KV_TYPE_BLOB_INDEX, KV_TYPE_DELETION, KV_TYPE_RANGE_DELETION; for a range
 * deletion key = begin, value = end). A non-zero return from the callback
 * stops the walk and is returned. KV_CORRUPTION (with a message) when the
 * rep is malformed or the count does not match. */
typedef int (*kv_batch_handler_fn)(void *arg, uint32_t cf_id, kv_seq seq, int type, kv_slice key,
                                   kv_slice value);
int kv_write_batch_iterate(const kv_write_batch *batch, kv_batch_handler_fn handler, void *arg);

#endif
