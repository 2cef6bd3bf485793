/*
 * lowlevel.c — FUSE low-level operations of lsmfs. Each handler decodes,
 * calls one core function (fs.h) and replies; the table at the bottom
 * lists them all.
 */
#include "lowlevel.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "dirty_limit.h"
#include "fuse_io.h"
#include "write_order.h"
#include "schema.h"

static struct lsmfs_session *session_of(fuse_req_t req)
{
    return fuse_req_userdata(req);
}

static struct fs *fs_of(fuse_req_t req)
{
    return session_of(req)->fs;
}

static void reply_entry(fuse_req_t req, const struct stat *st)
{
    struct lsmfs_session *s = session_of(req); /* req is gone once replied to */
    struct fuse_entry_param e;
    memset(&e, 0, sizeof(e));
    e.ino = st->st_ino;
    e.generation = 1;
    e.attr = *st;
    e.attr_timeout = s->attr_timeout;
    e.entry_timeout = s->entry_timeout;
    if (fuse_reply_entry(req, &e) != 0)
        fs_forget(s->fs, st->st_ino, 1); /* the kernel never got the reference */
}

static void reply_status(fuse_req_t req, int rc)
{
    fuse_reply_err(req, rc < 0 ? -rc : 0);
}

static void lsmfs_init(void *userdata, struct fuse_conn_info *conn)
{
    struct lsmfs_session *s = userdata;
    if (s->writeback_cache && (conn->capable & FUSE_CAP_WRITEBACK_CACHE))
        conn->want |= FUSE_CAP_WRITEBACK_CACHE;
    else
        conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
    if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
        conn->want |= FUSE_CAP_PARALLEL_DIROPS;
    /* Without atomic O_TRUNC the kernel truncates with a setattr, which
     * carries the clearing of setuid/setgid (FATTR_KILL_SUIDGID under
     * FUSE_HANDLE_KILLPRIV_V2, else a mode of its own). */
    conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
    /* fuse_io.c must see every request, and it reads them with read(2):
     * no splicing (libfuse only splices for a write_buf handler anyway). */
    conn->want &= ~(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
    if (conn->capable & FUSE_CAP_ASYNC_DIO)
        conn->want |= FUSE_CAP_ASYNC_DIO;
    if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
        conn->want |= FUSE_CAP_CACHE_SYMLINKS;
    /* Locks are the kernel's own (local to this mount), which is exact for a
     * file system only this daemon serves. */
    conn->want &= ~(FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS);
    conn->max_write = s->max_write;
    conn->max_readahead = s->max_write;
    conn->time_gran = 1;
}

static void lsmfs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct stat st;
    int rc = fs_lookup(fs_of(req), parent, name, &st);
    if (rc == -ENOENT && session_of(req)->negative_timeout > 0) {
        struct fuse_entry_param e;
        memset(&e, 0, sizeof(e));
        e.entry_timeout = session_of(req)->negative_timeout; /* a negative entry */
        fuse_reply_entry(req, &e);
    } else if (rc != 0) {
        reply_status(req, rc);
    } else {
        reply_entry(req, &st);
    }
}

static void lsmfs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    fs_forget(fs_of(req), ino, nlookup);
    fuse_reply_none(req);
}

static void lsmfs_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
    for (size_t i = 0; i < count; i++)
        fs_forget(fs_of(req), forgets[i].ino, forgets[i].nlookup);
    fuse_reply_none(req);
}

static void lsmfs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct stat st;
    int rc = fs_getattr(fs_of(req), ino, &st);
    if (rc != 0)
        reply_status(req, rc);
    else
        fuse_reply_attr(req, &st, session_of(req)->attr_timeout);
}

static void lsmfs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                          struct fuse_file_info *fi)
{
    static const struct {
        int fuse_bit, fs_bit;
    } bits[] = {
        {FUSE_SET_ATTR_MODE, FS_SET_MODE},
        {FUSE_SET_ATTR_UID, FS_SET_UID},
        {FUSE_SET_ATTR_GID, FS_SET_GID},
        {FUSE_SET_ATTR_SIZE, FS_SET_SIZE},
        {FUSE_SET_ATTR_ATIME, FS_SET_ATIME},
        {FUSE_SET_ATTR_MTIME, FS_SET_MTIME},
        {FUSE_SET_ATTR_ATIME_NOW, FS_SET_ATIME_NOW},
        {FUSE_SET_ATTR_MTIME_NOW, FS_SET_MTIME_NOW},
        {FUSE_SET_ATTR_CTIME, FS_SET_CTIME},
    };
    int fs_set = 0;
    for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); i++)
        if (to_set & bits[i].fuse_bit)
            fs_set |= bits[i].fs_bit;
    /* libfuse 3.14 masks FATTR_KILL_SUIDGID out of to_set; fuse_io kept it. */
    if (fuse_io_current_kills_suidgid(FUSE_SETATTR, ino))
        fs_set |= FS_SET_KILL_SUIDGID;
    struct stat st;
    int rc = fs_setattr(fs_of(req), ino, attr, fs_set, &st);
    if (rc != 0)
        reply_status(req, rc);
    else
        fuse_reply_attr(req, &st, session_of(req)->attr_timeout);
}

static void lsmfs_readlink(fuse_req_t req, fuse_ino_t ino)
{
    char target[FS_SYMLINK_MAX + 1];
    ssize_t n = fs_readlink(fs_of(req), ino, target, FS_SYMLINK_MAX);
    if (n < 0) {
        reply_status(req, (int)n);
        return;
    }
    target[n] = '\0';
    fuse_reply_readlink(req, target);
}

static void create_node(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                        dev_t rdev, const char *target)
{
    const struct fuse_ctx *ctx = fuse_req_ctx(req);
    struct fs_caller caller = {.uid = ctx->uid, .gid = ctx->gid, .pid = ctx->pid};
    struct stat st;
    int rc = fs_create_node(fs_of(req), &caller, parent, name, mode, rdev, target, &st);
    if (rc != 0)
        reply_status(req, rc);
    else
        reply_entry(req, &st);
}

static void lsmfs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                        dev_t rdev)
{
    create_node(req, parent, name, mode, rdev, NULL);
}

static void lsmfs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
    create_node(req, parent, name, S_IFDIR | (mode & 07777), 0, NULL);
}

static void lsmfs_symlink(fuse_req_t req, const char *target, fuse_ino_t parent, const char *name)
{
    create_node(req, parent, name, S_IFLNK | 0777, 0, target);
}

static void lsmfs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t new_parent, const char *new_name)
{
    struct stat st;
    int rc = fs_link(fs_of(req), ino, new_parent, new_name, &st);
    if (rc != 0)
        reply_status(req, rc);
    else
        reply_entry(req, &st);
}

static void lsmfs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    reply_status(req, fs_unlink(fs_of(req), parent, name));
}

static void lsmfs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    reply_status(req, fs_rmdir(fs_of(req), parent, name));
}

static void lsmfs_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t new_parent,
                         const char *new_name, unsigned int flags)
{
    reply_status(req, fs_rename(fs_of(req), parent, name, new_parent, new_name, flags));
}

static void set_open_flags(fuse_req_t req, struct fuse_file_info *fi)
{
    /* This daemon is the only writer, so cached pages stay valid across
     * opens, and without the writeback cache a close has nothing to flush
     * (every write was answered by lsmfs). The writeback cache ignores
     * noflush: see lsmfs_flush. */
    fi->keep_cache = 1;
    fi->noflush = 1;
}

static void lsmfs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct fs *fs = fs_of(req);
    int rc = 0;
    /* O_TRUNC reaches OPEN only with FUSE_CAP_ATOMIC_O_TRUNC, which
     * lsmfs_init refuses: the kernel strips it and truncates with a SETATTR
     * instead. Were it granted, the truncation is done here as that SETATTR
     * would (FUSE_OPEN_KILL_SUIDGID standing for FATTR_KILL_SUIDGID). */
    if (fi->flags & O_TRUNC) {
        struct stat attr = {.st_size = 0}, st;
        int to_set = FS_SET_SIZE;
        if (fuse_io_current_kills_suidgid(FUSE_OPEN, ino))
            to_set |= FS_SET_KILL_SUIDGID;
        rc = fs_setattr(fs, ino, &attr, to_set, &st);
    }
    if (rc == 0)
        rc = fs_open_file(fs, ino, fi->flags & ~O_TRUNC);
    if (rc != 0) {
        reply_status(req, rc);
        return;
    }
    set_open_flags(req, fi);
    fuse_reply_open(req, fi);
}

static void lsmfs_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                         struct fuse_file_info *fi)
{
    const struct fuse_ctx *ctx = fuse_req_ctx(req);
    struct fs_caller caller = {.uid = ctx->uid, .gid = ctx->gid, .pid = ctx->pid};
    struct stat st;
    struct fs *fs = fs_of(req);
    /* The file is new, so O_TRUNC (and FUSE_OPEN_KILL_SUIDGID with it) has
     * nothing to do. */
    int rc = fs_create_node(fs, &caller, parent, name, (mode & 07777) | S_IFREG, 0, NULL, &st);
    if (rc == 0)
        rc = fs_open_file(fs, st.st_ino, fi->flags & ~O_TRUNC);
    if (rc != 0) {
        reply_status(req, rc);
        return;
    }
    struct lsmfs_session *s = session_of(req);
    struct fuse_entry_param e;
    memset(&e, 0, sizeof(e));
    e.ino = st.st_ino;
    e.generation = 1;
    e.attr = st;
    e.attr_timeout = s->attr_timeout;
    e.entry_timeout = s->entry_timeout;
    set_open_flags(req, fi);
    if (fuse_reply_create(req, &e, fi) != 0) {
        /* The kernel is gone (interrupted): take back what it will not. */
        fs_release_file(fs, st.st_ino);
        fs_forget(fs, st.st_ino, 1);
    }
}

static void lsmfs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
    char *buf = malloc(size > 0 ? size : 1);
    if (buf == NULL) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    struct fs *fs = fs_of(req); /* req is gone once replied to */
    ssize_t n = fs_read(fs, ino, (uint64_t)off, size, buf);
    if (n < 0)
        reply_status(req, (int)n);
    else
        fuse_reply_buf(req, buf, (size_t)n);
    free(buf);
    if (n >= 0)
        fs_note_access(fs, ino); /* after the reply: off the reader's path */
}

static void lsmfs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                        struct fuse_file_info *fi)
{
    /* The kernel gives the final offset, also for O_APPEND. libfuse 3.14
     * drops FUSE_WRITE_KILL_SUIDGID; fuse_io kept it. */
    int flags = 0;
    if (fuse_io_current_kills_suidgid(FUSE_WRITE, ino))
        flags |= FS_WRITE_KILL_SUIDGID;
    if (fi->writepage)
        flags |= FS_WRITE_WRITEBACK;
    /* The WRITEs of a sequential stream commit in file order (see
     * write_order.h: sequential files then compact by moving). */
    uint64_t unique = fuse_io_current_unique(FUSE_WRITE, ino);
    write_order_wait_turn(ino, unique, (uint64_t)off);
    /* Write-back that leaves a gap behind the file's last WRITE is a run
     * of scattered pages the page cache merged: rewrites of it stay in
     * the tree. One that continues it is part of a sweep (a sequential
     * rewrite, or a file dirtied all over) and may go to a blob file, and
     * is part of a stream for dirty_limit.h. */
    bool continues = fi->writepage && write_order_continues(ino, (uint64_t)off);
    if (fi->writepage && !continues)
        flags |= FS_WRITE_REWRITES_IN_TREE;
    struct fs_write_info info = {0};
    ssize_t n = fs_write_info(fs_of(req), ino, (uint64_t)off, buf, size, flags, &info);
    write_order_done(ino, unique, (uint64_t)off, n > 0 ? (uint64_t)n : 0);
    if (n > 0 && fi->writepage) {
        bool extends = (uint64_t)off + (uint64_t)n > info.size_before;
        dirty_limit_note_writeback((uint64_t)off, (uint64_t)n, extends, extends && continues);
    }
    if (n < 0)
        reply_status(req, (int)n);
    else
        fuse_reply_write(req, (size_t)n);
}

/* Sent on every close(2) under the writeback cache, after the kernel has
 * written the file's dirty pages back and had every WRITE answered, so
 * there is nothing left to do. It is answered rather than left ENOSYS for
 * what the round trip proves: the kernel drops dirty pages it cannot send
 * to a dead daemon without reporting an error, and without FLUSH a close
 * after a kill -9 would return 0 with that data lost. A FLUSH to a dead
 * daemon fails with ENOTCONN, so a close that succeeds means the data
 * reached lsmfs. */
static void lsmfs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino;
    (void)fi;
    fuse_reply_err(req, 0);
}

static void lsmfs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    fs_release_file(fs_of(req), ino);
    fuse_reply_err(req, 0);
}

static void lsmfs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    reply_status(req, fs_fsync(fs_of(req)));
}

static void lsmfs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct fs *fs = fs_of(req); /* req is gone once replied to */
    struct fs_dir *dir;
    int rc = fs_opendir(fs, ino, &dir);
    if (rc != 0) {
        reply_status(req, rc);
        return;
    }
    fi->fh = (uint64_t)(uintptr_t)dir;
    if (fuse_reply_open(req, fi) != 0)
        fs_releasedir(fs, dir);
    else
        fs_note_access(fs, ino);
}

struct readdir_buffer {
    fuse_req_t req;
    char *buf;
    size_t size, used;
    bool plus;
};

static bool readdir_fill(void *ctx, const char *name, const struct stat *st, bool referenced,
                         uint64_t next_offset)
{
    struct readdir_buffer *b = ctx;
    size_t room = b->size - b->used, need;
    if (b->plus) {
        struct lsmfs_session *s = session_of(b->req);
        struct fuse_entry_param e;
        memset(&e, 0, sizeof(e));
        e.attr = *st;
        if (referenced) { /* else ino 0: the kernel takes the name only */
            e.ino = st->st_ino;
            e.generation = 1;
            e.attr_timeout = s->attr_timeout;
            e.entry_timeout = s->entry_timeout;
        }
        need = fuse_add_direntry_plus(b->req, b->buf + b->used, room, name, &e, (off_t)next_offset);
    } else {
        need = fuse_add_direntry(b->req, b->buf + b->used, room, name, st, (off_t)next_offset);
    }
    if (need > room)
        return false;
    b->used += need;
    return true;
}

static void readdir_common(fuse_req_t req, size_t size, off_t off, struct fuse_file_info *fi,
                           bool plus)
{
    struct readdir_buffer b = {.req = req, .size = size, .plus = plus};
    b.buf = malloc(size > 0 ? size : 1);
    if (b.buf == NULL) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    struct fs_dir *dir = (struct fs_dir *)(uintptr_t)fi->fh;
    int rc = fs_readdir(fs_of(req), dir, (uint64_t)off, plus, readdir_fill, &b);
    /* An error after some entries: give those; the next call reports it. */
    if (rc != 0 && b.used == 0)
        reply_status(req, rc);
    else
        fuse_reply_buf(req, b.buf, b.used);
    free(b.buf);
}

static void lsmfs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                          struct fuse_file_info *fi)
{
    readdir_common(req, size, off, fi, false);
}

static void lsmfs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                              struct fuse_file_info *fi)
{
    readdir_common(req, size, off, fi, true);
}

static void lsmfs_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    fs_releasedir(fs_of(req), (struct fs_dir *)(uintptr_t)fi->fh);
    fuse_reply_err(req, 0);
}

static void lsmfs_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    reply_status(req, fs_fsync(fs_of(req)));
}

static void lsmfs_statfs(fuse_req_t req, fuse_ino_t ino)
{
    struct statvfs st;
    int rc = fs_statfs(fs_of(req), &st);
    if (rc != 0)
        reply_status(req, rc);
    else
        fuse_reply_statfs(req, &st);
}

static void lsmfs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                           size_t size, int flags)
{
    reply_status(req, fs_setxattr(fs_of(req), ino, name, value, size, flags));
}

static void lsmfs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
    char *buf = size > 0 ? malloc(size) : NULL;
    if (size > 0 && buf == NULL) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    ssize_t n = fs_getxattr(fs_of(req), ino, name, buf, size);
    if (n < 0)
        reply_status(req, (int)n);
    else if (size == 0)
        fuse_reply_xattr(req, (size_t)n);
    else
        fuse_reply_buf(req, buf, (size_t)n);
    free(buf);
}

static void lsmfs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
    char *buf = size > 0 ? malloc(size) : NULL;
    if (size > 0 && buf == NULL) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    ssize_t n = fs_listxattr(fs_of(req), ino, buf, size);
    if (n < 0)
        reply_status(req, (int)n);
    else if (size == 0)
        fuse_reply_xattr(req, (size_t)n);
    else
        fuse_reply_buf(req, buf, (size_t)n);
    free(buf);
}

static void lsmfs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
    reply_status(req, fs_removexattr(fs_of(req), ino, name));
}

static void lsmfs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
                            struct fuse_file_info *fi)
{
    if (offset < 0 || length <= 0) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    reply_status(req, fs_fallocate(fs_of(req), ino, mode, (uint64_t)offset, (uint64_t)length));
}

static void lsmfs_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
                        struct fuse_file_info *fi)
{
    if (whence != SEEK_DATA && whence != SEEK_HOLE) {
        fuse_reply_err(req, EINVAL); /* the kernel handles the others itself */
        return;
    }
    int64_t pos = fs_lseek(fs_of(req), ino, off, whence);
    if (pos < 0)
        reply_status(req, (int)pos);
    else
        fuse_reply_lseek(req, pos);
}

static void lsmfs_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
                                  struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
                                  struct fuse_file_info *fi_out, size_t len, int flags)
{
    if (flags != 0 || off_in < 0 || off_out < 0) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    ssize_t n =
        fs_copy_file_range(fs_of(req), ino_in, (uint64_t)off_in, ino_out, (uint64_t)off_out, len);
    if (n < 0)
        reply_status(req, (int)n);
    else
        fuse_reply_write(req, (size_t)n);
}

/* The core's statistics, then the FUSE connection's (fuse_io). */
static char *stats_text(struct fs *fs)
{
    char *core = fs_stats_text(fs), *connection = fuse_io_stats_text();
    size_t core_len = core != NULL ? strlen(core) : 0;
    size_t connection_len = connection != NULL ? strlen(connection) : 0;
    char *text = NULL;
    if (core != NULL && connection != NULL)
        text = malloc(core_len + 1 + connection_len + 1);
    if (text != NULL)
        snprintf(text, core_len + 1 + connection_len + 1, "%s\n%s", core, connection);
    free(core);
    free(connection);
    return text;
}

static void lsmfs_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void *arg,
                        struct fuse_file_info *fi, unsigned flags, const void *in_buf,
                        size_t in_bufsz, size_t out_bufsz)
{
    if (flags & FUSE_IOCTL_COMPAT) {
        fuse_reply_err(req, ENOSYS);
        return;
    }
    if (cmd != LSMFS_IOC_STATS) {
        fuse_reply_err(req, ENOTTY);
        return;
    }
    if (in_bufsz < sizeof(struct lsmfs_stats_request) ||
        out_bufsz < sizeof(struct lsmfs_stats_request)) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    struct lsmfs_stats_request *out = calloc(1, sizeof(*out));
    char *text = stats_text(fs_of(req));
    if (out == NULL || text == NULL) {
        free(out);
        free(text);
        fuse_reply_err(req, ENOMEM);
        return;
    }
    const struct lsmfs_stats_request *in = in_buf;
    size_t total = strlen(text);
    size_t from = in->offset < total ? (size_t)in->offset : total;
    size_t n = total - from < sizeof(out->text) - 1 ? total - from : sizeof(out->text) - 1;
    out->offset = from;
    out->total = total;
    memcpy(out->text, text + from, n);
    fuse_reply_ioctl(req, 0, out, sizeof(*out));
    free(text);
    free(out);
}

static const struct fuse_lowlevel_ops ops = {
    .init = lsmfs_init,
    .lookup = lsmfs_lookup,
    .forget = lsmfs_forget,
    .forget_multi = lsmfs_forget_multi,
    .getattr = lsmfs_getattr,
    .setattr = lsmfs_setattr,
    .readlink = lsmfs_readlink,
    .mknod = lsmfs_mknod,
    .mkdir = lsmfs_mkdir,
    .symlink = lsmfs_symlink,
    .link = lsmfs_link,
    .unlink = lsmfs_unlink,
    .rmdir = lsmfs_rmdir,
    .rename = lsmfs_rename,
    .open = lsmfs_open,
    .create = lsmfs_create,
    .read = lsmfs_read,
    .write = lsmfs_write,
    .flush = lsmfs_flush,
    .release = lsmfs_release,
    .fsync = lsmfs_fsync,
    .opendir = lsmfs_opendir,
    .readdir = lsmfs_readdir,
    .readdirplus = lsmfs_readdirplus,
    .releasedir = lsmfs_releasedir,
    .fsyncdir = lsmfs_fsyncdir,
    .statfs = lsmfs_statfs,
    .setxattr = lsmfs_setxattr,
    .getxattr = lsmfs_getxattr,
    .listxattr = lsmfs_listxattr,
    .removexattr = lsmfs_removexattr,
    .fallocate = lsmfs_fallocate,
    .lseek = lsmfs_lseek,
    .copy_file_range = lsmfs_copy_file_range,
    .ioctl = lsmfs_ioctl,
};

const struct fuse_lowlevel_ops *lsmfs_lowlevel_ops(void)
{
    return &ops;
}
