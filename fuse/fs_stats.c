/* fs_stats.c — the statistics text `lsmfs stats` prints. */
#include "fs_impl.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct text {
    char *data;
    size_t len, cap;
};

static void append(struct text *t, const char *s)
{
    size_t n = strlen(s);
    if (t->len + n + 1 > t->cap) {
        size_t cap = (t->len + n + 1) * 2;
        char *data = realloc(t->data, cap);
        if (data == NULL)
            return;
        t->data = data;
        t->cap = cap;
    }
    memcpy(t->data + t->len, s, n + 1);
    t->len += n;
}

static void append_property(struct fs *fs, struct text *t, kv_cf *cf, const char *name,
                            const char *label)
{
    char *value = NULL;
    if (kv_get_property(fs->db, cf, name, &value) != KV_OK)
        return;
    if (label != NULL) {
        char line[160];
        snprintf(line, sizeof(line), "%s%s\n", label, value);
        append(t, line);
    } else {
        append(t, value);
    }
    kv_free(value);
}

char *fs_stats_text(struct fs *fs)
{
    struct text t = {0};
    char line[256];
    snprintf(line, sizeof(line),
             "lsmfs %s: block size %u, inodes known to the kernel %zu, orphans reclaimed "
             "%" PRIu64 "\n"
             "disk full: reserve released %" PRIu64 " times, deletions that waited for space "
             "%" PRIu64 "\n",
             fs->path, fs->block_size, fs_inode_table_count(fs->inodes),
             (uint64_t)atomic_load(&fs->orphans_reclaimed),
             (uint64_t)atomic_load(&fs->reserve_released),
             (uint64_t)atomic_load(&fs->space_waits));
    append(&t, line);
    append_property(fs, &t, NULL, "kv.stats", NULL);
    kv_cf *families[2] = {fs->meta, fs->data};
    for (int i = 0; i < 2; i++) {
        snprintf(line, sizeof(line), "\nfamily %s:\n", kv_cf_name(families[i]));
        append(&t, line);
        append_property(fs, &t, families[i], "kv.cur-size-active-mem-table", "  memtable bytes: ");
        append_property(fs, &t, families[i], "kv.num-immutable-mem-table",
                        "  immutable memtables: ");
        append_property(fs, &t, families[i], "kv.estimate-pending-compaction-bytes",
                        "  pending compaction bytes: ");
        append_property(fs, &t, families[i], "kv.levelstats", NULL);
    }
    if (t.data == NULL)
        return strdup("");
    return t.data;
}
