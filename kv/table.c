/*
 * table.c — reads one SST file (format in table_format.h). Opening loads
 * the footer, index, metaindex, filter, properties and range tombstones;
 * data blocks are read on demand, through the block cache when there is
 * one. Iteration is two-level (LevelDB's TwoLevelIterator): the index
 * iterator picks a data block, a block iterator walks it.
 *
 * Every block read is checksummed; any malformed length or entry becomes
 * KV_CORRUPTION naming the file and the block's offset.
 *
 * Files are memory-mapped (env_posix). A data block stored uncompressed is
 * then parsed in place, neither copied nor put in the block cache (the page
 * cache holds it already); the cache keeps decompressed blocks. Mapped
 * pages count in the process's resident memory, so scans release the
 * pages behind them, and opening releases what reading the meta blocks
 * mapped.
 */
#include "table.h"

#include "block.h"
#include "bloom.h"
#include "coding.h"
#include "error.h"

#include <assert.h>
#include <stdatomic.h>
#include <stdlib.h>

/* A scan (forward or backward) releases the mapped pages it has read once
 * it is this far past them, and at its end when it read at least RELEASE_AT_END_BYTES:
 * scans and compactions then leave no file pages counted in the resident
 * memory of the process (see kv_random_release_pages). */
enum { RELEASE_BEHIND_BYTES = 256 << 10, RELEASE_AT_END_BYTES = 64 << 10 };

struct kv_table {
    kv_random *file;
    uint64_t file_size;
    char *name;
    kv_cache *block_cache; /* may be NULL */
    uint64_t cache_id;     /* prefixes this table's block cache keys */
    kv_footer footer;
    kv_block *index_block;
    char *filter; /* NULL when the table has none */
    size_t filter_size;
    kv_frag_tombstones *tombstones; /* NULL when the table has none */
    kv_table_properties props;
    bool has_properties;
    /* Meta blocks, kept for kv_table_verify. */
    kv_block_handle filter_handle, range_del_handle, properties_handle;
    atomic_uint_fast64_t bloom_checked, bloom_useful;
};

/* kv_ikey_compare, made safe for keys too short to be internal keys
 * (only a damaged file has them; they sort bytewise and are then reported
 * as corruption where they are parsed). */
static int table_key_compare(kv_slice a, kv_slice b)
{
    if (a.size < 8 || b.size < 8)
        return kv_slice_compare(a, b);
    return kv_ikey_compare(a, b);
}

static int table_corruption(const kv_table *t, const char *what, uint64_t offset)
{
    return kv_error(KV_CORRUPTION, "%s: %s at offset %llu", t->name, what,
                    (unsigned long long)offset);
}

/* Reads, verifies and parses the block at h. */
static int table_read_block(kv_table *t, const kv_block_handle *h, kv_block **out)
{
    char *contents;
    size_t size;
    int rc = kv_read_block(t->file, t->name, h, &contents, &size);
    if (rc < 0)
        return rc;
    if (kv_block_create(contents, size, t->name, out) < 0)
        return table_corruption(t, "malformed block restart array", h->offset);
    return 0;
}

/* table_read_block for a data block: read in place from a mapped file
 * when it is stored uncompressed (the table outlives its block
 * iterators: they hold the table). */
static int table_read_data_block(kv_table *t, const kv_block_handle *h, kv_block **out)
{
    const char *contents;
    size_t size;
    bool borrowed;
    int rc = kv_read_block_borrowed(t->file, t->name, h, &contents, &size, &borrowed);
    if (rc < 0)
        return rc;
    rc = borrowed ? kv_block_create_borrowed(contents, size, t->name, out)
                  : kv_block_create((char *)contents, size, t->name, out);
    if (rc < 0)
        return table_corruption(t, "malformed block restart array", h->offset);
    return 0;
}

/* ---- open ---- */

static int table_read_footer(kv_table *t)
{
    if (t->file_size < KV_FOOTER_SIZE)
        return kv_error(KV_CORRUPTION, "%s: not an SST file (only %llu bytes)", t->name,
                        (unsigned long long)t->file_size);
    char buf[KV_FOOTER_SIZE];
    size_t got = 0;
    uint64_t offset = t->file_size - KV_FOOTER_SIZE;
    int rc = kv_random_read(t->file, offset, sizeof(buf), buf, &got);
    if (rc < 0)
        return rc;
    if (got != sizeof(buf))
        return table_corruption(t, "truncated footer", offset);
    return kv_footer_decode(kv_slice_make(buf, got), t->name, &t->footer);
}

static int table_load_filter(kv_table *t, const kv_block_handle *h)
{
    if (t->filter)
        return table_corruption(t, "duplicate filter block", h->offset);
    size_t size;
    int rc = kv_read_block(t->file, t->name, h, &t->filter, &size);
    t->filter_size = size;
    return rc;
}

static int table_load_properties(kv_table *t, const kv_block_handle *h)
{
    if (t->has_properties)
        return table_corruption(t, "duplicate properties block", h->offset);
    char *contents;
    size_t size;
    int rc = kv_read_block(t->file, t->name, h, &contents, &size);
    if (rc < 0)
        return rc;
    rc = kv_table_properties_decode(kv_slice_make(contents, size), t->name, &t->props);
    free(contents);
    if (rc < 0)
        return table_corruption(t, "malformed properties block", h->offset);
    t->has_properties = true;
    return 0;
}

/* Reads the range-deletion block into a fragmented tombstone list. */
static int table_load_range_dels(kv_table *t, const kv_block_handle *h)
{
    if (t->tombstones)
        return table_corruption(t, "duplicate range tombstone block", h->offset);
    kv_block *block;
    int rc = table_read_block(t, h, &block);
    if (rc < 0)
        return rc;
    /* Keys are copied: a block iterator's key changes as it moves. */
    kv_tombstone_set set = {0};
    kv_iter *it = kv_block_iter_create(block, table_key_compare, NULL, NULL);
    for (kv_iter_seek_to_first(it); kv_iter_valid(it); kv_iter_next(it)) {
        kv_slice user_key;
        kv_seq seq;
        int type;
        if (!kv_ikey_parse(kv_iter_key(it), &user_key, &seq, &type) ||
            type != KV_TYPE_RANGE_DELETION) {
            rc = table_corruption(t, "malformed range tombstone", h->offset);
            break;
        }
        kv_tombstone_set_add(&set, user_key, kv_iter_value(it), seq);
    }
    if (rc == 0 && kv_iter_status(it) < 0)
        rc = table_corruption(t, "malformed range tombstone block", h->offset);
    if (rc == 0 && set.count > 0)
        t->tombstones = kv_frag_tombstones_build(set.items, set.count, KV_MAX_SEQUENCE);
    kv_iter_destroy(it);
    kv_tombstone_set_free(&set);
    kv_block_destroy(block);
    return rc;
}

/* Reads the metaindex and the meta blocks it names. Unknown names are
 * skipped (a newer writer may add blocks). */
static int table_load_meta_blocks(kv_table *t)
{
    kv_block *metaindex;
    int rc = table_read_block(t, &t->footer.metaindex, &metaindex);
    if (rc < 0)
        return rc;
    kv_iter *it = kv_block_iter_create(metaindex, kv_slice_compare, NULL, NULL);
    for (kv_iter_seek_to_first(it); rc == 0 && kv_iter_valid(it); kv_iter_next(it)) {
        kv_slice name = kv_iter_key(it);
        kv_slice value = kv_iter_value(it);
        kv_block_handle h;
        if (!kv_block_handle_decode(&value, &h)) {
            rc = table_corruption(t, "malformed metaindex entry", t->footer.metaindex.offset);
        } else if (kv_slice_equal(name, kv_slice_from_str(KV_META_FILTER))) {
            t->filter_handle = h;
            rc = table_load_filter(t, &h);
        } else if (kv_slice_equal(name, kv_slice_from_str(KV_META_PROPERTIES))) {
            t->properties_handle = h;
            rc = table_load_properties(t, &h);
        } else if (kv_slice_equal(name, kv_slice_from_str(KV_META_RANGE_DEL))) {
            t->range_del_handle = h;
            rc = table_load_range_dels(t, &h);
        }
    }
    if (rc == 0 && kv_iter_status(it) < 0)
        rc = table_corruption(t, "malformed metaindex block", t->footer.metaindex.offset);
    kv_iter_destroy(it);
    kv_block_destroy(metaindex);
    return rc;
}

int kv_table_open(kv_random *file, uint64_t file_size, const char *name, kv_cache *block_cache,
                  kv_table **out)
{
    *out = NULL;
    kv_table *t = kv_calloc(1, sizeof(*t));
    t->file = file;
    t->file_size = file_size;
    t->name = kv_strdup(name);
    t->block_cache = block_cache;
    atomic_init(&t->bloom_checked, 0);
    atomic_init(&t->bloom_useful, 0);
    int rc = table_read_footer(t);
    if (rc == 0)
        rc = table_read_block(t, &t->footer.index, &t->index_block);
    if (rc == 0)
        rc = table_load_meta_blocks(t);
    if (rc < 0) {
        kv_table_close(t);
        return rc;
    }
    if (block_cache)
        t->cache_id = kv_cache_new_id(block_cache);
    /* The index, filter and other meta blocks were copied out; their pages
     * (and the large folios around them that the faults mapped) need not
     * stay mapped. */
    kv_random_release_pages(file, 0, file_size);
    *out = t;
    return 0;
}

void kv_table_close(kv_table *table)
{
    if (table == NULL)
        return;
    kv_random_close(table->file);
    kv_block_destroy(table->index_block);
    free(table->filter);
    if (table->tombstones)
        kv_frag_tombstones_unref(table->tombstones);
    free(table->name);
    free(table);
}

/* ---- data blocks ---- */

typedef struct cached_block_ref {
    kv_cache *cache;
    kv_cache_handle *handle;
} cached_block_ref;

static void release_cached_block(void *arg)
{
    cached_block_ref *ref = arg;
    kv_cache_release(ref->cache, ref->handle);
    free(ref);
}

static void destroy_uncached_block(void *arg)
{
    kv_block_destroy(arg);
}

static void delete_cached_block(kv_slice key, void *value)
{
    (void)key;
    kv_block_destroy(value);
}

/* An iterator over the data block at h, holding the block (a cache handle,
 * or the block itself when it is not cached) until it is destroyed. */
static int table_data_block_iter(kv_table *t, const kv_block_handle *h, bool fill_cache,
                                 kv_iter **out)
{
    kv_cache *cache = t->block_cache;
    if (cache == NULL) {
        kv_block *block;
        int rc = table_read_data_block(t, h, &block);
        if (rc < 0)
            return rc;
        *out = kv_block_iter_create(block, table_key_compare, destroy_uncached_block, block);
        return 0;
    }
    char key[16];
    kv_encode_fixed64(key, t->cache_id);
    kv_encode_fixed64(key + 8, h->offset);
    kv_slice cache_key = kv_slice_make(key, sizeof(key));
    kv_cache_handle *handle = kv_cache_lookup(cache, cache_key);
    kv_block *block;
    if (handle) {
        block = kv_cache_value(handle);
    } else {
        int rc = table_read_data_block(t, h, &block);
        if (rc < 0)
            return rc;
        /* A block read in place from the mapping is in the page cache
         * already: caching a copy would only cost a copy. */
        if (!fill_cache || kv_block_is_borrowed(block)) {
            *out = kv_block_iter_create(block, table_key_compare, destroy_uncached_block, block);
            return 0;
        }
        handle =
            kv_cache_insert(cache, cache_key, block, kv_block_size(block), delete_cached_block);
    }
    cached_block_ref *ref = kv_malloc(sizeof(*ref));
    ref->cache = cache;
    ref->handle = handle;
    *out = kv_block_iter_create(block, table_key_compare, release_cached_block, ref);
    return 0;
}

/* ---- two-level iterator ---- */

typedef struct table_iter {
    kv_iter base;
    kv_table *table;
    bool fill_cache;
    kv_iter *index_iter;
    kv_iter *data_iter; /* NULL when not on a block */
    kv_block_handle data_handle;
    /* The run of data blocks read one after the other, [run_begin,
     * run_end) in the file: a scan releases its mapped pages behind it
     * (RELEASE_BEHIND_BYTES at a time) and at the end. */
    uint64_t run_begin, run_end;
    int status; /* first error; sticky */
    void (*on_destroy)(void *arg);
    void *on_destroy_arg;
} table_iter;

static void table_iter_set_data(table_iter *it, kv_iter *data)
{
    kv_iter_destroy(it->data_iter);
    it->data_iter = data;
}

/* Records an error of the index or current data iterator, naming the file
 * and the block's offset (block iterators do not know them). */
static void table_iter_check_children(table_iter *it)
{
    if (it->status < 0)
        return;
    if (it->data_iter && kv_iter_status(it->data_iter) < 0) {
        it->status = table_corruption(it->table, "malformed block entry", it->data_handle.offset);
        table_iter_set_data(it, NULL);
    } else if (kv_iter_status(it->index_iter) < 0) {
        it->status =
            table_corruption(it->table, "malformed index block", it->table->footer.index.offset);
        table_iter_set_data(it, NULL);
    }
}

/* Extends or restarts the iterator's run of consecutive data blocks with
 * the block at h, releasing what a long forward or backward run has left
 * behind it. */
static void table_iter_note_block(table_iter *it, const kv_block_handle *h)
{
    uint64_t end = h->offset + h->size + KV_BLOCK_TRAILER_SIZE;
    if (h->offset == it->run_end) { /* forward */
        it->run_end = end;
        if (h->offset - it->run_begin >= RELEASE_BEHIND_BYTES) {
            kv_random_release_pages(it->table->file, it->run_begin, h->offset);
            it->run_begin = h->offset;
        }
    } else if (end == it->run_begin) { /* backward */
        it->run_begin = h->offset;
        if (it->run_end - end >= RELEASE_BEHIND_BYTES) {
            kv_random_release_pages(it->table->file, end, it->run_end);
            it->run_end = end;
        }
    } else {
        it->run_begin = h->offset;
        it->run_end = end;
    }
}

/* Points data_iter at the block the index iterator is on (unpositioned). */
static void table_iter_init_data_block(table_iter *it)
{
    if (!kv_iter_valid(it->index_iter)) {
        table_iter_set_data(it, NULL);
        table_iter_check_children(it);
        return;
    }
    kv_slice value = kv_iter_value(it->index_iter);
    kv_block_handle h;
    if (!kv_block_handle_decode(&value, &h)) {
        it->status =
            table_corruption(it->table, "malformed index entry", it->table->footer.index.offset);
        table_iter_set_data(it, NULL);
        return;
    }
    if (it->data_iter && h.offset == it->data_handle.offset && h.size == it->data_handle.size)
        return; /* already there */
    kv_iter *data;
    int rc = table_data_block_iter(it->table, &h, it->fill_cache, &data);
    if (rc < 0) {
        it->status = rc;
        table_iter_set_data(it, NULL);
        return;
    }
    table_iter_set_data(it, data);
    it->data_handle = h;
    table_iter_note_block(it, &h);
}

static bool table_iter_valid(kv_iter *base)
{
    table_iter *it = (table_iter *)base;
    return it->status == 0 && it->data_iter && kv_iter_valid(it->data_iter);
}

/* Callers of a table iterator compare its keys as internal keys: one too
 * short to be one (a damaged file) ends the iteration as corruption. */
static void table_iter_check_key(table_iter *it)
{
    if (table_iter_valid(&it->base) && kv_iter_key(it->data_iter).size < 8) {
        it->status =
            table_corruption(it->table, "malformed internal key in block", it->data_handle.offset);
        table_iter_set_data(it, NULL);
    }
}

/* Moves forward past exhausted (or empty) data blocks. */
static void table_iter_skip_forward(table_iter *it)
{
    while (it->status == 0 && (it->data_iter == NULL || !kv_iter_valid(it->data_iter))) {
        table_iter_check_children(it);
        if (it->status < 0 || !kv_iter_valid(it->index_iter)) {
            table_iter_set_data(it, NULL);
            return;
        }
        kv_iter_next(it->index_iter);
        table_iter_init_data_block(it);
        if (it->data_iter)
            kv_iter_seek_to_first(it->data_iter);
    }
    table_iter_check_key(it);
}

static void table_iter_skip_backward(table_iter *it)
{
    while (it->status == 0 && (it->data_iter == NULL || !kv_iter_valid(it->data_iter))) {
        table_iter_check_children(it);
        if (it->status < 0 || !kv_iter_valid(it->index_iter)) {
            table_iter_set_data(it, NULL);
            return;
        }
        kv_iter_prev(it->index_iter);
        table_iter_init_data_block(it);
        if (it->data_iter)
            kv_iter_seek_to_last(it->data_iter);
    }
    table_iter_check_key(it);
}

static void table_iter_seek(kv_iter *base, kv_slice target)
{
    table_iter *it = (table_iter *)base;
    if (it->status < 0)
        return;
    kv_iter_seek(it->index_iter, target);
    table_iter_init_data_block(it);
    if (it->data_iter)
        kv_iter_seek(it->data_iter, target);
    table_iter_skip_forward(it);
}

static void table_iter_seek_to_first(kv_iter *base)
{
    table_iter *it = (table_iter *)base;
    if (it->status < 0)
        return;
    kv_iter_seek_to_first(it->index_iter);
    table_iter_init_data_block(it);
    if (it->data_iter)
        kv_iter_seek_to_first(it->data_iter);
    table_iter_skip_forward(it);
}

static void table_iter_seek_to_last(kv_iter *base)
{
    table_iter *it = (table_iter *)base;
    if (it->status < 0)
        return;
    kv_iter_seek_to_last(it->index_iter);
    table_iter_init_data_block(it);
    if (it->data_iter)
        kv_iter_seek_to_last(it->data_iter);
    table_iter_skip_backward(it);
}

static void table_iter_next(kv_iter *base)
{
    table_iter *it = (table_iter *)base;
    assert(table_iter_valid(base));
    kv_iter_next(it->data_iter);
    table_iter_skip_forward(it);
}

static void table_iter_prev(kv_iter *base)
{
    table_iter *it = (table_iter *)base;
    assert(table_iter_valid(base));
    kv_iter_prev(it->data_iter);
    table_iter_skip_backward(it);
}

static kv_slice table_iter_key(kv_iter *base)
{
    assert(table_iter_valid(base));
    return kv_iter_key(((table_iter *)base)->data_iter);
}

static kv_slice table_iter_value(kv_iter *base)
{
    assert(table_iter_valid(base));
    return kv_iter_value(((table_iter *)base)->data_iter);
}

static int table_iter_status(kv_iter *base)
{
    return ((table_iter *)base)->status;
}

/* Frees what table_iter_init allocated (not the struct itself). */
static void table_iter_cleanup(table_iter *it)
{
    kv_iter_destroy(it->data_iter);
    kv_iter_destroy(it->index_iter);
    if (it->run_end - it->run_begin >= RELEASE_AT_END_BYTES)
        kv_random_release_pages(it->table->file, it->run_begin, it->run_end);
    if (it->on_destroy)
        it->on_destroy(it->on_destroy_arg);
}

static void table_iter_destroy(kv_iter *base)
{
    table_iter_cleanup((table_iter *)base);
    free(base);
}

static const struct kv_iter_ops table_iter_ops = {
    .valid = table_iter_valid,
    .seek_to_first = table_iter_seek_to_first,
    .seek_to_last = table_iter_seek_to_last,
    .seek = table_iter_seek,
    .next = table_iter_next,
    .prev = table_iter_prev,
    .key = table_iter_key,
    .value = table_iter_value,
    .status = table_iter_status,
    .destroy = table_iter_destroy,
};

static void table_iter_init(table_iter *it, kv_table *table, bool fill_cache,
                            void (*on_destroy)(void *arg), void *arg)
{
    memset(it, 0, sizeof(*it));
    it->base.ops = &table_iter_ops;
    it->table = table;
    it->fill_cache = fill_cache;
    it->index_iter = kv_block_iter_create(table->index_block, table_key_compare, NULL, NULL);
    it->on_destroy = on_destroy;
    it->on_destroy_arg = arg;
}

kv_iter *kv_table_iter_create(kv_table *table, bool fill_cache, void (*on_destroy)(void *arg),
                              void *arg)
{
    table_iter *it = kv_malloc(sizeof(*it));
    table_iter_init(it, table, fill_cache, on_destroy, arg);
    return &it->base;
}

/* ---- point lookups ---- */

int kv_table_get(kv_table *table, kv_lookup *lookup, bool fill_cache)
{
    lookup->state = KV_LOOKUP_NONE;
    if (table->filter) {
        atomic_fetch_add_explicit(&table->bloom_checked, 1, memory_order_relaxed);
        if (!kv_bloom_may_match(kv_slice_make(table->filter, table->filter_size),
                                lookup->user_key)) {
            atomic_fetch_add_explicit(&table->bloom_useful, 1, memory_order_relaxed);
            return 0;
        }
    }
    kv_buf target = {0};
    kv_ikey_append(&target, lookup->user_key, lookup->snapshot, KV_TYPE_FOR_SEEK);
    table_iter it;
    table_iter_init(&it, table, fill_cache, NULL, NULL);
    table_iter_seek(&it.base, kv_buf_slice(&target));
    int rc = it.status;
    if (rc == 0 && table_iter_valid(&it.base)) {
        kv_slice user_key;
        kv_seq seq;
        int type;
        if (!kv_ikey_parse(table_iter_key(&it.base), &user_key, &seq, &type)) {
            rc = table_corruption(table, "malformed internal key in block", it.data_handle.offset);
        } else if (kv_slice_equal(user_key, lookup->user_key) && seq <= lookup->snapshot) {
            if (kv_type_is_value(type)) {
                lookup->state = KV_LOOKUP_VALUE;
                lookup->is_blob = type == KV_TYPE_BLOB_INDEX;
                lookup->seq = seq;
                if (lookup->value) {
                    kv_slice value = table_iter_value(&it.base);
                    kv_buf_set(lookup->value, value.data, value.size);
                }
            } else if (type == KV_TYPE_DELETION) {
                lookup->state = KV_LOOKUP_DELETED;
                lookup->seq = seq;
            } else {
                rc = table_corruption(table, "unexpected entry type in data block",
                                      it.data_handle.offset);
            }
        }
    }
    table_iter_cleanup(&it);
    kv_buf_free(&target);
    return rc;
}

/* ---- the rest ---- */

kv_frag_tombstones *kv_table_range_tombstones(kv_table *table)
{
    return table->tombstones;
}

const kv_table_properties *kv_table_get_properties(const kv_table *table)
{
    return &table->props;
}

uint64_t kv_table_approximate_offset(kv_table *table, kv_slice ikey)
{
    /* Past the last key: where the data blocks end. */
    uint64_t result =
        table->has_properties ? table->props.data_size : table->footer.metaindex.offset;
    kv_iter *index = kv_block_iter_create(table->index_block, table_key_compare, NULL, NULL);
    kv_iter_seek(index, ikey);
    if (kv_iter_valid(index)) {
        kv_slice value = kv_iter_value(index);
        kv_block_handle h;
        if (kv_block_handle_decode(&value, &h))
            result = h.offset;
    }
    kv_iter_destroy(index);
    return result;
}

uint64_t kv_table_bloom_checked(const kv_table *table)
{
    return atomic_load_explicit(&((kv_table *)table)->bloom_checked, memory_order_relaxed);
}

uint64_t kv_table_bloom_useful(const kv_table *table)
{
    return atomic_load_explicit(&((kv_table *)table)->bloom_useful, memory_order_relaxed);
}

/* Checks one data block: checksum, entry format, and key order. */
static int table_verify_data_block(kv_table *t, const kv_block_handle *h)
{
    kv_block *block;
    int rc = table_read_block(t, h, &block);
    if (rc < 0)
        return rc;
    kv_iter *it = kv_block_iter_create(block, table_key_compare, NULL, NULL);
    kv_buf previous = {0};
    for (kv_iter_seek_to_first(it); rc == 0 && kv_iter_valid(it); kv_iter_next(it)) {
        kv_slice key = kv_iter_key(it);
        kv_slice user_key;
        kv_seq seq;
        int type;
        if (!kv_ikey_parse(key, &user_key, &seq, &type))
            rc = table_corruption(t, "malformed internal key in block", h->offset);
        else if (previous.size > 0 && table_key_compare(kv_buf_slice(&previous), key) >= 0)
            rc = table_corruption(t, "keys out of order in block", h->offset);
        kv_buf_set(&previous, key.data, key.size);
    }
    if (rc == 0 && kv_iter_status(it) < 0)
        rc = table_corruption(t, "malformed block entry", h->offset);
    kv_buf_free(&previous);
    kv_iter_destroy(it);
    kv_block_destroy(block);
    return rc;
}

/* Reads a meta block only to check its checksum. */
static int table_verify_raw_block(kv_table *t, const kv_block_handle *h)
{
    char *contents;
    size_t size;
    int rc = kv_read_block(t->file, t->name, h, &contents, &size);
    free(contents);
    return rc;
}

int kv_table_verify(kv_table *table)
{
    int rc = 0;
    kv_iter *index = kv_block_iter_create(table->index_block, table_key_compare, NULL, NULL);
    for (kv_iter_seek_to_first(index); rc == 0 && kv_iter_valid(index); kv_iter_next(index)) {
        kv_slice value = kv_iter_value(index);
        kv_block_handle h;
        if (!kv_block_handle_decode(&value, &h))
            rc = table_corruption(table, "malformed index entry", table->footer.index.offset);
        else
            rc = table_verify_data_block(table, &h);
    }
    if (rc == 0 && kv_iter_status(index) < 0)
        rc = table_corruption(table, "malformed index block", table->footer.index.offset);
    kv_iter_destroy(index);

    if (rc == 0)
        rc = table_verify_raw_block(table, &table->footer.index);
    if (rc == 0)
        rc = table_verify_raw_block(table, &table->footer.metaindex);
    if (rc == 0 && table->filter)
        rc = table_verify_raw_block(table, &table->filter_handle);
    if (rc == 0 && table->tombstones)
        rc = table_verify_raw_block(table, &table->range_del_handle);
    if (rc == 0 && table->has_properties)
        rc = table_verify_raw_block(table, &table->properties_handle);
    return rc;
}
