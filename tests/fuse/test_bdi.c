/*
 * test_bdi.c — the write-back settings of lsmfs's own mount (fuse/bdi.h):
 * finding the mount's device in a mountinfo file, reading and writing a
 * bdi's strict_limit (against a fake sysfs directory), and, on real
 * mounts, that lsmfs keeps the kernel's strict dirty limit by default and
 * that root's -o system_dirty_limit turns it off.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bdi.h"
#include "mountutil.h"
#include "testutil.h"

static char *write_temp_file(const char *dir, const char *name, const char *text)
{
    size_t len = strlen(dir) + strlen(name) + 2;
    char *path = malloc(len);
    assert_non_null(path);
    snprintf(path, len, "%s/%s", dir, name);
    FILE *file = fopen(path, "w");
    assert_non_null(file);
    assert_int_equal(fputs(text, file) >= 0, 1);
    assert_int_equal(fclose(file), 0);
    return path;
}

/* mountinfo lines as the kernel writes them; the last mount on a path wins,
 * escapes are undone, a longer or shorter path does not match. */
static void test_bdi_of_mount_parses_mountinfo(void **state)
{
    (void)state;
    char *dir = kv_test_tmpdir("bdi-mountinfo");
    char *path =
        write_temp_file(dir, "mountinfo",
                        "22 1 253:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
                        "40 22 0:40 / /mnt/x rw,nosuid,nodev - fuse.lsmfs /data rw,user_id=0\n"
                        "41 22 0:41 / /mnt/x/inner rw - fuse.lsmfs /data2 rw\n"
                        "42 40 0:42 / /mnt/x rw - fuse.lsmfs /data3 rw\n"
                        "43 22 0:43 / /mnt/with\\040space rw - fuse.lsmfs /d rw\n"
                        "short line\n");
    char bdi[64];
    assert_int_equal(bdi_of_mount(path, "/mnt/x", bdi, sizeof(bdi)), 0);
    assert_string_equal(bdi, "0:42"); /* stacked: the visible one */
    assert_int_equal(bdi_of_mount(path, "/mnt/x/inner", bdi, sizeof(bdi)), 0);
    assert_string_equal(bdi, "0:41");
    assert_int_equal(bdi_of_mount(path, "/mnt/with space", bdi, sizeof(bdi)), 0);
    assert_string_equal(bdi, "0:43");
    assert_int_equal(bdi_of_mount(path, "/", bdi, sizeof(bdi)), 0);
    assert_string_equal(bdi, "253:0");
    assert_int_equal(bdi_of_mount(path, "/mnt", bdi, sizeof(bdi)), -ENOENT);
    assert_int_equal(bdi_of_mount(path, "/mnt/x/", bdi, sizeof(bdi)), -ENOENT);
    assert_int_equal(bdi_of_mount(path, "/mnt/x", bdi, 4), -ENAMETOOLONG);
    char missing[4096];
    snprintf(missing, sizeof(missing), "%s/no-such-file", dir);
    assert_int_equal(bdi_of_mount(missing, "/mnt/x", bdi, sizeof(bdi)), -ENOENT);
    free(path);
    kv_test_cleanup_dir(dir);
}

/* Against a fake /sys/class/bdi: the value written is read back, a
 * missing bdi is -ENOENT, names that could leave the directory are
 * refused. */
static void test_strict_limit_read_write(void **state)
{
    (void)state;
    char *root = kv_test_tmpdir("bdi-sysfs");
    char bdi_dir[4096];
    snprintf(bdi_dir, sizeof(bdi_dir), "%s/0:40", root);
    assert_int_equal(mkdir(bdi_dir, 0755), 0);
    free(write_temp_file(bdi_dir, "strict_limit", "1\n"));
    assert_int_equal(bdi_strict_limit(root, "0:40"), 1);
    assert_int_equal(bdi_set_strict_limit(root, "0:40", false), 0);
    assert_int_equal(bdi_strict_limit(root, "0:40"), 0);
    assert_int_equal(bdi_set_strict_limit(root, "0:40", true), 0);
    assert_int_equal(bdi_strict_limit(root, "0:40"), 1);
    assert_int_equal(bdi_strict_limit(root, "0:41"), -ENOENT);
    assert_int_equal(bdi_set_strict_limit(root, "0:41", false), -ENOENT);
    assert_int_equal(bdi_set_strict_limit(root, "../0:40", false), -EINVAL);
    assert_int_equal(bdi_set_strict_limit(root, "..", false), -EINVAL);
    assert_int_equal(bdi_strict_limit(root, ""), -EINVAL);
    kv_test_cleanup_dir(root);
}

/* A default mount keeps the kernel's strict limit; root's
 * -o system_dirty_limit turns it off; writes through the mount work and
 * persist either way. */
static void test_mount_strict_limit_option(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    struct lsmfs_mount *lifted = lsmfs_mount_create("bdi-lifted", "system_dirty_limit");
    int value = lsmfs_mount_strict_limit(lifted);
    if (value == -ENOENT) { /* a kernel before 6.2 has no knob */
        lsmfs_mount_destroy(lifted);
        skip();
    }
    assert_int_equal(value, 0);
    lsmfs_mount_destroy(lifted);

    struct lsmfs_mount *kept = lsmfs_mount_create("bdi-kept", NULL);
    assert_int_equal(lsmfs_mount_strict_limit(kept), 1);
    char path[4096];
    snprintf(path, sizeof(path), "%s/f", kept->mountpoint);
    int fd = open(path, O_CREAT | O_WRONLY, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "data", 4), 4);
    assert_int_equal(fsync(fd), 0);
    assert_int_equal(close(fd), 0);
    lsmfs_mount_remount(kept);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 4);
    assert_int_equal(lsmfs_mount_strict_limit(kept), 1);
    lsmfs_mount_destroy(kept);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bdi_of_mount_parses_mountinfo),
        cmocka_unit_test(test_strict_limit_read_write),
        cmocka_unit_test(test_mount_strict_limit_option),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
