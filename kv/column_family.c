/* column_family.c — SuperVersions and per-family helpers. */
#include "column_family.h"

#include <stdlib.h>

void kv_superversion_ref(kv_superversion *sv)
{
    atomic_fetch_add_explicit(&sv->refs, 1, memory_order_relaxed);
}

void kv_superversion_unref(kv_superversion *sv)
{
    if (sv == NULL || atomic_fetch_sub_explicit(&sv->refs, 1, memory_order_acq_rel) != 1)
        return;
    kv_memtable_unref(sv->mem);
    for (size_t i = 0; i < sv->num_imm; i++)
        kv_memtable_unref(sv->imm[i]);
    free(sv->imm);
    kv_version_unref(sv->version);
    free(sv);
}

void kv_cf_install_super_version(struct kv_cf *cf)
{
    kv_superversion *sv = kv_calloc(1, sizeof(*sv));
    atomic_init(&sv->refs, 1);
    sv->mem = cf->mem;
    kv_memtable_ref(sv->mem);
    sv->num_imm = cf->imm.count;
    sv->imm = sv->num_imm ? kv_malloc(sv->num_imm * sizeof(kv_memtable *)) : NULL;
    for (size_t i = 0; i < sv->num_imm; i++) {
        sv->imm[i] = cf->imm.mems[cf->imm.count - 1 - i];
        kv_memtable_ref(sv->imm[i]);
    }
    sv->version = cf->current;
    kv_version_ref(sv->version);
    pthread_mutex_lock(&cf->sv_mutex);
    kv_superversion *old = cf->super_version;
    cf->super_version = sv;
    pthread_mutex_unlock(&cf->sv_mutex);
    kv_superversion_unref(old);
}

kv_superversion *kv_cf_acquire_super_version(struct kv_cf *cf, _Atomic uint64_t *last_sequence,
                                             uint64_t *sequence)
{
    pthread_mutex_lock(&cf->sv_mutex);
    kv_superversion *sv = cf->super_version;
    kv_superversion_ref(sv);
    if (last_sequence != NULL)
        *sequence = atomic_load_explicit(last_sequence, memory_order_acquire);
    pthread_mutex_unlock(&cf->sv_mutex);
    return sv;
}

kv_table_options kv_cf_table_options(const kv_cf_options *options)
{
    kv_table_options t;
    t.block_size = options->block_size;
    t.block_restart_interval = options->block_restart_interval;
    t.bloom_bits_per_key = options->bloom_bits_per_key;
    t.compression = options->compression;
    return t;
}
