/*
 * test_filename.c — data-directory file names: making, parsing (and
 * rejecting what is not ours), and kv_set_current_file.
 */
#include "testutil.h"

#include "env.h"
#include "env_fault.h"
#include "filename.h"
#include "kv.h"

#include <stdlib.h>
#include <string.h>

static void check_name(char *made, const char *expected)
{
    assert_non_null(made);
    assert_string_equal(made, expected);
    free(made);
}

static void test_make_names(void **state)
{
    (void)state;
    check_name(kv_log_file_name("/db", 7), "/db/000007.log");
    check_name(kv_table_file_name("/db", 123456), "/db/123456.sst");
    check_name(kv_table_file_name("db", 1234567), "db/1234567.sst");
    check_name(kv_manifest_file_name("/a/b", 1), "/a/b/MANIFEST-000001");
    check_name(kv_current_file_name("/db"), "/db/CURRENT");
    check_name(kv_temp_file_name("/db", 42), "/db/000042.dbtmp");
    check_name(kv_lock_file_name("/db"), "/db/LOCK");
    check_name(kv_info_log_file_name("/db"), "/db/LOG");
    check_name(kv_old_info_log_file_name("/db"), "/db/LOG.old");
    check_name(kv_log_file_name("/db", 0), "/db/000000.log");
    check_name(kv_log_file_name("/db", UINT64_MAX), "/db/18446744073709551615.log");
}

static void expect_parse(const char *name, uint64_t number, enum kv_file_type type)
{
    uint64_t got_number = 999;
    enum kv_file_type got_type = KV_FILE_LOCK;
    if (!kv_parse_file_name(name, &got_number, &got_type)) {
        print_error("rejected: \"%s\"\n", name);
        fail();
    }
    assert_int_equal(got_number, number);
    assert_int_equal(got_type, type);
}

static void test_parse(void **state)
{
    (void)state;
    expect_parse("100.log", 100, KV_FILE_LOG);
    expect_parse("000007.log", 7, KV_FILE_LOG);
    expect_parse("0.log", 0, KV_FILE_LOG);
    expect_parse("000123.sst", 123, KV_FILE_TABLE);
    expect_parse("MANIFEST-000002", 2, KV_FILE_MANIFEST);
    expect_parse("MANIFEST-7", 7, KV_FILE_MANIFEST);
    expect_parse("000042.dbtmp", 42, KV_FILE_TEMP);
    expect_parse("CURRENT", 0, KV_FILE_CURRENT);
    expect_parse("LOCK", 0, KV_FILE_LOCK);
    expect_parse("LOG", 0, KV_FILE_INFO_LOG);
    expect_parse("LOG.old", 0, KV_FILE_INFO_LOG);
    expect_parse("18446744073709551615.log", UINT64_MAX, KV_FILE_LOG);
    expect_parse("MANIFEST-18446744073709551615", UINT64_MAX, KV_FILE_MANIFEST);
}

static void test_parse_rejects(void **state)
{
    (void)state;
    static const char *const rejects[] = {
        "",
        "foo",
        "foo-dx-100.log",
        ".log",
        ".sst",
        "log",
        "100",
        "100.",
        "100.lo",
        "100.logx",
        "100.log.old",
        "100.sst~",
        "100.dbtmp.tmp",
        "-100.log",
        "+100.log",
        " 100.log",
        "100 .log",
        "0x10.log",
        "1e3.log",
        "18446744073709551616.log", /* 2^64: overflows */
        "99999999999999999999999.sst",
        "MANIFEST",
        "MANIFEST-",
        "MANIFEST-3x",
        "MANIFEST--3",
        "MANIFEST-+3",
        "MANIFEST- 3",
        "MANIFEST-18446744073709551616",
        "XMANIFEST-3",
        "manifest-3",
        "CURRENTX",
        "CURRENT.tmp",
        "current",
        "LOCK.",
        "LOCKS",
        "LOG.old.old",
        "LOG.older",
        "LOGX",
        "000001.log/",
        "/000001.log",
    };
    for (size_t i = 0; i < sizeof(rejects) / sizeof(rejects[0]); i++) {
        uint64_t number = 12345;
        enum kv_file_type type = KV_FILE_LOCK;
        if (kv_parse_file_name(rejects[i], &number, &type)) {
            print_error("accepted: \"%s\"\n", rejects[i]);
            fail();
        }
    }
}

/* Every name made by this module parses back to its number and type. */
static void test_round_trip(void **state)
{
    (void)state;
    uint64_t numbers[] = {0, 1, 999999, 1000000, 123456789012ull, UINT64_MAX};
    for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++) {
        struct {
            char *path;
            enum kv_file_type type;
        } made[] = {
            {kv_log_file_name("/x", numbers[i]), KV_FILE_LOG},
            {kv_table_file_name("/x", numbers[i]), KV_FILE_TABLE},
            {kv_manifest_file_name("/x", numbers[i]), KV_FILE_MANIFEST},
            {kv_temp_file_name("/x", numbers[i]), KV_FILE_TEMP},
        };
        for (size_t j = 0; j < sizeof(made) / sizeof(made[0]); j++) {
            const char *base = strrchr(made[j].path, '/') + 1;
            expect_parse(base, numbers[i], made[j].type);
            free(made[j].path);
        }
    }
}

static void expect_current(const char *dir, const char *expected)
{
    char *current = kv_current_file_name(dir);
    kv_buf contents = {0};
    assert_int_equal(kv_env_read_file(kv_env_posix(), current, &contents), 0);
    assert_int_equal(contents.size, strlen(expected));
    assert_memory_equal(contents.data, expected, contents.size);
    kv_buf_free(&contents);
    free(current);
}

static void test_set_current_file(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("filename-current");
    assert_int_equal(kv_set_current_file(kv_env_posix(), dir, 5), 0);
    expect_current(dir, "MANIFEST-000005\n");
    assert_int_equal(kv_set_current_file(kv_env_posix(), dir, 1234567), 0);
    expect_current(dir, "MANIFEST-1234567\n");

    /* No temporary file is left behind: only CURRENT. */
    char **names;
    size_t count;
    assert_int_equal(kv_env_list_dir(dir, &names, &count), 0);
    assert_int_equal(count, 1);
    assert_string_equal(names[0], "CURRENT");
    kv_env_free_names(names, count);

    /* In a directory that does not exist: an error naming the path. */
    char *missing = kv_sprintf("%s/missing", dir);
    assert_int_equal(kv_set_current_file(kv_env_posix(), missing, 1), KV_IO_ERROR);
    assert_non_null(strstr(kv_errmsg(), missing));
    free(missing);
    kv_test_cleanup_dir(dir);
}

/* CURRENT is durable when kv_set_current_file returns: a power cut right
 * after keeps the new CURRENT; a failed switch keeps the old one. */
static void test_set_current_file_durable(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("filename-current-fault");
    kv_env *env = kv_env_fault_create();
    assert_int_equal(kv_set_current_file(env, dir, 3), 0);
    assert_int_equal(kv_env_fault_power_cut(env), 0);
    expect_current(dir, "MANIFEST-000003\n");

    assert_int_equal(kv_set_current_file(env, dir, 4), 0);
    kv_env_fault_set_filesystem_active(env, false);
    assert_int_equal(kv_set_current_file(env, dir, 5), KV_IO_ERROR);
    kv_env_fault_set_filesystem_active(env, true);
    assert_int_equal(kv_env_fault_power_cut(env), 0);
    expect_current(dir, "MANIFEST-000004\n");

    /* Space runs out while writing the new CURRENT. */
    kv_env_fault_set_space_budget(env, 5);
    assert_int_equal(kv_set_current_file(env, dir, 6), KV_NO_SPACE);
    kv_env_fault_set_space_budget(env, UINT64_MAX);
    expect_current(dir, "MANIFEST-000004\n");
    assert_int_equal(kv_env_fault_power_cut(env), 0);
    expect_current(dir, "MANIFEST-000004\n");
    kv_env_fault_destroy(env);
    kv_test_cleanup_dir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_make_names),       cmocka_unit_test(test_parse),
        cmocka_unit_test(test_parse_rejects),    cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_set_current_file), cmocka_unit_test(test_set_current_file_durable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
