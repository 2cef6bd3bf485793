/*
 * bdi.h — the kernel's write-back settings of lsmfs's own mount.
 *
 * The kernel gives every FUSE mount a "strict" dirty-page limit: its share
 * of the system's dirty page cache is capped at 1% (about 48 MiB on a
 * 24 GiB machine), enforced even when the system as a whole is far below
 * its own limits. The kernel does this because an unprivileged daemon
 * could otherwise hold the writers of a whole machine hostage. With the
 * write-back cache on, the cap makes writers wait for the daemon after a
 * few MiB: random 4 KiB writes then reach the daemon one page per request
 * instead of being merged in the page cache first, as on ext4.
 *
 * With -o system_dirty_limit, root's lsmfs turns the strict limit off for
 * its own mount (/sys/class/bdi/MAJ:MIN/strict_limit = 0). The mount then
 * follows the system-wide vm.dirty_* limits like any local file system:
 * random writes are merged in the page cache (about 5x the IOPS), but the
 * first gigabytes of a long sequential write also go at memory speed and
 * the rest at the daemon's, as on ext4. It is not the default because
 * scripts/bench --seq16g wants even throughput from the first GiB to the
 * last, which the kernel's cap gives. Nothing about durability changes:
 * data written but not yet fsync'ed is in the kernel's page cache either
 * way (only more of it), and fsync still writes it through the daemon's
 * WAL before it returns.
 */
#ifndef LSMFS_BDI_H
#define LSMFS_BDI_H

#include <stdbool.h>
#include <stddef.h>

/* Finds the device ("MAJ:MIN", the name of its directory in
 * /sys/class/bdi) of the file system mounted at `mountpoint` (a canonical
 * path) in the mountinfo file `mountinfo_path` (normally
 * /proc/self/mountinfo; a parameter for tests). When several mounts are
 * stacked on the path, the last one (the visible one) counts. Mount
 * points are compared after undoing mountinfo's octal escapes (\040 for a
 * space). Returns 0 with the name in `out`, -ENOENT when nothing is
 * mounted there, -ENAMETOOLONG when `out` is too small, or another
 * negative errno from reading the file. */
int bdi_of_mount(const char *mountinfo_path, const char *mountpoint, char *out, size_t out_len);

/* Sets /sys/class/bdi/<bdi>/strict_limit to `strict` (under `sysfs_root`,
 * normally "/sys/class/bdi"). Returns 0 or a negative errno (-EACCES when
 * not root, -ENOENT on kernels without the knob, before 6.2). */
int bdi_set_strict_limit(const char *sysfs_root, const char *bdi, bool strict);

/* Reads /sys/class/bdi/<bdi>/strict_limit: 0 or 1, or a negative errno. */
int bdi_strict_limit(const char *sysfs_root, const char *bdi);

#endif
