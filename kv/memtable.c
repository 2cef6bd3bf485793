/*
 * memtable.c — a column family's in-memory write buffer (LevelDB/RocksDB
 * MemTable): point entries in one skiplist, range tombstones in another,
 * all bytes in one arena.
 *
 * Both skiplists hold entries encoded as
 *   varint32 internal_key_size || internal key || varint32 value_size || value
 * and order them by kv_ikey_compare. A range tombstone [begin, end) @ seq
 * is the entry (ikey(begin, seq, RANGE_DELETION), end).
 *
 * Concurrency: one writer (kv_memtable_add) and lock-free readers. Counters
 * are atomics. The fragmented view of the range tombstones is cached and
 * rebuilt under a mutex when the tombstone count has moved since the
 * cached build. A point lookup does not rebuild it for every new
 * tombstone: the tombstones added since the build are also kept in
 * insertion order (the range log), and a lookup checks those few one by
 * one; the view is rebuilt only when they grow past a bound that grows
 * with the square root of the count. So a workload that mixes
 * DeleteRange with reads costs O(sqrt n) per read, not O(n log n).
 */
#include "memtable.h"

#include "arena.h"
#include "coding.h"
#include "skiplist.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#define RANGE_LOG_CHUNK 256
#define RANGE_LOG_CHUNKS 4096 /* past 1M tombstones lookups rebuild as before */

struct kv_memtable {
    atomic_int refs;
    uint64_t id;
    kv_arena arena;
    kv_skiplist *table;       /* point entries */
    kv_skiplist *range_table; /* range tombstones */

    _Atomic uint64_t num_entries; /* all adds, range tombstones included */
    _Atomic uint64_t num_deletes;
    /* Bumped (release) after a tombstone is linked into range_table, so a
     * reader that loads a count (acquire) finds at least that many there. */
    _Atomic uint64_t num_range_deletes;
    _Atomic uint64_t data_size;
    _Atomic kv_seq first_seq;
    _Atomic kv_seq last_seq;
    _Atomic uint64_t next_log_number;

    /* range_log[i / RANGE_LOG_CHUNK][i % RANGE_LOG_CHUNK] is the i-th range
     * tombstone entry added; chunks come from the arena. Published by the
     * release increment of num_range_deletes. */
    const char **range_log[RANGE_LOG_CHUNKS];

    pthread_mutex_t tombstones_mutex; /* guards the two fields below */
    kv_frag_tombstones *cached_tombstones;
    uint64_t cached_tombstones_count; /* num_range_deletes it was built at */

    /* Blob files this memtable has indexes into, each with a reference
     * (written by the one writer, read only after it is done). */
    kv_blob_file **blobs;
    size_t num_blobs;
    _Atomic uint64_t min_blob; /* smallest number in blobs (UINT64_MAX: none) */
};

/* ---- entries ---- */

/* The internal key of an entry (or of a lookup key, encoded the same way
 * without the value part). */
static kv_slice entry_ikey(const char *entry)
{
    uint32_t size;
    const char *p = kv_decode_varint32(entry, entry + KV_MAX_VARINT32_LENGTH, &size);
    assert(p != NULL);
    return kv_slice_make(p, size);
}

/* Values longer than this are stored apart from their entry, which keeps
 * a pointer to them: the skiplist's nodes and keys then stay dense (a few
 * dozen bytes per entry, not 4 KiB), so that a search or a scan touches a
 * few pages instead of one page per hop. */
#define INLINE_VALUE_MAX 256

static kv_slice entry_value(const char *entry)
{
    kv_slice ikey = entry_ikey(entry);
    const char *p = ikey.data + ikey.size;
    uint32_t size;
    p = kv_decode_varint32(p, p + KV_MAX_VARINT32_LENGTH, &size);
    assert(p != NULL);
    if (size > INLINE_VALUE_MAX) {
        const char *value;
        memcpy(&value, p, sizeof(value));
        return kv_slice_make(value, size);
    }
    return kv_slice_make(p, size);
}

/* Writes varint32(size) || user_key || trailer at dst (room for
 * entry_ikey_size bytes): the head of an entry, and alone a search key.
 * Returns the byte past it. */
static char *encode_entry_ikey(char *dst, kv_slice user_key, kv_seq seq, int type)
{
    char *p = kv_encode_varint32(dst, (uint32_t)(user_key.size + 8));
    if (user_key.size > 0)
        memcpy(p, user_key.data, user_key.size);
    p += user_key.size;
    kv_encode_fixed64(p, kv_pack_seq_type(seq, type));
    return p + 8;
}

static size_t entry_ikey_size(kv_slice user_key)
{
    return (size_t)kv_varint_length(user_key.size + 8) + user_key.size + 8;
}

static int compare_entries(const char *a, const char *b)
{
    return kv_ikey_compare(entry_ikey(a), entry_ikey(b));
}

/* ---- life cycle ---- */

kv_memtable *kv_memtable_create(uint64_t id)
{
    kv_memtable *mem = kv_calloc(1, sizeof(*mem));
    atomic_init(&mem->refs, 1);
    mem->id = id;
    kv_arena_init(&mem->arena);
    mem->table = kv_skiplist_create(&mem->arena, compare_entries);
    mem->range_table = kv_skiplist_create(&mem->arena, compare_entries);
    atomic_init(&mem->num_entries, 0);
    atomic_init(&mem->num_deletes, 0);
    atomic_init(&mem->num_range_deletes, 0);
    atomic_init(&mem->data_size, 0);
    atomic_init(&mem->min_blob, UINT64_MAX);
    atomic_init(&mem->first_seq, 0);
    atomic_init(&mem->last_seq, 0);
    atomic_init(&mem->next_log_number, 0);
    pthread_mutex_init(&mem->tombstones_mutex, NULL);
    return mem;
}

void kv_memtable_ref(kv_memtable *mem)
{
    atomic_fetch_add_explicit(&mem->refs, 1, memory_order_relaxed);
}

void kv_memtable_unref(kv_memtable *mem)
{
    if (mem == NULL)
        return;
    int before = atomic_fetch_sub_explicit(&mem->refs, 1, memory_order_acq_rel);
    assert(before > 0);
    if (before != 1)
        return;
    kv_frag_tombstones_unref(mem->cached_tombstones);
    for (size_t i = 0; i < mem->num_blobs; i++)
        kv_blob_file_unref(mem->blobs[i]);
    free(mem->blobs);
    pthread_mutex_destroy(&mem->tombstones_mutex);
    kv_arena_destroy(&mem->arena);
    free(mem);
}

uint64_t kv_memtable_id(const kv_memtable *mem)
{
    return mem->id;
}

/* ---- writing ---- */

void kv_memtable_pin_blob(kv_memtable *mem, kv_blob_file *file)
{
    for (size_t i = mem->num_blobs; i > 0; i--)
        if (mem->blobs[i - 1] == file)
            return;
    mem->blobs = kv_realloc(mem->blobs, (mem->num_blobs + 1) * sizeof(*mem->blobs));
    kv_blob_file_ref(file);
    mem->blobs[mem->num_blobs++] = file;
    if (file->number < atomic_load(&mem->min_blob))
        atomic_store(&mem->min_blob, file->number);
}

uint64_t kv_memtable_min_blob(const kv_memtable *mem)
{
    return atomic_load(&((kv_memtable *)mem)->min_blob);
}

void kv_memtable_add(kv_memtable *mem, kv_seq seq, int type, kv_slice key, kv_slice value)
{
    assert(kv_type_is_value(type) || type == KV_TYPE_DELETION || type == KV_TYPE_RANGE_DELETION);
    assert(key.size + 8 <= UINT32_MAX && value.size <= UINT32_MAX);
    uint32_t value_size = (uint32_t)value.size;
    bool inline_value = value_size <= INLINE_VALUE_MAX;
    size_t stored_size = inline_value ? value_size : sizeof(char *);
    size_t encoded_size = entry_ikey_size(key) + (size_t)kv_varint_length(value_size) + stored_size;

    kv_skiplist *list = type == KV_TYPE_RANGE_DELETION ? mem->range_table : mem->table;
    char *entry = kv_skiplist_allocate_key(list, encoded_size);
    char *p = encode_entry_ikey(entry, key, seq, type);
    p = kv_encode_varint32(p, value_size);
    if (inline_value) {
        if (value_size > 0)
            memcpy(p, value.data, value_size);
    } else {
        char *stored = kv_arena_allocate(&mem->arena, value_size);
        memcpy(stored, value.data, value_size);
        memcpy(p, &stored, sizeof(stored));
    }
    assert(p + stored_size == entry + encoded_size);

    if (type == KV_TYPE_RANGE_DELETION) {
        uint64_t index = atomic_load_explicit(&mem->num_range_deletes, memory_order_relaxed);
        if (index < (uint64_t)RANGE_LOG_CHUNK * RANGE_LOG_CHUNKS) {
            const char ***chunk = &mem->range_log[index / RANGE_LOG_CHUNK];
            if (index % RANGE_LOG_CHUNK == 0)
                *chunk = kv_arena_allocate_aligned(&mem->arena, RANGE_LOG_CHUNK * sizeof(char *));
            (*chunk)[index % RANGE_LOG_CHUNK] = entry;
        }
        kv_skiplist_insert_allocated(list, entry);
        atomic_fetch_add_explicit(&mem->num_range_deletes, 1, memory_order_release);
    } else {
        kv_skiplist_insert_allocated(list, entry);
        if (type == KV_TYPE_DELETION)
            atomic_fetch_add_explicit(&mem->num_deletes, 1, memory_order_relaxed);
    }

    /* One writer: plain read-modify-write sequences are enough; the
     * atomics only make the values safe to read from other threads. */
    uint64_t entries_before = atomic_load_explicit(&mem->num_entries, memory_order_relaxed);
    if (entries_before == 0 || seq < atomic_load_explicit(&mem->first_seq, memory_order_relaxed))
        atomic_store_explicit(&mem->first_seq, seq, memory_order_relaxed);
    if (entries_before == 0 || seq > atomic_load_explicit(&mem->last_seq, memory_order_relaxed))
        atomic_store_explicit(&mem->last_seq, seq, memory_order_relaxed);
    atomic_fetch_add_explicit(&mem->data_size, key.size + value.size, memory_order_relaxed);
    atomic_fetch_add_explicit(&mem->num_entries, 1, memory_order_release);
}

/* ---- reading ---- */

void kv_memtable_get(kv_memtable *mem, kv_lookup *lookup)
{
    assert(lookup->snapshot <= KV_MAX_SEQUENCE);
    lookup->state = KV_LOOKUP_NONE;

    /* The search key: varint32 size || user_key || trailer. The type
     * KV_TYPE_FOR_SEEK makes it sort before every entry of the user key
     * with sequence <= snapshot and after all newer ones. */
    char stack_space[128];
    size_t key_size = entry_ikey_size(lookup->user_key);
    char *search_key = key_size <= sizeof(stack_space) ? stack_space : kv_malloc(key_size);
    encode_entry_ikey(search_key, lookup->user_key, lookup->snapshot, KV_TYPE_FOR_SEEK);

    kv_skiplist_iter it;
    kv_skiplist_iter_init(&it, mem->table);
    kv_skiplist_iter_seek(&it, search_key);
    if (search_key != stack_space)
        free(search_key);
    if (!kv_skiplist_iter_valid(&it))
        return;

    const char *entry = kv_skiplist_iter_key(&it);
    kv_slice user_key;
    kv_seq seq;
    int type;
    bool parsed = kv_ikey_parse(entry_ikey(entry), &user_key, &seq, &type);
    assert(parsed);
    (void)parsed;
    if (!kv_slice_equal(user_key, lookup->user_key))
        return;
    assert(seq <= lookup->snapshot);
    lookup->seq = seq;
    if (kv_type_is_value(type)) {
        lookup->state = KV_LOOKUP_VALUE;
        lookup->is_blob = type == KV_TYPE_BLOB_INDEX;
        if (lookup->value != NULL) {
            kv_slice value = entry_value(entry);
            kv_buf_set(lookup->value, value.data, value.size);
        }
    } else {
        assert(type == KV_TYPE_DELETION);
        lookup->state = KV_LOOKUP_DELETED;
    }
}

/* Builds the fragmented list from every tombstone currently linked (at
 * least `count` of them; possibly a few more that the writer is adding,
 * which is harmless: they are real tombstones of this memtable). */
static kv_frag_tombstones *build_tombstones(kv_memtable *mem, uint64_t count)
{
    size_t cap = count + 16;
    size_t n = 0;
    kv_range_tombstone *items = kv_malloc(cap * sizeof(*items));
    kv_skiplist_iter it;
    kv_skiplist_iter_init(&it, mem->range_table);
    for (kv_skiplist_iter_seek_to_first(&it); kv_skiplist_iter_valid(&it);
         kv_skiplist_iter_next(&it)) {
        const char *entry = kv_skiplist_iter_key(&it);
        kv_range_tombstone *t;
        if (n == cap) {
            cap *= 2;
            items = kv_realloc(items, cap * sizeof(*items));
        }
        t = &items[n++];
        int type;
        bool parsed = kv_ikey_parse(entry_ikey(entry), &t->begin, &t->seq, &type);
        assert(parsed && type == KV_TYPE_RANGE_DELETION);
        (void)parsed;
        t->end = entry_value(entry);
    }
    assert(n >= count);
    kv_frag_tombstones *list = kv_frag_tombstones_build(items, n, KV_MAX_SEQUENCE);
    free(items);
    return list;
}

kv_frag_tombstones *kv_memtable_range_tombstones(kv_memtable *mem)
{
    uint64_t count = atomic_load_explicit(&mem->num_range_deletes, memory_order_acquire);
    if (count == 0)
        return NULL;
    pthread_mutex_lock(&mem->tombstones_mutex);
    if (mem->cached_tombstones == NULL || mem->cached_tombstones_count != count) {
        kv_frag_tombstones_unref(mem->cached_tombstones);
        mem->cached_tombstones = build_tombstones(mem, count);
        mem->cached_tombstones_count = count;
    }
    kv_frag_tombstones *list = mem->cached_tombstones;
    kv_frag_tombstones_ref(list);
    pthread_mutex_unlock(&mem->tombstones_mutex);
    return list;
}

/* How many tombstones past the cached view a lookup checks one by one
 * before it rebuilds the view: about 2 sqrt(count), at least 32. */
static uint64_t range_log_bound(uint64_t count)
{
    uint64_t bound = 32;
    while (bound * bound < 4 * count)
        bound *= 2;
    return bound;
}

kv_seq kv_memtable_max_covering_tombstone(kv_memtable *mem, kv_slice user_key, kv_seq snapshot)
{
    uint64_t count = atomic_load_explicit(&mem->num_range_deletes, memory_order_acquire);
    if (count == 0)
        return 0;
    pthread_mutex_lock(&mem->tombstones_mutex);
    kv_frag_tombstones *list = mem->cached_tombstones;
    uint64_t cached = mem->cached_tombstones_count;
    if (list != NULL)
        kv_frag_tombstones_ref(list);
    pthread_mutex_unlock(&mem->tombstones_mutex);
    if (list == NULL || count - cached > range_log_bound(count) ||
        count > (uint64_t)RANGE_LOG_CHUNK * RANGE_LOG_CHUNKS) {
        kv_frag_tombstones_unref(list);
        list = kv_memtable_range_tombstones(mem);
        cached = count;
    }
    kv_seq seq = kv_frag_tombstones_max_covering(list, user_key, snapshot);
    kv_frag_tombstones_unref(list);
    /* The tombstones added since the view was built (the view may hold
     * some of them too: checking one twice is harmless). */
    for (uint64_t i = cached; i < count; i++) {
        const char *entry = mem->range_log[i / RANGE_LOG_CHUNK][i % RANGE_LOG_CHUNK];
        kv_slice begin;
        kv_seq tombstone_seq;
        int type;
        bool parsed = kv_ikey_parse(entry_ikey(entry), &begin, &tombstone_seq, &type);
        assert(parsed && type == KV_TYPE_RANGE_DELETION);
        (void)parsed;
        if (tombstone_seq > seq && tombstone_seq <= snapshot &&
            kv_slice_compare(begin, user_key) <= 0 &&
            kv_slice_compare(user_key, entry_value(entry)) < 0)
            seq = tombstone_seq;
    }
    return seq;
}

/* ---- counters ---- */

size_t kv_memtable_memory_usage(const kv_memtable *mem)
{
    return kv_arena_memory_usage(&mem->arena);
}

#define LOAD_COUNTER(field) atomic_load_explicit(&((kv_memtable *)mem)->field, memory_order_relaxed)

uint64_t kv_memtable_num_entries(const kv_memtable *mem)
{
    return LOAD_COUNTER(num_entries);
}

uint64_t kv_memtable_num_deletes(const kv_memtable *mem)
{
    return LOAD_COUNTER(num_deletes);
}

uint64_t kv_memtable_num_range_deletes(const kv_memtable *mem)
{
    return LOAD_COUNTER(num_range_deletes);
}

uint64_t kv_memtable_data_size(const kv_memtable *mem)
{
    return LOAD_COUNTER(data_size);
}

kv_seq kv_memtable_first_seq(const kv_memtable *mem)
{
    return LOAD_COUNTER(first_seq);
}

kv_seq kv_memtable_last_seq(const kv_memtable *mem)
{
    return LOAD_COUNTER(last_seq);
}

void kv_memtable_set_next_log_number(kv_memtable *mem, uint64_t log_number)
{
    atomic_store_explicit(&mem->next_log_number, log_number, memory_order_relaxed);
}

uint64_t kv_memtable_next_log_number(const kv_memtable *mem)
{
    return LOAD_COUNTER(next_log_number);
}

/* ---- iterator ---- */

typedef struct memtable_iter {
    kv_iter base;
    kv_memtable *mem;
    kv_skiplist_iter pos;
    kv_buf seek_key;
} memtable_iter;

static memtable_iter *as_memtable_iter(kv_iter *it)
{
    return (memtable_iter *)it;
}

static bool memtable_iter_valid(kv_iter *it)
{
    return kv_skiplist_iter_valid(&as_memtable_iter(it)->pos);
}

static void memtable_iter_seek_to_first(kv_iter *it)
{
    kv_skiplist_iter_seek_to_first(&as_memtable_iter(it)->pos);
}

static void memtable_iter_seek_to_last(kv_iter *it)
{
    kv_skiplist_iter_seek_to_last(&as_memtable_iter(it)->pos);
}

static void memtable_iter_seek(kv_iter *it, kv_slice target)
{
    memtable_iter *mi = as_memtable_iter(it);
    assert(target.size >= 8);
    kv_buf_clear(&mi->seek_key);
    kv_put_length_prefixed(&mi->seek_key, target);
    kv_skiplist_iter_seek(&mi->pos, mi->seek_key.data);
}

static void memtable_iter_next(kv_iter *it)
{
    kv_skiplist_iter_next(&as_memtable_iter(it)->pos);
}

static void memtable_iter_prev(kv_iter *it)
{
    kv_skiplist_iter_prev(&as_memtable_iter(it)->pos);
}

static kv_slice memtable_iter_key(kv_iter *it)
{
    return entry_ikey(kv_skiplist_iter_key(&as_memtable_iter(it)->pos));
}

static kv_slice memtable_iter_value(kv_iter *it)
{
    return entry_value(kv_skiplist_iter_key(&as_memtable_iter(it)->pos));
}

static int memtable_iter_status(kv_iter *it)
{
    return 0;
}

static void memtable_iter_destroy(kv_iter *it)
{
    memtable_iter *mi = as_memtable_iter(it);
    kv_buf_free(&mi->seek_key);
    kv_memtable_unref(mi->mem);
    free(mi);
}

static const struct kv_iter_ops memtable_iter_ops = {
    .valid = memtable_iter_valid,
    .seek_to_first = memtable_iter_seek_to_first,
    .seek_to_last = memtable_iter_seek_to_last,
    .seek = memtable_iter_seek,
    .next = memtable_iter_next,
    .prev = memtable_iter_prev,
    .key = memtable_iter_key,
    .value = memtable_iter_value,
    .status = memtable_iter_status,
    .destroy = memtable_iter_destroy,
};

kv_iter *kv_memtable_iter_create(kv_memtable *mem)
{
    memtable_iter *mi = kv_calloc(1, sizeof(*mi));
    mi->base.ops = &memtable_iter_ops;
    kv_memtable_ref(mem);
    mi->mem = mem;
    kv_skiplist_iter_init(&mi->pos, mem->table);
    return &mi->base;
}
