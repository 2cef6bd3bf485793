/*
 * blob.c — blob file records, blob indexes, and the set of a database's
 * blob files with its cache of open ones (blob.h).
 */
#include "blob.h"

#include "coding.h"
#include "crc32c.h"
#include "error.h"
#include "filename.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- indexes and records ---- */

void kv_blob_ref_encode(const kv_blob_ref *ref, kv_buf *dst)
{
    kv_put_varint64(dst, ref->file);
    kv_put_varint64(dst, ref->offset);
    kv_put_varint32(dst, ref->size);
}

bool kv_blob_ref_decode(kv_slice input, kv_blob_ref *ref)
{
    return kv_get_varint64(&input, &ref->file) && kv_get_varint64(&input, &ref->offset) &&
           kv_get_varint32(&input, &ref->size) && input.size == 0 && ref->file != 0 &&
           ref->offset >= KV_BLOB_HEADER_SIZE && ref->size > 4;
}

void kv_blob_header_encode(char header[KV_BLOB_HEADER_SIZE])
{
    memcpy(header, KV_BLOB_MAGIC, 8);
    kv_encode_fixed32(header + 8, KV_BLOB_FORMAT_VERSION);
    kv_encode_fixed32(header + 12, 0);
}

int kv_blob_header_check(kv_slice header, const char *path)
{
    if (header.size < KV_BLOB_HEADER_SIZE || memcmp(header.data, KV_BLOB_MAGIC, 8) != 0)
        return kv_error(KV_CORRUPTION, "%s: not a blob file (bad magic at offset 0)", path);
    uint32_t version = kv_decode_fixed32(header.data + 8);
    if (version > KV_BLOB_FORMAT_VERSION)
        return kv_error(KV_NOT_SUPPORTED,
                        "%s: blob file format version %" PRIu32 ", this library reads up to %d",
                        path, version, KV_BLOB_FORMAT_VERSION);
    if (version == 0)
        return kv_error(KV_CORRUPTION, "%s: blob file format version 0 at offset 8", path);
    return 0;
}

size_t kv_blob_record_append(kv_buf *dst, kv_slice key, kv_slice value)
{
    size_t start = dst->size;
    kv_buf_resize(dst, start + 4);
    kv_put_varint32(dst, (uint32_t)key.size);
    kv_put_varint32(dst, (uint32_t)value.size);
    kv_buf_append(dst, key.data, key.size);
    kv_buf_append(dst, value.data, value.size);
    uint32_t crc = kv_crc32c(dst->data + start + 4, dst->size - start - 4);
    kv_encode_fixed32(dst->data + start, kv_crc32c_mask(crc));
    return dst->size - start;
}

int kv_blob_record_parse(kv_slice record, kv_slice key, const char *path, uint64_t offset,
                         kv_slice *value)
{
    if (record.size < 6)
        return kv_error(KV_CORRUPTION, "%s: blob record of %zu bytes at offset %" PRIu64, path,
                        record.size, offset);
    uint32_t expected = kv_crc32c_unmask(kv_decode_fixed32(record.data));
    if (kv_crc32c(record.data + 4, record.size - 4) != expected)
        return kv_error(KV_CORRUPTION, "%s: blob record checksum mismatch at offset %" PRIu64, path,
                        offset);
    kv_slice in = kv_slice_make(record.data + 4, record.size - 4);
    uint32_t key_len, value_len;
    if (!kv_get_varint32(&in, &key_len) || !kv_get_varint32(&in, &value_len) ||
        (uint64_t)key_len + value_len != in.size)
        return kv_error(KV_CORRUPTION, "%s: blob record lengths do not add up at offset %" PRIu64,
                        path, offset);
    if (!kv_slice_equal(kv_slice_make(in.data, key_len), key))
        return kv_error(KV_CORRUPTION,
                        "%s: blob record at offset %" PRIu64 " holds another key than its index",
                        path, offset);
    *value = kv_slice_make(in.data + key_len, value_len);
    return 0;
}

/* ---- objects and links ---- */

void kv_blob_file_ref(kv_blob_file *f)
{
    atomic_fetch_add(&f->refs, 1);
}

void kv_blob_file_unref(kv_blob_file *f)
{
    if (f != NULL && atomic_fetch_sub(&f->refs, 1) == 1)
        free(f);
}

void kv_blob_links_add(kv_blob_link **links, size_t *count, uint64_t number, uint64_t bytes)
{
    size_t i = *count;
    while (i > 0 && (*links)[i - 1].number > number)
        i--;
    if (i > 0 && (*links)[i - 1].number == number) {
        (*links)[i - 1].bytes += bytes;
        return;
    }
    *links = kv_realloc(*links, (*count + 1) * sizeof(**links));
    memmove(*links + i + 1, *links + i, (*count - i) * sizeof(**links));
    (*links)[i] = (kv_blob_link){number, bytes, NULL};
    (*count)++;
}

/* ---- the set ---- */

void kv_blob_set_init(kv_blob_set *set, kv_env *env, const char *dbpath)
{
    memset(set, 0, sizeof(*set));
    pthread_mutex_init(&set->mutex, NULL);
    set->env = env;
    set->dbpath = kv_strdup(dbpath);
}

void kv_blob_set_free(kv_blob_set *set)
{
    for (size_t i = 0; i < set->count; i++)
        kv_blob_file_unref(set->files[i]);
    for (int i = 0; i < KV_BLOB_READERS; i++)
        if (set->readers[i].file != NULL)
            kv_random_close(set->readers[i].file);
    free(set->files);
    free(set->dbpath);
    pthread_mutex_destroy(&set->mutex);
    memset(set, 0, sizeof(*set));
}

/* Index of the first file with number >= `number`. Requires the mutex. */
static size_t find_index(const kv_blob_set *set, uint64_t number)
{
    size_t lo = 0, hi = set->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (set->files[mid]->number < number)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

kv_blob_file *kv_blob_set_get(kv_blob_set *set, uint64_t number)
{
    pthread_mutex_lock(&set->mutex);
    size_t i = find_index(set, number);
    kv_blob_file *f;
    if (i < set->count && set->files[i]->number == number) {
        f = set->files[i];
    } else {
        f = kv_calloc(1, sizeof(*f));
        f->number = number;
        atomic_init(&f->refs, 1); /* the set's */
        if (set->count == set->cap) {
            set->cap = set->cap ? 2 * set->cap : 16;
            set->files = kv_realloc(set->files, set->cap * sizeof(*set->files));
        }
        memmove(set->files + i + 1, set->files + i, (set->count - i) * sizeof(*set->files));
        set->files[i] = f;
        set->count++;
    }
    kv_blob_file_ref(f);
    pthread_mutex_unlock(&set->mutex);
    return f;
}

bool kv_blob_set_contains(kv_blob_set *set, uint64_t number)
{
    pthread_mutex_lock(&set->mutex);
    size_t i = find_index(set, number);
    bool found = i < set->count && set->files[i]->number == number;
    pthread_mutex_unlock(&set->mutex);
    return found;
}

size_t kv_blob_set_count(kv_blob_set *set, uint64_t *largest)
{
    pthread_mutex_lock(&set->mutex);
    size_t n = set->count;
    if (largest != NULL)
        *largest = n > 0 ? set->files[n - 1]->number : 0;
    pthread_mutex_unlock(&set->mutex);
    return n;
}

/* Closes the cached reader of `number` now, or when its last user is done
 * (an open descriptor would keep a deleted file's space). Requires the
 * mutex. */
static void drop_reader(kv_blob_set *set, uint64_t number)
{
    for (int i = 0; i < KV_BLOB_READERS; i++) {
        kv_blob_reader *r = &set->readers[i];
        if (r->number != number)
            continue;
        if (r->users == 0) {
            kv_random_close(r->file);
            memset(r, 0, sizeof(*r));
        } else {
            r->deleted = true;
        }
    }
}

uint64_t *kv_blob_set_take_unused(kv_blob_set *set, uint64_t keep, size_t *count)
{
    uint64_t *numbers = NULL;
    size_t n = 0, kept = 0;
    pthread_mutex_lock(&set->mutex);
    for (size_t i = 0; i < set->count; i++) {
        kv_blob_file *f = set->files[i];
        /* Only the set's reference is left: no table, memtable or writer
         * refers to the file, and none can again (references are taken
         * from a table, a memtable or the writer, never from the set alone,
         * except while recovering). */
        if (f->number != keep && atomic_load(&f->refs) == 1) {
            numbers = kv_realloc(numbers, (n + 1) * sizeof(*numbers));
            numbers[n++] = f->number;
            drop_reader(set, f->number);
            kv_blob_file_unref(f);
        } else {
            set->files[kept++] = f;
        }
    }
    set->count = kept;
    pthread_mutex_unlock(&set->mutex);
    *count = n;
    return numbers;
}

/* An open reader of blob file `number` (slot index in *slot, -1 when the
 * file had to be opened outside the cache, which the caller then closes). */
static int acquire_reader(kv_blob_set *set, uint64_t number, uint64_t min_size, kv_random **file,
                          int *slot)
{
    pthread_mutex_lock(&set->mutex);
    set->clock++;
    int victim = -1;
    for (int i = 0; i < KV_BLOB_READERS; i++) {
        kv_blob_reader *r = &set->readers[i];
        if (r->number == number && !r->deleted && r->file->size < min_size && r->users == 0) {
            /* Opened (and mapped) when the file was shorter: reopen. */
            kv_random_close(r->file);
            memset(r, 0, sizeof(*r));
        }
        if (r->number == number && !r->deleted) {
            r->users++;
            r->last_use = set->clock;
            *file = r->file;
            *slot = i;
            pthread_mutex_unlock(&set->mutex);
            return 0;
        }
        if (r->users == 0 &&
            (victim < 0 || r->number == 0 ||
             (set->readers[victim].number != 0 && r->last_use < set->readers[victim].last_use)))
            victim = i;
    }
    char *path = kv_blob_file_name(set->dbpath, number);
    int rc = kv_env_new_random(set->env, path, file);
    free(path);
    if (rc != 0) {
        pthread_mutex_unlock(&set->mutex);
        return rc;
    }
    if (victim < 0) {
        *slot = -1;
    } else {
        kv_blob_reader *r = &set->readers[victim];
        if (r->file != NULL)
            kv_random_close(r->file);
        r->number = number;
        r->file = *file;
        r->users = 1;
        r->last_use = set->clock;
        *slot = victim;
    }
    pthread_mutex_unlock(&set->mutex);
    return 0;
}

static void release_reader(kv_blob_set *set, kv_random *file, int slot)
{
    if (slot < 0) {
        kv_random_close(file);
        return;
    }
    pthread_mutex_lock(&set->mutex);
    kv_blob_reader *r = &set->readers[slot];
    if (--r->users == 0 && r->deleted) {
        kv_random_close(r->file);
        memset(r, 0, sizeof(*r));
    }
    pthread_mutex_unlock(&set->mutex);
}

/* Reads up to n bytes at offset of blob file `file` into dst (resized to
 * what was read). */
static int read_bytes(kv_blob_set *set, uint64_t number, uint64_t offset, size_t n, kv_buf *dst)
{
    kv_random *file;
    int slot;
    int rc = acquire_reader(set, number, 0, &file, &slot);
    if (rc != 0)
        return rc;
    kv_buf_resize(dst, n);
    size_t got = 0;
    rc = kv_random_read(file, offset, n, dst->data, &got);
    release_reader(set, file, slot);
    if (rc == 0)
        kv_buf_resize(dst, got);
    return rc;
}

/* Errors name the file as table errors do: by its name in the directory. */
static int short_record(const kv_blob_ref *ref)
{
    return kv_error(KV_CORRUPTION,
                    "%06" PRIu64 ".blob: blob record of %" PRIu32 " bytes at offset %" PRIu64
                    " runs past the end of the file",
                    ref->file, ref->size, ref->offset);
}

static int parse_at(kv_slice record, const kv_blob_ref *ref, kv_slice key, kv_slice *value)
{
    char name[32];
    snprintf(name, sizeof(name), "%06" PRIu64 ".blob", ref->file);
    return kv_blob_record_parse(record, key, name, ref->offset, value);
}

static bool all_zeros(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return false;
    return true;
}

int kv_blob_set_verify_file(kv_blob_set *set, uint64_t number, uint64_t *bytes)
{
    char name[32];
    snprintf(name, sizeof(name), "%06" PRIu64 ".blob", number);
    char *path = kv_blob_file_name(set->dbpath, number);
    uint64_t size = 0;
    int rc = kv_env_file_size(path, &size);
    free(path);
    *bytes = size;
    if (rc != 0)
        return rc;
    kv_buf buf = {0};
    rc = read_bytes(set, number, 0, KV_BLOB_HEADER_SIZE, &buf);
    if (rc == 0)
        rc = kv_blob_header_check(kv_buf_slice(&buf), name);
    uint64_t offset = KV_BLOB_HEADER_SIZE;
    while (rc == 0 && offset < size) {
        rc = read_bytes(set, number, offset, KV_BLOB_RECORD_HEADER_MAX, &buf);
        if (rc != 0)
            break;
        kv_slice in = kv_slice_make(buf.data + 4, buf.size >= 4 ? buf.size - 4 : 0);
        uint32_t key_len, value_len;
        if (buf.size < 6 || !kv_get_varint32(&in, &key_len) || !kv_get_varint32(&in, &value_len)) {
            if (!all_zeros(buf.data, buf.size))
                rc = kv_error(KV_CORRUPTION, "%s: bad blob record header at offset %" PRIu64, name,
                              offset);
            break;
        }
        size_t header = (size_t)(in.data - buf.data);
        uint64_t record = header + (uint64_t)key_len + value_len;
        if (offset + record > size)
            break; /* the last append, cut short */
        rc = read_bytes(set, number, offset, (size_t)record, &buf);
        if (rc != 0)
            break;
        kv_slice value;
        uint64_t next = offset + record;
        rc = kv_blob_record_parse(kv_buf_slice(&buf), kv_slice_make(buf.data + header, key_len),
                                  name, offset, &value);
        if (rc != 0 && next == size && all_zeros(buf.data, buf.size))
            rc = 0; /* zeros at the end */
        offset = next;
    }
    kv_buf_free(&buf);
    return rc;
}

int kv_blob_set_read_record(kv_blob_set *set, const kv_blob_ref *ref, kv_buf *out)
{
    return read_bytes(set, ref->file, ref->offset, ref->size, out);
}

int kv_blob_set_read(kv_blob_set *set, const kv_blob_ref *ref, kv_slice key, kv_buf *out)
{
    kv_buf record = {0};
    int rc = read_bytes(set, ref->file, ref->offset, ref->size, &record);
    if (rc == 0 && record.size < ref->size)
        rc = short_record(ref);
    kv_slice value;
    if (rc == 0)
        rc = parse_at(kv_buf_slice(&record), ref, key, &value);
    if (rc == 0) {
        /* The value sits at the end of the record: move it to the front. */
        size_t start = (size_t)(value.data - record.data);
        memmove(record.data, record.data + start, value.size);
        kv_buf_resize(&record, value.size);
        kv_buf_free(out);
        *out = record;
        return 0;
    }
    kv_buf_free(&record);
    return rc;
}

void kv_blob_readahead_free(kv_blob_set *set, kv_blob_readahead *ra)
{
    if (ra->held != NULL)
        release_reader(set, ra->held, ra->held_slot);
    ra->held = NULL;
    kv_buf_free(&ra->buf);
    ra->file = 0;
}

int kv_blob_set_read_ahead(kv_blob_set *set, const kv_blob_ref *ref, kv_slice key,
                           kv_blob_readahead *ra, kv_slice *value)
{
    /* In place, from the mapping of the file read last or of this one. */
    uint64_t end = ref->offset + ref->size;
    if (ra->held != NULL && (ra->held_number != ref->file || ra->held->size < end)) {
        release_reader(set, ra->held, ra->held_slot);
        ra->held = NULL;
    }
    if (ra->held == NULL && acquire_reader(set, ref->file, end, &ra->held, &ra->held_slot) == 0) {
        ra->held_number = ref->file;
        ra->released = 0;
    }
    if (ra->held != NULL && ra->held->map != NULL && end <= ra->held->size) {
        /* Hand back the pages a sequential reader has left behind, so that
         * they do not stay counted in the process's resident memory. */
        if (ref->offset >= ra->released + (4u << 20)) {
            kv_random_release_pages(ra->held, ra->released, ref->offset);
            ra->released = ref->offset;
        }
        kv_slice record = kv_slice_make(ra->held->map + ref->offset, ref->size);
        return parse_at(record, ref, key, value);
    }

    bool inside = ra->file == ref->file && ref->offset >= ra->offset &&
                  ref->offset + ref->size <= ra->offset + ra->buf.size;
    bool sequential = ra->last_file == ref->file && ra->last_end == ref->offset;
    ra->window = !sequential                      ? 0
                 : ra->window == 0                ? 16u << 10
                 : ra->window < KV_BLOB_READAHEAD ? 2 * ra->window
                                                  : KV_BLOB_READAHEAD;
    ra->last_file = ref->file;
    ra->last_end = ref->offset + ref->size;
    if (!inside) {
        size_t n = ref->size > ra->window ? ref->size : ra->window;
        ra->file = 0;
        int rc = read_bytes(set, ref->file, ref->offset, n, &ra->buf);
        if (rc != 0)
            return rc;
        if (ra->buf.size < ref->size)
            return short_record(ref);
        ra->file = ref->file;
        ra->offset = ref->offset;
    }
    kv_slice record = kv_slice_make(ra->buf.data + (ref->offset - ra->offset), ref->size);
    return parse_at(record, ref, key, value);
}
