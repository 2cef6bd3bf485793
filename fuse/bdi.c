/*
 * bdi.c — see bdi.h.
 */
#include "bdi.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Undoes mountinfo's escapes in place: "\ooo" (three octal digits) becomes
 * the byte it names; anything else is kept. */
static void unescape_octal(char *text)
{
    char *out = text;
    for (const char *in = text; *in != '\0';) {
        if (in[0] == '\\' && in[1] >= '0' && in[1] <= '3' && in[2] >= '0' && in[2] <= '7' &&
            in[3] >= '0' && in[3] <= '7') {
            *out++ = (char)((in[1] - '0') * 64 + (in[2] - '0') * 8 + (in[3] - '0'));
            in += 4;
        } else {
            *out++ = *in++;
        }
    }
    *out = '\0';
}

int bdi_of_mount(const char *mountinfo_path, const char *mountpoint, char *out, size_t out_len)
{
    FILE *file = fopen(mountinfo_path, "re");
    if (file == NULL)
        return -errno;
    char *line = NULL;
    size_t capacity = 0;
    char found[64] = "";
    while (getline(&line, &capacity, file) > 0) {
        /* id parent MAJ:MIN root mountpoint options ... */
        char *save = NULL;
        char *field[5];
        int n = 0;
        for (char *token = strtok_r(line, " ", &save); token != NULL && n < 5;
             token = strtok_r(NULL, " ", &save))
            field[n++] = token;
        if (n < 5)
            continue;
        unescape_octal(field[4]);
        if (strcmp(field[4], mountpoint) == 0 && strlen(field[2]) < sizeof(found))
            snprintf(found, sizeof(found), "%s", field[2]);
    }
    int read_error = ferror(file) ? -EIO : 0;
    free(line);
    fclose(file);
    if (read_error != 0)
        return read_error;
    if (found[0] == '\0')
        return -ENOENT;
    if (strlen(found) >= out_len)
        return -ENAMETOOLONG;
    snprintf(out, out_len, "%s", found);
    return 0;
}

/* Opens <root>/<bdi>/strict_limit with `flags`: the descriptor, or a
 * negative errno (-EINVAL for a name that could leave the directory). */
static int open_strict_limit(const char *sysfs_root, const char *bdi, int flags)
{
    if (bdi[0] == '\0' || strchr(bdi, '/') != NULL || strcmp(bdi, "..") == 0)
        return -EINVAL;
    char path[512];
    int n = snprintf(path, sizeof(path), "%s/%s/strict_limit", sysfs_root, bdi);
    if (n < 0 || (size_t)n >= sizeof(path))
        return -ENAMETOOLONG;
    int fd = open(path, flags | O_CLOEXEC);
    return fd >= 0 ? fd : -errno;
}

int bdi_set_strict_limit(const char *sysfs_root, const char *bdi, bool strict)
{
    int fd = open_strict_limit(sysfs_root, bdi, O_WRONLY);
    if (fd < 0)
        return fd;
    const char *value = strict ? "1\n" : "0\n";
    ssize_t written = write(fd, value, 2);
    int rc = written == 2 ? 0 : written < 0 ? -errno : -EIO;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    return rc;
}

int bdi_strict_limit(const char *sysfs_root, const char *bdi)
{
    int fd = open_strict_limit(sysfs_root, bdi, O_RDONLY);
    if (fd < 0)
        return fd;
    char text[16];
    ssize_t n = read(fd, text, sizeof(text) - 1);
    int rc = n < 0 ? -errno : 0;
    close(fd);
    if (rc != 0)
        return rc;
    text[n] = '\0';
    if (text[0] == '0' || text[0] == '1')
        return text[0] - '0';
    return -EINVAL;
}
