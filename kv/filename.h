/*
 * filename.h — names of the files in a data directory:
 *   CURRENT            name of the current MANIFEST, newline-terminated
 *   MANIFEST-NNNNNN    log of VersionEdits
 *   NNNNNN.log         write-ahead log
 *   NNNNNN.sst         table
 *   NNNNNN.blob        blob file (values kept out of the tree; blob.h)
 *   NNNNNN.dbtmp       temporary (CURRENT being replaced)
 *   LOCK               flock'd by the process that has the database open
 *   LOG, LOG.old       human-readable event log
 * Returned strings are malloc'd.
 */
#ifndef KV_FILENAME_H
#define KV_FILENAME_H

#include <stdbool.h>
#include <stdint.h>

enum kv_file_type {
    KV_FILE_LOG,
    KV_FILE_TABLE,
    KV_FILE_MANIFEST,
    KV_FILE_CURRENT,
    KV_FILE_TEMP,
    KV_FILE_LOCK,
    KV_FILE_INFO_LOG,
    KV_FILE_BLOB,
};

char *kv_log_file_name(const char *dbpath, uint64_t number);
char *kv_table_file_name(const char *dbpath, uint64_t number);
char *kv_blob_file_name(const char *dbpath, uint64_t number);
char *kv_manifest_file_name(const char *dbpath, uint64_t number);
char *kv_current_file_name(const char *dbpath);
char *kv_temp_file_name(const char *dbpath, uint64_t number);
char *kv_lock_file_name(const char *dbpath);
char *kv_info_log_file_name(const char *dbpath);
char *kv_old_info_log_file_name(const char *dbpath);

/* Classifies a directory entry name (not a path); false if it is not one
 * of ours. number is 0 for unnumbered types. */
bool kv_parse_file_name(const char *name, uint64_t *number, enum kv_file_type *type);

/* Points CURRENT at MANIFEST-number, atomically and durably. */
struct kv_env;
int kv_set_current_file(struct kv_env *env, const char *dbpath, uint64_t manifest_number);

#endif
