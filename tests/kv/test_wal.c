/* test_wal.c — the log format (wal.h): round trips through the writer and
 * reader, the block layout, and what the reader makes of crash damage (torn
 * tails, zero-filled tails) versus corruption in the middle of a file. */
#include "testutil.h"

#include "coding.h"
#include "crc32c.h"
#include "env.h"
#include "env_fault.h"
#include "error.h"
#include "wal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BLOCK KV_LOG_BLOCK_SIZE
#define HEADER KV_LOG_HEADER_SIZE

/* ---- an in-memory kv_random, so damaged variants need no file ---- */

typedef struct mem_random {
    kv_random base;
    const char *data;
    size_t size;
} mem_random;

static int mem_random_read(kv_random *file, uint64_t offset, size_t n, char *scratch, size_t *got)
{
    mem_random *m = (mem_random *)file;
    size_t avail = offset >= m->size ? 0 : m->size - (size_t)offset;
    *got = n < avail ? n : avail;
    if (*got > 0)
        memcpy(scratch, m->data + offset, *got);
    return 0;
}

static void mem_random_close(kv_random *file)
{
    (void)file;
}

static const struct kv_env_ops mem_ops = {
    .random_read = mem_random_read,
    .random_close = mem_random_close,
};
static kv_env mem_env = {&mem_ops, NULL};

static mem_random mem_file(const char *data, size_t size)
{
    mem_random m;
    memset(&m, 0, sizeof(m));
    m.base.env = &mem_env;
    m.base.fd = -1;
    m.base.size = size;
    m.data = data;
    m.size = size;
    return m;
}

/* ---- writing logs ---- */

typedef struct test_log {
    char *dir;
    char *path;
    kv_buf contents;   /* the file as written */
    kv_buf *records;   /* what was written */
    uint64_t *offsets; /* where each record starts */
    uint64_t *ends;    /* where each record ends */
    size_t count;
} test_log;

/* Writes `count` records of the given sizes (payload bytes never zero, so a
 * zero-filled tail always differs from what was written) through the log
 * writer into a real file, and reads the file back. */
static void test_log_write(test_log *log, const size_t *sizes, size_t count, uint64_t seed)
{
    memset(log, 0, sizeof(*log));
    log->dir = kv_test_tmpdir("wal");
    log->path = kv_sprintf("%s/000007.log", log->dir);
    log->records = kv_calloc(count ? count : 1, sizeof(kv_buf));
    log->offsets = kv_calloc(count ? count : 1, sizeof(uint64_t));
    log->ends = kv_calloc(count ? count : 1, sizeof(uint64_t));
    log->count = count;

    kv_test_rng rng;
    kv_test_rng_init(&rng, seed);
    kv_writable *file;
    assert_int_equal(kv_env_new_writable(kv_env_posix(), log->path, 65536, &file), 0);
    kv_log_writer *writer = kv_log_writer_create(file);
    assert_ptr_equal(kv_log_writer_file(writer), file);
    for (size_t i = 0; i < count; i++) {
        kv_buf_resize(&log->records[i], sizes[i]);
        kv_test_rng_bytes(&rng, log->records[i].data, sizes[i]);
        for (size_t j = 0; j < sizes[i]; j++)
            log->records[i].data[j] |= 1;
        uint64_t start = file->size;
        if (BLOCK - start % BLOCK < HEADER)
            start += BLOCK - start % BLOCK; /* after the block padding */
        log->offsets[i] = start;
        assert_int_equal(kv_log_writer_add_record(writer, kv_buf_slice(&log->records[i])), 0);
        log->ends[i] = file->size;
    }
    assert_int_equal(kv_log_writer_close(writer), 0);
    assert_int_equal(kv_env_read_file(kv_env_posix(), log->path, &log->contents), 0);
    assert_int_equal(log->contents.size, count ? log->ends[count - 1] : 0);
}

static void test_log_free(test_log *log)
{
    for (size_t i = 0; i < log->count; i++)
        kv_buf_free(&log->records[i]);
    free(log->records);
    free(log->offsets);
    free(log->ends);
    kv_buf_free(&log->contents);
    free(log->path);
    kv_test_cleanup_dir(log->dir);
}

/* Reads `data` and expects exactly the first `n` records of `log`, then the
 * end of the log with `dropped` bytes of torn tail, said to be zeros
 * exactly when they are. */
static void expect_records(const char *data, size_t size, const test_log *log, size_t n,
                           uint64_t dropped)
{
    mem_random m = mem_file(data, size);
    kv_log_reader *reader = kv_log_reader_create(&m.base, size, "000007.log");
    kv_buf scratch = {0};
    kv_slice record;
    for (size_t i = 0; i < n; i++) {
        int rc = kv_log_reader_read_record(reader, &record, &scratch);
        if (rc != 1)
            fail_msg("record %zu of %zu (file size %zu): rc %d: %s", i, n, size, rc, kv_errmsg());
        assert_true(kv_slice_equal(record, kv_buf_slice(&log->records[i])));
        assert_int_equal(kv_log_reader_last_record_offset(reader), log->offsets[i]);
    }
    int rc = kv_log_reader_read_record(reader, &record, &scratch);
    if (rc != 0)
        fail_msg("after %zu records (file size %zu): rc %d: %s", n, size, rc, kv_errmsg());
    assert_int_equal(record.size, 0);
    if (kv_log_reader_dropped_tail(reader) != dropped)
        fail_msg("file size %zu: dropped %llu, expected %llu", size,
                 (unsigned long long)kv_log_reader_dropped_tail(reader),
                 (unsigned long long)dropped);
    bool zeros = dropped > 0;
    for (size_t i = size - (size_t)dropped; i < size && zeros; i++)
        zeros = data[i] == 0;
    if (kv_log_reader_tail_is_zeros(reader) != zeros)
        fail_msg("file size %zu, %llu bytes dropped: tail_is_zeros %d, expected %d", size,
                 (unsigned long long)dropped, kv_log_reader_tail_is_zeros(reader), zeros);
    /* The end stays the end. */
    assert_int_equal(kv_log_reader_read_record(reader, &record, &scratch), 0);
    kv_buf_free(&scratch);
    kv_log_reader_destroy(reader);
}

/* Reads `data` expecting KV_CORRUPTION; returns the offset the message
 * names. Records read before the error must be a prefix of `log`. */
static uint64_t expect_corruption(const char *data, size_t size, const test_log *log)
{
    mem_random m = mem_file(data, size);
    kv_log_reader *reader = kv_log_reader_create(&m.base, size, "000007.log");
    kv_buf scratch = {0};
    kv_slice record;
    size_t n = 0;
    int rc;
    while ((rc = kv_log_reader_read_record(reader, &record, &scratch)) == 1) {
        assert_non_null(log);
        assert_true(n < log->count);
        assert_true(kv_slice_equal(record, kv_buf_slice(&log->records[n])));
        n++;
    }
    if (rc != KV_CORRUPTION)
        fail_msg("expected corruption, got rc %d after %zu records", rc, n);
    const char *msg = kv_errmsg();
    assert_non_null(strstr(msg, "000007.log: "));
    const char *at = strstr(msg, " at offset ");
    if (at == NULL)
        fail_msg("no offset in \"%s\"", msg);
    uint64_t offset = strtoull(at + strlen(" at offset "), NULL, 10);
    /* A failed reader keeps failing with the same message. */
    char first[1024];
    kv_error_copy(first, sizeof(first));
    assert_int_equal(kv_log_reader_read_record(reader, &record, &scratch), KV_CORRUPTION);
    assert_string_equal(kv_errmsg(), first);
    kv_buf_free(&scratch);
    kv_log_reader_destroy(reader);
    return offset;
}

/* ---- round trips ---- */

static void check_round_trip(const size_t *sizes, size_t count)
{
    test_log log;
    test_log_write(&log, sizes, count, 1);
    expect_records(log.contents.data, log.contents.size, &log, count, 0);

    /* And through the real file. */
    kv_random *file;
    assert_int_equal(kv_env_new_random(kv_env_posix(), log.path, &file), 0);
    kv_log_reader *reader = kv_log_reader_create(file, log.contents.size, "000007.log");
    kv_buf scratch = {0};
    kv_slice record;
    for (size_t i = 0; i < count; i++) {
        assert_int_equal(kv_log_reader_read_record(reader, &record, &scratch), 1);
        assert_true(kv_slice_equal(record, kv_buf_slice(&log.records[i])));
    }
    assert_int_equal(kv_log_reader_read_record(reader, &record, &scratch), 0);
    assert_int_equal(kv_log_reader_dropped_tail(reader), 0);
    kv_log_reader_destroy(reader);
    kv_random_close(file);
    kv_buf_free(&scratch);
    test_log_free(&log);
}

static void test_empty_file(void **state)
{
    (void)state;
    check_round_trip(NULL, 0);
}

static void test_round_trip_sizes(void **state)
{
    (void)state;
    const size_t sizes[] = {0,     1,         100,       0,    BLOCK - 7,       BLOCK - 8,
                            BLOCK, BLOCK + 1, 3 * BLOCK, 1,    5 * BLOCK + 123, 2 * BLOCK - 14,
                            0,     65535,     65536,     70000};
    check_round_trip(sizes, sizeof(sizes) / sizeof(sizes[0]));
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
        check_round_trip(&sizes[i], 1);
}

/* Decodes the fragment header at `offset`. */
static void header_at(const test_log *log, size_t offset, size_t *length, int *type)
{
    assert_true(offset + HEADER <= log->contents.size);
    const unsigned char *h = (const unsigned char *)log->contents.data + offset;
    *length = h[4] | (size_t)h[5] << 8;
    *type = h[6];
}

static void test_record_exactly_fills_block(void **state)
{
    (void)state;
    const size_t sizes[] = {BLOCK - HEADER, 10};
    test_log log;
    test_log_write(&log, sizes, 2, 2);
    size_t length;
    int type;
    header_at(&log, 0, &length, &type);
    assert_int_equal(type, KV_LOG_FULL);
    assert_int_equal(length, BLOCK - HEADER);
    assert_int_equal(log.ends[0], BLOCK);
    assert_int_equal(log.offsets[1], BLOCK);
    header_at(&log, BLOCK, &length, &type);
    assert_int_equal(type, KV_LOG_FULL);
    expect_records(log.contents.data, log.contents.size, &log, 2, 0);
    test_log_free(&log);
}

/* A block with exactly 7 bytes left gets an empty FIRST fragment; with
 * fewer, zero padding. */
static void test_header_at_block_end(void **state)
{
    (void)state;
    const size_t sizes[] = {BLOCK - 2 * HEADER, 100, BLOCK - 4 - (HEADER + 100) - HEADER, 50};
    /* Record 0 leaves 7 bytes in block 0: record 1 is FIRST(0) + LAST(100).
     * Record 2 then leaves 4 bytes in block 1: padding, record 3 in block 2. */
    test_log log;
    test_log_write(&log, sizes, 4, 3);
    size_t length;
    int type;
    header_at(&log, BLOCK - HEADER, &length, &type);
    assert_int_equal(type, KV_LOG_FIRST);
    assert_int_equal(length, 0);
    assert_int_equal(log.offsets[1], BLOCK - HEADER);
    header_at(&log, BLOCK, &length, &type);
    assert_int_equal(type, KV_LOG_LAST);
    assert_int_equal(length, 100);
    assert_int_equal(log.ends[2], 2 * BLOCK - 4);
    assert_int_equal(log.offsets[3], 2 * BLOCK);
    for (size_t i = 2 * BLOCK - 4; i < 2 * BLOCK; i++)
        assert_int_equal(log.contents.data[i], 0);
    expect_records(log.contents.data, log.contents.size, &log, 4, 0);
    test_log_free(&log);
}

static void test_record_spanning_many_blocks(void **state)
{
    (void)state;
    const size_t sizes[] = {100, 6 * BLOCK, 5};
    test_log log;
    test_log_write(&log, sizes, 3, 4);
    /* FIRST in block 0, MIDDLE in blocks 1-5, LAST in block 6. */
    size_t length;
    int type;
    header_at(&log, 107, &length, &type);
    assert_int_equal(type, KV_LOG_FIRST);
    assert_int_equal(length, BLOCK - 107 - HEADER);
    for (int b = 1; b <= 5; b++) {
        header_at(&log, (size_t)b * BLOCK, &length, &type);
        assert_int_equal(type, KV_LOG_MIDDLE);
        assert_int_equal(length, BLOCK - HEADER);
    }
    header_at(&log, 6 * BLOCK, &length, &type);
    assert_int_equal(type, KV_LOG_LAST);
    expect_records(log.contents.data, log.contents.size, &log, 3, 0);
    test_log_free(&log);
}

static void test_random_records(void **state)
{
    (void)state;
    kv_test_rng rng;
    kv_test_rng_init(&rng, kv_test_seed(42));
    size_t count = kv_test_long_mode() ? 20000 : 1000;
    size_t *sizes = kv_calloc(count, sizeof(size_t));
    for (size_t i = 0; i < count; i++) {
        uint64_t kind = kv_test_rng_uniform(&rng, 100);
        if (kind < 70)
            sizes[i] = kv_test_rng_uniform(&rng, 200);
        else if (kind < 95)
            sizes[i] = kv_test_rng_uniform(&rng, 10000);
        else
            sizes[i] = kv_test_rng_uniform(&rng, 3 * BLOCK);
    }
    test_log log;
    test_log_write(&log, sizes, count, kv_test_seed(42));
    expect_records(log.contents.data, log.contents.size, &log, count, 0);
    test_log_free(&log);
    free(sizes);
}

/* ---- torn tails ---- */

/* For every way the last record of `log` can be cut short, the reader
 * returns all records before it and then the end of the log:
 *  - the file truncated at t (a crash before the rest was written);
 *  - the same with zeros from t up to the original size and beyond (the
 *    file system extended the file but never wrote the data).
 * Points near fragment boundaries are all tried; inside long payloads, a
 * stride unless in long mode. */
static void check_torn_tails(const test_log *log)
{
    assert_true(log->count >= 1);
    size_t n = log->count - 1;
    uint64_t prev_end = n > 0 ? log->ends[n - 1] : 0;
    uint64_t total = log->contents.size;
    /* A zero-filled tail also runs past the original end. */
    size_t zero_size = (size_t)total + BLOCK + 100;
    char *zeroed = kv_calloc(zero_size, 1);
    memcpy(zeroed, log->contents.data, total);
    size_t stride = kv_test_long_mode() ? 1 : 17;

    for (uint64_t t = total; t-- > prev_end;) {
        uint64_t in_block = t % BLOCK;
        bool near_boundary = in_block < 2 * HEADER || in_block > BLOCK - 2 * HEADER ||
                             t - prev_end < 2 * HEADER || total - t < 2 * HEADER;
        /* zeroed holds zeros from t + 1 on: extend them to t. */
        zeroed[t] = 0;
        if (!near_boundary && t % stride != 0)
            continue;
        expect_records(log->contents.data, (size_t)t, log, n, t - prev_end);
        expect_records(zeroed, (size_t)t + 1, log, n, t + 1 - prev_end);
        expect_records(zeroed, zero_size, log, n, zero_size - prev_end);
    }
    /* The intact file for comparison. */
    expect_records(log->contents.data, (size_t)total, log, log->count, 0);
    free(zeroed);
}

static void test_torn_tail_full_record(void **state)
{
    (void)state;
    const size_t sizes[] = {10, 200, 300};
    test_log log;
    test_log_write(&log, sizes, 3, 5);
    check_torn_tails(&log);
    test_log_free(&log);
}

static void test_torn_tail_empty_record(void **state)
{
    (void)state;
    const size_t sizes[] = {10, 0};
    test_log log;
    test_log_write(&log, sizes, 2, 6);
    check_torn_tails(&log);
    test_log_free(&log);
}

static void test_torn_tail_first_last(void **state)
{
    (void)state;
    /* The last record starts 100 bytes before the end of block 0. */
    const size_t sizes[] = {BLOCK - 100 - HEADER, 400};
    test_log log;
    test_log_write(&log, sizes, 2, 7);
    check_torn_tails(&log);
    test_log_free(&log);
}

static void test_torn_tail_first_middle_last(void **state)
{
    (void)state;
    const size_t sizes[] = {50, BLOCK - 50 - 2 * HEADER - 30, 2 * BLOCK};
    test_log log;
    test_log_write(&log, sizes, 3, 8);
    check_torn_tails(&log);
    test_log_free(&log);
}

static void test_torn_tail_empty_first_fragment(void **state)
{
    (void)state;
    /* 7 bytes left in block 0: the last record is FIRST(0) + LAST. */
    const size_t sizes[] = {BLOCK - 2 * HEADER, 300};
    test_log log;
    test_log_write(&log, sizes, 2, 9);
    check_torn_tails(&log);
    test_log_free(&log);
}

static void test_torn_tail_after_padding(void **state)
{
    (void)state;
    /* 3 bytes of padding end block 0 before the last record. */
    const size_t sizes[] = {BLOCK - HEADER - 3, 300};
    test_log log;
    test_log_write(&log, sizes, 2, 10);
    assert_int_equal(log.offsets[1], BLOCK);
    check_torn_tails(&log);
    test_log_free(&log);
}

/* The same cuts on a real file: truncate(2) and a real kv_random. */
static void test_torn_tail_real_file(void **state)
{
    (void)state;
    const size_t sizes[] = {100, BLOCK, 50};
    test_log log;
    test_log_write(&log, sizes, 3, 11);
    uint64_t prev_end = log.ends[1];
    uint64_t cuts[] = {log.contents.size - 1, log.offsets[2] + 3, log.offsets[2] + HEADER};
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        assert_int_equal(truncate(log.path, (off_t)cuts[i]), 0);
        kv_random *file;
        assert_int_equal(kv_env_new_random(kv_env_posix(), log.path, &file), 0);
        kv_log_reader *reader = kv_log_reader_create(file, cuts[i], "000007.log");
        kv_buf scratch = {0};
        kv_slice record;
        for (size_t r = 0; r < 2; r++) {
            assert_int_equal(kv_log_reader_read_record(reader, &record, &scratch), 1);
            assert_true(kv_slice_equal(record, kv_buf_slice(&log.records[r])));
        }
        assert_int_equal(kv_log_reader_read_record(reader, &record, &scratch), 0);
        assert_int_equal(kv_log_reader_dropped_tail(reader), cuts[i] - prev_end);
        kv_log_reader_destroy(reader);
        kv_random_close(file);
        kv_buf_free(&scratch);
    }
    test_log_free(&log);
}

/* A file that claims to be longer than it is ends where the data ends. */
static void test_file_shorter_than_size(void **state)
{
    (void)state;
    const size_t sizes[] = {100, 200};
    test_log log;
    test_log_write(&log, sizes, 2, 12);
    mem_random m = mem_file(log.contents.data, log.contents.size - 10);
    kv_log_reader *reader = kv_log_reader_create(&m.base, log.contents.size, "000007.log");
    kv_buf scratch = {0};
    kv_slice record;
    assert_int_equal(kv_log_reader_read_record(reader, &record, &scratch), 1);
    assert_int_equal(kv_log_reader_read_record(reader, &record, &scratch), 0);
    assert_int_equal(kv_log_reader_dropped_tail(reader), log.contents.size - 10 - log.ends[0]);
    kv_log_reader_destroy(reader);
    kv_buf_free(&scratch);
    test_log_free(&log);
}

static void test_zero_filled_tail(void **state)
{
    (void)state;
    const size_t sizes[] = {100, 2 * BLOCK, 30};
    test_log log;
    test_log_write(&log, sizes, 3, 13);
    size_t tails[] = {1,
                      6,
                      7,
                      8,
                      100,
                      BLOCK - log.contents.size % BLOCK,
                      BLOCK - log.contents.size % BLOCK + 3,
                      3 * BLOCK};
    for (size_t i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
        size_t size = log.contents.size + tails[i];
        char *data = kv_calloc(size, 1);
        memcpy(data, log.contents.data, log.contents.size);
        expect_records(data, size, &log, 3, tails[i]); /* tail_is_zeros: true */
        free(data);
    }
    test_log_free(&log);
}

/* ---- corruption ---- */

/* Flips one bit at pos, expects corruption reported at or shortly before
 * it, and flips it back. */
static void check_flip(char *data, const test_log *log, size_t pos, int bit)
{
    data[pos] ^= (char)(1 << bit);
    uint64_t offset = expect_corruption(data, log->contents.size, log);
    if (offset > pos || pos - offset > BLOCK)
        fail_msg("flip at %zu reported at offset %llu", pos, (unsigned long long)offset);
    data[pos] ^= (char)(1 << bit);
}

/* Every single-bit flip before the last record is corruption, and so is
 * one in the last record's length. (A flip elsewhere in the last record
 * looks exactly like a torn append; that ambiguity is inherent.) Flips in
 * the last, partial block matter most: a small MANIFEST is nothing else. */
static void check_bit_flips(const test_log *log, kv_test_rng *rng, size_t trials)
{
    size_t last_record = log->offsets[log->count - 1];
    char *data = kv_malloc(log->contents.size);
    memcpy(data, log->contents.data, log->contents.size);
    if (trials >= last_record * 8) {
        for (size_t pos = 0; pos < last_record; pos++)
            for (int bit = 0; bit < 8; bit++)
                check_flip(data, log, pos, bit);
    } else {
        for (size_t i = 0; i < trials; i++) {
            size_t pos = kv_test_rng_uniform(rng, last_record);
            /* Make sure headers get their share. */
            if (i % 2 == 0)
                pos = log->offsets[kv_test_rng_uniform(rng, log->count - 1)] + i % HEADER;
            check_flip(data, log, pos, (int)kv_test_rng_uniform(rng, 8));
        }
    }
    for (int bit = 0; bit < 8; bit++) {
        check_flip(data, log, last_record + 4, bit);
        check_flip(data, log, last_record + 5, bit);
    }
    free(data);
}

static void test_bit_flips(void **state)
{
    (void)state;
    kv_test_rng rng;
    kv_test_rng_init(&rng, kv_test_seed(77));
    size_t sizes[64];
    size_t count = 0;
    sizes[count++] = BLOCK - HEADER - 3; /* padding at the end of block 0 */
    for (; count < 60; count++)
        sizes[count] = 1 + kv_test_rng_uniform(&rng, count % 10 == 0 ? 40000 : 2000);
    test_log log;
    test_log_write(&log, sizes, count, 14);
    assert_true(log.contents.size % BLOCK > 2000); /* a partial last block */
    check_bit_flips(&log, &rng, kv_test_long_mode() ? 100000 : 6000);
    /* The padding, every bit. */
    char *data = kv_malloc(log.contents.size);
    memcpy(data, log.contents.data, log.contents.size);
    for (size_t pos = BLOCK - 3; pos < BLOCK; pos++)
        for (int bit = 0; bit < 8; bit++)
            check_flip(data, &log, pos, bit);
    free(data);
    test_log_free(&log);
}

/* A MANIFEST-sized log: everything is in the last, partial block. */
static void test_bit_flips_small_log(void **state)
{
    (void)state;
    kv_test_rng rng;
    kv_test_rng_init(&rng, kv_test_seed(78));
    size_t sizes[30];
    for (size_t i = 0; i < 30; i++)
        sizes[i] = 1 + kv_test_rng_uniform(&rng, 100);
    test_log log;
    test_log_write(&log, sizes, 30, 15);
    assert_true(log.contents.size < BLOCK);
    check_bit_flips(&log, &rng, SIZE_MAX); /* every bit */
    test_log_free(&log);
}

/* Builds a log fragment by hand (no block padding: callers stay inside one
 * block). */
static void put_fragment(kv_buf *dst, int type, const char *payload, size_t length, bool good_crc)
{
    char header[HEADER];
    char type_byte = (char)type;
    uint32_t crc = kv_crc32c_extend(kv_crc32c(&type_byte, 1), payload, length);
    kv_encode_fixed32(header, kv_crc32c_mask(crc) ^ (good_crc ? 0 : 1));
    header[4] = (char)(length & 0xff);
    header[5] = (char)(length >> 8);
    header[6] = type_byte;
    kv_buf_append(dst, header, HEADER);
    kv_buf_append(dst, payload, length);
}

static void check_handmade_corruption(const kv_buf *file, const char *what, uint64_t offset)
{
    mem_random m = mem_file(file->data, file->size);
    kv_log_reader *reader = kv_log_reader_create(&m.base, file->size, "000009.log");
    kv_buf scratch = {0};
    kv_slice record;
    int rc;
    while ((rc = kv_log_reader_read_record(reader, &record, &scratch)) == 1)
        ;
    assert_int_equal(rc, KV_CORRUPTION);
    char expected[256];
    snprintf(expected, sizeof(expected), "000009.log: %s at offset %llu", what,
             (unsigned long long)offset);
    assert_string_equal(kv_errmsg(), expected);
    kv_log_reader_destroy(reader);
    kv_buf_free(&scratch);
}

static void check_handmade_torn(const kv_buf *file, size_t records, uint64_t dropped)
{
    mem_random m = mem_file(file->data, file->size);
    kv_log_reader *reader = kv_log_reader_create(&m.base, file->size, "000009.log");
    kv_buf scratch = {0};
    kv_slice record;
    for (size_t i = 0; i < records; i++)
        assert_int_equal(kv_log_reader_read_record(reader, &record, &scratch), 1);
    assert_int_equal(kv_log_reader_read_record(reader, &record, &scratch), 0);
    assert_int_equal(kv_log_reader_dropped_tail(reader), dropped);
    kv_log_reader_destroy(reader);
    kv_buf_free(&scratch);
}

static void test_fragment_sequences(void **state)
{
    (void)state;
    const char *p = "payload-bytes";
    kv_buf file = {0};

    /* FIRST then FULL: the record lost its end in the middle of the file. */
    put_fragment(&file, KV_LOG_FULL, p, 5, true);
    put_fragment(&file, KV_LOG_FIRST, p, 5, true);
    put_fragment(&file, KV_LOG_FULL, p, 5, true);
    check_handmade_corruption(&file, "record without its LAST fragment", 12);

    /* FIRST then FIRST. */
    kv_buf_clear(&file);
    put_fragment(&file, KV_LOG_FIRST, p, 5, true);
    put_fragment(&file, KV_LOG_FIRST, p, 5, true);
    put_fragment(&file, KV_LOG_LAST, p, 5, true);
    check_handmade_corruption(&file, "record without its LAST fragment", 0);

    /* MIDDLE / LAST without FIRST (the FIRST went missing). */
    kv_buf_clear(&file);
    put_fragment(&file, KV_LOG_FULL, p, 3, true);
    put_fragment(&file, KV_LOG_MIDDLE, p, 5, true);
    put_fragment(&file, KV_LOG_LAST, p, 5, true);
    check_handmade_corruption(&file, "MIDDLE fragment without a FIRST", 10);
    kv_buf_clear(&file);
    put_fragment(&file, KV_LOG_LAST, p, 5, true);
    check_handmade_corruption(&file, "LAST fragment without a FIRST", 0);

    /* A type this library does not know, with a valid checksum. */
    kv_buf_clear(&file);
    put_fragment(&file, KV_LOG_FULL, p, 5, true);
    put_fragment(&file, 9, p, 5, true);
    check_handmade_corruption(&file, "unknown fragment type 9", 12);

    /* A bad checksum with a good fragment after it. */
    kv_buf_clear(&file);
    put_fragment(&file, KV_LOG_FULL, p, 5, false);
    put_fragment(&file, KV_LOG_FULL, p, 5, true);
    check_handmade_corruption(&file, "checksum mismatch", 0);

    /* Zeros where a header belongs, then data. */
    kv_buf_clear(&file);
    put_fragment(&file, KV_LOG_FULL, p, 5, true);
    for (int i = 0; i < 4096; i++)
        kv_buf_append_byte(&file, 0);
    put_fragment(&file, KV_LOG_FULL, p, 5, true);
    check_handmade_corruption(&file, "zero fragment type", 12);

    /* A length running past the end of a full block. */
    kv_buf_clear(&file);
    put_fragment(&file, KV_LOG_FULL, p, 5, true);
    file.data[4] = (char)0xff;
    file.data[5] = (char)0xff;
    kv_buf_resize(&file, 2 * BLOCK);
    memset(file.data + 12, 'x', 2 * BLOCK - 12);
    check_handmade_corruption(&file, "fragment length past the block end", 0);

    /* Garbage in the padding of a full block. */
    kv_buf_clear(&file);
    put_fragment(&file, KV_LOG_FULL, p, 5, true);
    size_t filler = BLOCK - 12 - HEADER - 2;
    kv_buf_resize(&file, 12 + HEADER + filler);
    memset(file.data + 12 + HEADER, 'y', filler);
    file.size = 12;
    put_fragment(&file, KV_LOG_FULL, file.data + 12 + HEADER, filler, true);
    kv_buf_append_byte(&file, 0);
    kv_buf_append_byte(&file, 1);
    put_fragment(&file, KV_LOG_FULL, p, 5, true);
    check_handmade_corruption(&file, "nonzero bytes in block padding", BLOCK - 2);

    /* Torn: FIRST and MIDDLE at the end of the file, no LAST. */
    kv_buf_clear(&file);
    put_fragment(&file, KV_LOG_FULL, p, 5, true);
    put_fragment(&file, KV_LOG_FIRST, p, 5, true);
    put_fragment(&file, KV_LOG_MIDDLE, p, 5, true);
    check_handmade_torn(&file, 1, 24);

    /* Torn: a bad checksum followed only by zeros. */
    kv_buf_clear(&file);
    put_fragment(&file, KV_LOG_FULL, p, 5, true);
    put_fragment(&file, KV_LOG_FULL, p, 5, false);
    for (int i = 0; i < 100; i++)
        kv_buf_append_byte(&file, 0);
    check_handmade_torn(&file, 1, 112);

    /* Torn: a zero type byte (the header's last byte never written). */
    kv_buf_clear(&file);
    put_fragment(&file, KV_LOG_FULL, p, 5, true);
    put_fragment(&file, KV_LOG_FULL, p, 5, true);
    file.data[12 + 6] = 0;
    memset(file.data + 12 + HEADER, 0, 5);
    check_handmade_torn(&file, 1, 12);

    kv_buf_free(&file);
}

/* ---- writer errors ---- */

/* A full disk: the record that hits it reports KV_NO_SPACE, yet stays whole
 * in the file's buffer, so once space is back the log continues and reads
 * back well-formed. */
static void test_writer_no_space(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("walerr");
    char *path = kv_sprintf("%s/000003.log", dir);
    kv_env *env = kv_env_fault_create();
    kv_writable *file;
    assert_int_equal(kv_env_new_writable(env, path, 0, &file), 0);
    kv_log_writer *writer = kv_log_writer_create(file);
    char big[BLOCK + 500];
    memset(big, 'b', sizeof(big));
    assert_int_equal(kv_log_writer_add_record(writer, kv_slice_from_str("hello")), 0);
    kv_env_fault_set_space_budget(env, 100);
    assert_int_equal(kv_log_writer_add_record(writer, kv_slice_make(big, sizeof(big))),
                     KV_NO_SPACE);
    assert_int_equal(kv_log_writer_add_record(writer, kv_slice_from_str("still full")),
                     KV_NO_SPACE);
    kv_env_fault_set_space_budget(env, UINT64_MAX);
    assert_int_equal(kv_log_writer_add_record(writer, kv_slice_from_str("again")), 0);
    assert_int_equal(kv_log_writer_close(writer), 0);

    kv_buf contents = {0};
    assert_int_equal(kv_env_read_file(kv_env_posix(), path, &contents), 0);
    mem_random m = mem_file(contents.data, contents.size);
    kv_log_reader *reader = kv_log_reader_create(&m.base, contents.size, "000003.log");
    kv_buf scratch = {0};
    kv_slice record;
    assert_int_equal(kv_log_reader_read_record(reader, &record, &scratch), 1);
    assert_true(kv_slice_equal(record, kv_slice_from_str("hello")));
    assert_int_equal(kv_log_reader_read_record(reader, &record, &scratch), 1);
    assert_true(kv_slice_equal(record, kv_slice_make(big, sizeof(big))));
    assert_int_equal(kv_log_reader_read_record(reader, &record, &scratch), 1);
    assert_true(kv_slice_equal(record, kv_slice_from_str("still full")));
    assert_int_equal(kv_log_reader_read_record(reader, &record, &scratch), 1);
    assert_true(kv_slice_equal(record, kv_slice_from_str("again")));
    assert_int_equal(kv_log_reader_read_record(reader, &record, &scratch), 0);
    assert_int_equal(kv_log_reader_dropped_tail(reader), 0);
    kv_log_reader_destroy(reader);
    kv_buf_free(&scratch);
    kv_buf_free(&contents);
    kv_env_fault_destroy(env);
    free(path);
    kv_test_cleanup_dir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_file),
        cmocka_unit_test(test_round_trip_sizes),
        cmocka_unit_test(test_record_exactly_fills_block),
        cmocka_unit_test(test_header_at_block_end),
        cmocka_unit_test(test_record_spanning_many_blocks),
        cmocka_unit_test(test_random_records),
        cmocka_unit_test(test_torn_tail_full_record),
        cmocka_unit_test(test_torn_tail_empty_record),
        cmocka_unit_test(test_torn_tail_first_last),
        cmocka_unit_test(test_torn_tail_first_middle_last),
        cmocka_unit_test(test_torn_tail_empty_first_fragment),
        cmocka_unit_test(test_torn_tail_after_padding),
        cmocka_unit_test(test_torn_tail_real_file),
        cmocka_unit_test(test_file_shorter_than_size),
        cmocka_unit_test(test_zero_filled_tail),
        cmocka_unit_test(test_bit_flips),
        cmocka_unit_test(test_bit_flips_small_log),
        cmocka_unit_test(test_fragment_sequences),
        cmocka_unit_test(test_writer_no_space),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
