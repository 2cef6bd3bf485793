/*
 * filename.c — names of the files in a data directory (filename.h): making
 * them, recognizing them, and pointing CURRENT at a MANIFEST.
 */
#include "filename.h"

#include "env.h"
#include "slice.h"

#include <stdlib.h>
#include <string.h>

static char *numbered_name(const char *dbpath, uint64_t number, const char *suffix)
{
    return kv_sprintf("%s/%06llu.%s", dbpath, (unsigned long long)number, suffix);
}

char *kv_log_file_name(const char *dbpath, uint64_t number)
{
    return numbered_name(dbpath, number, "log");
}

char *kv_table_file_name(const char *dbpath, uint64_t number)
{
    return numbered_name(dbpath, number, "sst");
}

char *kv_blob_file_name(const char *dbpath, uint64_t number)
{
    return numbered_name(dbpath, number, "blob");
}

char *kv_manifest_file_name(const char *dbpath, uint64_t number)
{
    return kv_sprintf("%s/MANIFEST-%06llu", dbpath, (unsigned long long)number);
}

char *kv_current_file_name(const char *dbpath)
{
    return kv_sprintf("%s/CURRENT", dbpath);
}

char *kv_temp_file_name(const char *dbpath, uint64_t number)
{
    return numbered_name(dbpath, number, "dbtmp");
}

char *kv_lock_file_name(const char *dbpath)
{
    return kv_sprintf("%s/LOCK", dbpath);
}

char *kv_info_log_file_name(const char *dbpath)
{
    return kv_sprintf("%s/LOG", dbpath);
}

char *kv_old_info_log_file_name(const char *dbpath)
{
    return kv_sprintf("%s/LOG.old", dbpath);
}

/* Parses a run of decimal digits at *p into *number and advances *p past
 * them. False if there is no digit or the value overflows 64 bits. Signs
 * and spaces are not digits (unlike strtoull). */
static bool parse_decimal(const char **p, uint64_t *number)
{
    const char *s = *p;
    uint64_t value = 0;
    while (*s >= '0' && *s <= '9') {
        uint64_t digit = (uint64_t)(*s - '0');
        if (value > (UINT64_MAX - digit) / 10)
            return false;
        value = value * 10 + digit;
        s++;
    }
    if (s == *p)
        return false;
    *p = s;
    *number = value;
    return true;
}

bool kv_parse_file_name(const char *name, uint64_t *number, enum kv_file_type *type)
{
    static const struct {
        const char *name;
        enum kv_file_type type;
    } fixed[] = {
        {"CURRENT", KV_FILE_CURRENT},
        {"LOCK", KV_FILE_LOCK},
        {"LOG", KV_FILE_INFO_LOG},
        {"LOG.old", KV_FILE_INFO_LOG},
    };
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        if (strcmp(name, fixed[i].name) == 0) {
            *number = 0;
            *type = fixed[i].type;
            return true;
        }
    }

    const char *p = name;
    uint64_t value;
    static const char manifest_prefix[] = "MANIFEST-";
    if (strncmp(p, manifest_prefix, sizeof(manifest_prefix) - 1) == 0) {
        p += sizeof(manifest_prefix) - 1;
        if (!parse_decimal(&p, &value) || *p != '\0')
            return false;
        *number = value;
        *type = KV_FILE_MANIFEST;
        return true;
    }

    if (!parse_decimal(&p, &value))
        return false;
    enum kv_file_type parsed;
    if (strcmp(p, ".log") == 0)
        parsed = KV_FILE_LOG;
    else if (strcmp(p, ".sst") == 0)
        parsed = KV_FILE_TABLE;
    else if (strcmp(p, ".blob") == 0)
        parsed = KV_FILE_BLOB;
    else if (strcmp(p, ".dbtmp") == 0)
        parsed = KV_FILE_TEMP;
    else
        return false;
    *number = value;
    *type = parsed;
    return true;
}

/* CURRENT holds "MANIFEST-NNNNNN\n". kv_env_write_file_synced writes it to
 * a temporary file, syncs, renames over CURRENT and syncs the directory, so
 * CURRENT is at every instant either the old or the new name, and durable
 * when this returns 0. */
int kv_set_current_file(struct kv_env *env, const char *dbpath, uint64_t manifest_number)
{
    char *contents = kv_sprintf("MANIFEST-%06llu\n", (unsigned long long)manifest_number);
    char *current = kv_current_file_name(dbpath);
    int rc = kv_env_write_file_synced(env, current, kv_slice_from_str(contents));
    free(current);
    free(contents);
    return rc;
}
