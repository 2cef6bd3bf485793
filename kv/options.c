/* options.c — defaults and validation of kv_options. */
#include "db_impl.h"
#include "error.h"

#include <string.h>

void kv_options_init(kv_options *o)
{
    memset(o, 0, sizeof(*o));
    o->create_if_missing = false;
    o->error_if_exists = false;
    o->paranoid_checks = true;
    o->block_cache_size = 64u << 20;
    o->max_open_files = 1000;
    o->max_background_flushes = 1;
    o->max_background_compactions = 1;
    o->max_manifest_file_size = 64u << 20;
    o->delayed_write_rate = 16u << 20;
    o->blob_min_batch_bytes = 64u << 10;
    o->blob_file_size = 64u << 20;
    o->env = NULL;
    o->cf.write_buffer_size = 64u << 20;
    o->cf.max_write_buffer_number = 4;
    o->cf.block_size = 4096;
    o->cf.block_restart_interval = 16;
    o->cf.bloom_bits_per_key = 10;
    o->cf.compression = KV_COMPRESSION_SNAPPY;
    o->cf.level0_file_num_compaction_trigger = 4;
    o->cf.level0_slowdown_writes_trigger = 20;
    o->cf.level0_stop_writes_trigger = 36;
    o->cf.target_file_size_base = 64u << 20;
    o->cf.max_bytes_for_level_base = 256u << 20;
    o->cf.max_bytes_for_level_multiplier = 10;
    o->cf.soft_pending_compaction_bytes_limit = 64ull << 30;
    o->cf.hard_pending_compaction_bytes_limit = 256ull << 30;
}

void kv_read_options_init(kv_read_options *o)
{
    memset(o, 0, sizeof(*o));
    o->verify_checksums = true;
    o->fill_cache = true;
}

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            return kv_error(KV_INVALID_ARGUMENT, __VA_ARGS__);                                     \
    } while (0)

/* Validates one family's options. */
static int validate_cf_options(const kv_cf_options *c)
{
    CHECK(c->write_buffer_size >= 4096 && c->write_buffer_size <= (4ull << 30),
          "write_buffer_size %zu out of range [4 KiB, 4 GiB]", c->write_buffer_size);
    CHECK(c->max_write_buffer_number >= 2 && c->max_write_buffer_number <= 64,
          "max_write_buffer_number %d out of range [2, 64]", c->max_write_buffer_number);
    CHECK(c->block_size >= 256 && c->block_size <= (4u << 20),
          "block_size %zu out of range [256, 4 MiB]", c->block_size);
    CHECK(c->block_restart_interval >= 1 && c->block_restart_interval <= 1024,
          "block_restart_interval %d out of range [1, 1024]", c->block_restart_interval);
    CHECK(c->bloom_bits_per_key >= 0 && c->bloom_bits_per_key <= 64,
          "bloom_bits_per_key %d out of range [0, 64]", c->bloom_bits_per_key);
    CHECK(c->compression == KV_COMPRESSION_NONE || c->compression == KV_COMPRESSION_SNAPPY,
          "unknown compression %d", c->compression);
    CHECK(c->level0_file_num_compaction_trigger >= 1 &&
              c->level0_slowdown_writes_trigger >= c->level0_file_num_compaction_trigger &&
              c->level0_stop_writes_trigger >= c->level0_slowdown_writes_trigger,
          "level-0 triggers must satisfy 1 <= compaction (%d) <= slowdown (%d) <= stop (%d)",
          c->level0_file_num_compaction_trigger, c->level0_slowdown_writes_trigger,
          c->level0_stop_writes_trigger);
    CHECK(c->target_file_size_base >= 64 * 1024, "target_file_size_base too small");
    CHECK(c->max_bytes_for_level_base >= 64 * 1024, "max_bytes_for_level_base too small");
    CHECK(c->blob_min_size == 0 || c->blob_min_size >= 16,
          "blob_min_size %u: 0 (off) or at least 16 bytes", c->blob_min_size);
    CHECK(c->partition_prefix_length >= 0 && c->partition_prefix_length <= 64,
          "partition_prefix_length %d out of range [0, 64]", c->partition_prefix_length);
    CHECK(c->max_bytes_for_level_multiplier >= 2 && c->max_bytes_for_level_multiplier <= 100,
          "max_bytes_for_level_multiplier %d out of range [2, 100]",
          c->max_bytes_for_level_multiplier);
    CHECK(c->soft_pending_compaction_bytes_limit >= (1u << 20) &&
              c->hard_pending_compaction_bytes_limit >= c->soft_pending_compaction_bytes_limit,
          "pending compaction byte limits must satisfy 1 MiB <= soft <= hard");
    return 0;
}

/* Validates options; a message names the offending field and its range. */
int kv_options_validate(const kv_options *o)
{
    int rc = validate_cf_options(&o->cf);
    if (rc != 0)
        return rc;
    CHECK(o->num_cf_overrides >= 0 && o->num_cf_overrides <= KV_MAX_CF_OVERRIDES,
          "num_cf_overrides %d out of range [0, %d]", o->num_cf_overrides, KV_MAX_CF_OVERRIDES);
    for (int i = 0; i < o->num_cf_overrides; i++) {
        const char *name = o->cf_overrides[i].name;
        CHECK(memchr(name, '\0', sizeof(o->cf_overrides[i].name)) != NULL && name[0] != '\0',
              "cf_overrides[%d]: the family name must be 1 to %zu bytes", i,
              sizeof(o->cf_overrides[i].name) - 1);
        rc = validate_cf_options(&o->cf_overrides[i].options);
        if (rc != 0)
            return kv_error_wrap(rc, "cf_overrides");
    }
    CHECK(o->max_open_files >= 16 && o->max_open_files <= 1000000,
          "max_open_files %d out of range [16, 1000000]", o->max_open_files);
    CHECK(o->max_background_flushes >= 1 && o->max_background_flushes <= 16,
          "max_background_flushes %d out of range [1, 16]", o->max_background_flushes);
    CHECK(o->max_background_compactions >= 0 && o->max_background_compactions <= 16,
          "max_background_compactions %d out of range [0, 16]", o->max_background_compactions);
    CHECK(o->max_manifest_file_size >= 4096, "max_manifest_file_size too small");
    CHECK(o->delayed_write_rate >= 1024, "delayed_write_rate too small");
    CHECK(o->blob_file_size >= (1u << 20) && o->blob_file_size <= (4ull << 30),
          "blob_file_size %llu out of range [1 MiB, 4 GiB]", (unsigned long long)o->blob_file_size);
    CHECK(o->blob_min_batch_bytes <= (1u << 30), "blob_min_batch_bytes %llu above 1 GiB",
          (unsigned long long)o->blob_min_batch_bytes);
    return 0;
}
