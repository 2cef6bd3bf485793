/*
 * table_builder.c — writes one SST file (layout in table_format.h):
 *
 *   data block* || filter || range-del || properties || metaindex || index
 *   || footer
 *
 * A data block is cut once its uncompressed size estimate reaches
 * block_size. Its index entry is written only when the next key arrives,
 * so the index key can be a short separator between the two blocks
 * (LevelDB's FindShortestSeparator) rather than a whole key.
 *
 * Compression gives up early on data that does not compress (random or
 * already compressed file contents): after INCOMPRESSIBLE_STREAK data
 * blocks in a row that snappy did not shrink by 1/8, only every
 * PROBE_INTERVAL-th block is tried, and one that shrinks resumes trying
 * every block. Snappy on incompressible 4 KiB values cost a fifth of the
 * daemon's CPU in a sequential write.
 */
#include "table_builder.h"

#include "blob.h"
#include "block.h"
#include "bloom.h"
#include "coding.h"
#include "error.h"

#include <assert.h>
#include <stdlib.h>

enum { INCOMPRESSIBLE_STREAK = 8, PROBE_INTERVAL = 16 };

typedef struct stored_tombstone {
    kv_buf ikey; /* internal key (begin, seq, KV_TYPE_RANGE_DELETION) */
    kv_buf end;  /* user key, exclusive */
} stored_tombstone;

struct kv_table_builder {
    kv_table_options options;
    kv_writable *file;
    int status; /* first error, sticky */
    bool finished;

    kv_block_builder data_block;
    kv_block_builder index_block;
    kv_buf last_key; /* last point key added */
    uint64_t num_point_entries;
    /* A flushed block whose index entry waits for the next key. */
    bool pending_index_entry;
    kv_block_handle pending_handle;

    uint32_t *filter_hashes; /* one per distinct user key */
    size_t num_filter_hashes, filter_hashes_cap;

    stored_tombstone *tombstones;
    size_t num_tombstones, tombstones_cap;

    kv_buf smallest, largest; /* empty until the first entry */
    kv_table_properties props;
    kv_buf compressed; /* scratch for kv_write_block */
    /* Data blocks in a row that compression did not shrink; past
     * INCOMPRESSIBLE_STREAK only every PROBE_INTERVAL-th block is tried. */
    uint32_t incompressible_streak;
    /* Blob files the table's blob indexes point into (blob.h). */
    kv_blob_link *blob_links;
    size_t num_blob_links;
};

kv_table_builder *kv_table_builder_create(const kv_table_options *options, kv_writable *file)
{
    assert(options->block_restart_interval >= 1);
    kv_table_builder *b = kv_calloc(1, sizeof(*b));
    b->options = *options;
    b->file = file;
    kv_block_builder_init(&b->data_block, options->block_restart_interval);
    kv_block_builder_init(&b->index_block, 1);
    return b;
}

void kv_table_builder_destroy(kv_table_builder *b)
{
    if (b == NULL)
        return;
    kv_block_builder_free(&b->data_block);
    kv_block_builder_free(&b->index_block);
    kv_buf_free(&b->last_key);
    free(b->blob_links);
    free(b->filter_hashes);
    for (size_t i = 0; i < b->num_tombstones; i++) {
        kv_buf_free(&b->tombstones[i].ikey);
        kv_buf_free(&b->tombstones[i].end);
    }
    free(b->tombstones);
    kv_buf_free(&b->smallest);
    kv_buf_free(&b->largest);
    kv_buf_free(&b->compressed);
    free(b);
}

/* Widens [smallest, largest] to include ikey. */
static void builder_cover(kv_table_builder *b, kv_slice ikey)
{
    if (b->smallest.size == 0 || kv_ikey_compare(ikey, kv_buf_slice(&b->smallest)) < 0)
        kv_buf_set(&b->smallest, ikey.data, ikey.size);
    if (b->largest.size == 0 || kv_ikey_compare(ikey, kv_buf_slice(&b->largest)) > 0)
        kv_buf_set(&b->largest, ikey.data, ikey.size);
}

static void builder_note_seq(kv_table_builder *b, kv_seq seq)
{
    bool first = b->num_point_entries + b->num_tombstones == 0;
    if (first || seq < b->props.smallest_seq)
        b->props.smallest_seq = seq;
    if (first || seq > b->props.largest_seq)
        b->props.largest_seq = seq;
}

static uint64_t ikey_max_trailer(void)
{
    return kv_pack_seq_type(KV_MAX_SEQUENCE, KV_TYPE_FOR_SEEK);
}

/* If a user key shorter than start's lies in [start's user key, limit's
 * user key), replaces start with it (at the largest trailer, so it sorts
 * before every real entry of that user key). The result k satisfies
 * start <= k < limit in internal key order. */
static void ikey_shorten_separator(kv_buf *start, kv_slice limit)
{
    kv_slice user_start = kv_ikey_user_key(kv_buf_slice(start));
    kv_slice user_limit = kv_ikey_user_key(limit);
    size_t min_size = user_start.size < user_limit.size ? user_start.size : user_limit.size;
    size_t diff = 0;
    while (diff < min_size && user_start.data[diff] == user_limit.data[diff])
        diff++;
    if (diff >= min_size || diff + 1 >= user_start.size)
        return; /* one is a prefix of the other, or nothing shorter exists */
    unsigned char byte = (unsigned char)user_start.data[diff];
    if (byte == 0xff || byte + 1 >= (unsigned char)user_limit.data[diff])
        return;
    kv_buf_resize(start, diff + 1);
    start->data[diff] = (char)(byte + 1);
    kv_put_fixed64(start, ikey_max_trailer());
}

/* Replaces key with a short internal key >= it (for the last block). */
static void ikey_shorten_successor(kv_buf *key)
{
    kv_slice user = kv_ikey_user_key(kv_buf_slice(key));
    for (size_t i = 0; i + 1 < user.size; i++) {
        unsigned char byte = (unsigned char)user.data[i];
        if (byte != 0xff) {
            kv_buf_resize(key, i + 1);
            key->data[i] = (char)(byte + 1);
            kv_put_fixed64(key, ikey_max_trailer());
            return;
        }
    }
}

static void builder_add_index_entry(kv_table_builder *b, kv_slice separator)
{
    kv_buf handle = {0};
    kv_block_handle_encode(&b->pending_handle, &handle);
    kv_block_builder_add(&b->index_block, separator, kv_buf_slice(&handle));
    kv_buf_free(&handle);
    b->pending_index_entry = false;
}

static void builder_flush_data_block(kv_table_builder *b)
{
    if (b->status < 0 || kv_block_builder_empty(&b->data_block))
        return;
    assert(!b->pending_index_entry);
    kv_slice contents = kv_block_builder_finish(&b->data_block);
    int compression = b->options.compression;
    bool probing =
        compression != KV_COMPRESSION_NONE && b->incompressible_streak >= INCOMPRESSIBLE_STREAK;
    if (probing && (b->incompressible_streak - INCOMPRESSIBLE_STREAK) % PROBE_INTERVAL != 0)
        compression = KV_COMPRESSION_NONE; /* skip the attempt; the next probe retries */
    b->status = kv_write_block(b->file, contents, compression, &b->pending_handle, &b->compressed);
    if (b->options.compression != KV_COMPRESSION_NONE) {
        /* kv_write_block keeps the compressed form only if it is smaller. */
        bool shrank = compression != KV_COMPRESSION_NONE && b->pending_handle.size < contents.size;
        b->incompressible_streak = shrank ? 0 : b->incompressible_streak + 1;
    }
    kv_block_builder_reset(&b->data_block);
    if (b->status == 0) {
        b->pending_index_entry = true;
        b->props.num_data_blocks++;
    }
}

int kv_table_builder_add(kv_table_builder *b, kv_slice ikey, kv_slice value)
{
    assert(!b->finished);
    if (b->status < 0)
        return b->status;
    kv_slice user_key;
    kv_seq seq;
    int type;
    bool parsed = kv_ikey_parse(ikey, &user_key, &seq, &type);
    assert(parsed && type != KV_TYPE_RANGE_DELETION);
    (void)parsed;
    bool same_user_key = false;
    if (b->num_point_entries > 0) {
        assert(kv_ikey_compare(kv_buf_slice(&b->last_key), ikey) < 0);
        same_user_key = kv_slice_equal(kv_ikey_user_key(kv_buf_slice(&b->last_key)), user_key);
    }

    if (b->pending_index_entry) {
        assert(kv_block_builder_empty(&b->data_block));
        ikey_shorten_separator(&b->last_key, ikey);
        builder_add_index_entry(b, kv_buf_slice(&b->last_key));
    }

    if (b->options.bloom_bits_per_key > 0 && !same_user_key) {
        if (b->num_filter_hashes == b->filter_hashes_cap) {
            b->filter_hashes_cap = b->filter_hashes_cap ? 2 * b->filter_hashes_cap : 1024;
            b->filter_hashes =
                kv_realloc(b->filter_hashes, b->filter_hashes_cap * sizeof(*b->filter_hashes));
        }
        b->filter_hashes[b->num_filter_hashes++] = kv_bloom_hash(user_key);
    }

    builder_cover(b, ikey);
    builder_note_seq(b, seq);
    b->num_point_entries++;
    b->props.num_entries++;
    if (type == KV_TYPE_DELETION)
        b->props.num_deletions++;
    if (type == KV_TYPE_BLOB_INDEX) {
        kv_blob_ref ref;
        if (!kv_blob_ref_decode(value, &ref)) {
            b->status =
                kv_error(KV_CORRUPTION, "%s: malformed blob index added to a table", b->file->path);
            return b->status;
        }
        kv_blob_links_add(&b->blob_links, &b->num_blob_links, ref.file, ref.size);
    }
    b->props.raw_key_size += ikey.size;
    b->props.raw_value_size += value.size;
    kv_buf_set(&b->last_key, ikey.data, ikey.size);

    kv_block_builder_add(&b->data_block, ikey, value);
    if (kv_block_builder_size_estimate(&b->data_block) >= b->options.block_size)
        builder_flush_data_block(b);
    return b->status;
}

void kv_table_builder_add_range_tombstone(kv_table_builder *b, kv_slice begin, kv_slice end,
                                          kv_seq seq)
{
    assert(!b->finished);
    assert(seq <= KV_MAX_SEQUENCE);
    if (kv_slice_compare(begin, end) >= 0)
        return; /* an empty range deletes nothing */
    if (b->num_tombstones == b->tombstones_cap) {
        b->tombstones_cap = b->tombstones_cap ? 2 * b->tombstones_cap : 16;
        b->tombstones = kv_realloc(b->tombstones, b->tombstones_cap * sizeof(*b->tombstones));
    }
    builder_note_seq(b, seq);
    stored_tombstone *t = &b->tombstones[b->num_tombstones++];
    memset(t, 0, sizeof(*t));
    kv_ikey_append(&t->ikey, begin, seq, KV_TYPE_RANGE_DELETION);
    kv_buf_set(&t->end, end.data, end.size);
    b->props.num_range_deletions++;

    /* [begin, end)@seq covers begin@seq .. end@KV_MAX_SEQUENCE. */
    builder_cover(b, kv_buf_slice(&t->ikey));
    kv_buf end_key = {0};
    kv_ikey_append(&end_key, end, KV_MAX_SEQUENCE, KV_TYPE_RANGE_DELETION);
    builder_cover(b, kv_buf_slice(&end_key));
    kv_buf_free(&end_key);
}

static int compare_tombstones(const void *a, const void *b)
{
    const stored_tombstone *x = a, *y = b;
    int c = kv_ikey_compare(kv_buf_slice(&x->ikey), kv_buf_slice(&y->ikey));
    return c ? c : kv_slice_compare(kv_buf_slice(&x->end), kv_buf_slice(&y->end));
}

/* Writes the filter, if any; *written tells whether there is one. */
static int builder_write_filter(kv_table_builder *b, kv_block_handle *h, bool *written)
{
    *written = false;
    if (b->options.bloom_bits_per_key <= 0 || b->num_filter_hashes == 0)
        return 0;
    kv_buf filter = {0};
    kv_bloom_build(b->options.bloom_bits_per_key, b->filter_hashes, b->num_filter_hashes, &filter);
    b->props.filter_size = filter.size;
    /* Filter bits are random: compression would not pay. */
    int rc = kv_write_block(b->file, kv_buf_slice(&filter), KV_COMPRESSION_NONE, h, &b->compressed);
    kv_buf_free(&filter);
    *written = rc == 0;
    return rc;
}

static int builder_write_range_dels(kv_table_builder *b, kv_block_handle *h, bool *written)
{
    *written = false;
    if (b->num_tombstones == 0)
        return 0;
    qsort(b->tombstones, b->num_tombstones, sizeof(*b->tombstones), compare_tombstones);
    kv_block_builder block;
    kv_block_builder_init(&block, b->options.block_restart_interval);
    for (size_t i = 0; i < b->num_tombstones; i++)
        kv_block_builder_add(&block, kv_buf_slice(&b->tombstones[i].ikey),
                             kv_buf_slice(&b->tombstones[i].end));
    int rc = kv_write_block(b->file, kv_block_builder_finish(&block), b->options.compression, h,
                            &b->compressed);
    kv_block_builder_free(&block);
    *written = rc == 0;
    return rc;
}

static void metaindex_add(kv_block_builder *metaindex, const char *name, const kv_block_handle *h)
{
    kv_buf handle = {0};
    kv_block_handle_encode(h, &handle);
    kv_block_builder_add(metaindex, kv_slice_from_str(name), kv_buf_slice(&handle));
    kv_buf_free(&handle);
}

/* Writes everything after the data blocks, in file order; the metaindex
 * keys are added in bytewise order ("filter.bloom" < "properties" <
 * "rangedel"). */
static int builder_write_tail(kv_table_builder *b)
{
    kv_block_handle filter_handle, range_del_handle, properties_handle, metaindex_handle,
        index_handle;
    bool has_filter = false, has_range_dels = false;
    int rc = builder_write_filter(b, &filter_handle, &has_filter);
    if (rc == 0)
        rc = builder_write_range_dels(b, &range_del_handle, &has_range_dels);
    if (rc < 0)
        return rc;

    kv_slice index_contents = kv_block_builder_finish(&b->index_block);
    /* The index is written after the properties: record its raw size. */
    b->props.index_size = index_contents.size;
    kv_buf properties = {0};
    kv_table_properties_encode(&b->props, &properties);
    rc = kv_write_block(b->file, kv_buf_slice(&properties), KV_COMPRESSION_NONE, &properties_handle,
                        &b->compressed);
    kv_buf_free(&properties);
    if (rc < 0)
        return rc;

    kv_block_builder metaindex;
    kv_block_builder_init(&metaindex, 1);
    if (has_filter)
        metaindex_add(&metaindex, KV_META_FILTER, &filter_handle);
    metaindex_add(&metaindex, KV_META_PROPERTIES, &properties_handle);
    if (has_range_dels)
        metaindex_add(&metaindex, KV_META_RANGE_DEL, &range_del_handle);
    rc = kv_write_block(b->file, kv_block_builder_finish(&metaindex), KV_COMPRESSION_NONE,
                        &metaindex_handle, &b->compressed);
    kv_block_builder_free(&metaindex);
    if (rc == 0)
        rc = kv_write_block(b->file, index_contents, b->options.compression, &index_handle,
                            &b->compressed);
    if (rc < 0)
        return rc;

    kv_footer footer = {metaindex_handle, index_handle, b->num_blob_links > 0 ? 2 : 1};
    kv_buf encoded = {0};
    kv_footer_encode(&footer, &encoded);
    rc = kv_writable_append(b->file, encoded.data, encoded.size);
    kv_buf_free(&encoded);
    return rc;
}

int kv_table_builder_finish(kv_table_builder *b)
{
    assert(!b->finished);
    b->finished = true;
    builder_flush_data_block(b);
    if (b->status < 0)
        return b->status;
    if (b->pending_index_entry) {
        ikey_shorten_successor(&b->last_key);
        builder_add_index_entry(b, kv_buf_slice(&b->last_key));
    }
    b->props.data_size = b->file->size;
    b->status = builder_write_tail(b);
    return b->status;
}

uint64_t kv_table_builder_num_entries(const kv_table_builder *b)
{
    return b->num_point_entries + b->num_tombstones;
}

uint64_t kv_table_builder_file_size(const kv_table_builder *b)
{
    return b->file->size;
}

kv_slice kv_table_builder_smallest(const kv_table_builder *b)
{
    return kv_buf_slice(&b->smallest);
}

kv_slice kv_table_builder_largest(const kv_table_builder *b)
{
    return kv_buf_slice(&b->largest);
}

const kv_table_properties *kv_table_builder_properties(const kv_table_builder *b)
{
    return &b->props;
}

void kv_table_builder_take_blob_links(kv_table_builder *b, kv_blob_link **links, size_t *count)
{
    *links = b->blob_links;
    *count = b->num_blob_links;
    b->blob_links = NULL;
    b->num_blob_links = 0;
}
