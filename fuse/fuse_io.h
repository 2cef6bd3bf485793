/*
 * fuse_io.h — lsmfs's own reading and writing of /dev/fuse, installed with
 * fuse_session_custom_io() on the descriptor fuse_session_mount() opened,
 * for what libfuse 3.14 does not do.
 *
 * Why. Under the writeback cache the kernel asks GETXATTR
 * "security.capability" before every write(2) (file_remove_privs: FUSE
 * leaves SB_NOSEC clear), unless the server takes over the killing of
 * setuid, setgid and capabilities with FUSE_HANDLE_KILLPRIV_V2. libfuse
 * 3.14 has no FUSE_CAP_ for that flag and masks the flags that come with it
 * (FUSE_WRITE_KILL_SUIDGID, FATTR_KILL_SUIDGID, FUSE_OPEN_KILL_SUIDGID) out
 * of what it hands the handlers. So this module
 *   - adds FUSE_HANDLE_KILLPRIV_V2 to libfuse's INIT reply when the kernel
 *     offered it;
 *   - looks at each request as it is read and remembers, per thread, the
 *     request's kill flag, which the handlers (lowlevel.c) ask for with
 *     fuse_io_current_kills_suidgid();
 *   - notes each WRITE for write_order.h, which commits a file's writes in
 *     the order the kernel sent them;
 *   - counts requests by opcode (for `lsmfs stats` and the tests).
 * libfuse 3.15 and later negotiate FUSE_CAP_HANDLE_KILLPRIV_V2 and decode
 * the flags themselves; this module is then not needed.
 *
 * Per-thread state is exact because libfuse 3.14 reads a request and
 * processes it in the same thread (fuse_session_loop and each worker of
 * fuse_session_loop_mt, with or without clone_fd: receive, then process).
 *
 * One FUSE session per process (lsmfs serves one mount): the state is
 * module-wide.
 */
#ifndef LSMFS_FUSE_IO_H
#define LSMFS_FUSE_IO_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <linux/fuse.h> /* opcodes: FUSE_WRITE, FUSE_SETATTR, FUSE_OPEN ... */
#include <stdbool.h>
#include <stdint.h>

/* Installs the reader and writer on session se, after fuse_session_mount()
 * succeeded, on the same descriptor (fuse_session_fd): the session keeps
 * owning it (fuse_session_unmount closes it, then fuse_session_destroy does
 * not). With debug, notes on stderr the flag it adds to the INIT reply.
 * Returns 0 or a negative errno. */
int fuse_io_install(struct fuse_session *se, bool debug);

/* Notes the request in buf (len bytes, laid out as read(2) of /dev/fuse
 * returns it) as this thread's current one, as the reader does: for the
 * requests fuse_uring.c takes from a ring. */
void fuse_io_note_request(const char *buf, size_t len);

/* Whether the request this thread is handling is an `opcode` request
 * (FUSE_WRITE, FUSE_SETATTR, FUSE_OPEN or FUSE_CREATE) for node `nodeid`
 * that asks the server to kill setuid/setgid: the caller lacks CAP_FSETID
 * (write, truncate, open with O_TRUNC) or it is a chown — or a SETATTR that
 * sets nothing, which under FUSE_HANDLE_KILLPRIV_V2 is the kernel's
 * privilege removal before a fallocate or copy_file_range (or a write),
 * the only sign of it those get. False for every request when
 * FUSE_HANDLE_KILLPRIV_V2 is not in force: the kernel then clears the bits
 * itself with a SETATTR of the mode. */
bool fuse_io_current_kills_suidgid(uint32_t opcode, uint64_t nodeid);

/* The kernel's number (`unique`) of the request this thread is handling,
 * if it is an `opcode` request for nodeid; otherwise 0. */
uint64_t fuse_io_current_unique(uint32_t opcode, uint64_t nodeid);

/* Whether the connection runs with FUSE_HANDLE_KILLPRIV_V2 (after INIT). */
bool fuse_io_killpriv_v2(void);

/* A malloc'd text for `lsmfs stats`: the connection's mode and, on one
 * line "fuse requests: NAME count, ...", the requests read so far by
 * opcode (those never seen are left out). NULL without memory. */
char *fuse_io_stats_text(void);

#endif /* LSMFS_FUSE_IO_H */
