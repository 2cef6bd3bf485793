/*
 * wal_reader.c — reads the records of a log file (WAL or MANIFEST) written
 * by wal_writer.c, one 32 KiB block at a time, and tells a crash's torn
 * tail apart from corruption.
 *
 * What a crash can leave at the end of a log: the file cut anywhere (in a
 * header, a payload, a block's zero padding, between the fragments of a
 * record), or, when the file system extended the file but never wrote the
 * data, the same with zeros instead of the missing bytes. In both cases the
 * bytes that did reach the disk are a prefix of what was written, and
 * nothing but zeros follows the damage. That is the test applied here: a
 * damaged fragment followed only by zeros up to the end of the file is a
 * torn tail (end of log); damage with real data after it is corruption.
 */
#include "wal.h"

#include "coding.h"
#include "crc32c.h"
#include "error.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

struct kv_log_reader {
    kv_random *file;
    uint64_t file_size; /* where the log ends (lowered if the file is shorter) */
    char *name;

    char *block;          /* KV_LOG_BLOCK_SIZE bytes */
    bool block_loaded;    /* false before the first read */
    uint64_t block_start; /* file offset of block[0] */
    size_t block_len;     /* bytes of the block in the file; < block size only at the end */
    size_t pos;           /* next unparsed byte of the block */

    uint64_t last_record_offset;
    uint64_t end_of_last_record; /* file offset just past the last record returned */
    uint64_t dropped_tail;
    bool zero_tail; /* the dropped tail is nothing but zeros */

    bool at_end;
    int failed_status; /* sticky: a reader that failed keeps failing */
    char *failed_message;
};

/* What next_fragment found. Errors are negative kv_status values. */
enum fragment_result {
    FRAGMENT_OK = 1,
    FRAGMENT_END = 2,  /* the file ends cleanly at a fragment boundary */
    FRAGMENT_TORN = 3, /* a torn tail starts here: nothing more to read */
};

typedef struct log_fragment {
    int type;
    kv_slice payload; /* points into the block */
    uint64_t offset;  /* of the header */
} log_fragment;

kv_log_reader *kv_log_reader_create(kv_random *file, uint64_t file_size, const char *name)
{
    kv_log_reader *reader = kv_calloc(1, sizeof(*reader));
    reader->file = file;
    reader->file_size = file_size;
    reader->name = kv_strdup(name);
    reader->block = kv_malloc(KV_LOG_BLOCK_SIZE);
    return reader;
}

void kv_log_reader_destroy(kv_log_reader *reader)
{
    if (reader == NULL)
        return;
    free(reader->block);
    free(reader->name);
    free(reader->failed_message);
    free(reader);
}

uint64_t kv_log_reader_dropped_tail(const kv_log_reader *reader)
{
    return reader->dropped_tail;
}

bool kv_log_reader_tail_is_zeros(const kv_log_reader *reader)
{
    return reader->dropped_tail > 0 && reader->zero_tail;
}

uint64_t kv_log_reader_last_record_offset(const kv_log_reader *reader)
{
    return reader->last_record_offset;
}

static int corruption(const kv_log_reader *reader, const char *what, uint64_t offset)
{
    return kv_error(KV_CORRUPTION, "%s: %s at offset %" PRIu64, reader->name, what, offset);
}

static bool all_zero(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return false;
    return true;
}

/* Reads `n` bytes at `offset` into buf; *got < n means the file is shorter
 * than file_size said, and the log then ends there. */
static int read_at(kv_log_reader *reader, uint64_t offset, size_t n, char *buf, size_t *got)
{
    int status = kv_random_read(reader->file, offset, n, buf, got);
    if (status != 0)
        return status;
    if (*got < n)
        reader->file_size = offset + *got;
    return 0;
}

/* Moves to the next block (the first one on the first call). */
static int load_next_block(kv_log_reader *reader)
{
    if (reader->block_loaded) {
        assert(reader->block_len == KV_LOG_BLOCK_SIZE);
        reader->block_start += KV_LOG_BLOCK_SIZE;
    }
    reader->block_loaded = true;
    reader->pos = 0;
    reader->block_len = 0;
    if (reader->block_start >= reader->file_size)
        return 0;
    uint64_t left = reader->file_size - reader->block_start;
    size_t want = left < KV_LOG_BLOCK_SIZE ? (size_t)left : KV_LOG_BLOCK_SIZE;
    return read_at(reader, reader->block_start, want, reader->block, &reader->block_len);
}

/* 1 if every byte from `offset` to the end of the file is zero, 0 if not,
 * or an I/O error. */
static int zeros_from(kv_log_reader *reader, uint64_t offset)
{
    char *buf = kv_malloc(KV_LOG_BLOCK_SIZE);
    int result = 1;
    while (offset < reader->file_size) {
        uint64_t left = reader->file_size - offset;
        size_t want = left < KV_LOG_BLOCK_SIZE ? (size_t)left : KV_LOG_BLOCK_SIZE;
        size_t got;
        int status = read_at(reader, offset, want, buf, &got);
        if (status != 0) {
            result = status;
            break;
        }
        if (!all_zero(buf, got)) {
            result = 0;
            break;
        }
        offset += got;
    }
    free(buf);
    return result;
}

/* 1 if every byte from `offset` (inside or at the end of the current
 * block) to the end of the file is zero, 0 if not, or an I/O error. */
static int zeros_to_end(kv_log_reader *reader, uint64_t offset)
{
    assert(offset >= reader->block_start && offset <= reader->block_start + reader->block_len);
    size_t in_block = (size_t)(offset - reader->block_start);
    if (!all_zero(reader->block + in_block, reader->block_len - in_block))
        return 0;
    return zeros_from(reader, reader->block_start + reader->block_len);
}

/* A damaged fragment at `offset`: a torn tail when only zeros follow from
 * `zeros_start` on, otherwise corruption described by `what`. */
static int torn_or_corrupt(kv_log_reader *reader, uint64_t offset, uint64_t zeros_start,
                           const char *what)
{
    int zeros = zeros_to_end(reader, zeros_start);
    if (zeros < 0)
        return zeros;
    if (zeros)
        return FRAGMENT_TORN;
    return corruption(reader, what, offset);
}

/* True if the `available` bytes at p start with a complete fragment with
 * a good checksum. */
static bool valid_fragment_at(const char *p, size_t available)
{
    if (available < KV_LOG_HEADER_SIZE)
        return false;
    size_t length = (size_t)(uint8_t)p[4] | (size_t)(uint8_t)p[5] << 8;
    int type = (uint8_t)p[6];
    if (type == KV_LOG_ZERO || type > KV_LOG_LAST || KV_LOG_HEADER_SIZE + length > available)
        return false;
    uint32_t expected = kv_crc32c_unmask(kv_decode_fixed32(p));
    return kv_crc32c_extend(kv_crc32c(p + 6, 1), p + KV_LOG_HEADER_SIZE, length) == expected;
}

/*
 * The fragment at `header` (in the last block) claims to run past the end
 * of the file. That is what a torn append looks like — and also what a
 * damaged length field looks like, and most of a MANIFEST is in the last
 * block. Tells them apart: if the header's checksum matches a shorter
 * payload that ends at the end of the file or is followed by another
 * valid fragment, the fragment is complete and its length is damaged. (For
 * a torn fragment this needs a 32-bit checksum collision on a prefix of its
 * payload and on the bytes after it.)
 */
static bool length_field_damaged(const kv_log_reader *reader, const char *header)
{
    const char *payload = header + KV_LOG_HEADER_SIZE;
    const char *end = reader->block + reader->block_len;
    uint32_t expected = kv_crc32c_unmask(kv_decode_fixed32(header));
    uint32_t crc = kv_crc32c(header + 6, 1);
    for (const char *p = payload;; p++) {
        if (crc == expected && (p == end || valid_fragment_at(p, (size_t)(end - p))))
            return true;
        if (p == end)
            return false;
        crc = kv_crc32c_extend(crc, p, 1);
    }
}

/*
 * Parses the next fragment. Returns FRAGMENT_OK with *fragment filled,
 * FRAGMENT_END at a clean end of file, FRAGMENT_TORN when what is left of
 * the file is a torn tail, or an error (KV_CORRUPTION naming the offset).
 */
static int next_fragment(kv_log_reader *reader, log_fragment *fragment)
{
    for (;;) {
        if (!reader->block_loaded) {
            int status = load_next_block(reader);
            if (status != 0)
                return status;
            continue;
        }
        size_t remaining = reader->block_len - reader->pos;
        uint64_t offset = reader->block_start + reader->pos;
        if (remaining < KV_LOG_HEADER_SIZE) {
            if (reader->block_len == KV_LOG_BLOCK_SIZE) {
                /* The tail of a full block: the writer zero-fills it. */
                if (!all_zero(reader->block + reader->pos, remaining))
                    return corruption(reader, "nonzero bytes in block padding", offset);
                int status = load_next_block(reader);
                if (status != 0)
                    return status;
                continue;
            }
            /* The last, partial block ends here: cleanly, or in a header. */
            return remaining == 0 ? FRAGMENT_END : FRAGMENT_TORN;
        }

        const char *header = reader->block + reader->pos;
        size_t length = (size_t)(uint8_t)header[4] | (size_t)(uint8_t)header[5] << 8;
        int type = (uint8_t)header[6];
        if (type == KV_LOG_ZERO) {
            /* Zeros where a header should be: space the file system
             * allocated but the crash kept us from writing. */
            return torn_or_corrupt(reader, offset, offset + KV_LOG_HEADER_SIZE,
                                   "zero fragment type");
        }
        if (KV_LOG_HEADER_SIZE + length > remaining) {
            bool last_block = reader->block_len < KV_LOG_BLOCK_SIZE;
            if (!last_block || reader->pos + KV_LOG_HEADER_SIZE + length > KV_LOG_BLOCK_SIZE)
                return corruption(reader, "fragment length past the block end", offset);
            if (length_field_damaged(reader, header))
                return corruption(reader, "bad fragment length", offset);
            return FRAGMENT_TORN; /* the append was cut short */
        }

        const char *payload = header + KV_LOG_HEADER_SIZE;
        uint32_t expected = kv_crc32c_unmask(kv_decode_fixed32(header));
        uint32_t actual = kv_crc32c_extend(kv_crc32c(header + 6, 1), payload, length);
        if (actual != expected)
            return torn_or_corrupt(reader, offset, offset + KV_LOG_HEADER_SIZE + length,
                                   "checksum mismatch");
        if (type > KV_LOG_LAST) {
            char what[48];
            snprintf(what, sizeof(what), "unknown fragment type %d", type);
            return corruption(reader, what, offset);
        }

        reader->pos += KV_LOG_HEADER_SIZE + length;
        fragment->type = type;
        fragment->payload = kv_slice_make(payload, length);
        fragment->offset = offset;
        return FRAGMENT_OK;
    }
}

static int fail(kv_log_reader *reader, int status)
{
    char message[1024];
    kv_error_copy(message, sizeof(message));
    reader->failed_status = status;
    reader->failed_message = kv_strdup(message);
    return status;
}

static int finish_record(kv_log_reader *reader, uint64_t record_offset,
                         const log_fragment *last_fragment)
{
    reader->last_record_offset = record_offset;
    reader->end_of_last_record =
        last_fragment->offset + KV_LOG_HEADER_SIZE + last_fragment->payload.size;
    return 1;
}

/*
 * Reassembles the next record from its fragments: FULL, or FIRST MIDDLE*
 * LAST. A record whose fragments stop at the end of the file (or at a torn
 * tail) was being appended during a crash and is dropped with the tail; one
 * whose fragments are interrupted by another record, or that starts with a
 * MIDDLE or LAST, lost a piece in the middle of the file: corruption.
 */
int kv_log_reader_read_record(kv_log_reader *reader, kv_slice *record, kv_buf *scratch)
{
    *record = kv_slice_make("", 0);
    if (reader->failed_status != 0)
        return kv_error(reader->failed_status, "%s", reader->failed_message);
    if (reader->at_end)
        return 0;

    kv_buf_clear(scratch);
    bool in_record = false;
    uint64_t record_offset = 0;
    for (;;) {
        log_fragment fragment = {0};
        int result = next_fragment(reader, &fragment);
        if (result < 0)
            return fail(reader, result);
        if (result == FRAGMENT_END || result == FRAGMENT_TORN) {
            /* Whatever follows the last complete record (a partial record,
             * zeros, block padding) is the torn tail. */
            reader->at_end = true;
            reader->dropped_tail = reader->file_size - reader->end_of_last_record;
            if (reader->dropped_tail > 0) {
                int zeros = zeros_from(reader, reader->end_of_last_record);
                if (zeros < 0)
                    return fail(reader, zeros);
                reader->zero_tail = zeros == 1;
                /* read_at may have found the file shorter than it was. */
                reader->dropped_tail = reader->file_size - reader->end_of_last_record;
            }
            return 0;
        }

        switch (fragment.type) {
        case KV_LOG_FULL:
            if (in_record)
                return fail(reader,
                            corruption(reader, "record without its LAST fragment", record_offset));
            *record = fragment.payload;
            return finish_record(reader, fragment.offset, &fragment);
        case KV_LOG_FIRST:
            if (in_record)
                return fail(reader,
                            corruption(reader, "record without its LAST fragment", record_offset));
            in_record = true;
            record_offset = fragment.offset;
            kv_buf_set(scratch, fragment.payload.data, fragment.payload.size);
            break;
        case KV_LOG_MIDDLE:
        case KV_LOG_LAST:
            if (!in_record)
                return fail(reader, corruption(reader,
                                               fragment.type == KV_LOG_MIDDLE
                                                   ? "MIDDLE fragment without a FIRST"
                                                   : "LAST fragment without a FIRST",
                                               fragment.offset));
            kv_buf_append(scratch, fragment.payload.data, fragment.payload.size);
            if (fragment.type == KV_LOG_LAST) {
                *record = kv_buf_slice(scratch);
                return finish_record(reader, record_offset, &fragment);
            }
            break;
        default:
            assert(false);
        }
    }
}
