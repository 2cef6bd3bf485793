/* compaction.c — choosing compactions (see compaction.h). */
#include "compaction.h"

#include "level_iterator.h"

#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

void kv_level_targets(const kv_cf_options *options, const kv_version *v,
                      uint64_t targets[KV_NUM_LEVELS], int *base_level)
{
    const int last = KV_NUM_LEVELS - 1;
    uint64_t base = options->max_bytes_for_level_base;
    uint64_t mult = (uint64_t)options->max_bytes_for_level_multiplier;
    /* The last level's target is what it holds (at least the base size);
     * each level above aims at a multiplier-th of the one below, up to the
     * first one whose target is at most the base size: the base level,
     * which level 0 compacts into. Levels above it stay empty. */
    uint64_t bottom = 0;
    for (int level = 1; level <= last; level++)
        if (v->num_files[level] > 0)
            bottom = kv_version_level_bytes(v, level);
    /* Data not yet in the last level will end there: count level 0 too. */
    uint64_t total = 0;
    for (int level = 0; level <= last; level++)
        total += kv_version_level_bytes(v, level);
    if (bottom < total - bottom && total > bottom)
        bottom = total;
    uint64_t target = bottom > base ? bottom : base;
    memset(targets, 0, KV_NUM_LEVELS * sizeof(uint64_t));
    *base_level = last;
    targets[last] = target;
    /* As RocksDB: the base level's target lies between base / mult and
     * base, so level 0 merges into a level of at most max_bytes_for_level_
     * base bytes rather than into the whole last level. */
    for (int level = last - 1; level >= 1 && target > base; level--) {
        target /= mult;
        if (target < base / mult)
            break;
        targets[level] = target;
        *base_level = level;
    }
    /* Data already sitting above the base level (older shapes) still drains
     * downwards. */
    for (int level = 1; level < *base_level; level++)
        targets[level] = 1;
}

double kv_compaction_score(const kv_cf_options *options, const kv_version *v, int *level)
{
    uint64_t targets[KV_NUM_LEVELS];
    int base_level;
    kv_level_targets(options, v, targets, &base_level);
    double best = 0;
    *level = 0;
    for (int l = 0; l < KV_NUM_LEVELS - 1; l++) {
        double score;
        if (l == 0)
            score = (double)v->num_files[0] / options->level0_file_num_compaction_trigger;
        else if (v->num_files[l] == 0)
            score = 0;
        else if (l < base_level)
            score = 1.0 + (double)kv_version_level_bytes(v, l) /
                              (double)options->max_bytes_for_level_base;
        else
            score = (double)kv_version_level_bytes(v, l) / (double)targets[l];
        if (score > best) {
            best = score;
            *level = l;
        }
    }
    return best;
}

uint64_t kv_compaction_pending_bytes(const kv_cf_options *options, const kv_version *v)
{
    uint64_t targets[KV_NUM_LEVELS];
    int base_level;
    kv_level_targets(options, v, targets, &base_level);
    uint64_t pending = 0;
    if (v->num_files[0] >= (size_t)options->level0_file_num_compaction_trigger)
        pending += kv_version_level_bytes(v, 0);
    for (int l = 1; l < KV_NUM_LEVELS - 1; l++) {
        uint64_t bytes = kv_version_level_bytes(v, l);
        /* The excess moves down, rewriting about `multiplier` times as much. */
        if (bytes > targets[l])
            pending +=
                (bytes - targets[l]) * (uint64_t)(options->max_bytes_for_level_multiplier + 1);
    }
    return pending;
}

/* Where level 0 (and a manual compaction of `level`) writes to. */
static int output_level_of(const kv_cf_options *options, const kv_version *v, int level)
{
    if (level > 0)
        return level + 1;
    uint64_t targets[KV_NUM_LEVELS];
    int base_level;
    kv_level_targets(options, v, targets, &base_level);
    /* Never skip over a level that holds data. */
    for (int l = 1; l < base_level; l++)
        if (v->num_files[l] > 0)
            return l;
    return base_level;
}

static kv_slice file_smallest_user_key(const kv_file_meta *f)
{
    return kv_ikey_user_key(kv_buf_slice(&f->smallest));
}

static kv_slice file_largest_user_key(const kv_file_meta *f)
{
    return kv_ikey_user_key(kv_buf_slice(&f->largest));
}

static bool file_overlaps(const kv_file_meta *f, const kv_slice *begin, const kv_slice *end)
{
    if (begin && kv_slice_compare(file_largest_user_key(f), *begin) < 0)
        return false;
    if (end && kv_slice_compare(file_smallest_user_key(f), *end) > 0)
        return false;
    return true;
}

void kv_version_overlapping_inputs(const kv_version *v, int level, const kv_slice *begin,
                                   const kv_slice *end, kv_file_meta ***out, size_t *count)
{
    size_t n = v->num_files[level];
    *out = kv_malloc((n ? n : 1) * sizeof(kv_file_meta *));
    *count = 0;
    kv_buf lo = {0}, hi = {0};
    bool has_lo = begin != NULL, has_hi = end != NULL;
    if (begin)
        kv_buf_set(&lo, begin->data, begin->size);
    if (end)
        kv_buf_set(&hi, end->data, end->size);
    for (size_t i = 0; i < n; i++) {
        kv_file_meta *f = v->files[level][i];
        kv_slice lo_s = kv_buf_slice(&lo), hi_s = kv_buf_slice(&hi);
        if (!file_overlaps(f, has_lo ? &lo_s : NULL, has_hi ? &hi_s : NULL))
            continue;
        if (level == 0) {
            /* Grow the range to the file's and start over if it grew: an
             * older overlapping level-0 file must come along. */
            bool grew = false;
            if (has_lo && kv_slice_compare(file_smallest_user_key(f), lo_s) < 0) {
                kv_buf_set(&lo, file_smallest_user_key(f).data, file_smallest_user_key(f).size);
                grew = true;
            }
            if (has_hi && kv_slice_compare(file_largest_user_key(f), hi_s) > 0) {
                kv_buf_set(&hi, file_largest_user_key(f).data, file_largest_user_key(f).size);
                grew = true;
            }
            if (grew) {
                *count = 0;
                i = (size_t)-1;
                continue;
            }
        }
        (*out)[(*count)++] = f;
    }
    kv_buf_free(&lo);
    kv_buf_free(&hi);
}

/* The user-key range covered by files. */
static void range_of(kv_file_meta *const *files, size_t n, kv_slice *smallest, kv_slice *largest)
{
    assert(n > 0);
    *smallest = file_smallest_user_key(files[0]);
    *largest = file_largest_user_key(files[0]);
    for (size_t i = 1; i < n; i++) {
        if (kv_slice_compare(file_smallest_user_key(files[i]), *smallest) < 0)
            *smallest = file_smallest_user_key(files[i]);
        if (kv_slice_compare(file_largest_user_key(files[i]), *largest) > 0)
            *largest = file_largest_user_key(files[i]);
    }
}

static kv_compaction *new_compaction(kv_cf *cf, int level)
{
    kv_compaction *c = kv_calloc(1, sizeof(*c));
    c->cf = cf;
    c->level = level;
    c->output_level = output_level_of(&cf->options, cf->current, level);
    c->input_version = cf->current;
    kv_version_ref(c->input_version);
    c->max_output_file_size = cf->options.target_file_size_base;
    return c;
}

/* Adds the files of output_level that overlap the level inputs. */
static void add_output_level_inputs(kv_compaction *c)
{
    kv_slice smallest, largest;
    range_of(c->inputs[0], c->num_inputs[0], &smallest, &largest);
    kv_version_overlapping_inputs(c->input_version, c->output_level, &smallest, &largest,
                                  &c->inputs[1], &c->num_inputs[1]);
}

/* Bytes of the files of sorted level `level` that overlap [lo, hi]: a
 * binary search for the first, then a walk. */
static uint64_t overlapping_bytes(const kv_version *v, int level, kv_slice lo, kv_slice hi)
{
    kv_buf probe = {0};
    kv_ikey_append(&probe, lo, KV_MAX_SEQUENCE, KV_TYPE_FOR_SEEK);
    size_t n = v->num_files[level];
    uint64_t total = 0;
    for (size_t i = kv_find_file(v->files[level], n, kv_buf_slice(&probe)); i < n; i++) {
        if (kv_slice_compare(file_smallest_user_key(v->files[level][i]), hi) > 0)
            break;
        total += v->files[level][i]->file_size;
    }
    kv_buf_free(&probe);
    return total;
}

kv_compaction *kv_compaction_pick(kv_cf *cf)
{
    int level;
    double score = kv_compaction_score(&cf->options, cf->current, &level);
    if (score < 1)
        return NULL;
    kv_compaction *c = new_compaction(cf, level);
    c->score = score;
    const kv_version *v = cf->current;
    if (level == 0) {
        /* Every level-0 file: they may all overlap, and taking them all
         * keeps newer data from being left above older. */
        c->num_inputs[0] = v->num_files[0];
        c->inputs[0] = kv_malloc(c->num_inputs[0] * sizeof(kv_file_meta *));
        memcpy(c->inputs[0], v->files[0], c->num_inputs[0] * sizeof(kv_file_meta *));
    } else {
        /* The file whose rewrite costs least per byte it moves down: the
         * smallest ratio of overlapping bytes in the next level to its own
         * size (RocksDB's kMinOverlappingRatio). Ties go to the first file
         * after the compact pointer, so the level is still swept. */
        size_t n = v->num_files[level], pick = 0, start = 0;
        kv_buf *pointer = &cf->compact_pointer[level];
        if (pointer->size > 0) {
            while (start < n && kv_ikey_compare(kv_buf_slice(&v->files[level][start]->largest),
                                                kv_buf_slice(pointer)) <= 0)
                start++;
            if (start == n)
                start = 0;
        }
        double best = -1;
        for (size_t k = 0; k < n; k++) {
            size_t i = (start + k) % n;
            kv_file_meta *f = v->files[level][i];
            kv_slice lo = file_smallest_user_key(f), hi = file_largest_user_key(f);
            uint64_t overlap = overlapping_bytes(v, level + 1, lo, hi);
            double ratio = (double)overlap / (double)(f->file_size ? f->file_size : 1);
            if (best < 0 || ratio < best) {
                best = ratio;
                pick = i;
            }
        }
        c->num_inputs[0] = 1;
        c->inputs[0] = kv_malloc(sizeof(kv_file_meta *));
        c->inputs[0][0] = v->files[level][pick];
        kv_buf_set(pointer, v->files[level][pick]->largest.data,
                   v->files[level][pick]->largest.size);
    }
    add_output_level_inputs(c);
    return c;
}

static kv_compaction *pick_manual(kv_cf *cf, int level, const kv_slice *begin, const kv_slice *end,
                                  bool in_place)
{
    kv_file_meta **files;
    size_t count;
    kv_version_overlapping_inputs(cf->current, level, begin, end, &files, &count);
    if (count == 0) {
        free(files);
        return NULL;
    }
    kv_compaction *c = new_compaction(cf, level);
    c->manual = true;
    c->inputs[0] = files;
    c->num_inputs[0] = count;
    if (in_place)
        c->output_level = level;
    else
        add_output_level_inputs(c);
    return c;
}

kv_compaction *kv_compaction_pick_range(kv_cf *cf, int level, const kv_slice *begin,
                                        const kv_slice *end)
{
    return pick_manual(cf, level, begin, end, false);
}

kv_compaction *kv_compaction_pick_range_in_place(kv_cf *cf, int level, const kv_slice *begin,
                                                 const kv_slice *end)
{
    assert(level > 0);
    return pick_manual(cf, level, begin, end, true);
}

/* ---- blob garbage collection ---- */

/* What the current versions point to in one blob file. */
typedef struct blob_usage {
    uint64_t number;
    uint64_t live; /* bytes of records tables point to */
    kv_cf *cf;     /* the family and level with the most of it */
    int level;
    uint64_t level_bytes;
} blob_usage;

static blob_usage *usage_of(blob_usage **usage, size_t *count, uint64_t number)
{
    for (size_t i = 0; i < *count; i++)
        if ((*usage)[i].number == number)
            return &(*usage)[i];
    *usage = kv_realloc(*usage, (*count + 1) * sizeof(**usage));
    blob_usage *u = &(*usage)[(*count)++];
    memset(u, 0, sizeof(*u));
    u->number = number;
    return u;
}

kv_compaction *kv_compaction_pick_blob_gc(kv_db *db)
{
    /* Files may exist with separation off now (-o no_blob_files). */
    if (kv_blob_set_count(&db->blobs, NULL) == 0)
        return NULL;
    blob_usage *usage = NULL;
    size_t count = 0;
    /* Memtables may still point into files from their smallest pin on. */
    uint64_t pinned_from = UINT64_MAX;
    for (size_t c = 0; c < db->num_cfs; c++) {
        kv_cf *cf = db->cfs[c];
        if (cf->dropped)
            continue;
        uint64_t m = kv_memtable_min_blob(cf->mem);
        if (m < pinned_from)
            pinned_from = m;
        for (size_t i = 0; i < cf->imm.count; i++) {
            m = kv_memtable_min_blob(cf->imm.mems[i]);
            if (m < pinned_from)
                pinned_from = m;
        }
        const kv_version *v = cf->current;
        for (int level = 0; level < KV_NUM_LEVELS; level++) {
            for (size_t f = 0; f < v->num_files[level]; f++) {
                const kv_file_meta *meta = v->files[level][f];
                for (size_t l = 0; l < meta->num_blob_links; l++) {
                    blob_usage *u = usage_of(&usage, &count, meta->blob_links[l].number);
                    u->live += meta->blob_links[l].bytes;
                }
            }
        }
    }
    /* The file being written, when at least half garbage and no memtable
     * points into it: sealed (kv_db_seal_blob_file), so that it can go. */
    db->blob_seal_wanted = false;
    if (db->blob_active != NULL && db->blob_active->number < pinned_from) {
        uint64_t size = atomic_load(&db->blob_handed_size), live = 0;
        for (size_t i = 0; i < count; i++)
            if (usage[i].number == db->blob_active->number)
                live = usage[i].live;
        db->blob_seal_wanted = size >= (1u << 20) && live <= (size - KV_BLOB_HEADER_SIZE) / 2;
    }
    /* The victim: the most garbage, at least half of the file. */
    blob_usage *victim = NULL;
    double best = 0.5;
    for (size_t i = 0; i < count; i++) {
        blob_usage *u = &usage[i];
        if (u->number >= pinned_from ||
            (db->blob_active != NULL && u->number == db->blob_active->number) ||
            !kv_blob_set_contains(&db->blobs, u->number))
            continue;
        kv_blob_file *f = kv_blob_set_get(&db->blobs, u->number);
        uint64_t size = atomic_load(&f->size);
        bool failed = atomic_load(&f->gc_failed);
        kv_blob_file_unref(f);
        if (size <= KV_BLOB_HEADER_SIZE || failed)
            continue;
        double garbage = 1.0 - (double)u->live / (double)(size - KV_BLOB_HEADER_SIZE);
        if (garbage >= best) {
            best = garbage;
            victim = u;
        }
    }
    kv_compaction *result = NULL;
    if (victim != NULL) {
        /* The level (of one family) holding most of what points into it;
         * its tables that do, and those between them, are rewritten. */
        for (size_t c = 0; c < db->num_cfs; c++) {
            kv_cf *cf = db->cfs[c];
            if (cf->dropped || cf->compaction_running)
                continue;
            for (int level = 0; level < KV_NUM_LEVELS; level++) {
                uint64_t bytes = 0;
                const kv_version *v = cf->current;
                for (size_t f = 0; f < v->num_files[level]; f++)
                    for (size_t l = 0; l < v->files[level][f]->num_blob_links; l++)
                        if (v->files[level][f]->blob_links[l].number == victim->number)
                            bytes += v->files[level][f]->blob_links[l].bytes;
                if (bytes > victim->level_bytes) {
                    victim->level_bytes = bytes;
                    victim->cf = cf;
                    victim->level = level;
                }
            }
        }
    }
    if (victim != NULL && victim->cf != NULL) {
        const kv_version *v = victim->cf->current;
        kv_slice lo = {0}, hi = {0};
        bool any = false;
        for (size_t f = 0; f < v->num_files[victim->level]; f++) {
            const kv_file_meta *meta = v->files[victim->level][f];
            bool links = false;
            for (size_t l = 0; l < meta->num_blob_links; l++)
                links |= meta->blob_links[l].number == victim->number;
            if (!links)
                continue;
            kv_slice a = file_smallest_user_key(meta), b = file_largest_user_key(meta);
            if (!any || kv_slice_compare(a, lo) < 0)
                lo = a;
            if (!any || kv_slice_compare(b, hi) > 0)
                hi = b;
            any = true;
        }
        if (any) {
            /* Level 0 compacts into the next level; deeper levels are
             * rewritten in place. (A manual pick: never a trivial move.) */
            result = victim->level == 0
                         ? kv_compaction_pick_range(victim->cf, 0, &lo, &hi)
                         : kv_compaction_pick_range_in_place(victim->cf, victim->level, &lo, &hi);
            if (result != NULL) {
                result->relocate_blob = victim->number;
                kv_info_log_printf(db->info_log,
                                   "blob gc: %06" PRIu64 ".blob is %.0f%% garbage; moving its "
                                   "live values out of cf=%s level %d",
                                   victim->number, best * 100, victim->cf->name, victim->level);
            }
        }
    }
    free(usage);
    return result;
}

static int compare_smallest_user_key(const void *a, const void *b)
{
    return kv_slice_compare(file_smallest_user_key(*(kv_file_meta *const *)a),
                            file_smallest_user_key(*(kv_file_meta *const *)b));
}

bool kv_compaction_is_trivial_move(const kv_compaction *c)
{
    /* A manual compaction rewrites, so that it can drop garbage. */
    if (c->manual || c->num_inputs[1] != 0)
        return false;
    if (c->level > 0)
        return c->num_inputs[0] == 1;
    /* Level 0: every file is an input (the automatic pick takes them all),
     * and they can move together when no two of them overlap, as after
     * sequential inserts. */
    if (c->num_inputs[0] != c->input_version->num_files[0])
        return false;
    size_t n = c->num_inputs[0];
    kv_file_meta **sorted = kv_malloc(n * sizeof(kv_file_meta *));
    memcpy(sorted, c->inputs[0], n * sizeof(kv_file_meta *));
    qsort(sorted, n, sizeof(kv_file_meta *), compare_smallest_user_key);
    bool disjoint = true;
    for (size_t i = 1; i < n && disjoint; i++)
        disjoint = kv_slice_compare(file_largest_user_key(sorted[i - 1]),
                                    file_smallest_user_key(sorted[i])) < 0;
    free(sorted);
    return disjoint;
}

void kv_compaction_free(kv_compaction *c)
{
    if (c == NULL)
        return;
    kv_version_unref(c->input_version);
    free(c->inputs[0]);
    free(c->inputs[1]);
    free(c);
}
