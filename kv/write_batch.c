/*
 * write_batch.c — kv_write_batch: an atomic group of updates serialized
 * in the layout described in write_batch.h (the WAL stores it verbatim).
 *
 * The public functions of kv.h that take a kv_cf (put, delete,
 * delete_range) live in the db code, which knows the family's id; they end
 * in the *_cf_id functions here.
 */
#include "write_batch.h"

#include "coding.h"
#include "error.h"

#include <assert.h>
#include <stdlib.h>

#define COUNT_OFFSET 8

static void reset_header(kv_write_batch *batch)
{
    kv_buf_resize(&batch->rep, KV_WRITE_BATCH_HEADER);
    memset(batch->rep.data, 0, KV_WRITE_BATCH_HEADER);
}

void kv_write_batch_init(kv_write_batch *batch)
{
    memset(batch, 0, sizeof(*batch));
    reset_header(batch);
}

void kv_write_batch_free(kv_write_batch *batch)
{
    kv_buf_free(&batch->rep);
}

kv_write_batch *kv_write_batch_create(void)
{
    kv_write_batch *batch = kv_malloc(sizeof(*batch));
    kv_write_batch_init(batch);
    return batch;
}

void kv_write_batch_destroy(kv_write_batch *batch)
{
    if (batch == NULL)
        return;
    kv_write_batch_free(batch);
    free(batch);
}

void kv_write_batch_clear(kv_write_batch *batch)
{
    reset_header(batch);
    batch->keep_in_tree = false;
}

void kv_write_batch_keep_in_tree(kv_write_batch *batch)
{
    batch->keep_in_tree = true;
}

uint32_t kv_write_batch_count(const kv_write_batch *batch)
{
    return kv_decode_fixed32(batch->rep.data + COUNT_OFFSET);
}

size_t kv_write_batch_size(const kv_write_batch *batch)
{
    return batch->rep.size;
}

kv_seq kv_write_batch_sequence(const kv_write_batch *batch)
{
    return kv_decode_fixed64(batch->rep.data);
}

void kv_write_batch_set_sequence(kv_write_batch *batch, kv_seq seq)
{
    kv_encode_fixed64(batch->rep.data, seq);
}

void kv_write_batch_set_count(kv_write_batch *batch, uint32_t count)
{
    kv_encode_fixed32(batch->rep.data + COUNT_OFFSET, count);
}

/* Appends the tag (the cf variant when cf_id is not the default family)
 * and bumps the count. */
static void append_record_head(kv_write_batch *batch, uint32_t cf_id, int default_tag, int cf_tag)
{
    kv_write_batch_set_count(batch, kv_write_batch_count(batch) + 1);
    if (cf_id == 0) {
        kv_buf_append_byte(&batch->rep, (char)default_tag);
    } else {
        kv_buf_append_byte(&batch->rep, (char)cf_tag);
        kv_put_varint32(&batch->rep, cf_id);
    }
}

static void append_varstring(kv_write_batch *batch, kv_slice s)
{
    assert(s.size <= UINT32_MAX);
    kv_put_length_prefixed(&batch->rep, s);
}

void kv_write_batch_put_cf_id(kv_write_batch *batch, uint32_t cf_id, kv_slice key, kv_slice value)
{
    append_record_head(batch, cf_id, KV_TAG_VALUE, KV_TAG_CF_VALUE);
    append_varstring(batch, key);
    append_varstring(batch, value);
}

void kv_write_batch_put_blob_index_cf_id(kv_write_batch *batch, uint32_t cf_id, kv_slice key,
                                         kv_slice index)
{
    append_record_head(batch, cf_id, KV_TAG_BLOB_INDEX, KV_TAG_CF_BLOB_INDEX);
    append_varstring(batch, key);
    append_varstring(batch, index);
}

void kv_write_batch_delete_cf_id(kv_write_batch *batch, uint32_t cf_id, kv_slice key)
{
    append_record_head(batch, cf_id, KV_TAG_DELETION, KV_TAG_CF_DELETION);
    append_varstring(batch, key);
}

void kv_write_batch_delete_range_cf_id(kv_write_batch *batch, uint32_t cf_id, kv_slice begin,
                                       kv_slice end)
{
    append_record_head(batch, cf_id, KV_TAG_RANGE_DELETION, KV_TAG_CF_RANGE_DELETION);
    append_varstring(batch, begin);
    append_varstring(batch, end);
}

void kv_write_batch_append(kv_write_batch *dst, const kv_write_batch *src)
{
    assert(src->rep.size >= KV_WRITE_BATCH_HEADER);
    kv_write_batch_set_count(dst, kv_write_batch_count(dst) + kv_write_batch_count(src));
    kv_buf_append(&dst->rep, src->rep.data + KV_WRITE_BATCH_HEADER,
                  src->rep.size - KV_WRITE_BATCH_HEADER);
}

int kv_write_batch_set_contents(kv_write_batch *batch, kv_slice rep)
{
    if (rep.size < KV_WRITE_BATCH_HEADER)
        return kv_error(KV_CORRUPTION,
                        "write batch: %zu bytes, shorter than the %d-byte header at offset 0",
                        rep.size, KV_WRITE_BATCH_HEADER);
    kv_buf_set(&batch->rep, rep.data, rep.size);
    return 0;
}

/* ---- reading ---- */

/* One decoded record. */
typedef struct batch_record {
    uint32_t cf_id;
    int type;
    kv_slice key, value;
} batch_record;

/* Decodes the record starting at *input (rep + offset) and advances past
 * it; KV_CORRUPTION naming the offset of the bad field otherwise. */
static int decode_record(kv_slice *input, const char *rep_start, batch_record *record)
{
    size_t record_offset = (size_t)(input->data - rep_start);
    int tag = (unsigned char)input->data[0];
    kv_slice_remove_prefix(input, 1);

    bool has_cf = false, has_value = false;
    switch (tag) {
    case KV_TAG_VALUE:
        record->type = KV_TYPE_VALUE;
        has_value = true;
        break;
    case KV_TAG_DELETION:
        record->type = KV_TYPE_DELETION;
        break;
    case KV_TAG_RANGE_DELETION:
        record->type = KV_TYPE_RANGE_DELETION;
        has_value = true;
        break;
    case KV_TAG_CF_VALUE:
        record->type = KV_TYPE_VALUE;
        has_cf = has_value = true;
        break;
    case KV_TAG_CF_DELETION:
        record->type = KV_TYPE_DELETION;
        has_cf = true;
        break;
    case KV_TAG_CF_RANGE_DELETION:
        record->type = KV_TYPE_RANGE_DELETION;
        has_cf = has_value = true;
        break;
    case KV_TAG_BLOB_INDEX:
        record->type = KV_TYPE_BLOB_INDEX;
        has_value = true;
        break;
    case KV_TAG_CF_BLOB_INDEX:
        record->type = KV_TYPE_BLOB_INDEX;
        has_cf = has_value = true;
        break;
    default:
        return kv_error(KV_CORRUPTION, "write batch: unknown record tag 0x%02x at offset %zu", tag,
                        record_offset);
    }

    record->cf_id = 0;
    record->value = kv_slice_make("", 0);
    size_t field_offset = (size_t)(input->data - rep_start);
    if (has_cf && !kv_get_varint32(input, &record->cf_id))
        return kv_error(KV_CORRUPTION, "write batch: bad column family id at offset %zu",
                        field_offset);
    field_offset = (size_t)(input->data - rep_start);
    if (!kv_get_length_prefixed(input, &record->key))
        return kv_error(KV_CORRUPTION, "write batch: truncated key at offset %zu", field_offset);
    field_offset = (size_t)(input->data - rep_start);
    if (has_value && !kv_get_length_prefixed(input, &record->value))
        return kv_error(KV_CORRUPTION, "write batch: truncated %s at offset %zu",
                        record->type == KV_TYPE_RANGE_DELETION ? "range end" : "value",
                        field_offset);
    return 0;
}

/* Walks every record; with handler NULL it only validates. */
static int walk_records(const kv_write_batch *batch, kv_batch_handler_fn handler, void *arg)
{
    const kv_buf *rep = &batch->rep;
    if (rep->size < KV_WRITE_BATCH_HEADER)
        return kv_error(KV_CORRUPTION,
                        "write batch: %zu bytes, shorter than the %d-byte header at offset 0",
                        rep->size, KV_WRITE_BATCH_HEADER);
    kv_seq seq = kv_write_batch_sequence(batch);
    uint32_t expected = kv_write_batch_count(batch);
    /* Record i gets sequence seq + i, and sequences are 56 bits
     * (dbformat.h): past that, internal keys would silently wrap. */
    if (expected > 0 && (seq > KV_MAX_SEQUENCE || expected - 1 > KV_MAX_SEQUENCE - seq))
        return kv_error(KV_CORRUPTION,
                        "write batch: %u records from sequence %llu run past the largest "
                        "sequence at offset 0",
                        expected, (unsigned long long)seq);
    uint32_t found = 0;
    kv_slice input =
        kv_slice_make(rep->data + KV_WRITE_BATCH_HEADER, rep->size - KV_WRITE_BATCH_HEADER);
    while (input.size > 0) {
        batch_record record;
        int status = decode_record(&input, rep->data, &record);
        if (status != 0)
            return status;
        if (handler != NULL) {
            status = handler(arg, record.cf_id, seq + found, record.type, record.key, record.value);
            if (status != 0)
                return status;
        }
        found++;
    }
    if (found != expected)
        return kv_error(KV_CORRUPTION,
                        "write batch: header counts %u records but %u found at offset %zu",
                        expected, found, rep->size);
    return 0;
}

int kv_write_batch_iterate(const kv_write_batch *batch, kv_batch_handler_fn handler, void *arg)
{
    /* Validate everything first, so a corrupt batch reaches no handler and
     * is never half applied. */
    int status = walk_records(batch, NULL, NULL);
    if (status != 0 || handler == NULL)
        return status;
    return walk_records(batch, handler, arg);
}
