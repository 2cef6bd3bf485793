/* test_kv_dump.c — the kv_dump tool (kv/tools): writes a WAL, a MANIFEST,
 * CURRENT and an SST with the library, runs the built kv_dump on them and
 * on damaged copies, and checks its output and exit status (0 sound, 1
 * damaged, 2 usage). Skipped when the kv_dump binary is not built. */
#include "testutil.h"
#include "testutil_db.h"

#include "dbformat.h"
#include "env.h"
#include "table_builder.h"
#include "version_edit.h"
#include "wal.h"
#include "write_batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct dump_fixture {
    char *dir;
    char *kv_dump; /* path of the binary */
} dump_fixture;

/* kv_dump is built at <build>/kv/tools/kv_dump; this test runs from
 * <build>/tests. */
static char *find_kv_dump(void)
{
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return NULL;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash == NULL)
        return NULL;
    *slash = '\0';
    char *path = kv_sprintf("%s/../kv/tools/kv_dump", self);
    if (access(path, X_OK) != 0) {
        free(path);
        return NULL;
    }
    return path;
}

static void write_wal(const char *path)
{
    kv_writable *file;
    assert_int_equal(kv_env_new_writable(kv_env_posix(), path, 0, &file), 0);
    kv_log_writer *writer = kv_log_writer_create(file);
    kv_write_batch batch;

    kv_write_batch_init(&batch);
    kv_write_batch_set_sequence(&batch, 1);
    kv_write_batch_put_cf_id(&batch, 0, kv_slice_from_str("k1"), kv_slice_from_str("v1"));
    kv_write_batch_delete_cf_id(&batch, 0, kv_slice_from_str("k2"));
    assert_int_equal(kv_log_writer_add_record(writer, kv_write_batch_contents(&batch)), 0);
    kv_write_batch_free(&batch);

    char big[200];
    memset(big, 'z', sizeof(big));
    kv_write_batch_init(&batch);
    kv_write_batch_set_sequence(&batch, 3);
    kv_write_batch_put_cf_id(&batch, 3, kv_slice_make("bin\0\xff", 5), kv_slice_make(big, 200));
    assert_int_equal(kv_log_writer_add_record(writer, kv_write_batch_contents(&batch)), 0);
    kv_write_batch_free(&batch);

    kv_write_batch_init(&batch);
    kv_write_batch_set_sequence(&batch, 4);
    kv_write_batch_delete_range_cf_id(&batch, 0, kv_slice_from_str("a"), kv_slice_from_str("m"));
    assert_int_equal(kv_log_writer_add_record(writer, kv_write_batch_contents(&batch)), 0);
    kv_write_batch_free(&batch);
    assert_int_equal(kv_log_writer_close(writer), 0);
}

static void write_manifest(const char *path)
{
    kv_writable *file;
    assert_int_equal(kv_env_new_writable(kv_env_posix(), path, 0, &file), 0);
    kv_log_writer *writer = kv_log_writer_create(file);
    kv_buf record = {0};
    kv_version_edit edit;

    kv_version_edit_init(&edit);
    edit.has_format_version = true;
    edit.format_version = KV_MANIFEST_FORMAT_VERSION;
    edit.has_next_file_number = true;
    edit.next_file_number = 10;
    kv_version_edit_encode(&edit, &record);
    kv_version_edit_free(&edit);
    assert_int_equal(kv_log_writer_add_record(writer, kv_buf_slice(&record)), 0);

    kv_version_edit_init(&edit);
    kv_file_meta *f = kv_file_meta_create();
    f->number = 9;
    f->file_size = 1234;
    kv_ikey_append(&f->smallest, kv_slice_from_str("key0000"), 1, KV_TYPE_VALUE);
    kv_ikey_append(&f->largest, kv_slice_from_str("r5"), KV_MAX_SEQUENCE, KV_TYPE_RANGE_DELETION);
    kv_version_edit_add_file(&edit, 2, f);
    kv_file_meta_unref(f);
    kv_version_edit_delete_file(&edit, 1, 4);
    kv_buf_clear(&record);
    kv_version_edit_encode(&edit, &record);
    kv_version_edit_free(&edit);
    assert_int_equal(kv_log_writer_add_record(writer, kv_buf_slice(&record)), 0);
    kv_buf_free(&record);
    assert_int_equal(kv_log_writer_close(writer), 0);
}

/* 50 entries key0000..key0049 (every 7th a deletion) in small blocks, and
 * one range tombstone. */
static void write_table(const char *path)
{
    kv_writable *file;
    assert_int_equal(kv_env_new_writable(kv_env_posix(), path, 0, &file), 0);
    kv_table_options options = {.block_size = 128,
                                .block_restart_interval = 2,
                                .bloom_bits_per_key = 10,
                                .compression = KV_COMPRESSION_NONE};
    kv_table_builder *builder = kv_table_builder_create(&options, file);
    kv_buf ikey = {0};
    for (int i = 0; i < 50; i++) {
        char key[16], value[16];
        snprintf(key, sizeof(key), "key%04d", i);
        snprintf(value, sizeof(value), "value%d", i);
        kv_buf_clear(&ikey);
        kv_ikey_append(&ikey, kv_slice_from_str(key), (kv_seq)i + 1,
                       i % 7 == 3 ? KV_TYPE_DELETION : KV_TYPE_VALUE);
        assert_int_equal(
            kv_table_builder_add(builder, kv_buf_slice(&ikey),
                                 i % 7 == 3 ? kv_slice_make("", 0) : kv_slice_from_str(value)),
            0);
    }
    kv_table_builder_add_range_tombstone(builder, kv_slice_from_str("r0"), kv_slice_from_str("r5"),
                                         100);
    assert_int_equal(kv_table_builder_finish(builder), 0);
    kv_table_builder_destroy(builder);
    assert_int_equal(kv_writable_close(file), 0);
    kv_buf_free(&ikey);
}

static void write_file(const char *path, const char *contents)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(contents, f);
    fclose(f);
}

static int setup(void **state)
{
    dump_fixture *fx = kv_calloc(1, sizeof(*fx));
    fx->kv_dump = find_kv_dump();
    fx->dir = kv_test_tmpdir("kvdump");
    char *path = kv_sprintf("%s/000007.log", fx->dir);
    write_wal(path);
    free(path);
    path = kv_sprintf("%s/MANIFEST-000002", fx->dir);
    write_manifest(path);
    free(path);
    path = kv_sprintf("%s/000009.sst", fx->dir);
    write_table(path);
    free(path);
    path = kv_sprintf("%s/CURRENT", fx->dir);
    write_file(path, "MANIFEST-000002\n");
    free(path);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    dump_fixture *fx = *state;
    kv_test_cleanup_dir(fx->dir);
    free(fx->kv_dump);
    free(fx);
    return 0;
}

/* Runs `kv_dump args` in the fixture's directory; output (stdout and
 * stderr) goes to *out. Returns the exit status. */
static int run_dump(const dump_fixture *fx, const char *args, kv_buf *out)
{
    if (fx->kv_dump == NULL)
        skip();
    char *command = kv_sprintf("cd '%s' && '%s' %s 2>&1", fx->dir, fx->kv_dump, args);
    FILE *p = popen(command, "r");
    free(command);
    assert_non_null(p);
    kv_buf_clear(out);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0)
        kv_buf_append(out, chunk, n);
    kv_buf_append_byte(out, '\0');
    int status = pclose(p);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static void expect_output(const kv_buf *out, const char *text)
{
    if (strstr(out->data, text) == NULL)
        fail_msg("missing \"%s\" in output:\n%s", text, out->data);
}

static void flip_byte(const dump_fixture *fx, const char *name, long offset)
{
    char *path = kv_sprintf("%s/%s", fx->dir, name);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, offset, SEEK_SET), 0);
    int c = fgetc(f);
    assert_int_equal(fseek(f, offset, SEEK_SET), 0);
    fputc(c ^ 0x20, f);
    fclose(f);
    free(path);
}

static void test_sound_files(void **state)
{
    dump_fixture *fx = *state;
    kv_buf out = {0};
    assert_int_equal(run_dump(fx, "000007.log MANIFEST-000002 000009.sst CURRENT", &out), 0);
    /* WAL */
    expect_output(&out, "offset 0: sequence 1, count 2");
    expect_output(&out, "@1 cf 0 PUT 'k1' => 'v1'\n");
    expect_output(&out, "@2 cf 0 DELETE 'k2'\n");
    expect_output(&out, "@3 cf 3 PUT 'bin\\x00\\xff' => 'zzzz");
    expect_output(&out, "zzz'... (200 bytes)\n");
    expect_output(&out, "@4 cf 0 DELETE_RANGE ['a', 'm')\n");
    expect_output(&out, "000007.log: 3 records\n");
    /* MANIFEST */
    expect_output(&out, "  format_version: 2\n");
    expect_output(&out, "  next_file_number: 10\n");
    expect_output(&out, "  deleted_file: level 1 #000004\n");
    expect_output(&out,
                  "  new_file: level 2 #000009 size 1234 keys ['key0000' @ 1 : VALUE .. 'r5'");
    expect_output(&out, "MANIFEST-000002: 2 records\n");
    /* SST */
    expect_output(&out, "footer: format version 1");
    expect_output(&out, "  'num_entries': 50\n");
    expect_output(&out, "  'num_range_deletions': 1\n");
    expect_output(&out, "  bloom filter: ");
    expect_output(&out, "data block 0: offset 0, ");
    expect_output(&out, "  'key0000' @ 1 : VALUE => 'value0'\n");
    expect_output(&out, "  'key0003' @ 4 : DELETION\n");
    expect_output(&out, "  'key0049' @ 50 : VALUE => 'value49'\n");
    expect_output(&out, "  ['r0', 'r5') @ 100\n");
    expect_output(&out, "table reader: opened and verified\n");
    expect_output(&out, "000009.sst: ");
    expect_output(&out, " 50 entries in ");
    /* CURRENT */
    expect_output(&out, "CURRENT: MANIFEST-000002\n");
    kv_buf_free(&out);
}

static void test_options(void **state)
{
    dump_fixture *fx = *state;
    kv_buf out = {0};
    assert_int_equal(run_dump(fx, "--no-values 000007.log 000009.sst", &out), 0);
    expect_output(&out, "@1 cf 0 PUT 'k1'\n");
    expect_output(&out, "  'key0000' @ 1 : VALUE\n");
    assert_null(strstr(out.data, "=> 'v1'"));
    assert_null(strstr(out.data, "value0"));

    assert_int_equal(run_dump(fx, "000007.log --hex", &out), 0);
    expect_output(&out, "@1 cf 0 PUT 6b31 => 7631\n");
    expect_output(&out, "@3 cf 3 PUT 62696e00ff => 7a7a");
    kv_buf_free(&out);
}

static void test_usage_errors(void **state)
{
    dump_fixture *fx = *state;
    kv_buf out = {0};
    assert_int_equal(run_dump(fx, "", &out), 2);
    expect_output(&out, "usage: kv_dump");
    assert_int_equal(run_dump(fx, "--frobnicate 000007.log", &out), 2);
    expect_output(&out, "unknown option --frobnicate");
    assert_int_equal(run_dump(fx, "notes.txt", &out), 2);
    expect_output(&out, "not a kv file name");
    /* A missing file is not a usage error. */
    assert_int_equal(run_dump(fx, "000123.log", &out), 1);
    kv_buf_free(&out);
}

static void test_damaged_wal(void **state)
{
    dump_fixture *fx = *state;
    kv_buf out = {0};
    flip_byte(fx, "000007.log", 10); /* in the first record */
    assert_int_equal(run_dump(fx, "000007.log", &out), 1);
    expect_output(&out, "000007.log: checksum mismatch at offset 0");
    flip_byte(fx, "000007.log", 10);
    assert_int_equal(run_dump(fx, "000007.log", &out), 0);

    /* Zeros after the last record (written ahead of synced appends) are
     * told apart from a torn tail; neither is an error. */
    char *path = kv_sprintf("%s/000007.log", fx->dir);
    uint64_t size;
    assert_int_equal(kv_env_file_size(path, &size), 0);
    assert_int_equal(truncate(path, (off_t)size + 100000), 0);
    assert_int_equal(run_dump(fx, "000007.log", &out), 0);
    expect_output(&out, "000007.log: 3 records; 100000 bytes of zeros after the last record");
    /* A torn tail is what a crash leaves: reported, not an error. */
    assert_int_equal(truncate(path, (off_t)size - 3), 0);
    assert_int_equal(run_dump(fx, "000007.log", &out), 0);
    expect_output(&out, "000007.log: 2 records; torn tail of ");
    free(path);
    kv_buf_free(&out);
}

/* A database with blob files: the WAL's and the table's blob indexes, and
 * the blob file's records, checked; a damaged record makes it exit 1. */
static void test_blob_files(void **state)
{
    dump_fixture *fx = *state;
    char *dir = kv_test_tmpdir("kvdump-blob");
    kv_options o;
    kv_options_init(&o);
    o.create_if_missing = true;
    o.cf.blob_min_size = 100;
    o.blob_min_batch_bytes = 0;
    kv_db *db = NULL;
    assert_int_equal(kv_open(&o, dir, &db), 0);
    char value[300];
    memset(value, 'v', sizeof(value));
    kv_write_batch *batch = kv_write_batch_create();
    kv_write_batch_put(batch, kv_default_cf(db), "big1", 4, value, sizeof(value));
    kv_write_batch_put(batch, kv_default_cf(db), "small", 5, "s", 1);
    kv_write_batch_put(batch, kv_default_cf(db), "big2", 4, value, sizeof(value));
    assert_int_equal(kv_write(db, NULL, batch), 0);
    kv_write_batch_destroy(batch);
    assert_int_equal(kv_close(db), 0);
    char *blob = tdb_newest_file(dir, ".blob");
    char *wal = tdb_newest_file(dir, ".log");
    assert_non_null(blob);
    assert_non_null(wal);
    kv_buf out = {0};
    char *args = kv_sprintf("'%s' '%s'", wal, blob);
    assert_int_equal(run_dump(fx, args, &out), 0);
    expect_output(&out, "PUT 'big1' => blob ");
    expect_output(&out, ".blob offset 16 (");
    expect_output(&out, "PUT 'small' => 's'\n");
    expect_output(&out, "  offset 16: 'big1' => 'vvvv");
    expect_output(&out, ": 2 records\n");
    tdb_flip_byte(blob, 16 + 40);
    assert_int_equal(run_dump(fx, args, &out), 1);
    expect_output(&out, "checksum mismatch at offset 16");
    free(args);
    free(blob);
    free(wal);
    kv_buf_free(&out);
    kv_test_cleanup_dir(dir);
}

static void test_damaged_table(void **state)
{
    dump_fixture *fx = *state;
    kv_buf out = {0};
    flip_byte(fx, "000009.sst", 5); /* in data block 0 */
    assert_int_equal(run_dump(fx, "000009.sst", &out), 1);
    expect_output(&out, "000009.sst: block checksum mismatch at offset 0");
    flip_byte(fx, "000009.sst", 5);

    char *path = kv_sprintf("%s/000009.sst", fx->dir);
    uint64_t size;
    assert_int_equal(kv_env_file_size(path, &size), 0);
    free(path);
    flip_byte(fx, "000009.sst", (long)size - 20); /* footer padding */
    assert_int_equal(run_dump(fx, "000009.sst", &out), 1);
    expect_output(&out, "nonzero footer padding");
    flip_byte(fx, "000009.sst", (long)size - 20);
    flip_byte(fx, "000009.sst", (long)size - 1); /* magic */
    assert_int_equal(run_dump(fx, "000009.sst", &out), 1);
    expect_output(&out, "not an SST file");
    flip_byte(fx, "000009.sst", (long)size - 1);
    assert_int_equal(run_dump(fx, "000009.sst", &out), 0);
    kv_buf_free(&out);
}

static void test_damaged_manifest_and_current(void **state)
{
    dump_fixture *fx = *state;
    kv_buf out = {0};
    flip_byte(fx, "MANIFEST-000002", 8); /* the first record's payload */
    assert_int_equal(run_dump(fx, "MANIFEST-000002", &out), 1);
    expect_output(&out, "MANIFEST-000002: checksum mismatch at offset 0");
    flip_byte(fx, "MANIFEST-000002", 8);

    char *path = kv_sprintf("%s/CURRENT", fx->dir);
    write_file(path, "MANIFEST-000002"); /* no newline */
    assert_int_equal(run_dump(fx, "CURRENT", &out), 1);
    expect_output(&out, "does not name a MANIFEST");
    write_file(path, "MANIFEST-000003\n"); /* missing */
    assert_int_equal(run_dump(fx, "CURRENT", &out), 1);
    expect_output(&out, "which does not exist");
    write_file(path, "MANIFEST-000002\n");
    assert_int_equal(run_dump(fx, "CURRENT", &out), 0);
    free(path);

    /* The worst status of several files wins. */
    flip_byte(fx, "000009.sst", 5);
    assert_int_equal(run_dump(fx, "CURRENT 000009.sst 000007.log", &out), 1);
    assert_int_equal(run_dump(fx, "000009.sst other.txt", &out), 2);
    flip_byte(fx, "000009.sst", 5);
    kv_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sound_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_usage_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_wal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blob_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_manifest_and_current, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
