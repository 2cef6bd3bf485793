/*
 * dirty_limit.c — see dirty_limit.h.
 */
#include "dirty_limit.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bdi.h"

bool dirty_policy_note(struct dirty_policy *p, uint64_t offset, uint64_t size, bool extends,
                       bool grows_stream)
{
    if (size < DIRTY_POLICY_SMALL_MAX) {
        /* A small file, the head of one, or an appender's WRITE: none of
         * them is what the page cache would merge. */
        if (offset < DIRTY_POLICY_DEEP || extends || ++p->scattered < DIRTY_POLICY_SCATTERED)
            return false;
        p->scattered = 0;
        p->bytes = 0;
        if (p->lifted)
            return false;
        p->lifted = true;
        return true;
    }
    if (!p->lifted) {
        if (size >= DIRTY_POLICY_LONG_MIN && (p->bytes += size) >= DIRTY_POLICY_LONG_FORGET)
            p->scattered = p->bytes = 0;
        return false;
    }
    if (!grows_stream || (p->bytes += size) < DIRTY_POLICY_GROW_RESTORE)
        return false;
    p->scattered = p->bytes = 0;
    p->lifted = false;
    return true;
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    bool active; /* AUTO on a mount whose knob lsmfs can write */
    enum dirty_limit_mode mode;
    int error; /* the last failure to write the knob (negative errno), or 0 */
    char root[256], bdi[64];
    struct dirty_policy policy;
    unsigned long long lifts, restores;
} state;

static const char *mode_name(enum dirty_limit_mode mode)
{
    return mode == DIRTY_LIMIT_AUTO ? "auto" : mode == DIRTY_LIMIT_SYSTEM ? "system" : "kernel";
}

int dirty_limit_start(enum dirty_limit_mode mode, const char *sysfs_root, const char *bdi)
{
    pthread_mutex_lock(&lock);
    memset(&state, 0, sizeof(state));
    state.mode = mode;
    int rc = 0;
    if (strlen(sysfs_root) >= sizeof(state.root) || strlen(bdi) >= sizeof(state.bdi))
        rc = -ENAMETOOLONG;
    else {
        snprintf(state.root, sizeof(state.root), "%s", sysfs_root);
        snprintf(state.bdi, sizeof(state.bdi), "%s", bdi);
    }
    if (rc == 0 && mode == DIRTY_LIMIT_SYSTEM) {
        rc = bdi_set_strict_limit(state.root, state.bdi, false);
        if (rc == 0) {
            state.policy.lifted = true;
            state.lifts++;
        }
    } else if (rc == 0 && mode == DIRTY_LIMIT_AUTO) {
        /* Writing the value it has proves the knob can be written, so that
         * a mount that cannot (not root, an old kernel) says so now and
         * spends nothing on counting. */
        rc = bdi_set_strict_limit(state.root, state.bdi, true);
        __atomic_store_n(&state.active, rc == 0, __ATOMIC_RELAXED);
    }
    state.error = rc;
    pthread_mutex_unlock(&lock);
    return rc;
}

void dirty_limit_note_writeback(uint64_t offset, uint64_t size, bool extends, bool grows_stream)
{
    /* Unlocked peek: a mount that is not managed pays one load. */
    if (!__atomic_load_n(&state.active, __ATOMIC_RELAXED))
        return;
    pthread_mutex_lock(&lock);
    if (state.active && dirty_policy_note(&state.policy, offset, size, extends, grows_stream)) {
        int rc = bdi_set_strict_limit(state.root, state.bdi, !state.policy.lifted);
        if (rc != 0) {
            /* The knob went away or refuses: stop trying, with the cap in
             * whatever state the kernel kept. */
            state.error = rc;
            __atomic_store_n(&state.active, false, __ATOMIC_RELAXED);
        } else if (state.policy.lifted) {
            state.lifts++;
        } else {
            state.restores++;
        }
    }
    pthread_mutex_unlock(&lock);
}

char *dirty_limit_stats_text(void)
{
    pthread_mutex_lock(&lock);
    char *text = NULL;
    int n;
    if (state.bdi[0] == '\0')
        n = asprintf(&text, "dirty page limit: %s, no mount known", mode_name(state.mode));
    else if (state.error != 0)
        n = asprintf(&text, "dirty page limit: %s on bdi %s, cannot be changed (%s); %s",
                     mode_name(state.mode), state.bdi, strerror(-state.error),
                     state.mode == DIRTY_LIMIT_AUTO && state.lifts == 0 ? "the kernel's cap"
                                                                        : "as last set");
    else
        n = asprintf(&text, "dirty page limit: %s on bdi %s, %s now; lifted %llu times, "
                            "put back %llu times",
                     mode_name(state.mode), state.bdi,
                     state.policy.lifted ? "lifted" : "the kernel's cap", state.lifts,
                     state.restores);
    pthread_mutex_unlock(&lock);
    return n < 0 ? NULL : text;
}

void dirty_limit_stop(void)
{
    pthread_mutex_lock(&lock);
    enum dirty_limit_mode mode = state.mode;
    memset(&state, 0, sizeof(state));
    state.mode = mode;
    pthread_mutex_unlock(&lock);
}
