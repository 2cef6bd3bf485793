/*
 * blob.h — key-value separation (WiscKey; RocksDB's BlobDB): large values
 * are written once, to a blob file, when they are written, and the LSM tree
 * holds a small blob index (file, offset, size) in their place, with type
 * KV_TYPE_BLOB_INDEX. The WAL then carries the index, not the value, so a
 * value reaches the disk once instead of twice (WAL and level-0 table), and
 * flushes and compactions move indexes instead of values.
 *
 * A blob file is NNNNNN.blob: a header, then records appended by the write
 * path's leader (FORMAT.md, "Blob files"). Each record carries its key and
 * a crc32c, so a read checks that it got the right bytes.
 *
 * Lifetime. Every blob file the database knows is a kv_blob_file object in
 * the kv_blob_set, which holds one reference; each SST that indexes values
 * in it holds one (through its kv_file_meta's links), each memtable with
 * an index into it holds one, and the writer holds the file it appends to.
 * A file whose only reference is the set's is garbage: nothing can reach
 * it any more (readers reach files through a superversion, which holds the
 * memtables and the version, which holds the tables), and
 * kv_db_delete_obsolete_files deletes it.
 */
#ifndef KV_BLOB_H
#define KV_BLOB_H

#include "env.h"
#include "slice.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define KV_BLOB_MAGIC "kv-blob\n" /* the first 8 bytes of a blob file */
#define KV_BLOB_FORMAT_VERSION 1
#define KV_BLOB_HEADER_SIZE 16 /* magic (8 bytes) || fixed32 version || fixed32 0 */
/* Largest record header: crc, two varint32 lengths. */
#define KV_BLOB_RECORD_HEADER_MAX (4 + 5 + 5)

/* Where a value is: the record at `offset` of blob file `file`, `size`
 * bytes long (header, key and value). */
typedef struct kv_blob_ref {
    uint64_t file;
    uint64_t offset;
    uint32_t size;
} kv_blob_ref;

/* The blob index: varint64 file || varint64 offset || varint32 size. */
void kv_blob_ref_encode(const kv_blob_ref *ref, kv_buf *dst); /* appends */
/* False unless `input` is exactly one well-formed index. */
bool kv_blob_ref_decode(kv_slice input, kv_blob_ref *ref);

void kv_blob_header_encode(char header[KV_BLOB_HEADER_SIZE]);
/* KV_CORRUPTION (not a blob file) or KV_NOT_SUPPORTED (a newer version). */
int kv_blob_header_check(kv_slice header, const char *path);

/* Appends the record of key/value to dst; returns its size. */
size_t kv_blob_record_append(kv_buf *dst, kv_slice key, kv_slice value);
/* Checks the record in `record` (ref->size bytes read at ref->offset of
 * `path`): its crc, its lengths, and that its key is `key`. Sets *value to
 * the value inside `record`. KV_CORRUPTION naming path and offset. */
int kv_blob_record_parse(kv_slice record, kv_slice key, const char *path, uint64_t offset,
                         kv_slice *value);

/* One blob file; see the header comment for who holds references. */
typedef struct kv_blob_file {
    uint64_t number;
    atomic_int refs;
    /* Bytes in the file once it is complete (0 while it is being written,
     * or not known yet); garbage collection compares the bytes tables
     * still point to with it. */
    _Atomic uint64_t size;
    atomic_bool gc_failed; /* a collection of it failed: not tried again */
} kv_blob_file;

void kv_blob_file_ref(kv_blob_file *f);
void kv_blob_file_unref(kv_blob_file *f); /* frees at zero; any thread */

/* Links from an SST to the blob files it indexes values in, with the bytes
 * of the records indexed (for garbage accounting). `file` is bound when the
 * table's kv_file_meta enters the version set (NULL before). */
typedef struct kv_blob_link {
    uint64_t number;
    uint64_t bytes;
    kv_blob_file *file;
} kv_blob_link;

/* Adds bytes for blob file `number` to a list kept sorted by number. */
void kv_blob_links_add(kv_blob_link **links, size_t *count, uint64_t number, uint64_t bytes);

/* Read-ahead for reads through an iterator: a window of one blob file.
 * Records read one after the other from the same file double the window
 * (up to KV_BLOB_READAHEAD); any other read reads just its record. */
typedef struct kv_blob_readahead {
    uint64_t file; /* 0: empty */
    uint64_t offset;
    kv_buf buf;
    uint64_t last_file, last_end; /* the record read last */
    size_t window;
    /* The open (memory-mapped) blob file read last, held between calls:
     * records inside its mapping are read in place, and the pages behind
     * a sequential reader are handed back (kv_random_release_pages). */
    struct kv_random *held;
    int held_slot;
    uint64_t held_number, released;
} kv_blob_readahead;
struct kv_blob_set;
void kv_blob_readahead_free(struct kv_blob_set *set, kv_blob_readahead *ra);

#define KV_BLOB_READERS 64 /* open blob files kept for reading */
#define KV_BLOB_READAHEAD (256u << 10)

typedef struct kv_blob_reader {
    uint64_t number; /* 0: free slot */
    kv_random *file;
    int users;
    uint64_t last_use;
    bool deleted; /* the file is deleted: close it when the last user is done */
} kv_blob_reader;

/* The blob files of a database, and a bounded cache of open ones. */
typedef struct kv_blob_set {
    pthread_mutex_t mutex;
    kv_env *env;
    char *dbpath;
    kv_blob_file **files; /* sorted by number; each holds a reference */
    size_t count, cap;
    kv_blob_reader readers[KV_BLOB_READERS];
    uint64_t clock;
} kv_blob_set;

void kv_blob_set_init(kv_blob_set *set, kv_env *env, const char *dbpath);
void kv_blob_set_free(kv_blob_set *set);
/* The object of blob file `number`, registered if new, with a reference
 * for the caller. */
kv_blob_file *kv_blob_set_get(kv_blob_set *set, uint64_t number);
bool kv_blob_set_contains(kv_blob_set *set, uint64_t number);
/* Unregisters every file whose only reference is the set's, except
 * `keep` (the file being appended to), closing its cached reader; returns
 * their numbers (malloc'd) for the caller to delete. */
uint64_t *kv_blob_set_take_unused(kv_blob_set *set, uint64_t keep, size_t *count);
/* Reads every record of blob file `number` and checks its checksum; a
 * record cut short or zeros at the very end (a power cut during the last
 * append) end the file. *bytes = the file's size. KV_CORRUPTION naming the
 * file and offset. */
int kv_blob_set_verify_file(kv_blob_set *set, uint64_t number, uint64_t *bytes);
/* Number of registered files and the largest number (0 if none). */
size_t kv_blob_set_count(kv_blob_set *set, uint64_t *largest);

/* Reads the bytes of ref's record, unchecked, into *out (shorter than
 * ref->size when the file ends first). */
int kv_blob_set_read_record(kv_blob_set *set, const kv_blob_ref *ref, kv_buf *out);
/* Reads the value that ref indexes for key into *out. */
int kv_blob_set_read(kv_blob_set *set, const kv_blob_ref *ref, kv_slice key, kv_buf *out);
/* The same through a read-ahead window (see kv_blob_readahead). *value
 * points into ra->buf (valid until the next call). */
int kv_blob_set_read_ahead(kv_blob_set *set, const kv_blob_ref *ref, kv_slice key,
                           kv_blob_readahead *ra, kv_slice *value);

#endif
