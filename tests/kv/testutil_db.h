/*
 * testutil_db.h — helpers shared by the database-level tests (test_db*.c):
 * opening with a clear failure message, checked gets, finding and damaging
 * files in a data directory, deterministic values, and a watchdog that
 * turns a hang into a failure naming the phase.
 * Only the public API (kv.h) is used here.
 */
#ifndef KV_TESTUTIL_DB_H
#define KV_TESTUTIL_DB_H

#include "testutil.h"
#include "kv.h"

/* Opens `dir` and fails the test (printing kv_errmsg) unless it succeeds. */
kv_db *tdb_open(const kv_options *options, const char *dir);
/* kv_close, failing the test with kv_errmsg on error. */
void tdb_close(kv_db *db);

/* Puts and asserts success. */
void tdb_put(kv_db *db, kv_cf *cf, const char *key, const char *value);
/* Asserts that key (NUL-terminated) holds exactly value / is absent. */
void tdb_expect(kv_db *db, const kv_read_options *ro, kv_cf *cf, const char *key,
                const char *value);
void tdb_expect_missing(kv_db *db, const kv_read_options *ro, kv_cf *cf, const char *key);
/* Asserts the key holds exactly (value, len). */
void tdb_expect_bytes(kv_db *db, const kv_read_options *ro, kv_cf *cf, const void *key,
                      size_t key_len, const void *value, size_t len);

/* Deterministic test values: the bytes of value `id` (a pseudo-random
 * function of id); `len` bytes are written to out. */
void tdb_fill_value(uint64_t id, char *out, size_t len);

/* Path (malloc'd) of the file in dir whose name ends with `suffix` (".log",
 * ".sst") and has the highest number, or NULL if there is none. */
char *tdb_newest_file(const char *dir, const char *suffix);
/* Number of files in dir whose name ends with suffix. */
int tdb_count_files(const char *dir, const char *suffix);
uint64_t tdb_file_size(const char *path);
/* XORs the byte at `offset` of `path` with 0x5a (asserts it exists). */
void tdb_flip_byte(const char *path, uint64_t offset);
void tdb_truncate(const char *path, uint64_t size);
/* Writes a whole file (creating/truncating it). */
void tdb_write_file(const char *path, const void *data, size_t n);
/* Reads a whole file into a malloc'd, NUL-terminated buffer. */
char *tdb_read_file(const char *path, size_t *len);
/* The basename of path (pointer into path). */
const char *tdb_basename(const char *path);

/* A deterministic summary of a directory: sorted names with size and a
 * hash of the contents, one per line (malloc'd). Used to prove a directory
 * was not touched. */
char *tdb_dir_fingerprint(const char *dir);

/* Watchdog: `seconds` after this call (unless called again) prints `phase`
 * (which must stay valid) and aborts, so a hang becomes a diagnosable
 * failure. seconds = 0 disarms. */
void tdb_watchdog(unsigned seconds, const char *phase);

/* Integer property of cf (asserts it exists and parses). */
uint64_t tdb_property_u64(kv_db *db, kv_cf *cf, const char *name);

#endif
