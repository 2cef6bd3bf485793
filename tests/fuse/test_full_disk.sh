#!/usr/bin/env bash
# test_full_disk.sh — lsmfs on a full disk: DATADIR on a 200 MiB tmpfs,
# files written until the disk is full. Writers must get ENOSPC, what was
# synced before must read back intact, deleting files must work on the full
# disk and give the space back, writing must resume, the daemon must exit
# cleanly and fsck must find the store clean.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

lsmfs_test_init test_full_disk
SMALL=$SCRATCH/small
MNT=$SCRATCH/mnt
# After the lsmfs mount is gone (exit hooks run after unmounting).
lsmfs_on_exit 'if mountpoint -q "$SMALL"; then umount "$SMALL" || umount -l "$SMALL"; fi' 

used_kib() { df -k --output=used "$SMALL" | tail -n 1 | tr -d ' '; }

full_disk() {
    [[ $(id -u) == 0 ]] || return "$(skip_because "mounting a tmpfs needs root")"
    mkdir -p "$SMALL" && check "mount a 200 MiB tmpfs" mount -t tmpfs -o size=200m tmpfs "$SMALL" ||
        return
    local data=$SMALL/data
    check "mount lsmfs on it" lsmfs_mount "$data" "$MNT" -o write_buffer_size=1M || return
    head -c 10000000 /dev/urandom >"$SCRATCH/keep"
    check "write a file" cp "$SCRATCH/keep" "$MNT/keep" || return
    check "sync it" sync "$MNT/keep" || return

    local i enospc=0
    for ((i = 1; i <= 25; i++)); do
        if ! dd if=/dev/urandom of="$MNT/big$i" bs=1M count=10 conv=fsync status=none \
            2>"$SCRATCH/dd.err"; then
            grep -q "No space left on device" "$SCRATCH/dd.err" ||
                fail_because "dd big$i failed, but not with ENOSPC: $(cat "$SCRATCH/dd.err")" ||
                return
            enospc=$((enospc + 1))
        fi
    done
    ((enospc > 0)) || fail_because "250 MB fit on a 200 MiB disk: no ENOSPC" || return
    echo "    $enospc of 25 writers got ENOSPC; disk used: $(used_kib) KiB"
    check "the synced file is intact on the full disk" cmp "$SCRATCH/keep" "$MNT/keep" || return
    check "the mount still lists" ls "$MNT" >/dev/null || return

    check "delete files on the full disk" rm -f "$MNT"/big* || return
    local before
    before=$(used_kib)
    for ((i = 0; i < 60; i++)); do
        (($(used_kib) < 60 * 1024)) && break
        sleep 0.5
    done
    echo "    disk used after deleting: $(used_kib) KiB (was $before KiB)"
    if (($(used_kib) >= 60 * 1024)); then
        ls -la "$data" >"$SCRATCH/data.ls"
        cp "$data/LOG" "$SCRATCH/data.LOG"
        "$LSMFS_BIN" stats "$MNT" >"$SCRATCH/stats.txt" 2>&1
        fail_because "space not given back within 30 s (see $SCRATCH/data.ls, data.LOG, stats.txt)"
        return
    fi
    check "writing resumes" dd if=/dev/urandom of="$MNT/after" bs=1M count=20 conv=fsync \
        status=none || return
    check "the synced file is still intact" cmp "$SCRATCH/keep" "$MNT/keep" || return
    check "unmount; the daemon exits cleanly" lsmfs_unmount "$MNT" || return
    check "fsck finds the store clean" "$LSMFS_BIN" fsck --no-progress "$data" || return
    umount "$SMALL"
}

run_case "full disk: ENOSPC, nothing lost, deletions give space back" full_disk
lsmfs_test_finish
