/*
 * test_fs_file.c — the file-data operations of the lsmfs core (fs_file.c)
 * against a real kv database on disk, without a mount: read/write/truncate/
 * punch/zero/fallocate/copy_file_range checked byte for byte against an
 * in-memory model, st_blocks checked against the data keys actually
 * stored, the layout invariants fsck relies on, SEEK_DATA/SEEK_HOLE, files
 * past 4 GiB, and concurrent appenders.
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"
#include "fsutil.h"
#include "fs_impl.h"

#define GIB (1ull << 30)

/* ---- helpers ---- */

static struct fs *open_fs(const char *dir, uint32_t block_size, size_t write_buffer_size)
{
    struct fs_options options;
    fsutil_options(&options, write_buffer_size);
    options.block_size = block_size;
    return fsutil_open(dir, &options);
}

static uint64_t create_node(struct fs *fs, const char *name, mode_t mode)
{
    struct fs_caller caller = {.uid = getuid(), .gid = getgid(), .pid = getpid()};
    struct stat st;
    assert_int_equal(fs_create_node(fs, &caller, FS_ROOT_INO, name, mode, 0, NULL, &st), 0);
    return st.st_ino;
}

static uint64_t create_file(struct fs *fs, const char *name)
{
    return create_node(fs, name, S_IFREG | 0644);
}

static uint64_t lookup(struct fs *fs, const char *name)
{
    struct stat st;
    assert_int_equal(fs_lookup(fs, FS_ROOT_INO, name, &st), 0);
    return st.st_ino;
}

static struct stat stat_of(struct fs *fs, uint64_t ino)
{
    struct stat st;
    assert_int_equal(fs_getattr(fs, ino, &st), 0);
    return st;
}

static void truncate_to(struct fs *fs, uint64_t ino, uint64_t size)
{
    struct stat attr, st;
    memset(&attr, 0, sizeof(attr));
    attr.st_size = (off_t)size;
    assert_int_equal(fs_setattr(fs, ino, &attr, FS_SET_SIZE, &st), 0);
    assert_int_equal((uint64_t)st.st_size, size);
}

static void write_all(struct fs *fs, uint64_t ino, uint64_t offset, const void *buf, size_t size)
{
    assert_int_equal(fs_write(fs, ino, offset, buf, size, 0), (ssize_t)size);
}

/* Reads the data keys of ino as they are stored: a map from block index
 * to stored length (0 = no key) over `nblocks` entries, checking the
 * layout invariants on the way. Returns the number of keys. */
static uint64_t scan_blocks(struct fs *fs, uint64_t ino, size_t *lengths, uint64_t nblocks)
{
    struct stat st = stat_of(fs, ino);
    uint64_t size = (uint64_t)st.st_size;
    uint64_t spanned = fs_blocks_spanned(fs, size);
    if (lengths != NULL)
        memset(lengths, 0, nblocks * sizeof(*lengths));
    kv_iterator *it = kv_iterator_create(fs->db, NULL, fs->data);
    assert_non_null(it);
    char key[FS_DATA_KEY_LEN];
    uint64_t count = 0;
    for (kv_iterator_seek(it, key, fs_key_data(key, ino, 0)); kv_iterator_valid(it);
         kv_iterator_next(it)) {
        size_t key_len, len;
        const char *k = kv_iterator_key(it, &key_len);
        uint64_t key_ino, block;
        assert_true(fs_key_parse_data(k, key_len, &key_ino, &block));
        if (key_ino != ino)
            break;
        kv_iterator_value(it, &len);
        /* no key past the size, no byte stored at or past the size */
        assert_true(block < spanned);
        assert_true(len >= 1 && len <= fs->block_size);
        assert_true(block * fs->block_size + len <= size);
        if (lengths != NULL && block < nblocks)
            lengths[block] = len;
        count++;
    }
    assert_int_equal(kv_iterator_status(it), 0);
    kv_iterator_destroy(it);
    /* st_blocks is exact */
    assert_int_equal((uint64_t)st.st_blocks, count * (fs->block_size / 512));
    return count;
}

/* ---- the model ---- */

struct model_file {
    const char *name;
    uint64_t ino;
    char *data; /* capacity bytes; zeros past size */
    uint64_t size;
};

struct model {
    struct fs *fs;
    char *dir;
    uint32_t block_size;
    uint64_t capacity;
    struct model_file files[2];
    kv_test_rng rng;
    char *scratch; /* capacity bytes */
    size_t *lengths;
};

static void model_set_size(struct model_file *f, uint64_t size)
{
    if (size < f->size)
        memset(f->data + size, 0, f->size - size);
    f->size = size;
}

static void model_check_file(struct model *m, struct model_file *f, bool whole)
{
    struct fs *fs = m->fs;
    assert_int_equal((uint64_t)stat_of(fs, f->ino).st_size, f->size);
    uint64_t nblocks = m->capacity / m->block_size;
    scan_blocks(fs, f->ino, m->lengths, nblocks);
    if (whole) {
        uint64_t want = f->size;
        ssize_t got = fs_read(fs, f->ino, 0, (size_t)want + 100, m->scratch);
        assert_int_equal(got, (ssize_t)want);
        assert_memory_equal(m->scratch, f->data, want);
    }
}

/* Expected SEEK_DATA / SEEK_HOLE from the stored keys (m->lengths, as
 * the last scan_blocks left it for file f). */
static int64_t expected_seek(struct model *m, struct model_file *f, uint64_t offset, int whence)
{
    if (offset >= f->size)
        return -ENXIO;
    uint64_t bs = m->block_size, spanned = (f->size + bs - 1) / bs;
    uint64_t block = offset / bs;
    bool want_data = whence == SEEK_DATA;
    if ((m->lengths[block] != 0) == want_data)
        return (int64_t)offset;
    for (block++; block < spanned; block++)
        if ((m->lengths[block] != 0) == want_data)
            return (int64_t)(block * bs);
    return want_data ? -ENXIO : (int64_t)f->size;
}

static void model_check_seek(struct model *m, struct model_file *f)
{
    scan_blocks(m->fs, f->ino, m->lengths, m->capacity / m->block_size);
    for (int i = 0; i < 8; i++) {
        uint64_t offset = kv_test_rng_uniform(&m->rng, f->size + m->block_size);
        int whence = (i & 1) ? SEEK_HOLE : SEEK_DATA;
        int64_t got = fs_lseek(m->fs, f->ino, (int64_t)offset, whence);
        assert_int_equal(got, expected_seek(m, f, offset, whence));
        if (whence == SEEK_DATA) {
            /* everything skipped reads as zeros */
            uint64_t end = got < 0 ? f->size : (uint64_t)got;
            for (uint64_t p = offset; p < end; p++)
                assert_int_equal(f->data[p], 0);
        }
    }
}

static void model_reopen(struct model *m)
{
    assert_int_equal(fs_close(m->fs), 0);
    m->fs = open_fs(m->dir, m->block_size, 256u << 10);
    for (int i = 0; i < 2; i++)
        assert_int_equal(lookup(m->fs, m->files[i].name), m->files[i].ino);
}

/* A random length: mostly within a few blocks, sometimes large. */
static uint64_t random_length(struct model *m)
{
    uint64_t bs = m->block_size;
    switch (kv_test_rng_uniform(&m->rng, 10)) {
    case 0:
        return 1 + kv_test_rng_uniform(&m->rng, 256u << 10);
    case 1:
        return 1 + kv_test_rng_uniform(&m->rng, 8);
    default:
        return 1 + kv_test_rng_uniform(&m->rng, 3 * bs);
    }
}

/* An offset near the file (inside, at the end, just past it) or, now and
 * then, anywhere below the capacity: far past the end. */
static uint64_t random_offset(struct model *m, struct model_file *f, uint64_t len)
{
    uint64_t room = m->capacity - len;
    uint64_t offset;
    if (kv_test_rng_uniform(&m->rng, 8) == 0)
        offset = kv_test_rng_uniform(&m->rng, room + 1);
    else
        offset = kv_test_rng_uniform(&m->rng, f->size + 2 * m->block_size + 1);
    if (kv_test_rng_uniform(&m->rng, 4) == 0)
        offset -= offset % m->block_size; /* aligned */
    return offset < room ? offset : room;
}

static void op_write(struct model *m, struct model_file *f, bool append)
{
    uint64_t len = random_length(m);
    if (append && f->size + len > m->capacity)
        return;
    uint64_t offset = append ? f->size : random_offset(m, f, len);
    if (kv_test_rng_uniform(&m->rng, 10) == 0)
        memset(m->scratch, 0, len);
    else
        kv_test_rng_bytes(&m->rng, m->scratch, len);
    ssize_t n = fs_write(m->fs, f->ino, append ? 12345 : offset, m->scratch, len,
                         append ? FS_WRITE_APPEND : 0);
    assert_int_equal(n, (ssize_t)len);
    memcpy(f->data + offset, m->scratch, len);
    if (offset + len > f->size)
        f->size = offset + len;
}

static void op_read(struct model *m, struct model_file *f)
{
    uint64_t len = random_length(m);
    uint64_t offset = kv_test_rng_uniform(&m->rng, f->size + 2 * m->block_size + 1);
    uint64_t want = offset >= f->size ? 0 : f->size - offset;
    if (want > len)
        want = len;
    ssize_t got = fs_read(m->fs, f->ino, offset, len, m->scratch);
    assert_int_equal(got, (ssize_t)want);
    if (want > 0)
        assert_memory_equal(m->scratch, f->data + offset, want);
}

static void op_truncate(struct model *m, struct model_file *f)
{
    uint64_t size;
    switch (kv_test_rng_uniform(&m->rng, 4)) {
    case 0:
        size = kv_test_rng_uniform(&m->rng, m->capacity + 1);
        break;
    case 1:
        size = f->size > 0 ? f->size - 1 - kv_test_rng_uniform(&m->rng, f->size) : 0;
        break;
    case 2:
        size = f->size - f->size % m->block_size;
        break;
    default:
        size = f->size + kv_test_rng_uniform(&m->rng, 3 * m->block_size);
        break;
    }
    if (size > m->capacity)
        size = m->capacity;
    truncate_to(m->fs, f->ino, size);
    model_set_size(f, size);
}

static void op_fallocate(struct model *m, struct model_file *f)
{
    static const int modes[] = {FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, FALLOC_FL_ZERO_RANGE,
                                FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 0, FALLOC_FL_KEEP_SIZE};
    int mode = modes[kv_test_rng_uniform(&m->rng, 5)];
    if (kv_test_rng_uniform(&m->rng, 3) == 0)
        mode = modes[0]; /* punching is the interesting one */
    uint64_t len = random_length(m);
    if (kv_test_rng_uniform(&m->rng, 6) == 0)
        len = 1 + kv_test_rng_uniform(&m->rng, f->size + 1); /* most of the file */
    if (len > m->capacity)
        len = m->capacity;
    uint64_t offset = random_offset(m, f, len);
    assert_int_equal(fs_fallocate(m->fs, f->ino, mode, offset, len), 0);
    uint64_t end = offset + len;
    if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) {
        uint64_t zero_end = end < f->size ? end : f->size;
        if (offset < zero_end)
            memset(f->data + offset, 0, zero_end - offset);
    }
    if (!(mode & FALLOC_FL_KEEP_SIZE) && end > f->size)
        f->size = end;
}

static void op_copy(struct model *m)
{
    int from = (int)kv_test_rng_uniform(&m->rng, 2);
    int to = kv_test_rng_uniform(&m->rng, 3) == 0 ? from : 1 - from;
    struct model_file *in = &m->files[from], *out = &m->files[to];
    uint64_t len = random_length(m);
    if (kv_test_rng_uniform(&m->rng, 5) == 0)
        len = in->size + 10; /* the whole file and more: short at the end */
    if (len > m->capacity / 4)
        len = m->capacity / 4;
    uint64_t off_in = kv_test_rng_uniform(&m->rng, in->size + m->block_size + 1);
    uint64_t off_out = random_offset(m, out, len);
    if (in == out && !(off_out >= off_in + len || off_out + len <= off_in))
        return; /* would overlap (tested apart) */
    uint64_t count = off_in >= in->size ? 0 : in->size - off_in;
    if (count > len)
        count = len;
    ssize_t n = fs_copy_file_range(m->fs, in->ino, off_in, out->ino, off_out, len);
    assert_int_equal(n, (ssize_t)count);
    if (count > 0) {
        memmove(out->data + off_out, in->data + off_in, count);
        if (off_out + count > out->size)
            out->size = off_out + count;
    }
}

static void run_model(const char *name, uint32_t block_size, uint64_t capacity, int ops,
                      uint64_t seed)
{
    struct model m;
    memset(&m, 0, sizeof(m));
    m.dir = kv_test_tmpdir(name);
    m.block_size = block_size;
    m.capacity = capacity;
    m.fs = open_fs(m.dir, block_size, 256u << 10);
    kv_test_rng_init(&m.rng, kv_test_seed(seed));
    m.scratch = malloc(capacity + 1024);
    m.lengths = calloc(capacity / block_size, sizeof(*m.lengths));
    assert_non_null(m.scratch);
    assert_non_null(m.lengths);
    const char *names[2] = {"a", "b"};
    for (int i = 0; i < 2; i++) {
        m.files[i].name = names[i];
        m.files[i].ino = create_file(m.fs, names[i]);
        m.files[i].data = calloc(1, capacity);
        assert_non_null(m.files[i].data);
    }
    for (int op = 1; op <= ops; op++) {
        struct model_file *f = &m.files[kv_test_rng_uniform(&m.rng, 2)];
        switch (kv_test_rng_uniform(&m.rng, 20)) {
        case 0:
        case 1:
        case 2:
        case 3:
        case 4:
        case 5:
            op_write(&m, f, false);
            break;
        case 6:
            op_write(&m, f, true);
            break;
        case 7:
        case 8:
        case 9:
        case 10:
            op_read(&m, f);
            break;
        case 11:
        case 12:
            op_truncate(&m, f);
            break;
        case 13:
        case 14:
        case 15:
            op_fallocate(&m, f);
            break;
        case 16:
        case 17:
            op_copy(&m);
            break;
        case 18:
            model_check_seek(&m, f);
            break;
        default:
            model_check_file(&m, f, false);
            break;
        }
        if (op % 100 == 0)
            model_check_file(&m, f, true);
        if (op % 700 == 0) {
            model_reopen(&m);
            for (int i = 0; i < 2; i++)
                model_check_file(&m, &m.files[i], true);
        }
    }
    model_reopen(&m);
    for (int i = 0; i < 2; i++) {
        model_check_file(&m, &m.files[i], true);
        model_check_seek(&m, &m.files[i]);
        free(m.files[i].data);
    }
    assert_int_equal(fs_close(m.fs), 0);
    free(m.scratch);
    free(m.lengths);
    kv_test_cleanup_dir(m.dir);
}

static void test_model_4k(void **state)
{
    (void)state;
    run_model("fs_file_model_4k", 4096, 8u << 20, kv_test_long_mode() ? 30000 : 3000, 11);
}

static void test_model_512(void **state)
{
    (void)state;
    run_model("fs_file_model_512", 512, 2u << 20, kv_test_long_mode() ? 30000 : 3000, 12);
}

/* ---- fixed cases ---- */

static int setup(void **state)
{
    struct fs_options options;
    fsutil_options(&options, 1u << 20);
    options.block_size = 4096;
    *state = fsutil_fixture_create("fs_file", &options);
    return 0;
}

static void fill_pattern(char *buf, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)((i * 31 + seed) % 251 + 1);
}

static bool all_zero(const char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (buf[i] != 0)
            return false;
    return true;
}

static size_t stored_length(struct fs *fs, uint64_t ino, uint64_t block)
{
    char key[FS_DATA_KEY_LEN];
    char *value;
    size_t len;
    int rc = kv_get(fs->db, NULL, fs->data, key, fs_key_data(key, ino, block), &value, &len);
    if (rc == KV_NOT_FOUND)
        return 0;
    assert_int_equal(rc, 0);
    kv_free(value);
    return len;
}

static void test_blocks_and_trim(void **state)
{
    struct fs_fixture *fx = *state;
    struct fs *fs = fx->fs;
    uint64_t ino = create_file(fs, "f");
    char buf[3 * 4096], back[3 * 4096];
    fill_pattern(buf, sizeof(buf), 1);

    write_all(fs, ino, 0, buf, sizeof(buf));
    assert_int_equal(scan_blocks(fs, ino, NULL, 0), 3);
    assert_int_equal(stat_of(fs, ino).st_blocks, 24);

    /* sparse, far past the end */
    write_all(fs, ino, 1u << 20, "0123456789", 10);
    assert_int_equal(stat_of(fs, ino).st_size, (1u << 20) + 10);
    assert_int_equal(scan_blocks(fs, ino, NULL, 0), 4);
    assert_int_equal(fs_read(fs, ino, 3 * 4096, 4096, back), 4096);
    assert_true(all_zero(back, 4096));
    assert_int_equal(stored_length(fs, ino, 256), 10); /* the last block stored short */

    /* truncate down into the middle of block 1: it is trimmed */
    truncate_to(fs, ino, 5000);
    assert_int_equal(scan_blocks(fs, ino, NULL, 0), 2);
    assert_int_equal(stored_length(fs, ino, 1), 5000 - 4096);
    /* and growing again reads zeros past the old end */
    truncate_to(fs, ino, 20000);
    assert_int_equal(scan_blocks(fs, ino, NULL, 0), 2);
    assert_int_equal(fs_read(fs, ino, 0, sizeof(back), back), (ssize_t)sizeof(back));
    assert_memory_equal(back, buf, 5000);
    assert_true(all_zero(back + 5000, sizeof(back) - 5000));

    /* a whole-block overwrite of a hole in a sparse file adds one block,
     * of an existing block none */
    write_all(fs, ino, 3 * 4096, buf, 4096);
    assert_int_equal(scan_blocks(fs, ino, NULL, 0), 3);
    write_all(fs, ino, 0, buf, 4096);
    assert_int_equal(scan_blocks(fs, ino, NULL, 0), 3);
    /* a partial write into a hole adds one, into a block none */
    write_all(fs, ino, 2 * 4096 + 7, "xy", 2);
    assert_int_equal(scan_blocks(fs, ino, NULL, 0), 4);
    write_all(fs, ino, 2 * 4096 + 100, "xy", 2);
    assert_int_equal(scan_blocks(fs, ino, NULL, 0), 4);

    /* all-zero data is stored as written, not turned into holes */
    memset(back, 0, 4096);
    write_all(fs, ino, 10 * 4096, back, 4096);
    assert_int_equal(scan_blocks(fs, ino, NULL, 0), 5);

    truncate_to(fs, ino, 0);
    assert_int_equal(scan_blocks(fs, ino, NULL, 0), 0);
    assert_int_equal(fs_read(fs, ino, 0, 10, back), 0);
}

static void test_write_times_and_append(void **state)
{
    struct fs_fixture *fx = *state;
    struct fs *fs = fx->fs;
    uint64_t ino = create_file(fs, "f");
    struct stat before = stat_of(fs, ino);
    usleep(2000);
    assert_int_equal(fs_write(fs, ino, 999, "abc", 3, FS_WRITE_APPEND),
                     3); /* append: offset ignored */
    struct stat after = stat_of(fs, ino);
    assert_int_equal(after.st_size, 3);
    assert_true(after.st_mtim.tv_sec * 1000000000ll + after.st_mtim.tv_nsec >
                before.st_mtim.tv_sec * 1000000000ll + before.st_mtim.tv_nsec);
    assert_int_equal(after.st_ctim.tv_nsec, after.st_mtim.tv_nsec);
    assert_int_equal(fs_write(fs, ino, 0, "defg", 4, FS_WRITE_APPEND), 4);
    char back[16];
    assert_int_equal(fs_read(fs, ino, 0, sizeof(back), back), 7);
    assert_memory_equal(back, "abcdefg", 7);

    /* a read changes nothing */
    struct stat st1 = stat_of(fs, ino);
    usleep(2000);
    assert_int_equal(fs_read(fs, ino, 1, 3, back), 3);
    struct stat st2 = stat_of(fs, ino);
    assert_memory_equal(&st1.st_mtim, &st2.st_mtim, sizeof(st1.st_mtim));
    assert_memory_equal(&st1.st_ctim, &st2.st_ctim, sizeof(st1.st_ctim));

    /* zero-byte write: nothing */
    assert_int_equal(fs_write(fs, ino, 100, "", 0, 0), 0);
    assert_int_equal(stat_of(fs, ino).st_size, 7);
}

/* FS_WRITE_KILL_SUIDGID (a writer without CAP_FSETID) clears setuid, and
 * setgid when group-exec is set, with the data; without the flag, or for a
 * write-back of cached pages (which never carries it), the bits stay. A
 * refused write changes nothing. */
static void test_write_kills_suidgid(void **state)
{
    struct fs_fixture *fx = *state;
    static const struct {
        mode_t mode;
        int flags;
        mode_t after;
    } cases[] = {
        {06777, FS_WRITE_KILL_SUIDGID, 0777},
        {06755, FS_WRITE_KILL_SUIDGID, 0755},
        {04644, FS_WRITE_KILL_SUIDGID | FS_WRITE_APPEND, 0644},
        {02766, FS_WRITE_KILL_SUIDGID, 02766}, /* setgid without group-exec stays */
        {02775, FS_WRITE_KILL_SUIDGID, 0775},
        {06777, 0, 06777},
        {06777, FS_WRITE_WRITEBACK, 06777},
    };
    uint64_t inos[sizeof(cases) / sizeof(cases[0])];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char name[16];
        snprintf(name, sizeof(name), "f%zu", i);
        inos[i] = create_node(fx->fs, name, S_IFREG | cases[i].mode);
        assert_int_equal(stat_of(fx->fs, inos[i]).st_mode & 07777, cases[i].mode);
        assert_int_equal(fs_write(fx->fs, inos[i], 0, "data", 4, cases[i].flags), 4);
        assert_int_equal(stat_of(fx->fs, inos[i]).st_mode, S_IFREG | cases[i].after);
    }
    uint64_t refused = create_node(fx->fs, "refused", S_IFREG | 06777);
    uint64_t limit = (uint64_t)4096 << 40;
    assert_int_equal(fs_write(fx->fs, refused, limit, "x", 1, FS_WRITE_KILL_SUIDGID), -EFBIG);
    assert_int_equal(stat_of(fx->fs, refused).st_mode & 07777, 06777);

    assert_int_equal(fs_close(fx->fs), 0);
    fx->fs = open_fs(fx->dir, 4096, 1u << 20);
    char back[4];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(stat_of(fx->fs, inos[i]).st_mode, S_IFREG | cases[i].after);
        assert_int_equal(fs_read(fx->fs, inos[i], 0, sizeof(back), back), 4);
        assert_memory_equal(back, "data", 4);
    }
}

static void test_large_write_unaligned(void **state)
{
    struct fs_fixture *fx = *state;
    struct fs *fs = fx->fs;
    uint64_t ino = create_file(fs, "big");
    size_t n = 1u << 20;
    char *buf = malloc(n + 8192), *back = malloc(n + 8192);
    fill_pattern(buf, n, 7);
    write_all(fs, ino, 1000, buf, n);
    assert_int_equal(scan_blocks(fs, ino, NULL, 0), fs_blocks_spanned(fs, 1000 + n));
    assert_int_equal(fs_read(fs, ino, 0, n + 8192, back), (ssize_t)(n + 1000));
    assert_true(all_zero(back, 1000));
    assert_memory_equal(back + 1000, buf, n);
    /* overwrite the middle of it across blocks */
    fill_pattern(buf, 10000, 9);
    write_all(fs, ino, 5000, buf, 10000);
    assert_int_equal(fs_read(fs, ino, 5000, 10000, back), 10000);
    assert_memory_equal(back, buf, 10000);
    assert_int_equal(scan_blocks(fs, ino, NULL, 0), fs_blocks_spanned(fs, 1000 + n));
    free(buf);
    free(back);
}

static uint64_t blob_bytes_written(struct fs *fs)
{
    kv_stats stats;
    kv_get_stats(fs->db, &stats);
    return stats.blob_bytes_written;
}

/* New blocks written in a large write go to a blob file; rewriting blocks
 * that are all stored goes to a blob file too, but with
 * FS_WRITE_REWRITES_IN_TREE stays in the tree (kv_write_batch_keep_in_tree),
 * and a write that adds blocks among stored ones goes to a blob file again
 * even then. What is read back is what was written each time. */
static void test_rewrites_stay_in_tree(void **state)
{
    struct fs_fixture *fx = *state;
    struct fs *fs = fx->fs;
    assert_true(fs->options.blob_files);
    uint64_t ino = create_file(fs, "rewritten");
    size_t n = 1u << 20;
    char *buf = malloc(n), *back = malloc(n);
    fill_pattern(buf, n, 3);
    uint64_t before = blob_bytes_written(fs);
    write_all(fs, ino, 0, buf, n);
    uint64_t after_new = blob_bytes_written(fs);
    assert_true(after_new >= before + n);
    fill_pattern(buf, n, 5);
    write_all(fs, ino, 0, buf, n);
    uint64_t after_rewrite = blob_bytes_written(fs);
    assert_true(after_rewrite >= after_new + n);
    for (int round = 0; round < 3; round++) {
        fill_pattern(buf, n, 10 + round);
        assert_int_equal(fs_write(fs, ino, 0, buf, n, FS_WRITE_REWRITES_IN_TREE), (ssize_t)n);
        assert_int_equal(blob_bytes_written(fs), after_rewrite);
        assert_int_equal(fs_read(fs, ino, 0, n, back), (ssize_t)n);
        assert_memory_equal(back, buf, n);
    }
    /* Half stored, half past the end: new blocks, to a blob file. */
    fill_pattern(buf, n, 20);
    assert_int_equal(fs_write(fs, ino, n / 2, buf, n, FS_WRITE_REWRITES_IN_TREE), (ssize_t)n);
    assert_true(blob_bytes_written(fs) >= after_rewrite + n);
    assert_int_equal(fs_read(fs, ino, n / 2, n, back), (ssize_t)n);
    assert_memory_equal(back, buf, n);
    free(buf);
    free(back);
}

/* The spans of freed inodes (fs_ino_spans_add): after every addition
 * they are sorted, disjoint and not adjacent, at most FS_SETTLE_RANGES of
 * them, and they cover every inode added; while no merge was forced, they
 * cover exactly the inodes added. Random inodes, checked against a set;
 * then the merge a full set makes, and inode numbers at both ends. */
static void test_freed_spans(void **state)
{
    (void)state;
    /* Full: spans at 100, 200, ..., with 1000 and 1010 the closest pair. */
    struct fs_ino_span full[FS_SETTLE_RANGES];
    int n = 0;
    for (int k = 0; k < FS_SETTLE_RANGES - 1; k++)
        fs_ino_spans_add(full, &n, 100 * (uint64_t)(k + 1));
    fs_ino_spans_add(full, &n, 1010);
    assert_int_equal(n, FS_SETTLE_RANGES);
    /* 5000 is far from everything: the closest pair merges. */
    fs_ino_spans_add(full, &n, 5000);
    assert_int_equal(n, FS_SETTLE_RANGES);
    bool merged = false;
    for (int i = 0; i < n; i++)
        merged |= full[i].lo == 1000 && full[i].hi == 1010;
    assert_true(merged);
    assert_int_equal(full[n - 1].lo, 5000);
    /* 4997 is 3 from 5000, closer than any pair (100 apart): it joins it. */
    fs_ino_spans_add(full, &n, 4997);
    assert_int_equal(n, FS_SETTLE_RANGES);
    assert_int_equal(full[n - 1].lo, 4997);
    assert_int_equal(full[n - 1].hi, 5000);
    /* 52 is 48 from 100: it joins the first span. */
    fs_ino_spans_add(full, &n, 52);
    assert_int_equal(full[0].lo, 52);
    assert_int_equal(full[0].hi, 100);
    /* Ends: inode 1 and a large number, then everything in between. */
    struct fs_ino_span ends[FS_SETTLE_RANGES];
    n = 0;
    fs_ino_spans_add(ends, &n, UINT64_MAX - 2);
    fs_ino_spans_add(ends, &n, 1);
    fs_ino_spans_add(ends, &n, 2);
    fs_ino_spans_add(ends, &n, UINT64_MAX - 3);
    assert_int_equal(n, 2);
    assert_true(ends[0].lo == 1 && ends[0].hi == 2);
    assert_true(ends[1].lo == UINT64_MAX - 3 && ends[1].hi == UINT64_MAX - 2);

    enum { RANGE = 400 };
    unsigned seed = 12345;
    for (int round = 0; round < 200; round++) {
        struct fs_ino_span spans[FS_SETTLE_RANGES];
        int count = 0;
        bool added[RANGE] = {false}, forced = false;
        int additions = 1 + round % 60;
        for (int k = 0; k < additions; k++) {
            seed = seed * 1103515245 + 12345;
            uint64_t ino = 1 + (seed >> 8) % (round < 100 ? 40 : RANGE - 2);
            /* A merge is forced when the new inode would start a span of
             * its own and the set is full. */
            bool own = true;
            for (int i = 0; i < count; i++)
                if (ino + 1 >= spans[i].lo && ino <= spans[i].hi + 1)
                    own = false;
            forced |= own && count == FS_SETTLE_RANGES;
            fs_ino_spans_add(spans, &count, ino);
            added[ino] = true;
            assert_true(count >= 1 && count <= FS_SETTLE_RANGES);
            for (int i = 0; i < count; i++) {
                assert_true(spans[i].lo <= spans[i].hi);
                if (i > 0)
                    assert_true(spans[i - 1].hi + 1 < spans[i].lo);
            }
            for (uint64_t x = 0; x < RANGE; x++) {
                bool covered = false;
                for (int i = 0; i < count; i++)
                    covered |= x >= spans[i].lo && x <= spans[i].hi;
                if (added[x])
                    assert_true(covered);
                else if (!forced)
                    assert_false(covered);
            }
        }
    }
}

static void test_lseek(void **state)
{
    struct fs_fixture *fx = *state;
    struct fs *fs = fx->fs;
    const int64_t bs = 4096;
    uint64_t ino = create_file(fs, "f");
    /* empty file: both -ENXIO */
    assert_int_equal(fs_lseek(fs, ino, 0, SEEK_DATA), -ENXIO);
    assert_int_equal(fs_lseek(fs, ino, 0, SEEK_HOLE), -ENXIO);
    /* all hole */
    truncate_to(fs, ino, 5 * bs);
    assert_int_equal(fs_lseek(fs, ino, 0, SEEK_DATA), -ENXIO);
    assert_int_equal(fs_lseek(fs, ino, 100, SEEK_HOLE), 100);
    /* data in block 2 only; size 5 blocks */
    write_all(fs, ino, 2 * bs + 10, "x", 1);
    assert_int_equal(fs_lseek(fs, ino, 0, SEEK_DATA), 2 * bs);
    assert_int_equal(fs_lseek(fs, ino, 2 * bs + 5, SEEK_DATA), 2 * bs + 5);
    assert_int_equal(fs_lseek(fs, ino, 3 * bs, SEEK_DATA), -ENXIO);
    assert_int_equal(fs_lseek(fs, ino, 0, SEEK_HOLE), 0);
    assert_int_equal(fs_lseek(fs, ino, 2 * bs, SEEK_HOLE), 3 * bs);
    assert_int_equal(fs_lseek(fs, ino, 4 * bs + 1, SEEK_HOLE), 4 * bs + 1);
    /* offset at or past the end, or negative */
    assert_int_equal(fs_lseek(fs, ino, 5 * bs, SEEK_DATA), -ENXIO);
    assert_int_equal(fs_lseek(fs, ino, 5 * bs, SEEK_HOLE), -ENXIO);
    assert_int_equal(fs_lseek(fs, ino, -1, SEEK_HOLE), -ENXIO);
    assert_int_equal(fs_lseek(fs, ino, 0, SEEK_END), -EINVAL);
    /* data up to a partial last block: the hole is the end of the file */
    write_all(fs, ino, 3 * bs, "y", 1);
    write_all(fs, ino, 4 * bs, "z", 1);
    truncate_to(fs, ino, 4 * bs + 100);
    assert_int_equal(fs_lseek(fs, ino, 2 * bs, SEEK_HOLE), 4 * bs + 100);
    assert_int_equal(fs_lseek(fs, ino, bs, SEEK_DATA), 2 * bs);
    /* dense file: data everywhere, the hole at the end */
    uint64_t dense = create_file(fs, "dense");
    char buf[3 * 4096];
    fill_pattern(buf, sizeof(buf), 3);
    write_all(fs, dense, 0, buf, sizeof(buf) - 5);
    assert_int_equal(fs_lseek(fs, dense, 5000, SEEK_DATA), 5000);
    assert_int_equal(fs_lseek(fs, dense, 5000, SEEK_HOLE), sizeof(buf) - 5);
    /* a punched hole is found */
    assert_int_equal(fs_fallocate(fs, dense, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, bs, bs),
                     0);
    assert_int_equal(fs_lseek(fs, dense, 0, SEEK_HOLE), bs);
    assert_int_equal(fs_lseek(fs, dense, bs, SEEK_DATA), 2 * bs);
}

static void test_fallocate(void **state)
{
    struct fs_fixture *fx = *state;
    struct fs *fs = fx->fs;
    uint64_t ino = create_file(fs, "f");
    const int keep = FALLOC_FL_KEEP_SIZE;
    /* what vfs_fallocate refuses */
    assert_int_equal(fs_fallocate(fs, ino, 0, 0, 0), -EINVAL);
    assert_int_equal(fs_fallocate(fs, ino, FALLOC_FL_PUNCH_HOLE, 0, 10), -EOPNOTSUPP);
    assert_int_equal(fs_fallocate(fs, ino, FALLOC_FL_COLLAPSE_RANGE, 0, 4096), -EOPNOTSUPP);
    assert_int_equal(fs_fallocate(fs, ino, FALLOC_FL_INSERT_RANGE, 0, 4096), -EOPNOTSUPP);
    assert_int_equal(
        fs_fallocate(fs, ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE | keep, 0, 10),
        -EOPNOTSUPP);
    assert_int_equal(fs_fallocate(fs, ino, 0, (uint64_t)4096 << 40, 1), -EFBIG);

    /* allocation extends the size, stores nothing */
    assert_int_equal(fs_fallocate(fs, ino, 0, 100, 10000), 0);
    assert_int_equal(stat_of(fs, ino).st_size, 10100);
    assert_int_equal(scan_blocks(fs, ino, NULL, 0), 0);
    assert_int_equal(fs_fallocate(fs, ino, keep, 0, 50000), 0);
    assert_int_equal(stat_of(fs, ino).st_size, 10100);

    /* punch: edges zeroed, whole blocks deleted, size kept */
    char buf[5 * 4096], back[5 * 4096];
    fill_pattern(buf, sizeof(buf), 5);
    write_all(fs, ino, 0, buf, sizeof(buf));
    assert_int_equal(fs_fallocate(fs, ino, FALLOC_FL_PUNCH_HOLE | keep, 1000, 3 * 4096), 0);
    memset(buf + 1000, 0, 3 * 4096);
    assert_int_equal(stat_of(fs, ino).st_size, sizeof(buf));
    assert_int_equal(scan_blocks(fs, ino, NULL, 0), 3); /* blocks 1, 2 went */
    assert_int_equal(fs_read(fs, ino, 0, sizeof(back), back), (ssize_t)sizeof(back));
    assert_memory_equal(back, buf, sizeof(back));
    /* punch past the end: nothing */
    assert_int_equal(fs_fallocate(fs, ino, FALLOC_FL_PUNCH_HOLE | keep, 1u << 20, 4096), 0);
    assert_int_equal(stat_of(fs, ino).st_size, sizeof(buf));
    /* punch to the end of the file: the tail block goes, the size stays */
    assert_int_equal(fs_fallocate(fs, ino, FALLOC_FL_PUNCH_HOLE | keep, 4 * 4096, 1u << 20), 0);
    assert_int_equal(scan_blocks(fs, ino, NULL, 0), 2);
    assert_int_equal(stat_of(fs, ino).st_size, sizeof(buf));

    /* zero range: zeros, and extends the size without KEEP_SIZE */
    assert_int_equal(fs_fallocate(fs, ino, FALLOC_FL_ZERO_RANGE, 10, 20), 0);
    memset(buf + 10, 0, 20);
    assert_int_equal(fs_read(fs, ino, 0, 100, back), 100);
    assert_memory_equal(back, buf, 100);
    assert_int_equal(fs_fallocate(fs, ino, FALLOC_FL_ZERO_RANGE, 4 * 4096, 3 * 4096), 0);
    assert_int_equal(stat_of(fs, ino).st_size, 7 * 4096);
    assert_int_equal(fs_fallocate(fs, ino, FALLOC_FL_ZERO_RANGE | keep, 7 * 4096, 4096), 0);
    assert_int_equal(stat_of(fs, ino).st_size, 7 * 4096);
    assert_int_equal(scan_blocks(fs, ino, NULL, 0), 2);

    /* other types */
    uint64_t dir = create_node(fs, "d", S_IFDIR | 0755);
    uint64_t fifo = create_node(fs, "p", S_IFIFO | 0644);
    assert_int_equal(fs_fallocate(fs, dir, 0, 0, 10), -EISDIR);
    assert_int_equal(fs_fallocate(fs, fifo, 0, 0, 10), -ESPIPE);
}

static void test_copy_file_range(void **state)
{
    struct fs_fixture *fx = *state;
    struct fs *fs = fx->fs;
    uint64_t in = create_file(fs, "in"), out = create_file(fs, "out");
    char buf[3 * 4096], back[4 * 4096];
    fill_pattern(buf, sizeof(buf), 8);
    write_all(fs, in, 0, buf, sizeof(buf));
    /* between files, short at the end of the input */
    assert_int_equal(fs_copy_file_range(fs, in, 100, out, 50, 1u << 20), sizeof(buf) - 100);
    assert_int_equal(stat_of(fs, out).st_size, 50 + sizeof(buf) - 100);
    assert_int_equal(fs_read(fs, out, 0, sizeof(back), back), 50 + sizeof(buf) - 100);
    assert_true(all_zero(back, 50));
    assert_memory_equal(back + 50, buf + 100, sizeof(buf) - 100);
    /* at or past the end of the input: 0 */
    assert_int_equal(fs_copy_file_range(fs, in, sizeof(buf), out, 0, 10), 0);
    assert_int_equal(fs_copy_file_range(fs, in, 0, out, 0, 0), 0);
    /* the same file: apart is fine, overlapping is -EINVAL */
    assert_int_equal(fs_copy_file_range(fs, in, 0, in, 3 * 4096, 4096), 4096);
    assert_int_equal(fs_read(fs, in, 3 * 4096, 4096, back), 4096);
    assert_memory_equal(back, buf, 4096);
    assert_int_equal(fs_copy_file_range(fs, in, 0, in, 100, 200), -EINVAL);
    /* overlap is judged after clipping to the end of the input */
    assert_int_equal(fs_copy_file_range(fs, in, 4 * 4096 - 10, in, 4 * 4096 + 100, 1000), 10);
    /* a sparse input stays sparse */
    uint64_t sparse = create_file(fs, "sparse"), copy = create_file(fs, "copy");
    write_all(fs, sparse, 0, "head", 4);
    write_all(fs, sparse, 10u << 20, "tail", 4);
    assert_int_equal(fs_copy_file_range(fs, sparse, 0, copy, 0, 20u << 20), (10u << 20) + 4);
    assert_int_equal(stat_of(fs, copy).st_size, (10u << 20) + 4);
    assert_int_equal(scan_blocks(fs, copy, NULL, 0), 2);
    assert_int_equal(fs_read(fs, copy, (10u << 20) - 2, 100, back), 6);
    assert_memory_equal(back, "\0\0tail", 6);
    /* a hole copied over data zeroes it */
    fill_pattern(buf, sizeof(buf), 2);
    uint64_t target = create_file(fs, "target");
    write_all(fs, target, 0, buf, sizeof(buf));
    assert_int_equal(fs_copy_file_range(fs, sparse, 4096, target, 0, 2 * 4096), 2 * 4096);
    assert_int_equal(fs_read(fs, target, 0, sizeof(back), back), sizeof(buf));
    assert_true(all_zero(back, 2 * 4096));
    assert_memory_equal(back + 2 * 4096, buf + 2 * 4096, 4096);
    assert_int_equal(scan_blocks(fs, target, NULL, 0), 1);
    /* types */
    uint64_t dir = create_node(fs, "d", S_IFDIR | 0755);
    assert_int_equal(fs_copy_file_range(fs, dir, 0, out, 0, 10), -EISDIR);
    assert_int_equal(fs_copy_file_range(fs, in, 0, dir, 0, 10), -EISDIR);
}

static void test_past_4gib(void **state)
{
    struct fs_fixture *fx = *state;
    struct fs *fs = fx->fs;
    uint64_t ino = create_file(fs, "huge");
    write_all(fs, ino, 5 * GIB, "hello", 5);
    assert_int_equal((uint64_t)stat_of(fs, ino).st_size, 5 * GIB + 5);
    assert_int_equal(scan_blocks(fs, ino, NULL, 0), 1);
    char back[64];
    assert_int_equal(fs_read(fs, ino, 5 * GIB - 2, sizeof(back), back), 7);
    assert_memory_equal(back, "\0\0hello", 7);
    assert_int_equal(fs_read(fs, ino, 4 * GIB, 16, back), 16);
    assert_true(all_zero(back, 16));
    assert_int_equal(fs_lseek(fs, ino, 0, SEEK_DATA), (int64_t)(5 * GIB));
    assert_int_equal(fs_lseek(fs, ino, (int64_t)(5 * GIB), SEEK_HOLE), (int64_t)(5 * GIB + 5));

    /* 1 MiB across the 4 GiB boundary */
    size_t n = 1u << 20;
    char *buf = malloc(n), *big = malloc(n);
    fill_pattern(buf, n, 4);
    write_all(fs, ino, 4 * GIB - 1000, buf, n);
    assert_int_equal(fs_read(fs, ino, 4 * GIB - 1000, n, big), (ssize_t)n);
    assert_memory_equal(big, buf, n);
    assert_int_equal(scan_blocks(fs, ino, NULL, 0), 1 + fs_blocks_spanned(fs, n + 1000) - 0);

    /* truncate to just past 4 GiB: the data beyond goes */
    truncate_to(fs, ino, 4 * GIB + 1);
    assert_int_equal(scan_blocks(fs, ino, NULL, 0), 2);
    assert_int_equal(fs_read(fs, ino, 4 * GIB - 1, 10, back), 2);
    assert_memory_equal(back, buf + 999, 2);

    /* the size limit */
    uint64_t limit = (uint64_t)4096 << 40;
    assert_int_equal(fs_write(fs, ino, limit, "x", 1, 0), -EFBIG);
    assert_int_equal(fs_write(fs, ino, limit - 10, buf, 100, 0), 10);
    assert_int_equal((uint64_t)stat_of(fs, ino).st_size, limit);
    struct stat attr, st;
    memset(&attr, 0, sizeof(attr));
    attr.st_size = (off_t)(limit + 1);
    assert_int_equal(fs_setattr(fs, ino, &attr, FS_SET_SIZE, &st), -EFBIG);
    assert_int_equal(scan_blocks(fs, ino, NULL, 0), 3);
    truncate_to(fs, ino, 0);
    assert_int_equal(scan_blocks(fs, ino, NULL, 0), 0);
    free(buf);
    free(big);
}

static void test_types_and_missing(void **state)
{
    struct fs_fixture *fx = *state;
    struct fs *fs = fx->fs;
    uint64_t dir = create_node(fs, "d", S_IFDIR | 0755);
    uint64_t fifo = create_node(fs, "p", S_IFIFO | 0644);
    struct fs_caller caller = {.uid = getuid(), .gid = getgid(), .pid = getpid()};
    struct stat st;
    assert_int_equal(fs_create_node(fs, &caller, FS_ROOT_INO, "l", 0, 0, "target", &st), 0);
    uint64_t link = st.st_ino;
    char buf[8];
    assert_int_equal(fs_read(fs, dir, 0, 8, buf), -EISDIR);
    assert_int_equal(fs_write(fs, dir, 0, "x", 1, 0), -EISDIR);
    assert_int_equal(fs_read(fs, fifo, 0, 8, buf), -EINVAL);
    assert_int_equal(fs_write(fs, link, 0, "x", 1, 0), -EINVAL);
    assert_int_equal(fs_lseek(fs, dir, 0, SEEK_DATA), -EISDIR);
    assert_int_equal(fs_read(fs, 999999, 0, 8, buf), -ENOENT);
    assert_int_equal(fs_write(fs, 999999, 0, "x", 1, 0), -ENOENT);
    assert_int_equal(fs_fallocate(fs, 999999, 0, 0, 1), -ENOENT);
    /* the symlink's target is untouched */
    assert_int_equal(fs_readlink(fs, link, buf, sizeof(buf)), 6);
    assert_memory_equal(buf, "target", 6);
}

/* ---- concurrency ---- */

#define APPENDERS 4
#define RECORDS 300
#define RECORD_LEN 100

struct appender {
    struct fs *fs;
    uint64_t ino;
    int id;
};

static void *append_records(void *arg)
{
    struct appender *a = arg;
    char record[RECORD_LEN];
    for (int seq = 0; seq < RECORDS; seq++) {
        memset(record, 'a' + a->id, sizeof(record));
        snprintf(record, sizeof(record), "%d:%06d:", a->id, seq);
        if (fs_write(a->fs, a->ino, 0, record, sizeof(record), FS_WRITE_APPEND) != RECORD_LEN)
            return (void *)1;
    }
    return NULL;
}

static void *read_while_appending(void *arg)
{
    struct appender *a = arg;
    char *buf = malloc(64 * 1024);
    void *result = NULL;
    for (int i = 0; i < 400; i++) {
        uint64_t offset = (uint64_t)i * 997 % (APPENDERS * RECORDS * RECORD_LEN);
        ssize_t n = fs_read(a->fs, a->ino, offset, 64 * 1024, buf);
        if (n < 0 || (uint64_t)n > APPENDERS * RECORDS * RECORD_LEN)
            result = (void *)1;
    }
    free(buf);
    return result;
}

static void test_concurrent_appends(void **state)
{
    struct fs_fixture *fx = *state;
    struct fs *fs = fx->fs;
    uint64_t ino = create_file(fs, "log");
    pthread_t threads[APPENDERS + 1];
    struct appender args[APPENDERS + 1];
    for (int i = 0; i <= APPENDERS; i++) {
        args[i] = (struct appender){.fs = fs, .ino = ino, .id = i};
        assert_int_equal(pthread_create(&threads[i], NULL,
                                        i < APPENDERS ? append_records : read_while_appending,
                                        &args[i]),
                         0);
    }
    for (int i = 0; i <= APPENDERS; i++) {
        void *result;
        pthread_join(threads[i], &result);
        assert_null(result);
    }
    size_t total = APPENDERS * RECORDS * RECORD_LEN;
    assert_int_equal(stat_of(fs, ino).st_size, total);
    char *buf = malloc(total);
    assert_int_equal(fs_read(fs, ino, 0, total, buf), (ssize_t)total);
    int next_seq[APPENDERS] = {0};
    for (size_t r = 0; r < APPENDERS * RECORDS; r++) {
        int id, seq;
        assert_int_equal(sscanf(buf + r * RECORD_LEN, "%d:%d:", &id, &seq), 2);
        assert_true(id >= 0 && id < APPENDERS);
        assert_int_equal(seq, next_seq[id]); /* each writer's records in order, none lost */
        next_seq[id]++;
        assert_int_equal(buf[r * RECORD_LEN + RECORD_LEN - 1], 'a' + id);
    }
    assert_int_equal(scan_blocks(fs, ino, NULL, 0), fs_blocks_spanned(fs, total));
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_blocks_and_trim, setup, fsutil_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_write_times_and_append, setup,
                                        fsutil_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_write_kills_suidgid, setup, fsutil_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_large_write_unaligned, setup, fsutil_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_rewrites_stay_in_tree, setup, fsutil_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_lseek, setup, fsutil_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_fallocate, setup, fsutil_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_copy_file_range, setup, fsutil_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_past_4gib, setup, fsutil_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_types_and_missing, setup, fsutil_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_appends, setup, fsutil_fixture_teardown),
        cmocka_unit_test(test_freed_spans),
        cmocka_unit_test(test_model_4k),
        cmocka_unit_test(test_model_512),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
