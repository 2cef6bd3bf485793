/*
 * test_db_model.c — randomized model test of the whole engine: a seeded
 * stream of puts, deletes, range deletes, multi-family batches, flushes,
 * manual compactions of random ranges (automatic ones run all the time
 * with the small level sizes of some configurations), reopens, drops of a
 * family, snapshots and long-lived iterators kept across compactions,
 * checked against a simple in-memory model after every read.
 *
 * The model: a fixed, sorted set of random binary keys (so a key is an
 * index and ordering questions are binary searches), and per column family
 * an array holding, for each key, the id of its current value (0: absent).
 * A value id determines the value's bytes and length, so the model stores
 * 4 bytes per key and a snapshot of the model is a copy of three arrays.
 *
 * Four configurations (option sets), each with its own fixed seed;
 * KV_TEST_SEED=N runs all four with seed N. KV_TEST_LONG=1 runs 1M
 * operations per configuration. On a mismatch the seed, the operation index, the family and the key
 * are printed.
 */
#include "testutil_db.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { NUM_CF = 3, MAX_SNAPSHOTS = 3, MAX_PINNED = 2, MAX_VALUE = 4097 + 8192 };

static const char *const cf_names[NUM_CF] = {"default", "cf1", "cf2"};

typedef struct model_key {
    char *data;
    size_t len;
} model_key;

/* A copy of the model at some point, with what reads against it. */
typedef struct model_view {
    uint32_t *state[NUM_CF];
    bool cf_valid[NUM_CF]; /* false once the family was dropped */
    long taken_at;         /* operation index */
} model_view;

typedef struct pinned_snapshot {
    const kv_snapshot *snapshot;
    model_view view;
} pinned_snapshot;

typedef struct pinned_iterator {
    kv_iterator *it;
    int cf;
    model_view view;
} pinned_iterator;

typedef struct model_run {
    uint64_t seed;
    long op; /* index of the operation being done, for messages */
    kv_test_rng rng;
    char *dir;
    kv_options options;
    kv_db *db;
    kv_cf *cfs[NUM_CF];

    int num_keys;
    model_key *keys; /* sorted, unique */
    uint32_t *state[NUM_CF];
    uint32_t next_id;

    pinned_snapshot snapshots[MAX_SNAPSHOTS];
    int num_snapshots;
    pinned_iterator pinned[MAX_PINNED];
    int num_pinned;

    char *value_buf;               /* MAX_VALUE bytes */
    uint64_t flushes, compactions; /* engine counters summed over opens */
    long counts[16];               /* operations done, by kind, for the summary */
} model_run;

/* ---- values ---- */

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Value sizes: some empty, mostly small, some medium, a few over 4 KiB. */
static size_t value_len(uint32_t id)
{
    uint64_t h = mix64(id + 0x51ull);
    unsigned r = (unsigned)(h % 100);
    h >>= 8;
    if (r < 5)
        return 0;
    if (r < 70)
        return 1 + h % 64;
    if (r < 97)
        return 64 + h % 900;
    return 4097 + h % 8192;
}

static const char *value_bytes(model_run *m, uint32_t id)
{
    tdb_fill_value(id, m->value_buf, value_len(id));
    return m->value_buf;
}

/* ---- diagnostics ---- */

static void print_key(const char *label, const char *data, size_t len)
{
    fprintf(stderr, "%s \"", label);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)data[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
            fputc(c, stderr);
        else
            fprintf(stderr, "\\x%02x", c);
    }
    fprintf(stderr, "\" (%zu bytes)\n", len);
}

static void mismatch(model_run *m, int cf, const char *what)
{
    fprintf(stderr, "MODEL MISMATCH: seed %" PRIu64 ", op %ld, family %s: %s\n", m->seed, m->op,
            cf >= 0 ? cf_names[cf] : "-", what);
}

/* ---- keys ---- */

static int compare_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

static int compare_model_keys(const void *a, const void *b)
{
    const model_key *x = a, *y = b;
    return compare_bytes(x->data, x->len, y->data, y->len);
}

/* Random binary keys: some share prefixes (prefix compression, restart
 * points), some contain 0x00 and 0xff. */
static void make_keys(model_run *m, int wanted)
{
    static const struct {
        const char *bytes;
        size_t len;
    } prefixes[] = {{"", 0}, {"user:", 5}, {"user:1", 6}, {"\0", 1}, {"\xff\xff", 2}, {"a", 1}};
    const int num_prefixes = (int)(sizeof(prefixes) / sizeof(prefixes[0]));
    m->keys = calloc((size_t)wanted, sizeof(model_key));
    int n = 0;
    for (int i = 0; i < wanted; i++) {
        int p = (int)kv_test_rng_uniform(&m->rng, (uint64_t)num_prefixes);
        size_t plen = prefixes[p].len;
        size_t slen = 1 + kv_test_rng_uniform(&m->rng, 20);
        char *k = malloc(plen + slen);
        memcpy(k, prefixes[p].bytes, plen);
        for (size_t j = 0; j < slen; j++) {
            uint64_t r = kv_test_rng_next(&m->rng);
            /* Mostly a small alphabet (more shared prefixes), sometimes any byte. */
            k[plen + j] = (r & 7) == 0 ? (char)(r >> 8) : (char)('a' + (r >> 8) % 4);
        }
        m->keys[n].data = k;
        m->keys[n].len = plen + slen;
        n++;
    }
    qsort(m->keys, (size_t)n, sizeof(model_key), compare_model_keys);
    int unique = 0;
    for (int i = 0; i < n; i++) {
        if (unique > 0 && compare_model_keys(&m->keys[unique - 1], &m->keys[i]) == 0) {
            free(m->keys[i].data);
            continue;
        }
        m->keys[unique++] = m->keys[i];
    }
    m->num_keys = unique;
}

/* Index of the first key >= target (num_keys if none). */
static int lower_bound(const model_run *m, const char *target, size_t len)
{
    int lo = 0, hi = m->num_keys;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (compare_bytes(m->keys[mid].data, m->keys[mid].len, target, len) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* A random seek target or range bound: a key, a key plus a byte (just
 * after it), a key minus its last byte (a prefix), or random bytes. */
static size_t random_target(model_run *m, char *buf, size_t cap)
{
    const model_key *k = &m->keys[kv_test_rng_uniform(&m->rng, (uint64_t)m->num_keys)];
    size_t len = k->len < cap - 1 ? k->len : cap - 1;
    memcpy(buf, k->data, len);
    switch (kv_test_rng_uniform(&m->rng, 5)) {
    case 0:
    case 1:
        return len;
    case 2:
        buf[len] = (char)kv_test_rng_uniform(&m->rng, 256);
        return len + 1;
    case 3:
        return len > 0 ? len - 1 : 0;
    default: {
        size_t n = kv_test_rng_uniform(&m->rng, 8);
        kv_test_rng_bytes(&m->rng, buf, n);
        return n;
    }
    }
}

/* ---- the model ---- */

static void model_delete_range(model_run *m, int cf, const char *b, size_t blen, const char *e,
                               size_t elen)
{
    int lo = lower_bound(m, b, blen), hi = lower_bound(m, e, elen);
    for (int i = lo; i < hi; i++)
        m->state[cf][i] = 0;
}

static void view_take(model_run *m, model_view *v)
{
    for (int c = 0; c < NUM_CF; c++) {
        v->state[c] = malloc((size_t)m->num_keys * sizeof(uint32_t));
        memcpy(v->state[c], m->state[c], (size_t)m->num_keys * sizeof(uint32_t));
        v->cf_valid[c] = true;
    }
    v->taken_at = m->op;
}

static void view_free(model_view *v)
{
    for (int c = 0; c < NUM_CF; c++)
        free(v->state[c]);
}

/* ---- checks ---- */

/* kv_get of key index k in cf must match state[k]. */
static void check_get(model_run *m, const kv_read_options *ro, int cf, const uint32_t *state, int k,
                      const char *context)
{
    char *got = NULL;
    size_t len = 0;
    const model_key *key = &m->keys[k];
    int rc = kv_get(m->db, ro, m->cfs[cf], key->data, key->len, &got, &len);
    uint32_t id = state[k];
    if (id == 0 && rc == KV_NOT_FOUND)
        return;
    if (id != 0 && rc == KV_OK && len == value_len(id) &&
        (len == 0 || memcmp(got, value_bytes(m, id), len) == 0)) {
        kv_free(got);
        return;
    }
    char what[256];
    snprintf(what, sizeof(what),
             "%s: kv_get returned %s (%d) with %zu bytes; model: %s (%zu bytes)", context,
             kv_strerror(rc), rc, rc == KV_OK ? len : 0, id ? "present" : "absent",
             id ? value_len(id) : 0);
    mismatch(m, cf, what);
    print_key("  key", key->data, key->len);
    if (rc < 0 && rc != KV_NOT_FOUND)
        fprintf(stderr, "  kv_errmsg: %s\n", kv_errmsg());
    if (rc == KV_OK)
        kv_free(got);
    fail();
}

/* The iterator must be at key index `pos` (or invalid when pos < 0). */
static void check_position(model_run *m, kv_iterator *it, int cf, const uint32_t *state, int pos,
                           const char *context)
{
    if (pos < 0) {
        if (!kv_iterator_valid(it) && kv_iterator_status(it) == 0)
            return;
        char what[200];
        snprintf(what, sizeof(what), "%s: iterator should be exhausted (status %d)", context,
                 kv_iterator_status(it));
        mismatch(m, cf, what);
        if (kv_iterator_valid(it)) {
            size_t klen;
            const char *k = kv_iterator_key(it, &klen);
            print_key("  iterator at", k, klen);
        }
        fail();
    }
    const model_key *want = &m->keys[pos];
    if (!kv_iterator_valid(it)) {
        char what[200];
        snprintf(what, sizeof(what), "%s: iterator invalid (status %d: %s)", context,
                 kv_iterator_status(it), kv_iterator_status(it) ? kv_errmsg() : "");
        mismatch(m, cf, what);
        print_key("  expected key", want->data, want->len);
        fail();
    }
    size_t klen, vlen;
    const char *k = kv_iterator_key(it, &klen);
    const char *v = kv_iterator_value(it, &vlen);
    uint32_t id = state[pos];
    assert_true(id != 0);
    if (compare_bytes(k, klen, want->data, want->len) != 0) {
        mismatch(m, cf, context);
        print_key("  iterator at", k, klen);
        print_key("  expected   ", want->data, want->len);
        fail();
    }
    if (vlen != value_len(id) || (vlen > 0 && memcmp(v, value_bytes(m, id), vlen) != 0)) {
        char what[200];
        snprintf(what, sizeof(what), "%s: wrong value (%zu bytes, expected %zu)", context, vlen,
                 value_len(id));
        mismatch(m, cf, what);
        print_key("  key", k, klen);
        fail();
    }
}

static int next_present(const model_run *m, const uint32_t *state, int i)
{
    while (i < m->num_keys && state[i] == 0)
        i++;
    return i < m->num_keys ? i : -1;
}

static int prev_present(const uint32_t *state, int i)
{
    while (i >= 0 && state[i] == 0)
        i--;
    return i;
}

/* Full forward and backward comparison. */
static void check_full_scan(model_run *m, kv_iterator *it, int cf, const uint32_t *state,
                            const char *context)
{
    int pos = next_present(m, state, 0);
    kv_iterator_seek_to_first(it);
    while (pos >= 0) {
        check_position(m, it, cf, state, pos, context);
        kv_iterator_next(it);
        pos = next_present(m, state, pos + 1);
    }
    check_position(m, it, cf, state, -1, context);
    pos = prev_present(state, m->num_keys - 1);
    kv_iterator_seek_to_last(it);
    while (pos >= 0) {
        check_position(m, it, cf, state, pos, context);
        kv_iterator_prev(it);
        pos = prev_present(state, pos - 1);
    }
    check_position(m, it, cf, state, -1, context);
}

/* Random seeks (both kinds), each followed by a few steps that switch
 * direction at random. */
static void check_random_seeks(model_run *m, kv_iterator *it, int cf, const uint32_t *state,
                               int seeks, const char *context)
{
    char target[64];
    for (int s = 0; s < seeks; s++) {
        size_t tlen = random_target(m, target, sizeof(target));
        int pos;
        if (kv_test_rng_uniform(&m->rng, 2)) {
            kv_iterator_seek(it, target, tlen);
            pos = next_present(m, state, lower_bound(m, target, tlen));
        } else {
            kv_iterator_seek_for_prev(it, target, tlen);
            int ub = lower_bound(m, target, tlen);
            if (ub < m->num_keys &&
                compare_bytes(m->keys[ub].data, m->keys[ub].len, target, tlen) == 0)
                ub++; /* the last key <= target */
            pos = prev_present(state, ub - 1);
        }
        check_position(m, it, cf, state, pos, context);
        int steps = (int)kv_test_rng_uniform(&m->rng, 8);
        for (int i = 0; i < steps && pos >= 0; i++) {
            if (kv_test_rng_uniform(&m->rng, 2)) {
                kv_iterator_next(it);
                pos = next_present(m, state, pos + 1);
            } else {
                kv_iterator_prev(it);
                pos = prev_present(state, pos - 1);
            }
            check_position(m, it, cf, state, pos, context);
        }
    }
}

static void check_view_with_snapshot(model_run *m, pinned_snapshot *p, bool full)
{
    kv_read_options ro;
    kv_read_options_init(&ro);
    ro.snapshot = p->snapshot;
    char context[96];
    snprintf(context, sizeof(context), "snapshot taken at op %ld", p->view.taken_at);
    for (int c = 0; c < NUM_CF; c++) {
        if (!p->view.cf_valid[c])
            continue;
        for (int i = 0; i < 20; i++)
            check_get(m, &ro, c, p->view.state[c],
                      (int)kv_test_rng_uniform(&m->rng, (uint64_t)m->num_keys), context);
        kv_iterator *it = kv_iterator_create(m->db, &ro, m->cfs[c]);
        assert_non_null(it);
        if (full)
            check_full_scan(m, it, c, p->view.state[c], context);
        check_random_seeks(m, it, c, p->view.state[c], 5, context);
        kv_iterator_destroy(it);
    }
}

static void check_everything(model_run *m, const char *context)
{
    for (int c = 0; c < NUM_CF; c++) {
        kv_iterator *it = kv_iterator_create(m->db, NULL, m->cfs[c]);
        assert_non_null(it);
        check_full_scan(m, it, c, m->state[c], context);
        check_random_seeks(m, it, c, m->state[c], 5, context);
        kv_iterator_destroy(it);
        for (int i = 0; i < m->num_keys; i += 1 + (int)kv_test_rng_uniform(&m->rng, 8))
            check_get(m, NULL, c, m->state[c], i, context);
    }
}

/* ---- the database side ---- */

static void must(model_run *m, int rc, const char *what)
{
    if (rc == KV_OK)
        return;
    fprintf(stderr, "seed %" PRIu64 ", op %ld: %s failed: %s (%d): %s\n", m->seed, m->op, what,
            kv_strerror(rc), rc, kv_errmsg());
    fail();
}

static void release_all_pins(model_run *m)
{
    for (int i = 0; i < m->num_snapshots; i++) {
        kv_snapshot_release(m->db, m->snapshots[i].snapshot);
        view_free(&m->snapshots[i].view);
    }
    m->num_snapshots = 0;
    for (int i = 0; i < m->num_pinned; i++) {
        kv_iterator_destroy(m->pinned[i].it);
        view_free(&m->pinned[i].view);
    }
    m->num_pinned = 0;
}

static void open_db(model_run *m)
{
    int rc = kv_open(&m->options, m->dir, &m->db);
    must(m, rc, "kv_open");
    for (int c = 0; c < NUM_CF; c++) {
        m->cfs[c] = kv_get_cf(m->db, cf_names[c]);
        if (m->cfs[c] == NULL)
            must(m, kv_create_cf(m->db, cf_names[c], &m->cfs[c]), "kv_create_cf");
    }
}

static void reopen_db(model_run *m)
{
    for (int i = 0; i < m->num_snapshots; i++)
        check_view_with_snapshot(m, &m->snapshots[i], false);
    release_all_pins(m);
    kv_stats st;
    kv_get_stats(m->db, &st);
    m->flushes += st.flushes;
    m->compactions += st.compactions;
    must(m, kv_close(m->db), "kv_close");
    m->db = NULL;
    open_db(m);
    check_everything(m, "after reopen");
}

/* ---- operations ---- */

enum op_kind {
    OP_PUT,
    OP_DELETE,
    OP_DELETE_RANGE,
    OP_BATCH,
    OP_GET,
    OP_SEEKS,
    OP_FLUSH,
    OP_SNAPSHOT,
    OP_CHECK_SNAPSHOT,
    OP_PIN_ITERATOR,
    OP_CHECK_PINNED,
    OP_FULL_CHECK,
    OP_REOPEN,
    OP_DROP_CF,
    OP_COMPACT,
    OP_KINDS
};

static const char *const op_names[OP_KINDS] = {
    "put",          "delete",     "delete_range", "batch",          "get",
    "seeks",        "flush",      "snapshot",     "check-snapshot", "pin-iterator",
    "check-pinned", "full-check", "reopen",       "drop-cf",        "compact"};

/* Weights out of 10000. */
static enum op_kind pick_op(model_run *m)
{
    static const int weights[OP_KINDS] = {4500, 1200, 350, 1000, 1800, 250, 60, 60,
                                          40,   40,   30,  15,   12,   2,   25};
    int total = 0;
    for (int i = 0; i < OP_KINDS; i++)
        total += weights[i];
    int r = (int)kv_test_rng_uniform(&m->rng, (uint64_t)total);
    for (int i = 0; i < OP_KINDS; i++) {
        if (r < weights[i])
            return (enum op_kind)i;
        r -= weights[i];
    }
    return OP_PUT;
}

static int random_cf(model_run *m)
{
    /* The default family gets half the traffic. */
    uint64_t r = kv_test_rng_uniform(&m->rng, 4);
    return r < 2 ? 0 : (int)r - 1;
}

/* A key index biased towards a hot subset, so overwrites are common. */
static int random_key(model_run *m)
{
    if (kv_test_rng_uniform(&m->rng, 4) == 0)
        return (int)kv_test_rng_uniform(&m->rng, (uint64_t)(m->num_keys / 10 + 1));
    return (int)kv_test_rng_uniform(&m->rng, (uint64_t)m->num_keys);
}

/* Range bounds: usually short (a few keys), sometimes wide, sometimes
 * empty; bounds are not always keys. */
static void random_range(model_run *m, char *b, size_t *blen, char *e, size_t *elen, size_t cap)
{
    *blen = random_target(m, b, cap);
    int lo = lower_bound(m, b, *blen);
    int span = kv_test_rng_uniform(&m->rng, 10) == 0
                   ? (int)kv_test_rng_uniform(&m->rng, (uint64_t)m->num_keys)
                   : (int)kv_test_rng_uniform(&m->rng, 12);
    int hi = lo + span;
    if (hi >= m->num_keys) {
        memcpy(e, "\xff\xff\xff\xff\xff\xff\xff\xff", 8);
        *elen = 8;
    } else {
        *elen = m->keys[hi].len < cap ? m->keys[hi].len : cap;
        memcpy(e, m->keys[hi].data, *elen);
        if (kv_test_rng_uniform(&m->rng, 3) == 0 && *elen < cap)
            e[(*elen)++] = '\0'; /* just past the key: includes it */
    }
    if (compare_bytes(b, *blen, e, *elen) > 0) { /* keep begin <= end */
        memcpy(e, b, *blen);
        *elen = *blen;
    }
}

static void do_put(model_run *m, kv_write_batch *batch)
{
    int cf = random_cf(m), k = random_key(m);
    uint32_t id = m->next_id++;
    const model_key *key = &m->keys[k];
    const char *value = value_bytes(m, id);
    if (batch) {
        kv_write_batch_put(batch, m->cfs[cf], key->data, key->len, value, value_len(id));
    } else {
        kv_write_options wo = {.sync = kv_test_rng_uniform(&m->rng, 200) == 0};
        must(m, kv_put(m->db, &wo, m->cfs[cf], key->data, key->len, value, value_len(id)),
             "kv_put");
    }
    m->state[cf][k] = id;
}

static void do_delete(model_run *m, kv_write_batch *batch)
{
    int cf = random_cf(m), k = random_key(m);
    const model_key *key = &m->keys[k];
    if (batch)
        kv_write_batch_delete(batch, m->cfs[cf], key->data, key->len);
    else
        must(m, kv_delete(m->db, NULL, m->cfs[cf], key->data, key->len), "kv_delete");
    m->state[cf][k] = 0;
}

static void do_delete_range(model_run *m, kv_write_batch *batch)
{
    int cf = random_cf(m);
    char b[64], e[64];
    size_t blen, elen;
    random_range(m, b, &blen, e, &elen, sizeof(b) - 1);
    if (batch)
        kv_write_batch_delete_range(batch, m->cfs[cf], b, blen, e, elen);
    else
        must(m, kv_delete_range(m->db, NULL, m->cfs[cf], b, blen, e, elen), "kv_delete_range");
    model_delete_range(m, cf, b, blen, e, elen);
}

static void do_batch(model_run *m)
{
    kv_write_batch *batch = kv_write_batch_create();
    int n = 2 + (int)kv_test_rng_uniform(&m->rng, 8);
    for (int i = 0; i < n; i++) {
        uint64_t r = kv_test_rng_uniform(&m->rng, 10);
        if (r < 6)
            do_put(m, batch);
        else if (r < 9)
            do_delete(m, batch);
        else
            do_delete_range(m, batch);
    }
    assert_int_equal(kv_write_batch_count(batch), n);
    kv_write_options wo = {.sync = kv_test_rng_uniform(&m->rng, 100) == 0};
    must(m, kv_write(m->db, &wo, batch), "kv_write");
    kv_write_batch_destroy(batch);
}

static void do_drop_cf(model_run *m)
{
    /* Iterators on the family go first; snapshots stop checking it. */
    for (int i = 0; i < m->num_pinned;) {
        if (m->pinned[i].cf == 2) {
            kv_iterator_destroy(m->pinned[i].it);
            view_free(&m->pinned[i].view);
            m->pinned[i] = m->pinned[--m->num_pinned];
        } else {
            i++;
        }
    }
    for (int i = 0; i < m->num_snapshots; i++)
        m->snapshots[i].view.cf_valid[2] = false;
    must(m, kv_drop_cf(m->db, m->cfs[2]), "kv_drop_cf");
    must(m, kv_create_cf(m->db, cf_names[2], &m->cfs[2]), "kv_create_cf after drop");
    memset(m->state[2], 0, (size_t)m->num_keys * sizeof(uint32_t));
    kv_iterator *it = kv_iterator_create(m->db, NULL, m->cfs[2]);
    check_full_scan(m, it, 2, m->state[2], "re-created family");
    kv_iterator_destroy(it);
}

/* kv_compact_range over the whole family, an open-ended range or a random
 * sub-range; then the family and, sometimes, a snapshot (whose versions
 * the compaction had to keep) are checked. */
static void do_compact(model_run *m)
{
    int cf = random_cf(m);
    char b[64], e[64];
    size_t blen = 0, elen = 0;
    random_range(m, b, &blen, e, &elen, sizeof(b) - 1);
    uint64_t shape = kv_test_rng_uniform(&m->rng, 8);
    const char *begin = shape == 0 || shape == 1 ? NULL : b; /* 0: everything */
    const char *end = shape == 0 || shape == 2 ? NULL : e;
    must(m, kv_compact_range(m->db, m->cfs[cf], begin, blen, end, elen), "kv_compact_range");
    for (int i = 0; i < 10; i++)
        check_get(m, NULL, cf, m->state[cf], random_key(m), "get after kv_compact_range");
    kv_iterator *it = kv_iterator_create(m->db, NULL, m->cfs[cf]);
    check_random_seeks(m, it, cf, m->state[cf], 3, "seeks after kv_compact_range");
    kv_iterator_destroy(it);
    if (m->num_snapshots > 0 && kv_test_rng_uniform(&m->rng, 3) == 0) {
        int i = (int)kv_test_rng_uniform(&m->rng, (uint64_t)m->num_snapshots);
        check_view_with_snapshot(m, &m->snapshots[i], false);
    }
}

static void do_op(model_run *m, enum op_kind kind)
{
    m->counts[kind]++;
    switch (kind) {
    case OP_PUT:
        do_put(m, NULL);
        break;
    case OP_DELETE:
        do_delete(m, NULL);
        break;
    case OP_DELETE_RANGE:
        do_delete_range(m, NULL);
        break;
    case OP_BATCH:
        do_batch(m);
        break;
    case OP_GET: {
        int cf = random_cf(m);
        check_get(m, NULL, cf, m->state[cf], random_key(m), "get");
        break;
    }
    case OP_SEEKS: {
        int cf = random_cf(m);
        kv_iterator *it = kv_iterator_create(m->db, NULL, m->cfs[cf]);
        check_random_seeks(m, it, cf, m->state[cf], 3, "seeks");
        kv_iterator_destroy(it);
        break;
    }
    case OP_FLUSH: {
        int which = (int)kv_test_rng_uniform(&m->rng, NUM_CF + 1);
        must(m,
             kv_flush(m->db, which == NUM_CF ? NULL : m->cfs[which],
                      kv_test_rng_uniform(&m->rng, 2)),
             "kv_flush");
        break;
    }
    case OP_SNAPSHOT:
        if (m->num_snapshots < MAX_SNAPSHOTS) {
            pinned_snapshot *p = &m->snapshots[m->num_snapshots++];
            p->snapshot = kv_snapshot_create(m->db);
            assert_non_null(p->snapshot);
            view_take(m, &p->view);
        }
        break;
    case OP_CHECK_SNAPSHOT:
        if (m->num_snapshots > 0) {
            int i = (int)kv_test_rng_uniform(&m->rng, (uint64_t)m->num_snapshots);
            pinned_snapshot *p = &m->snapshots[i];
            check_view_with_snapshot(m, p, kv_test_rng_uniform(&m->rng, 4) == 0);
            if (kv_test_rng_uniform(&m->rng, 2)) {
                kv_snapshot_release(m->db, p->snapshot);
                view_free(&p->view);
                *p = m->snapshots[--m->num_snapshots];
            }
        }
        break;
    case OP_PIN_ITERATOR:
        if (m->num_pinned < MAX_PINNED) {
            pinned_iterator *p = &m->pinned[m->num_pinned++];
            p->cf = random_cf(m);
            p->it = kv_iterator_create(m->db, NULL, m->cfs[p->cf]);
            assert_non_null(p->it);
            view_take(m, &p->view);
        }
        break;
    case OP_CHECK_PINNED:
        if (m->num_pinned > 0) {
            int i = (int)kv_test_rng_uniform(&m->rng, (uint64_t)m->num_pinned);
            pinned_iterator *p = &m->pinned[i];
            char context[96];
            snprintf(context, sizeof(context), "iterator created at op %ld", p->view.taken_at);
            if (kv_test_rng_uniform(&m->rng, 2))
                check_full_scan(m, p->it, p->cf, p->view.state[p->cf], context);
            check_random_seeks(m, p->it, p->cf, p->view.state[p->cf], 10, context);
            if (kv_test_rng_uniform(&m->rng, 2)) {
                kv_iterator_destroy(p->it);
                view_free(&p->view);
                *p = m->pinned[--m->num_pinned];
            }
        }
        break;
    case OP_FULL_CHECK:
        check_everything(m, "full check");
        break;
    case OP_REOPEN:
        reopen_db(m);
        break;
    case OP_DROP_CF:
        do_drop_cf(m);
        break;
    case OP_COMPACT:
        do_compact(m);
        break;
    case OP_KINDS:
        break;
    }
}

/* ---- driver ---- */

typedef struct model_config {
    uint64_t seed;
    const char *name;
    void (*tune)(kv_options *o);
} model_config;

static void tune_small_blocks(kv_options *o)
{
    o->cf.block_size = 512;
    o->cf.block_restart_interval = 2;
    o->cf.bloom_bits_per_key = 0;
    o->cf.compression = KV_COMPRESSION_NONE;
}

static void tune_deep_levels(kv_options *o)
{
    o->cf.block_size = 1024;
    o->cf.bloom_bits_per_key = 5;
    o->cf.level0_file_num_compaction_trigger = 2;
    o->cf.target_file_size_base = 128 << 10;
    o->cf.max_bytes_for_level_base = 512 << 10;
    o->cf.max_bytes_for_level_multiplier = 4;
    o->max_open_files = 20; /* the table cache must evict */
    o->block_cache_size = 64 << 10;
}

/* Compaction all the time: the smallest levels allowed, level 0 compacted
 * at two files and writes stalled soon after, two compaction threads, and
 * a MANIFEST rewritten every few kilobytes of edits. */
static void tune_compacting(kv_options *o)
{
    o->cf.level0_file_num_compaction_trigger = 2;
    o->cf.level0_slowdown_writes_trigger = 3;
    o->cf.level0_stop_writes_trigger = 6;
    o->cf.target_file_size_base = 64 << 10;
    o->cf.max_bytes_for_level_base = 64 << 10;
    o->cf.max_bytes_for_level_multiplier = 2;
    o->cf.soft_pending_compaction_bytes_limit = 1 << 20;
    o->cf.hard_pending_compaction_bytes_limit = 4 << 20;
    o->max_background_compactions = 2;
    o->max_manifest_file_size = 4096;
}

static void run_model(const model_config *config, long ops)
{
    model_run *m = calloc(1, sizeof(*m));
    m->seed = kv_test_seed(config->seed);
    kv_test_rng_init(&m->rng, m->seed);
    m->value_buf = malloc(MAX_VALUE);
    m->next_id = 1;
    char dirname[64];
    snprintf(dirname, sizeof(dirname), "db-model-%s", config->name);
    m->dir = kv_test_tmpdir(dirname);
    kv_options_init(&m->options);
    m->options.create_if_missing = true;
    m->options.cf.write_buffer_size = 64 << 10; /* flushes every few hundred writes */
    if (config->tune)
        config->tune(&m->options);

    make_keys(m, 300 + (int)kv_test_rng_uniform(&m->rng, 700));
    for (int c = 0; c < NUM_CF; c++)
        m->state[c] = calloc((size_t)m->num_keys, sizeof(uint32_t));
    printf("model %s: seed %" PRIu64 ", %d keys, %ld operations\n", config->name, m->seed,
           m->num_keys, ops);

    static char phase[128];
    snprintf(phase, sizeof(phase), "model %s seed %" PRIu64, config->name, m->seed);
    tdb_watchdog(kv_test_long_mode() ? 0 : 300, phase);
    m->op = -1;
    open_db(m);
    for (m->op = 0; m->op < ops; m->op++)
        do_op(m, pick_op(m));
    m->op = ops;
    check_everything(m, "at the end");
    for (int i = 0; i < m->num_snapshots; i++)
        check_view_with_snapshot(m, &m->snapshots[i], true);
    reopen_db(m);

    printf("  ops:");
    for (int i = 0; i < OP_KINDS; i++)
        printf(" %s=%ld", op_names[i], m->counts[i]);
    printf("\n  engine: %" PRIu64 " flushes, %" PRIu64 " compactions\n", m->flushes,
           m->compactions);
    tdb_watchdog(0, NULL);
    assert_true(m->compactions > 0); /* the run exercised what it claims to */

    release_all_pins(m);
    must(m, kv_close(m->db), "kv_close");
    for (int c = 0; c < NUM_CF; c++)
        free(m->state[c]);
    for (int i = 0; i < m->num_keys; i++)
        free(m->keys[i].data);
    free(m->keys);
    free(m->value_buf);
    kv_test_cleanup_dir(m->dir);
    free(m);
}

static long default_ops(void)
{
    return kv_test_long_mode() ? 1000000 : 20000;
}

static void test_model_defaults(void **state)
{
    (void)state;
    model_config c = {1, "defaults", NULL};
    run_model(&c, default_ops());
}

static void test_model_small_blocks(void **state)
{
    (void)state;
    model_config c = {2, "small-blocks", tune_small_blocks};
    run_model(&c, default_ops());
}

static void test_model_deep_levels(void **state)
{
    (void)state;
    model_config c = {3, "deep-levels", tune_deep_levels};
    run_model(&c, default_ops());
}

static void test_model_compacting(void **state)
{
    (void)state;
    model_config c = {4, "compacting", tune_compacting};
    run_model(&c, default_ops());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_defaults),
        cmocka_unit_test(test_model_small_blocks),
        cmocka_unit_test(test_model_deep_levels),
        cmocka_unit_test(test_model_compacting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
