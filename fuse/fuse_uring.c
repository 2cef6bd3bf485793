/*
 * fuse_uring.c — FUSE over io_uring: the queue threads (see fuse_uring.h).
 *
 * The protocol (kernel fs/fuse/dev_uring.c, Documentation/filesystems/
 * fuse-io-uring.rst): an IORING_OP_URING_CMD on the /dev/fuse descriptor,
 * in a 128-byte SQE whose command area holds struct uring_cmd_req.
 * REGISTER hands the kernel an entry (sqe->addr: two iovecs, the header
 * buffer and the payload buffer) for queue `qid`; its completion means a
 * request is in the entry. COMMIT_AND_FETCH (commit_id: the request's)
 * hands back the reply written into the same buffers and waits for the
 * next request. In the header buffer, `in_out` holds the fuse_in_header of
 * a request and the fuse_out_header of a reply; `op_in` the request's
 * first argument (its op header, when it has one); `ring_ent_in_out` the
 * commit id and the size of what is in the payload buffer.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "fuse_uring.h"

#include "fuse_io.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#define ENABLE_URING_PARAM "/sys/module/fuse/parameters/enable_uring"

enum {
    URING_CMD_REGISTER = 1,
    URING_CMD_COMMIT_AND_FETCH = 2,
    HEADER_AREA = 128, /* in_out and op_in, each */
    /* Room before the payload for the rebuilt fuse_in_header and op
     * header, so the request is contiguous without moving its payload. */
    PREFIX = 256,
};

struct uring_ent_in_out {
    uint64_t flags;
    uint64_t commit_id;
    uint32_t payload_sz;
    uint32_t padding;
    uint64_t reserved;
};

struct uring_req_header {
    char in_out[HEADER_AREA];
    char op_in[HEADER_AREA];
    struct uring_ent_in_out ring_ent_in_out;
};

struct uring_cmd_req {
    uint64_t flags;
    uint64_t commit_id;
    uint16_t qid;
    uint8_t padding[6];
};

_Static_assert(sizeof(struct uring_req_header) == 288, "kernel's fuse_uring_req_header");
_Static_assert(sizeof(struct uring_cmd_req) == 24, "kernel's fuse_uring_cmd_req");

struct queue_thread {
    pthread_t thread;
    bool started;
    unsigned qid;
    struct io_uring ring;
    struct uring_req_header *header; /* the entry's header buffer */
    char *buffer;                    /* PREFIX bytes, then the payload */
    size_t payload_size;
    struct iovec iov[2];
};

/* The request a queue thread is handling, for fuse_uring_reply. */
struct current_entry {
    struct queue_thread *q;
    uint64_t unique;
    bool replied;
};
static _Thread_local struct current_entry current;

static struct fuse_session *session;
static bool wanted;
static struct queue_thread *threads;
static size_t thread_count;
static atomic_bool started;
static atomic_uint_fast64_t served;

int fuse_uring_kernel_enabled(void)
{
    int fd = open(ENABLE_URING_PARAM, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    char c = 0;
    ssize_t n = read(fd, &c, 1);
    int rc = n == 1 ? (c == 'Y' || c == '1') : (n < 0 ? -errno : -EIO);
    close(fd);
    return rc;
}

int fuse_uring_enable_kernel(void)
{
    int fd = open(ENABLE_URING_PARAM, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = write(fd, "Y", 1);
    int rc = n == 1 ? 0 : (n < 0 ? -errno : -EIO);
    close(fd);
    return rc;
}

/* Queues the entry's command for queue qid: REGISTER or, with commit_id,
 * COMMIT_AND_FETCH. */
static int queue_command(struct queue_thread *q, uint32_t op, uint64_t commit_id, uint16_t qid)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);
    if (sqe == NULL)
        return -EBUSY; /* one entry, one command in flight: cannot happen */
    memset(sqe, 0, 128);
    sqe->opcode = IORING_OP_URING_CMD;
    sqe->fd = fuse_session_fd(session);
    sqe->cmd_op = op;
    if (op == URING_CMD_REGISTER) {
        sqe->addr = (uint64_t)(uintptr_t)q->iov;
        sqe->len = 2;
    }
    struct uring_cmd_req req = {.commit_id = commit_id, .qid = qid};
    memcpy(sqe->cmd, &req, sizeof(req));
    sqe->user_data = op;
    return 0;
}

/* Handles the request now in q's entry and writes its reply there. */
static void handle_request(struct queue_thread *q)
{
    struct fuse_in_header in;
    struct uring_ent_in_out ent;
    memcpy(&in, q->header->in_out, sizeof(in));
    memcpy(&ent, &q->header->ring_ent_in_out, sizeof(ent));
    size_t op_size = 0;
    bool valid = in.len >= sizeof(in) + ent.payload_sz && ent.payload_sz <= q->payload_size;
    if (valid) {
        op_size = in.len - sizeof(in) - ent.payload_sz;
        valid = op_size <= HEADER_AREA;
    }
    current = (struct current_entry){.q = q, .unique = in.unique};
    if (valid) {
        char *start = q->buffer + PREFIX - sizeof(in) - op_size;
        memcpy(start, &in, sizeof(in));
        memcpy(start + sizeof(in), q->header->op_in, op_size);
        fuse_io_note_request(start, in.len);
        struct fuse_buf buf = {.mem = start, .size = in.len};
        fuse_session_process_buf(session, &buf);
    }
    if (!current.replied) {
        /* Malformed, or a request libfuse leaves unanswered: the entry
         * must go back with something, and the kernel's caller must not
         * wait forever. */
        struct fuse_out_header out = {.len = sizeof(out), .error = -EIO, .unique = in.unique};
        memcpy(q->header->in_out, &out, sizeof(out));
        struct uring_ent_in_out reply = {.commit_id = ent.commit_id};
        memcpy(&q->header->ring_ent_in_out, &reply, sizeof(reply));
    }
    current = (struct current_entry){0};
    atomic_fetch_add_explicit(&served, 1, memory_order_relaxed);
}

bool fuse_uring_reply(const struct iovec *iov, int count, ssize_t *written)
{
    struct queue_thread *q = current.q;
    if (q == NULL || current.replied || count < 1 ||
        iov[0].iov_len != sizeof(struct fuse_out_header))
        return false;
    struct fuse_out_header out;
    memcpy(&out, iov[0].iov_base, sizeof(out));
    if (out.unique != current.unique)
        return false; /* a notification, or another request's reply */
    size_t body = 0;
    for (int i = 1; i < count; i++)
        body += iov[i].iov_len;
    if (body > q->payload_size) {
        *written = -1;
        errno = EINVAL;
        return true;
    }
    /* memmove: a reply may quote the request (in the same buffer). */
    char *payload = q->buffer + PREFIX;
    size_t at = 0;
    for (int i = 1; i < count; i++) {
        memmove(payload + at, iov[i].iov_base, iov[i].iov_len);
        at += iov[i].iov_len;
    }
    out.len = (uint32_t)(sizeof(out) + body);
    memcpy(q->header->in_out, &out, sizeof(out));
    struct uring_ent_in_out ent;
    memcpy(&ent, &q->header->ring_ent_in_out, sizeof(ent));
    ent.payload_sz = (uint32_t)body;
    memcpy(&q->header->ring_ent_in_out, &ent, sizeof(ent));
    current.replied = true;
    *written = (ssize_t)out.len;
    return true;
}

static void pin_to_cpu(unsigned cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    /* A CPU this process may not use (cpuset) stays unpinned: its queue
     * still needs its threads. */
    (void)pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

/* Start signal: fuse_uring_start (go) or fuse_uring_stop (quit). */
static pthread_mutex_t start_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t start_cond = PTHREAD_COND_INITIALIZER;
static enum { WAITING, GO, QUIT } start_state;
/* Threads that tried to enable their ring, and the first failure. */
static size_t threads_enabled;
static int enable_error;

/* Makes the kernel give up io_uring for this connection after a queue
 * could not register: a REGISTER for a queue that does not exist fails,
 * and a failed REGISTER turns the connection's io_uring off and wakes the
 * requests that wait for the rings, which then go through /dev/fuse. */
static void give_up_rings(struct queue_thread *q)
{
    struct io_uring_cqe *cqe;
    if (queue_command(q, URING_CMD_REGISTER, 0, UINT16_MAX) == 0 &&
        io_uring_submit_and_wait(&q->ring, 1) >= 0 && io_uring_peek_cqe(&q->ring, &cqe) == 0)
        io_uring_cqe_seen(&q->ring, cqe);
}

/* Registers the entry and waits for its first request. Returns 0, or a
 * negative errno (-ENOTCONN: the connection ended meanwhile). */
static int register_entry(struct queue_thread *q)
{
    /* Until the kernel has taken the INIT reply it answers EAGAIN. */
    for (int attempt = 0;; attempt++) {
        int rc = queue_command(q, URING_CMD_REGISTER, 0, (uint16_t)q->qid);
        if (rc == 0) {
            rc = io_uring_submit(&q->ring);
            rc = rc == 1 ? 0 : rc < 0 ? rc : -EIO;
        }
        struct io_uring_cqe *cqe;
        if (rc == 0)
            rc = io_uring_wait_cqe(&q->ring, &cqe);
        if (rc != 0)
            return rc;
        int res = cqe->res;
        io_uring_cqe_seen(&q->ring, cqe);
        if (res == -EAGAIN && attempt < 5000) {
            usleep(1000);
            continue;
        }
        return res < 0 ? res : 0;
    }
}

static void *queue_main(void *arg)
{
    struct queue_thread *q = arg;
    pin_to_cpu(q->qid);
    /* The ring was made disabled; enabling it here makes this thread its
     * one submitter (IORING_SETUP_SINGLE_ISSUER). (liburing 2.3 declares
     * io_uring_enable_rings but does not export it.) */
    int rc = syscall(__NR_io_uring_register, q->ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0)
                 == 0
                 ? 0
                 : -errno;
    pthread_mutex_lock(&start_lock);
    threads_enabled++;
    if (rc != 0 && enable_error == 0)
        enable_error = rc;
    pthread_cond_broadcast(&start_cond);
    while (start_state == WAITING)
        pthread_cond_wait(&start_cond, &start_lock);
    bool go = start_state == GO;
    pthread_mutex_unlock(&start_lock);
    if (!go)
        return NULL;
    if (rc == 0)
        rc = register_entry(q);
    if (rc != 0) {
        if (rc != -ENOTCONN && rc != -ECONNABORTED) {
            fprintf(stderr, "lsmfs: io_uring queue %u: registering: %s; giving up io_uring\n",
                    q->qid, strerror(-rc));
            give_up_rings(q);
        }
        return NULL;
    }
    for (;;) { /* a request is in the entry */
        struct uring_ent_in_out ent;
        memcpy(&ent, &q->header->ring_ent_in_out, sizeof(ent));
        handle_request(q);
        if (queue_command(q, URING_CMD_COMMIT_AND_FETCH, ent.commit_id, (uint16_t)q->qid) != 0)
            break;
        struct io_uring_cqe *cqe;
        if (io_uring_submit_and_wait(&q->ring, 1) < 0 || io_uring_peek_cqe(&q->ring, &cqe) != 0)
            break;
        int res = cqe->res;
        io_uring_cqe_seen(&q->ring, cqe);
        if (res == -ENOTCONN || res == -ECONNABORTED || res == -ECANCELED)
            break; /* the connection ended or was aborted */
        if (res < 0) {
            /* The kernel refused the commit (its request was gone): the
             * entry is lost to it, and a queue without entries would hold
             * its requests forever. Register the buffers again. */
            fprintf(stderr, "lsmfs: io_uring queue %u: commit: %s; registering again\n", q->qid,
                    strerror(-res));
            if (register_entry(q) != 0)
                break;
        }
    }
    return NULL;
}

static void destroy_thread_state(struct queue_thread *q)
{
    io_uring_queue_exit(&q->ring);
    free(q->header);
    free(q->buffer);
}

static int init_thread_state(struct queue_thread *q, unsigned qid, size_t payload_size)
{
    memset(q, 0, sizeof(*q));
    q->qid = qid;
    q->payload_size = payload_size;
    unsigned flags = IORING_SETUP_SQE128 | IORING_SETUP_R_DISABLED | IORING_SETUP_SINGLE_ISSUER |
                     IORING_SETUP_DEFER_TASKRUN;
    int rc = io_uring_queue_init(4, &q->ring, flags);
    if (rc == -EINVAL) /* before 6.1: no deferred task work */
        rc = io_uring_queue_init(4, &q->ring, IORING_SETUP_SQE128 | IORING_SETUP_R_DISABLED);
    if (rc != 0)
        return rc;
    if (posix_memalign((void **)&q->header, 64, sizeof(*q->header)) != 0 ||
        posix_memalign((void **)&q->buffer, 4096, PREFIX + payload_size) != 0) {
        destroy_thread_state(q);
        return -ENOMEM;
    }
    memset(q->header, 0, sizeof(*q->header));
    q->iov[0] = (struct iovec){.iov_base = q->header, .iov_len = sizeof(*q->header)};
    q->iov[1] = (struct iovec){.iov_base = q->buffer + PREFIX, .iov_len = payload_size};
    return 0;
}

/* Makes every queue's rings and threads, which wait for fuse_uring_start.
 * Returns 0, or a negative errno with nothing left behind. */
static int prepare_threads(size_t payload_size)
{
    int cpus = get_nprocs_conf(); /* the kernel has a queue per possible CPU */
    if (cpus < 1)
        cpus = 1;
    size_t count = (size_t)cpus * FUSE_URING_THREADS;
    threads = calloc(count, sizeof(*threads));
    if (threads == NULL)
        return -ENOMEM;
    int rc = 0;
    for (thread_count = 0; thread_count < count && rc == 0; thread_count++) {
        struct queue_thread *q = &threads[thread_count];
        rc = init_thread_state(q, (unsigned)(thread_count / FUSE_URING_THREADS), payload_size);
        if (rc == 0) {
            rc = -pthread_create(&q->thread, NULL, queue_main, q);
            if (rc != 0)
                destroy_thread_state(q);
        }
        if (rc != 0)
            break;
        q->started = true;
    }
    if (rc == 0) {
        /* Every ring must be usable before INIT may promise the kernel
         * entries: a queue left without any would hold its requests
         * forever. */
        pthread_mutex_lock(&start_lock);
        while (threads_enabled < thread_count)
            pthread_cond_wait(&start_cond, &start_lock);
        rc = enable_error;
        pthread_mutex_unlock(&start_lock);
    }
    if (rc != 0)
        fuse_uring_stop(); /* the threads made so far quit */
    return rc;
}

void fuse_uring_configure(struct fuse_session *se, bool want, size_t max_write)
{
    session = se;
    wanted = false;
    /* Only when the kernel will offer it: the rings and buffers cost
     * memory, and a thread per queue. */
    if (!want || fuse_uring_kernel_enabled() != 1)
        return;
    /* The kernel wants room for its largest request: max(8 KiB,
     * max_write, max_pages pages), and libfuse 3.14 asks for max_pages up
     * to 256. */
    size_t size = (max_write + 4095) / 4096 * 4096;
    if (size < (256u << 12))
        size = 256u << 12;
    int rc = prepare_threads(size);
    if (rc != 0) {
        fprintf(stderr, "lsmfs: warning: FUSE over io_uring: %s; serving through /dev/fuse\n",
                strerror(-rc));
        return;
    }
    wanted = true;
}

bool fuse_uring_wanted(void)
{
    return wanted;
}

static void signal_threads(int state)
{
    pthread_mutex_lock(&start_lock);
    if (start_state == WAITING)
        start_state = state;
    pthread_cond_broadcast(&start_cond);
    pthread_mutex_unlock(&start_lock);
}

int fuse_uring_start(void)
{
    if (!wanted || atomic_exchange(&started, true))
        return -EALREADY;
    signal_threads(GO);
    return 0;
}

void fuse_uring_stop(void)
{
    signal_threads(QUIT); /* threads that never got GO */
    for (size_t i = 0; i < thread_count; i++) {
        if (threads[i].started)
            pthread_join(threads[i].thread, NULL);
        destroy_thread_state(&threads[i]);
    }
    free(threads);
    threads = NULL;
    thread_count = 0;
}

char *fuse_uring_stats_text(void)
{
    char *text = NULL;
    int rc;
    if (atomic_load(&started) && thread_count > 0)
        rc = asprintf(&text, "fuse transport: io_uring, %zu queue threads, %llu requests through them",
                      thread_count, (unsigned long long)atomic_load(&served));
    else
        rc = asprintf(&text, "fuse transport: /dev/fuse");
    return rc < 0 ? NULL : text;
}
