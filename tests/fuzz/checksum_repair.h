/*
 * checksum_repair.h — rewrites the checksums of a log or table file so
 * that they match its bytes.
 *
 * Every fragment of a log and every block of a table carries a CRC32C, so
 * a fuzzer's mutations almost never get past the checksum test, and the
 * parsers behind it (write batches, VersionEdits, block entries, restart
 * arrays, range tombstones, properties) would only ever see the seeds.
 * Each log/table target therefore runs twice per input: on the bytes as
 * they are (the checksum and torn-tail logic), and on a copy repaired by
 * these functions (everything the checksum guards). A repaired input is
 * what a writer with a bug, or damage before the checksum was computed,
 * would leave.
 *
 * Both work in place, never read outside data[0..size), and are best
 * effort: a structure too damaged to locate is left as it is.
 */
#ifndef LSMFS_FUZZ_CHECKSUM_REPAIR_H
#define LSMFS_FUZZ_CHECKSUM_REPAIR_H

#include <stddef.h>

/* Walks the log's 32 KiB blocks fragment by fragment, as wal_reader.c
 * does, and rewrites each fragment header's CRC. Stops in a block at the
 * first header whose length runs past the block or the file. */
void fuzz_repair_log_checksums(char *data, size_t size);

/* Follows the footer to the index and metaindex blocks, and through them
 * to the data and meta blocks, and rewrites each block's trailer CRC:
 * children first, so a child block overlapping its parent does not leave
 * the parent's CRC stale. */
void fuzz_repair_table_checksums(char *data, size_t size);

#endif
