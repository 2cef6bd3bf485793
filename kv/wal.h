/*
 * wal.h — the log file format shared by the write-ahead log (NNNNNN.log)
 * and the MANIFEST (LevelDB's log format; byte layout in FORMAT.md).
 *
 * The file is a sequence of 32 KiB blocks. A record is split into
 * fragments that never cross a block boundary:
 *    masked crc32c (4) || length (2, LE) || type (1) || payload
 * type: FULL=1, FIRST=2, MIDDLE=3, LAST=4; the CRC covers type and payload.
 * A block tail shorter than the 7-byte header is zero-filled.
 */
#ifndef KV_WAL_H
#define KV_WAL_H

#include "env.h"

#define KV_LOG_BLOCK_SIZE 32768
#define KV_LOG_HEADER_SIZE 7

enum kv_log_record_type {
    KV_LOG_ZERO = 0, /* preallocated or zero-filled space */
    KV_LOG_FULL = 1,
    KV_LOG_FIRST = 2,
    KV_LOG_MIDDLE = 3,
    KV_LOG_LAST = 4,
};

/* ---- writer ---- */

typedef struct kv_log_writer kv_log_writer;

/* Writes records into `file`, which it owns from now on (closed by
 * kv_log_writer_close). `file` must be empty. */
kv_log_writer *kv_log_writer_create(kv_writable *file);
/* Appends one record to the file's buffer. The caller decides when to
 * kv_writable_flush / kv_writable_sync (group commit does one per group). */
int kv_log_writer_add_record(kv_log_writer *writer, kv_slice record);
kv_writable *kv_log_writer_file(kv_log_writer *writer);
int kv_log_writer_close(kv_log_writer *writer); /* flush + close; frees */
/* Frees the writer and hands its file over, flushed to the kernel (not
 * synced) and still open; NULL-safe. A flush error stays in the file's
 * buffer and resurfaces at its next sync or close. */
kv_writable *kv_log_writer_detach(kv_log_writer *writer);

/* ---- reader ---- */

typedef struct kv_log_reader kv_log_reader;

/* Reads records from `file` (borrowed) of `file_size` bytes. `name` is used
 * in messages. */
kv_log_reader *kv_log_reader_create(kv_random *file, uint64_t file_size, const char *name);
void kv_log_reader_destroy(kv_log_reader *reader);

/* Reads the next record into *record (valid until the next call; may point
 * into scratch). Returns 1 for a record, 0 at the end of the file, or
 * KV_CORRUPTION with a message naming the file and offset.
 *
 * Torn tail: a damaged or incomplete record at the end of the file (a
 * fragment that extends past the end, or a bad checksum / zero type with
 * nothing but zeros after it up to the end of the file) is what a crash in
 * the middle of an append leaves; it is reported as end of file, and
 * kv_log_reader_dropped_tail() then returns the number of bytes ignored.
 * Any other damage is corruption. */
int kv_log_reader_read_record(kv_log_reader *reader, kv_slice *record, kv_buf *scratch);
uint64_t kv_log_reader_dropped_tail(const kv_log_reader *reader);
/* After the end: whether the dropped tail is nothing but zeros. That is
 * either space zeroed ahead of the data (kv_writable_prezero: the WAL
 * before a synced write) or space the file system allocated for an append
 * a crash kept from reaching the disk; the reader cannot tell them apart,
 * and the WAL's recovery does not need to (a later WAL's marker shows
 * whether writes were lost: FORMAT.md). */
bool kv_log_reader_tail_is_zeros(const kv_log_reader *reader);
/* File offset of the start of the last record returned. */
uint64_t kv_log_reader_last_record_offset(const kv_log_reader *reader);

#endif
