/*
 * make_corpus.c — writes the fuzz targets' seed corpus: small, valid
 * inputs made by the real code, from which the fuzzers mutate.
 *
 *   fuzz_make_corpus OUTDIR        (scripts/fuzz --make-corpus runs it
 *                                   with OUTDIR = tests/fuzz/corpus)
 *
 * It creates tiny databases through the public kv API in a scratch
 * directory — column families like lsmfs's, puts, deletes, range
 * deletions, flushes, a dropped family, writes left in the WAL — and copies
 * their files: NNNNNN.log to OUTDIR/wal, NNNNNN.sst to OUTDIR/sst, the
 * MANIFEST to OUTDIR/manifest and each of its records to
 * OUTDIR/version_edit; then encoded superblocks, inodes, entries and keys
 * of fuse/schema.c to OUTDIR/schema. The output is deterministic (fixed
 * times and uuid), so regenerating changes nothing unless a format did.
 */
#include "schema.h"

#include "env.h"
#include "kv.h"
#include "wal.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const TARGET_DIRS[] = {"wal", "sst", "manifest", "version_edit", "schema"};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("make_corpus: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static void check_kv(int rc, const char *what)
{
    if (rc != 0)
        die("%s: %s", what, kv_errmsg());
}

static char *path_join(const char *dir, const char *name)
{
    size_t len = strlen(dir) + strlen(name) + 2;
    char *path = malloc(len);
    if (path == NULL)
        die("out of memory");
    snprintf(path, len, "%s/%s", dir, name);
    return path;
}

static void make_dir(const char *path)
{
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        die("mkdir %s: %s", path, strerror(errno));
}

static void write_file(const char *dir, const char *name, const void *data, size_t size)
{
    char *path = path_join(dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(data, 1, size, f) != size || fclose(f) != 0)
        die("writing %s: %s", path, strerror(errno));
    printf("  %-40s %6zu bytes\n", path, size);
    free(path);
}

static char *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        die("opening %s: %s", path, strerror(errno));
    size_t cap = 4096, len = 0;
    char *data = malloc(cap);
    size_t got;
    while (data != NULL && (got = fread(data + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap)
            data = realloc(data, cap *= 2);
    }
    if (data == NULL || ferror(f))
        die("reading %s", path);
    fclose(f);
    *size = len;
    return data;
}

/* Removes the regular files of dir (the previous seeds of a target). */
static void clear_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *entry;
    while ((entry = readdir(d)) != NULL) {
        if (entry->d_name[0] == '.')
            continue;
        char *path = path_join(dir, entry->d_name);
        if (unlink(path) != 0)
            die("removing %s: %s", path, strerror(errno));
        free(path);
    }
    closedir(d);
}

static bool has_suffix(const char *name, const char *suffix)
{
    size_t n = strlen(name), s = strlen(suffix);
    return n >= s && strcmp(name + n - s, suffix) == 0;
}

/* Copies the database's files into the target directories, each named
 * `prefix`-<its name>. Returns the MANIFEST's path in db_dir (malloc'd). */
static char *copy_db_files(const char *db_dir, const char *out_dir, const char *prefix)
{
    char *manifest = NULL;
    DIR *d = opendir(db_dir);
    if (d == NULL)
        die("opendir %s: %s", db_dir, strerror(errno));
    struct dirent *entry;
    while ((entry = readdir(d)) != NULL) {
        const char *target;
        if (has_suffix(entry->d_name, ".log"))
            target = "wal";
        else if (has_suffix(entry->d_name, ".sst"))
            target = "sst";
        else if (strncmp(entry->d_name, "MANIFEST-", 9) == 0)
            target = "manifest";
        else
            continue;
        char *source = path_join(db_dir, entry->d_name);
        size_t size;
        char *data = read_file(source, &size);
        if (size == 0) { /* a fresh, empty WAL: no seed */
            free(data);
            free(source);
            continue;
        }
        char *dir = path_join(out_dir, target);
        char name[256];
        snprintf(name, sizeof(name), "%s-%s", prefix, entry->d_name);
        write_file(dir, name, data, size);
        if (strcmp(target, "manifest") == 0) {
            free(manifest);
            manifest = source;
        } else {
            free(source);
        }
        free(dir);
        free(data);
    }
    closedir(d);
    if (manifest == NULL)
        die("%s: no MANIFEST", db_dir);
    return manifest;
}

/* Writes each record of the MANIFEST at path to out_dir/version_edit. */
static void split_manifest(const char *path, const char *out_dir, const char *prefix)
{
    kv_random *file;
    check_kv(kv_env_new_random(kv_env_posix(), path, &file), "open MANIFEST");
    kv_log_reader *reader = kv_log_reader_create(file, file->size, "MANIFEST");
    kv_buf scratch = {0};
    kv_slice record;
    int rc, n = 0;
    char *dir = path_join(out_dir, "version_edit");
    while ((rc = kv_log_reader_read_record(reader, &record, &scratch)) == 1) {
        char name[64];
        snprintf(name, sizeof(name), "%s-record-%02d", prefix, n++);
        write_file(dir, name, record.data, record.size);
    }
    check_kv(rc, "read MANIFEST");
    free(dir);
    kv_buf_free(&scratch);
    kv_log_reader_destroy(reader);
    kv_random_close(file);
}

static void put(kv_db *db, kv_cf *cf, const char *key, const char *value)
{
    check_kv(kv_put(db, NULL, cf, key, strlen(key), value, strlen(value)), "put");
}

static void put_bytes(kv_db *db, kv_cf *cf, const char *key, size_t key_len, const char *value,
                      size_t value_len)
{
    check_kv(kv_put(db, NULL, cf, key, key_len, value, value_len), "put");
}

static void open_db(const char *dir, int compression, size_t block_size, kv_db **db)
{
    kv_options options;
    kv_options_init(&options);
    options.create_if_missing = true;
    options.max_background_compactions = 0; /* the files stay as written */
    options.block_cache_size = 1 << 20;
    options.cf.compression = compression;
    options.cf.block_size = block_size;
    options.cf.block_restart_interval = 4;
    check_kv(kv_open(&options, dir, db), "open");
}

/* The main seed database: families like lsmfs's, every kind of record,
 * two flushes, a dropped family, and writes left in the WAL. */
static void make_main_db(const char *dir, const char *out_dir)
{
    kv_db *db;
    open_db(dir, KV_COMPRESSION_NONE, 256, &db);
    kv_cf *def = kv_default_cf(db), *meta, *data, *scratch;
    check_kv(kv_create_cf(db, FS_META_CF, &meta), "create meta");
    check_kv(kv_create_cf(db, FS_DATA_CF, &data), "create data");

    static const char *const fruits[] = {"apple", "banana", "cherry", "date",  "elder",
                                         "fig",   "grape",  "honey",  "iris",  "juniper",
                                         "kiwi",  "lemon",  "mango",  "nectar"};
    for (size_t i = 0; i < sizeof(fruits) / sizeof(fruits[0]); i++)
        put(db, def, fruits[i], fruits[(i * 5) % 14]);
    check_kv(kv_delete(db, NULL, def, "banana", 6), "delete");
    check_kv(kv_delete_range(db, NULL, def, "d", 1, "f", 1), "delete_range");
    put(db, def, "apple", "second version");

    char key[FS_KEY_MAX], value[FS_INODE_LEN];
    struct fs_super super = {FS_FORMAT_VERSION, 4096, 8192, 1700000000000000000, {0}};
    for (int i = 0; i < 16; i++)
        super.uuid[i] = (uint8_t)(0x11 * i);
    put_bytes(db, meta, key, fs_key_super(key), value, fs_super_encode(value, &super));
    for (uint64_t ino = 1; ino <= 3; ino++) {
        struct fs_inode inode = {.mode = ino == 1 ? 040755 : 0100644,
                                 .nlink = ino == 1 ? 2 : 1,
                                 .size = ino * 100,
                                 .blocks = 1,
                                 .generation = ino,
                                 .mtime_ns = 1700000000000000000,
                                 .parent = ino == 1 ? 1 : 0};
        put_bytes(db, meta, key, fs_key_inode(key, ino), value, fs_inode_encode(value, &inode));
    }
    put_bytes(db, meta, key, fs_key_dentry(key, 1, "a.txt", 5), value,
              fs_dentry_encode(value, 2, 0100000));
    put_bytes(db, meta, key, fs_key_dentry(key, 1, "b.txt", 5), value,
              fs_dentry_encode(value, 3, 0100000));
    put_bytes(db, data, key, fs_key_data(key, 2, 0), "hello, world", 12);
    check_kv(kv_flush(db, NULL, true), "flush");

    /* A family added and dropped: the MANIFEST records both. */
    check_kv(kv_create_cf(db, "scratch", &scratch), "create scratch");
    put(db, scratch, "temporary", "value");
    check_kv(kv_flush(db, scratch, true), "flush scratch");
    check_kv(kv_drop_cf(db, scratch), "drop scratch");

    /* A second table of the default family, overlapping the first. */
    put(db, def, "cherry", "newer cherry");
    check_kv(kv_delete_range(db, NULL, def, "g", 1, "i", 1), "delete_range");
    check_kv(kv_delete(db, NULL, def, "kiwi", 4), "delete");
    check_kv(kv_flush(db, def, true), "flush default");

    /* Left in the WAL: single writes and one batch across families. */
    put(db, def, "orange", "in the log");
    check_kv(kv_delete(db, NULL, def, "apple", 5), "delete");
    kv_write_batch *batch = kv_write_batch_create();
    kv_write_batch_put(batch, meta, key, fs_key_dentry(key, 1, "c.txt", 5), value,
                       fs_dentry_encode(value, 4, 0120000));
    kv_write_batch_delete(batch, meta, key, fs_key_dentry(key, 1, "a.txt", 5));
    char begin[FS_DATA_KEY_LEN], end[FS_DATA_KEY_LEN];
    fs_key_data(begin, 2, 0);
    fs_key_data(end, 3, 0);
    kv_write_batch_delete_range(batch, data, begin, sizeof(begin), end, sizeof(end));
    kv_write_batch_put(batch, def, "pear", 4, "batched", 7);
    check_kv(kv_write(db, NULL, batch), "write batch");
    kv_write_batch_destroy(batch);
    check_kv(kv_close(db), "close");

    char *manifest = copy_db_files(dir, out_dir, "main");
    split_manifest(manifest, out_dir, "main");
    free(manifest);
}

/* A table with snappy-compressed blocks (compressible values). */
static void make_snappy_db(const char *dir, const char *out_dir)
{
    kv_db *db;
    open_db(dir, KV_COMPRESSION_SNAPPY, 512, &db);
    kv_cf *def = kv_default_cf(db);
    char key[16], value[96];
    for (int i = 0; i < 24; i++) {
        snprintf(key, sizeof(key), "key%04d", i * 7);
        memset(value, 'a' + i % 26, sizeof(value));
        put_bytes(db, def, key, strlen(key), value, sizeof(value));
    }
    check_kv(kv_delete_range(db, NULL, def, "key0050", 7, "key0070", 7), "delete_range");
    check_kv(kv_flush(db, NULL, true), "flush");
    check_kv(kv_close(db), "close");
    free(copy_db_files(dir, out_dir, "snappy"));
}

/* A WAL whose one record crosses the first 32 KiB block boundary (FIRST and
 * LAST fragments, and the block padding between them): the only seed
 * larger than a few KB, and the only way the fuzzer reaches the
 * multi-block paths of the log reader without growing inputs for hours. */
static void make_two_block_wal(const char *dir, const char *out_dir)
{
    kv_db *db;
    open_db(dir, KV_COMPRESSION_NONE, 4096, &db);
    kv_cf *def = kv_default_cf(db);
    put(db, def, "first", "small record");
    size_t big = KV_LOG_BLOCK_SIZE - 16;
    char *value = malloc(big);
    if (value == NULL)
        die("out of memory");
    memset(value, 'v', big);
    put_bytes(db, def, "big", 3, value, big);
    free(value);
    put(db, def, "last", "after the boundary");
    check_kv(kv_close(db), "close");

    /* Only the log: the rest duplicates the main database's seeds. */
    DIR *d = opendir(dir);
    if (d == NULL)
        die("opendir %s: %s", dir, strerror(errno));
    struct dirent *entry;
    char *wal_dir = path_join(out_dir, "wal");
    while ((entry = readdir(d)) != NULL) {
        if (!has_suffix(entry->d_name, ".log"))
            continue;
        char *source = path_join(dir, entry->d_name);
        size_t size;
        char *data = read_file(source, &size);
        write_file(wal_dir, "two-blocks.log", data, size);
        free(data);
        free(source);
    }
    free(wal_dir);
    closedir(d);
}

/* Values in blob files: a table with blob indexes (format version 2), a
 * MANIFEST with blob links, a WAL with blob index records. */
static void make_blob_db(const char *dir, const char *out_dir)
{
    kv_options options;
    kv_options_init(&options);
    options.create_if_missing = true;
    options.max_background_compactions = 0;
    options.block_cache_size = 1 << 20;
    options.cf.compression = KV_COMPRESSION_NONE;
    options.cf.block_size = 256;
    options.cf.blob_min_size = 32;
    options.blob_min_batch_bytes = 0;
    kv_db *db;
    check_kv(kv_open(&options, dir, &db), "open");
    kv_cf *def = kv_default_cf(db);
    char key[16], value[48];
    for (int i = 0; i < 8; i++) {
        snprintf(key, sizeof(key), "blob%02d", i);
        memset(value, 'a' + i, sizeof(value));
        put_bytes(db, def, key, strlen(key), value, i % 3 == 0 ? 8 : sizeof(value));
    }
    check_kv(kv_flush(db, NULL, true), "flush");
    put_bytes(db, def, "in-log", 6, value, sizeof(value));
    check_kv(kv_close(db), "close");
    char *manifest = copy_db_files(dir, out_dir, "blob");
    split_manifest(manifest, out_dir, "blob");
    free(manifest);
}

/* Encoded values and keys of every kind fuse/schema.c handles. */
static void make_schema_seeds(const char *out_dir)
{
    char *dir = path_join(out_dir, "schema");
    char buf[FS_KEY_MAX + FS_SUPER_LEN];
    struct fs_super super = {FS_FORMAT_VERSION, 65536, 4097, 1700000000123456789, {0}};
    for (int i = 0; i < 16; i++)
        super.uuid[i] = (uint8_t)(0xa0 + i);
    write_file(dir, "super", buf, fs_super_encode(buf, &super));

    struct fs_inode dir_inode = {.mode = 040755,
                                 .uid = 1000,
                                 .gid = 1000,
                                 .flags = FS_INODE_HAS_XATTRS,
                                 .nlink = 3,
                                 .size = 2,
                                 .generation = 7,
                                 .atime_ns = 1700000000000000001,
                                 .mtime_ns = 1700000000000000002,
                                 .ctime_ns = 1700000000000000003,
                                 .btime_ns = 1700000000000000000,
                                 .parent = 1};
    write_file(dir, "inode-dir", buf, fs_inode_encode(buf, &dir_inode));
    struct fs_inode file_inode = dir_inode;
    file_inode.mode = 0100600;
    file_inode.nlink = 1;
    file_inode.size = 123456;
    file_inode.blocks = 31;
    file_inode.parent = 0;
    write_file(dir, "inode-file", buf, fs_inode_encode(buf, &file_inode));
    write_file(dir, "dentry-dir", buf, fs_dentry_encode(buf, 42, 040000));
    write_file(dir, "dentry-symlink", buf, fs_dentry_encode(buf, 43, 0120000));

    write_file(dir, "key-super", buf, fs_key_super(buf));
    write_file(dir, "key-inode", buf, fs_key_inode(buf, 42));
    write_file(dir, "key-orphan", buf, fs_key_orphan(buf, 43));
    write_file(dir, "key-dentry", buf, fs_key_dentry(buf, 1, "notes.txt", 9));
    write_file(dir, "key-xattr", buf, fs_key_xattr(buf, 42, "user.comment", 12));
    write_file(dir, "key-data", buf, fs_key_data(buf, 42, 3));
    free(dir);
}

/* rm -r of the scratch databases (flat directories). */
static void remove_db_dir(const char *dir)
{
    clear_dir(dir);
    if (rmdir(dir) != 0)
        die("rmdir %s: %s", dir, strerror(errno));
}

int main(int argc, char **argv)
{
    if (argc != 2)
        die("usage: fuzz_make_corpus OUTDIR  (normally tests/fuzz/corpus)");
    const char *out_dir = argv[1];
    make_dir(out_dir);
    for (size_t i = 0; i < sizeof(TARGET_DIRS) / sizeof(TARGET_DIRS[0]); i++) {
        char *dir = path_join(out_dir, TARGET_DIRS[i]);
        make_dir(dir);
        clear_dir(dir);
        free(dir);
    }

    const char *tmp = getenv("TMPDIR");
    char scratch[4096];
    snprintf(scratch, sizeof(scratch), "%s/lsmfs-corpus-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(scratch) == NULL)
        die("mkdtemp %s: %s", scratch, strerror(errno));
    static const char *const dbs[] = {"main", "snappy", "two-blocks", "blob"};
    char *db_dirs[4];
    for (int i = 0; i < 4; i++)
        db_dirs[i] = path_join(scratch, dbs[i]);

    printf("make_corpus: writing seeds under %s\n", out_dir);
    make_main_db(db_dirs[0], out_dir);
    make_snappy_db(db_dirs[1], out_dir);
    make_two_block_wal(db_dirs[2], out_dir);
    make_blob_db(db_dirs[3], out_dir);
    make_schema_seeds(out_dir);

    for (int i = 0; i < 4; i++) {
        remove_db_dir(db_dirs[i]);
        free(db_dirs[i]);
    }
    if (rmdir(scratch) != 0)
        die("rmdir %s: %s", scratch, strerror(errno));
    return 0;
}
