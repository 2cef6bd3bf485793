/*
 * fuse_io.c — the /dev/fuse reader and writer that negotiate
 * FUSE_HANDLE_KILLPRIV_V2 behind libfuse 3.14's back (see fuse_io.h).
 *
 * Both callbacks run in libfuse's worker threads and must leave errno as
 * read(2) or writev(2) set it when they fail: libfuse looks at errno (ENOENT:
 * interrupted, ENODEV: unmounted) right after the call.
 */
#include "fuse_io.h"

#include "dirty_limit.h"
#include "fuse_poll.h"
#include "fuse_uring.h"
#include "write_order.h"

#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

/* Opcodes counted one by one; larger ones (CUSE_INIT) count as the last. */
#define COUNTED_OPCODES 64

/* The request a thread read last, which is the one it is handling. */
struct current_request {
    uint32_t opcode;
    uint64_t nodeid, unique;
    bool kill_suidgid;
};
static _Thread_local struct current_request current;

static bool debug_init;
/* INIT: the request's unique while its reply is due (0 before and after),
 * and whether the kernel offered FUSE_HANDLE_KILLPRIV_V2. INIT is the one
 * request in flight at that time, but another thread may write the next
 * replies, so these are atomics. */
static atomic_uint_fast64_t init_unique;
static atomic_bool killpriv_v2_offered;
static atomic_bool uring_offered; /* FUSE_OVER_IO_URING, in flags2 */
static atomic_bool killpriv_v2_on;
static atomic_uint_fast64_t request_counts[COUNTED_OPCODES];

static const char *const opcode_names[COUNTED_OPCODES] = {
    [FUSE_LOOKUP] = "LOOKUP",
    [FUSE_FORGET] = "FORGET",
    [FUSE_GETATTR] = "GETATTR",
    [FUSE_SETATTR] = "SETATTR",
    [FUSE_READLINK] = "READLINK",
    [FUSE_SYMLINK] = "SYMLINK",
    [FUSE_MKNOD] = "MKNOD",
    [FUSE_MKDIR] = "MKDIR",
    [FUSE_UNLINK] = "UNLINK",
    [FUSE_RMDIR] = "RMDIR",
    [FUSE_RENAME] = "RENAME",
    [FUSE_LINK] = "LINK",
    [FUSE_OPEN] = "OPEN",
    [FUSE_READ] = "READ",
    [FUSE_WRITE] = "WRITE",
    [FUSE_STATFS] = "STATFS",
    [FUSE_RELEASE] = "RELEASE",
    [FUSE_FSYNC] = "FSYNC",
    [FUSE_SETXATTR] = "SETXATTR",
    [FUSE_GETXATTR] = "GETXATTR",
    [FUSE_LISTXATTR] = "LISTXATTR",
    [FUSE_REMOVEXATTR] = "REMOVEXATTR",
    [FUSE_FLUSH] = "FLUSH",
    [FUSE_INIT] = "INIT",
    [FUSE_OPENDIR] = "OPENDIR",
    [FUSE_READDIR] = "READDIR",
    [FUSE_RELEASEDIR] = "RELEASEDIR",
    [FUSE_FSYNCDIR] = "FSYNCDIR",
    [FUSE_GETLK] = "GETLK",
    [FUSE_SETLK] = "SETLK",
    [FUSE_SETLKW] = "SETLKW",
    [FUSE_ACCESS] = "ACCESS",
    [FUSE_CREATE] = "CREATE",
    [FUSE_INTERRUPT] = "INTERRUPT",
    [FUSE_BMAP] = "BMAP",
    [FUSE_DESTROY] = "DESTROY",
    [FUSE_IOCTL] = "IOCTL",
    [FUSE_POLL] = "POLL",
    [FUSE_NOTIFY_REPLY] = "NOTIFY_REPLY",
    [FUSE_BATCH_FORGET] = "BATCH_FORGET",
    [FUSE_FALLOCATE] = "FALLOCATE",
    [FUSE_READDIRPLUS] = "READDIRPLUS",
    [FUSE_RENAME2] = "RENAME2",
    [FUSE_LSEEK] = "LSEEK",
    [FUSE_COPY_FILE_RANGE] = "COPY_FILE_RANGE",
    [FUSE_SETUPMAPPING] = "SETUPMAPPING",
    [FUSE_REMOVEMAPPING] = "REMOVEMAPPING",
    [FUSE_SYNCFS] = "SYNCFS",
    [FUSE_TMPFILE] = "TMPFILE",
};

/* Copies the uint32_t at `offset` of a request body of body_len bytes into
 * *value; false when the body is too short to hold it. */
static bool body_u32(const char *body, size_t body_len, size_t offset, uint32_t *value)
{
    if (body_len < offset + sizeof(*value))
        return false;
    memcpy(value, body + offset, sizeof(*value));
    return true;
}

/* Records what the request in buf (len bytes, as read) says beyond what
 * libfuse decodes: this thread's current request, INIT's offer, and the
 * count. A malformed request is left for libfuse to refuse. */
static void note_request(const char *buf, size_t len)
{
    struct fuse_in_header header;
    if (len < sizeof(header))
        return;
    memcpy(&header, buf, sizeof(header));
    if (header.len < sizeof(header) || header.len > len)
        return;
    const char *body = buf + sizeof(header);
    size_t body_len = header.len - sizeof(header);
    atomic_fetch_add_explicit(
        &request_counts[header.opcode < COUNTED_OPCODES ? header.opcode : COUNTED_OPCODES - 1], 1,
        memory_order_relaxed);
    current.opcode = header.opcode;
    current.nodeid = header.nodeid;
    current.unique = header.unique;

    uint32_t value;
    switch (header.opcode) {
    case FUSE_INIT:
        /* FUSE_HANDLE_KILLPRIV_V2 is bit 28: in `flags`, not in flags2
         * (bits 32..63, present with FUSE_INIT_EXT). */
        if (body_u32(body, body_len, offsetof(struct fuse_init_in, flags), &value)) {
            uint32_t flags2 = 0;
            atomic_store(&killpriv_v2_offered, (value & FUSE_HANDLE_KILLPRIV_V2) != 0);
            atomic_store(&uring_offered,
                         (value & FUSE_INIT_EXT) &&
                             body_u32(body, body_len, offsetof(struct fuse_init_in, flags2),
                                      &flags2) &&
                             (flags2 & LSMFS_FUSE_OVER_IO_URING_FLAGS2));
            atomic_store(&init_unique, header.unique);
        }
        break;
    case FUSE_WRITE:
        if (body_len >= sizeof(struct fuse_write_in)) {
            struct fuse_write_in in;
            memcpy(&in, body, sizeof(in));
            write_order_arrived(header.nodeid, header.unique, in.offset, in.size);
        }
        current.kill_suidgid =
            body_u32(body, body_len, offsetof(struct fuse_write_in, write_flags), &value) &&
            (value & FUSE_WRITE_KILL_SUIDGID);
        break;
    case FUSE_SETATTR:
        /* A SETATTR that sets nothing is what is left of the kernel's own
         * removal of privileges (file_remove_privs, on fallocate,
         * copy_file_range and writes) once fuse_setattr has dropped the
         * ATTR_KILL_SUID/SGID it leaves to us: FALLOCATE and
         * COPY_FILE_RANGE carry no kill flag of their own. */
        current.kill_suidgid =
            body_u32(body, body_len, offsetof(struct fuse_setattr_in, valid), &value) &&
            ((value & FATTR_KILL_SUIDGID) || (value == 0 && atomic_load(&killpriv_v2_on)));
        break;
    case FUSE_OPEN:
        current.kill_suidgid =
            body_u32(body, body_len, offsetof(struct fuse_open_in, open_flags), &value) &&
            (value & FUSE_OPEN_KILL_SUIDGID);
        break;
    case FUSE_CREATE:
        current.kill_suidgid =
            body_u32(body, body_len, offsetof(struct fuse_create_in, open_flags), &value) &&
            (value & FUSE_OPEN_KILL_SUIDGID);
        break;
    default:
        break;
    }
}

static ssize_t fuse_io_read(int fd, void *buf, size_t buf_len, void *userdata)
{
    (void)userdata;
    current = (struct current_request){0};
    ssize_t n = fuse_poll_read(fd, buf, buf_len);
    if (n > 0)
        note_request(buf, (size_t)n);
    return n;
}

void fuse_io_note_request(const char *buf, size_t len)
{
    current = (struct current_request){0};
    note_request(buf, len);
}

/* Writes the INIT reply (iov[0] its header, the rest struct fuse_init_out)
 * with FUSE_HANDLE_KILLPRIV_V2 added to its flags when the kernel offered
 * it, and FUSE_OVER_IO_URING when the kernel offered it and lsmfs wants
 * it (then starts the queue threads). A reply that is not a full 7.x one
 * (an error, or a major version the kernel must retry with) goes out as it
 * is. */
static ssize_t write_init_reply(int fd, struct iovec *iov, int count)
{
    const struct fuse_out_header *header = iov[0].iov_base;
    struct fuse_init_out reply;
    size_t body_len = 0;
    bool fits = true;
    for (int i = 1; i < count && fits; i++) {
        fits = body_len + iov[i].iov_len <= sizeof(reply);
        if (fits)
            memcpy((char *)&reply + body_len, iov[i].iov_base, iov[i].iov_len);
        body_len += iov[i].iov_len;
    }
    if (header->error != 0 || !fits ||
        body_len < offsetof(struct fuse_init_out, flags) + sizeof(reply.flags) ||
        reply.major != FUSE_KERNEL_VERSION)
        return writev(fd, iov, count);
    bool killpriv = atomic_load(&killpriv_v2_offered);
    bool uring = atomic_load(&uring_offered) && fuse_uring_wanted() &&
                 body_len >= offsetof(struct fuse_init_out, flags2) + sizeof(reply.flags2);
    if (killpriv)
        reply.flags |= FUSE_HANDLE_KILLPRIV_V2;
    if (uring) {
        reply.flags |= FUSE_INIT_EXT;
        reply.flags2 |= LSMFS_FUSE_OVER_IO_URING_FLAGS2;
    }
    struct iovec rewritten[2] = {iov[0], {.iov_base = &reply, .iov_len = body_len}};
    ssize_t n = writev(fd, rewritten, 2);
    if (n >= 0) {
        atomic_store(&killpriv_v2_on, killpriv);
        if (debug_init)
            fprintf(stderr, "   lsmfs: INIT reply flags=0x%08x flags2=0x%08x (%s%s)\n", reply.flags,
                    body_len >= offsetof(struct fuse_init_out, flags2) + sizeof(reply.flags2)
                        ? reply.flags2
                        : 0,
                    killpriv ? "added HANDLE_KILLPRIV_V2" : "",
                    uring ? (killpriv ? ", OVER_IO_URING" : "added OVER_IO_URING") : "");
        /* The kernel took the reply: the connection is initialized, and
         * the queues may register. */
        if (uring)
            fuse_uring_start();
    }
    return n;
}

static ssize_t fuse_io_writev(int fd, struct iovec *iov, int count, void *userdata)
{
    (void)userdata;
    ssize_t written;
    if (fuse_uring_reply(iov, count, &written))
        return written;
    if (count >= 1 && iov[0].iov_len == sizeof(struct fuse_out_header)) {
        const struct fuse_out_header *header = iov[0].iov_base;
        uint_fast64_t expected = header->unique;
        /* Only the INIT reply, once; a notification (unique 0) never. The
         * plain load keeps every later reply off the shared cache line's
         * write path. */
        if (expected != 0 && atomic_load_explicit(&init_unique, memory_order_relaxed) == expected &&
            atomic_compare_exchange_strong(&init_unique, &expected, 0) &&
            (atomic_load(&killpriv_v2_offered) || atomic_load(&uring_offered)))
            return write_init_reply(fd, iov, count);
    }
    return writev(fd, iov, count);
}

int fuse_io_install(struct fuse_session *se, bool debug)
{
    debug_init = debug;
    /* No splice callbacks: libfuse then reads and writes with these two
     * only, so every request passes through fuse_io_read. */
    const struct fuse_custom_io io = {.read = fuse_io_read, .writev = fuse_io_writev};
    return fuse_session_custom_io(se, &io, fuse_session_fd(se));
}

bool fuse_io_current_kills_suidgid(uint32_t opcode, uint64_t nodeid)
{
    return current.opcode == opcode && current.nodeid == nodeid && current.kill_suidgid;
}

uint64_t fuse_io_current_unique(uint32_t opcode, uint64_t nodeid)
{
    return current.opcode == opcode && current.nodeid == nodeid ? current.unique : 0;
}

bool fuse_io_killpriv_v2(void)
{
    return atomic_load(&killpriv_v2_on);
}

char *fuse_io_stats_text(void)
{
    const char *killpriv = fuse_io_killpriv_v2() ? "on"
                           : atomic_load(&killpriv_v2_offered)
                               ? "off (offered, not granted)"
                               : "off (the kernel does not offer it)";
    char *transport = fuse_uring_stats_text();
    char *polling = fuse_poll_stats_text();
    char *dirty = dirty_limit_stats_text();
    const char *lines[3] = {transport != NULL ? transport : "", polling != NULL ? polling : "",
                            dirty != NULL ? dirty : ""};
    /* The first lines as they are, then entries of at most ", " + a
     * 15-letter name + 20 digits. */
    size_t cap = 128 + COUNTED_OPCODES * 48;
    for (int i = 0; i < 3; i++)
        cap += strlen(lines[i]);
    char *text = malloc(cap);
    size_t len = 0;
    if (text != NULL)
        len = (size_t)snprintf(text, cap, "fuse: handle_killpriv_v2 %s\n%s\n%s\n%s\nfuse requests:",
                               killpriv, lines[0], lines[1], lines[2]);
    free(transport);
    free(polling);
    free(dirty);
    if (text == NULL)
        return NULL;
    const char *separator = " ";
    for (int op = 0; op < COUNTED_OPCODES; op++) {
        unsigned long long count = atomic_load_explicit(&request_counts[op], memory_order_relaxed);
        if (count == 0)
            continue;
        char name[24];
        if (opcode_names[op] != NULL)
            snprintf(name, sizeof(name), "%s", opcode_names[op]);
        else
            snprintf(name, sizeof(name), "opcode%d", op);
        len += (size_t)snprintf(text + len, cap - len, "%s%s %llu", separator, name, count);
        separator = ", ";
    }
    snprintf(text + len, cap - len, "\n");
    return text;
}
