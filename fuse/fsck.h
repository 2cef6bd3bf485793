/*
 * fsck.h — `lsmfs fsck DATADIR`: the offline check (and, with repair, the
 * safe fixes) of an unmounted lsmfs data directory.
 */
#ifndef LSMFS_FSCK_H
#define LSMFS_FSCK_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct fsck_options {
    bool repair;   /* fix what is safe, saying what was done */
    bool progress; /* progress lines on stderr for a large store */
    FILE *out;     /* report and summary (stdout) */
};

/* What fsck found; counts of the file system as stored. */
struct fsck_report {
    uint64_t inodes, files, directories, symlinks, specials;
    uint64_t entries, data_blocks, data_bytes, xattrs, orphans;
    uint64_t sst_files, sst_bytes;
    uint64_t problems, repaired;
};

/* Exit statuses, as e2fsck's. */
enum {
    FSCK_CLEAN = 0,
    FSCK_REPAIRED = 1, /* problems found, all repaired */
    FSCK_DAMAGED = 4,  /* problems left (no --repair, or not safely repairable) */
    FSCK_FAILED = 8,   /* could not check: not lsmfs, mounted, unreadable */
};

int lsmfs_fsck(const char *path, const struct fsck_options *options, struct fsck_report *report);

#endif /* LSMFS_FSCK_H */
