/*
 * wal_writer.c — appends records to a log file (WAL or MANIFEST) in the
 * block format of wal.h: each record is cut into fragments that never cross
 * a 32 KiB block boundary, each with a 7-byte header carrying a masked
 * CRC32C of its type byte and payload.
 */
#include "wal.h"

#include "coding.h"
#include "crc32c.h"

#include <assert.h>
#include <stdlib.h>

struct kv_log_writer {
    kv_writable *file;
    size_t block_offset; /* bytes already used in the current block */
    /* crc32c of each one-byte type, so a fragment's crc only extends it. */
    uint32_t type_crc[KV_LOG_LAST + 1];
};

kv_log_writer *kv_log_writer_create(kv_writable *file)
{
    assert(file != NULL);
    kv_log_writer *writer = kv_calloc(1, sizeof(*writer));
    writer->file = file;
    /* The file is supposed to be empty; starting at its current size keeps
     * the block arithmetic right should someone append to an existing log. */
    writer->block_offset = (size_t)(file->size % KV_LOG_BLOCK_SIZE);
    for (int type = 0; type <= KV_LOG_LAST; type++) {
        char byte = (char)type;
        writer->type_crc[type] = kv_crc32c(&byte, 1);
    }
    return writer;
}

kv_writable *kv_log_writer_file(kv_log_writer *writer)
{
    return writer->file;
}

/* Appends one fragment, header and payload, returning the first append
 * error. Both appends happen even when the first fails: a failed append
 * keeps its bytes pending in the file's buffer (env.h), so the fragment
 * still goes out whole when a later flush succeeds. */
static int emit_fragment(kv_log_writer *writer, int type, const char *payload, size_t length)
{
    assert(length <= 0xffff);
    assert(writer->block_offset + KV_LOG_HEADER_SIZE + length <= KV_LOG_BLOCK_SIZE);

    char header[KV_LOG_HEADER_SIZE];
    uint32_t crc = kv_crc32c_extend(writer->type_crc[type], payload, length);
    kv_encode_fixed32(header, kv_crc32c_mask(crc));
    header[4] = (char)(length & 0xff);
    header[5] = (char)(length >> 8);
    header[6] = (char)type;

    int status = kv_writable_append(writer->file, header, sizeof(header));
    if (length > 0) {
        int payload_status = kv_writable_append(writer->file, payload, length);
        if (status == 0)
            status = payload_status;
    }
    writer->block_offset += KV_LOG_HEADER_SIZE + length;
    return status;
}

/*
 * Appends `record` as one or more fragments. An empty record is one empty
 * FULL fragment. When the current block has fewer than 7 bytes left, they
 * are zero-filled and the record starts in the next block; when exactly 7
 * are left, an empty FIRST fragment goes there (the reader expects both).
 *
 * On an append error the whole record is still appended, pending in the
 * file's buffer (env.h), and the first error is returned: the log stays a
 * well-formed sequence of records, and a later flush or add writes the
 * pending bytes if the cause (a full disk) went away. Whether the record
 * counts as written is the caller's decision.
 */
int kv_log_writer_add_record(kv_log_writer *writer, kv_slice record)
{
    const char *ptr = record.data;
    size_t left = record.size;
    bool first = true;
    int first_error = 0;
    do {
        size_t leftover = KV_LOG_BLOCK_SIZE - writer->block_offset;
        if (leftover < KV_LOG_HEADER_SIZE) {
            static const char zeros[KV_LOG_HEADER_SIZE];
            if (leftover > 0) {
                int status = kv_writable_append(writer->file, zeros, leftover);
                if (first_error == 0)
                    first_error = status;
            }
            writer->block_offset = 0;
        }
        size_t available = KV_LOG_BLOCK_SIZE - writer->block_offset - KV_LOG_HEADER_SIZE;
        size_t fragment = left < available ? left : available;
        bool last = fragment == left;
        int type;
        if (first && last)
            type = KV_LOG_FULL;
        else if (first)
            type = KV_LOG_FIRST;
        else if (last)
            type = KV_LOG_LAST;
        else
            type = KV_LOG_MIDDLE;

        int status = emit_fragment(writer, type, ptr, fragment);
        if (first_error == 0)
            first_error = status;
        ptr += fragment;
        left -= fragment;
        first = false;
    } while (left > 0);
    return first_error;
}

kv_writable *kv_log_writer_detach(kv_log_writer *writer)
{
    if (writer == NULL)
        return NULL;
    kv_writable *file = writer->file;
    (void)kv_writable_flush(file);
    free(writer);
    return file;
}

int kv_log_writer_close(kv_log_writer *writer)
{
    if (writer == NULL)
        return 0;
    int status = kv_writable_close(writer->file);
    free(writer);
    return status;
}
