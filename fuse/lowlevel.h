/*
 * lowlevel.h — the FUSE low-level front end: one short handler per FUSE
 * operation that decodes the request, calls the core (fs.h) and replies.
 */
#ifndef LSMFS_LOWLEVEL_H
#define LSMFS_LOWLEVEL_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <stdbool.h>
#include <sys/ioctl.h>

#include "fs.h"

/* What the handlers need besides the core. */
struct lsmfs_session {
    struct fs *fs;
    double entry_timeout;    /* seconds the kernel may cache names */
    double attr_timeout;     /* seconds the kernel may cache attributes */
    double negative_timeout; /* seconds it may cache "no such name" */
    bool writeback_cache;    /* let the kernel cache writes (FUSE_CAP_WRITEBACK_CACHE) */
    unsigned int max_write;  /* bytes per write request */
};

const struct fuse_lowlevel_ops *lsmfs_lowlevel_ops(void);

/* `lsmfs stats MOUNTPOINT`: an ioctl on the mount's root directory returns
 * the statistics text, a page at a time from `offset`. */
#define LSMFS_STATS_PAGE 16000
struct lsmfs_stats_request {
    unsigned long long offset; /* in: where to start in the text */
    unsigned long long total;  /* out: the whole text's length */
    char text[LSMFS_STATS_PAGE];
};
#define LSMFS_IOC_STATS _IOWR('L', 1, struct lsmfs_stats_request)

#endif /* LSMFS_LOWLEVEL_H */
