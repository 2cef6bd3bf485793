# lib.sh — shared helpers of the mounted-file-system shell tests
# (tests/fuse/test_*.sh). Source it, call lsmfs_test_init NAME, run cases with
# run_case, end with lsmfs_test_finish.
#
# Environment (ctest sets both, see tests/CMakeLists.txt):
#   LSMFS_BIN        the lsmfs binary under test
#   KV_TEST_TMPDIR   where scratch directories go (default: $TMPDIR or /tmp)
#   LSMFS_TEST_TIMEOUT   seconds to wait for a mount or a daemon's exit (30)
#   LSMFS_TEST_KEEP=1    keep the scratch directory even when all passed
#
# Mounts. lsmfs_mount runs `lsmfs -f` in the background with its stdout and
# stderr in a log, so that sanitizer reports of the ASan build land there;
# lsmfs_unmount unmounts, waits for the daemon and fails if it exited
# non-zero or its log has a sanitizer report. Daemons that go to the
# background (no -f, or started by mount(8)) are found through /proc, and
# their sanitizer reports go to files named by lsmfs_sanitizer_env.
# Whatever a test mounted is unmounted by the EXIT/INT/TERM trap (fusermount3
# -u, then -u -z), and daemons left running are killed.
#
# Cases. A case is a function that returns 0 (pass), 77 (skip) or anything
# else (fail). `check DESCRIPTION COMMAND...` runs one command and, when it
# fails, says which check failed; cases chain them with `|| return`.
#
# Paths under the scratch directory never contain blanks, so the fields of
# /proc/self/mounts can be compared as they are.

LSMFS_TEST_TIMEOUT=${LSMFS_TEST_TIMEOUT:-30}
SANITIZER_PATTERN='AddressSanitizer|LeakSanitizer|ThreadSanitizer|MemorySanitizer|runtime error:'

TEST_NAME=
SCRATCH=
TEST_STARTED=$SECONDS
CASES_PASSED=0
CASES_FAILED=0
CASES_SKIPPED=0
FAILED_CASES=()
declare -A DAEMON_PID_OF=() # mount point -> pid of the `lsmfs -f` we started there
declare -A DAEMON_LOG_OF=() # mount point -> its log
TEST_MOUNTPOINTS=()         # every mount point a test mounted, in order
EXIT_HOOKS=()               # commands the trap runs after unmounting
LOG_SEQUENCE=0

# ---- set-up and tear-down ----

# lsmfs_test_init NAME: checks the environment, makes a fresh scratch
# directory $SCRATCH (unique per run), and installs the trap. Exits 2 when
# LSMFS_BIN is unusable; exits 0 with a SKIP line when this machine cannot
# mount FUSE at all.
lsmfs_test_init() {
    TEST_NAME=$1
    if [[ -z ${LSMFS_BIN:-} || ! -x $LSMFS_BIN ]]; then
        echo "$TEST_NAME: LSMFS_BIN must name the lsmfs binary (it is '${LSMFS_BIN:-}')" >&2
        exit 2
    fi
    LSMFS_BIN=$(realpath "$LSMFS_BIN")
    local base=${KV_TEST_TMPDIR:-${TMPDIR:-/tmp}}
    mkdir -p "$base" || exit 2
    base=$(realpath "$base")
    if [[ $base =~ [[:space:]\\] ]]; then
        echo "$TEST_NAME: scratch directory $base must not contain blanks or backslashes" >&2
        exit 2
    fi
    remove_stale_scratch "$base"
    SCRATCH=$(mktemp -d "$base/$TEST_NAME.XXXXXX") || exit 2
    trap lsmfs_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    echo "$TEST_NAME: lsmfs $LSMFS_BIN; scratch $SCRATCH"
    if [[ ! -c /dev/fuse ]] || ! command -v fusermount3 >/dev/null; then
        echo "SKIP: $TEST_NAME: no /dev/fuse or no fusermount3 on this machine (install fuse3)"
        exit 0
    fi
}

# Removes scratch directories of earlier runs of this test that nothing is
# mounted under (a failed run keeps its directory for inspection).
remove_stale_scratch() {
    local base=$1 old
    for old in "$base/$TEST_NAME".*; do
        [[ -d $old ]] || continue
        if awk -v dir="$old/" 'index($2, dir) == 1 { found = 1 } END { exit !found }' \
            /proc/self/mounts; then
            continue
        fi
        rm -rf --one-file-system "$old"
    done
}

# lsmfs_on_exit COMMAND: runs COMMAND (with eval) when the test ends, after
# the mounts are gone; hooks run last-registered first.
lsmfs_on_exit() {
    EXIT_HOOKS+=("$1")
}

# The EXIT trap: unmounts everything the test mounted (deepest and latest
# first), kills daemons left over, runs the exit hooks, removes the scratch
# directory when every case passed.
lsmfs_cleanup() {
    local status=$?
    trap - EXIT INT TERM
    local i mountpoint pid
    for ((i = ${#TEST_MOUNTPOINTS[@]} - 1; i >= 0; i--)); do
        mountpoint=${TEST_MOUNTPOINTS[i]}
        if is_mounted "$mountpoint"; then
            echo "$TEST_NAME: cleanup: unmounting $mountpoint" >&2
            fusermount3 -u "$mountpoint" 2>/dev/null || fusermount3 -u -z "$mountpoint" ||
                umount -l "$mountpoint" 2>/dev/null ||
                echo "$TEST_NAME: cleanup: could not unmount $mountpoint" >&2
        fi
    done
    for mountpoint in "${!DAEMON_PID_OF[@]}"; do
        pid=${DAEMON_PID_OF[$mountpoint]}
        stop_process "$pid"
        wait "$pid" 2>/dev/null
    done
    if [[ -n $SCRATCH ]]; then
        for pid in $(daemons_under "$SCRATCH"); do
            echo "$TEST_NAME: cleanup: killing leftover daemon $pid" >&2
            stop_process "$pid"
        done
    fi
    for ((i = ${#EXIT_HOOKS[@]} - 1; i >= 0; i--)); do
        eval "${EXIT_HOOKS[i]}" || echo "$TEST_NAME: cleanup: '${EXIT_HOOKS[i]}' failed" >&2
    done
    if [[ -n $SCRATCH && -d $SCRATCH ]]; then
        if ((status == 0 && CASES_FAILED == 0)) && [[ ${LSMFS_TEST_KEEP:-0} != 1 ]]; then
            rm -rf --one-file-system "$SCRATCH"
        else
            echo "$TEST_NAME: scratch directory kept: $SCRATCH" >&2
        fi
    fi
    exit "$status"
}

# lsmfs_test_finish: prints the summary and exits 0 only if no case failed.
lsmfs_test_finish() {
    local elapsed=$((SECONDS - TEST_STARTED))
    echo "$TEST_NAME: $CASES_PASSED passed, $CASES_FAILED failed, $CASES_SKIPPED skipped" \
        "in ${elapsed}s"
    local name
    for name in "${FAILED_CASES[@]}"; do
        echo "$TEST_NAME: FAILED: $name"
    done
    ((CASES_FAILED == 0)) || exit 1
    exit 0
}

# ---- cases ----

# run_case NAME FUNCTION [ARGS...]: runs one case and prints PASS/FAIL/SKIP.
run_case() {
    local name=$1 started=$SECONDS status=0
    shift
    echo "---- $name"
    "$@" || status=$?
    local elapsed=$((SECONDS - started))
    if ((status == 0)); then
        echo "PASS: $name (${elapsed}s)"
        CASES_PASSED=$((CASES_PASSED + 1))
    elif ((status == 77)); then
        echo "SKIP: $name"
        CASES_SKIPPED=$((CASES_SKIPPED + 1))
    else
        echo "FAIL: $name (${elapsed}s)"
        CASES_FAILED=$((CASES_FAILED + 1))
        FAILED_CASES+=("$name")
    fi
}

# check DESCRIPTION COMMAND...: runs COMMAND; on failure prints what was
# checked and the exit status, and returns 1.
check() {
    local description=$1 status=0
    shift
    "$@" || status=$?
    if ((status != 0)); then
        echo "    check failed: $description (exit status $status: $*)" >&2
        return 1
    fi
}

# fail_because MESSAGE: prints why the case fails; returns 1.
fail_because() {
    echo "    check failed: $*" >&2
    return 1
}

# skip_because MESSAGE: prints why the case is skipped; returns 77.
skip_because() {
    echo "    skipped: $*"
    return 77
}

# expect_equal DESCRIPTION EXPECTED ACTUAL
expect_equal() {
    [[ $2 == "$3" ]] && return 0
    fail_because "$1: expected '$2', got '$3'"
}

# expect_grep DESCRIPTION EXTENDED_REGEX FILE: FILE has a line matching.
expect_grep() {
    grep -Eq -- "$2" "$3" && return 0
    fail_because "$1: no line matches /$2/ in:"
    sed 's/^/        | /' "$3" | head -n 20 >&2
    return 1
}

# ---- processes ----

# pid_running PID: true if PID exists and is not a zombie.
pid_running() {
    local state
    state=$(awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n $state && $state != Z && $state != X ]]
}

# wait_until_gone PID [SECONDS]: waits for PID to exit; false on timeout.
wait_until_gone() {
    local pid=$1 deadline=$((SECONDS + ${2:-$LSMFS_TEST_TIMEOUT}))
    while pid_running "$pid"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.05
    done
}

# stop_process PID: SIGTERM, then SIGKILL if it is still there after 3 s.
stop_process() {
    local pid=$1
    pid_running "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null
    wait_until_gone "$pid" 3 && return 0
    kill -KILL "$pid" 2>/dev/null
    wait_until_gone "$pid" 5
}

# lsmfs_daemons [PATH]: pids of running lsmfs processes (any binary named
# lsmfs) with PATH as one of their arguments; all of them without PATH.
lsmfs_daemons() {
    local want=${1:-} proc pid exe arg
    for proc in /proc/[0-9]*; do
        pid=${proc#/proc/}
        exe=$(readlink "$proc/exe" 2>/dev/null) || continue
        exe=${exe% (deleted)}
        [[ ${exe##*/} == lsmfs ]] || continue
        pid_running "$pid" || continue
        if [[ -z $want ]]; then
            echo "$pid"
            continue
        fi
        while IFS= read -r -d '' arg; do
            if [[ $arg == "$want" || $arg == "${want%/}/" ]]; then
                echo "$pid"
                break
            fi
        done <"$proc/cmdline" 2>/dev/null
    done
}

# daemons_under DIR: pids of lsmfs processes with an argument inside DIR.
daemons_under() {
    local dir=$1 proc pid exe arg
    for proc in /proc/[0-9]*; do
        pid=${proc#/proc/}
        exe=$(readlink "$proc/exe" 2>/dev/null) || continue
        exe=${exe% (deleted)}
        [[ ${exe##*/} == lsmfs ]] || continue
        pid_running "$pid" || continue
        while IFS= read -r -d '' arg; do
            if [[ $arg == "$dir"/* ]]; then
                echo "$pid"
                break
            fi
        done <"$proc/cmdline" 2>/dev/null
    done
}

# ---- mounts ----

# mount_field MOUNTPOINT FIELD: field FIELD (1 source, 3 type, 4 options) of
# the last /proc/self/mounts line for MOUNTPOINT; false if not mounted.
mount_field() {
    awk -v m="$1" -v f="$2" '$2 == m { value = $f; found = 1 } END { if (found) print value; exit !found }' \
        /proc/self/mounts
}

# is_mounted MOUNTPOINT: a FUSE file system is mounted there.
is_mounted() {
    local type
    type=$(mount_field "$1" 3) || return 1
    [[ $type == fuse || $type == fuse.* ]]
}

# wait_for_mount MOUNTPOINT [PID]: waits until MOUNTPOINT shows up in
# /proc/self/mounts; false if PID (when given) exits first or on timeout.
wait_for_mount() {
    local mountpoint=$1 pid=${2:-} deadline=$((SECONDS + LSMFS_TEST_TIMEOUT))
    until is_mounted "$mountpoint"; do
        if [[ -n $pid ]] && ! pid_running "$pid"; then
            return 1
        fi
        ((SECONDS < deadline)) || return 1
        sleep 0.05
    done
}

# wait_for_unmount MOUNTPOINT: waits until MOUNTPOINT is no longer mounted.
wait_for_unmount() {
    local deadline=$((SECONDS + LSMFS_TEST_TIMEOUT))
    while is_mounted "$1"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.05
    done
}

# remember_mountpoint MOUNTPOINT: the trap will unmount it if still mounted.
remember_mountpoint() {
    local known
    for known in "${TEST_MOUNTPOINTS[@]}"; do
        [[ $known == "$1" ]] && return 0
    done
    TEST_MOUNTPOINTS+=("$1")
}

# new_log NAME: prints the path of a fresh log file in the scratch directory.
new_log() {
    LOG_SEQUENCE=$((LOG_SEQUENCE + 1))
    echo "$SCRATCH/log.$LOG_SEQUENCE.$1"
}

# log_is_clean LOG: no sanitizer report in LOG (prints it when there is).
log_is_clean() {
    local log=$1
    [[ -f $log ]] || return 0
    if grep -Eq "$SANITIZER_PATTERN" "$log"; then
        echo "    sanitizer report in $log:" >&2
        grep -E -A 30 "$SANITIZER_PATTERN" "$log" | head -n 60 | sed 's/^/        | /' >&2
        return 1
    fi
}

# show_log LOG: prints the end of LOG, indented.
show_log() {
    [[ -s $1 ]] || return 0
    echo "    $1:" >&2
    tail -n 30 "$1" | sed 's/^/        | /' >&2
}

# lsmfs_mount DATADIR MOUNTPOINT [LSMFS OPTIONS...]: starts `lsmfs -f` in the
# background (creating MOUNTPOINT) and waits for the mount. Fails, showing
# the log, if the daemon exits or the mount does not appear in time.
lsmfs_mount() {
    local datadir=$1 mountpoint=$2
    shift 2
    mkdir -p "$mountpoint" || return 1
    mountpoint=$(realpath "$mountpoint")
    if is_mounted "$mountpoint"; then
        fail_because "lsmfs_mount: $mountpoint is already mounted"
        return 1
    fi
    local log
    log=$(new_log "$(basename "$mountpoint")")
    # A test run's options for every mount (tests/CMakeLists.txt runs some
    # tests again with -o io_uring).
    local -a run_options=()
    [[ -n ${LSMFS_TEST_MOUNT_OPTIONS:-} ]] && run_options=(-o "$LSMFS_TEST_MOUNT_OPTIONS")
    "$LSMFS_BIN" -f "${run_options[@]}" "$@" "$datadir" "$mountpoint" >"$log" 2>&1 &
    local pid=$!
    DAEMON_PID_OF[$mountpoint]=$pid
    DAEMON_LOG_OF[$mountpoint]=$log
    remember_mountpoint "$mountpoint"
    if ! wait_for_mount "$mountpoint" "$pid"; then
        local status=0
        if pid_running "$pid"; then
            fail_because "no mount at $mountpoint after ${LSMFS_TEST_TIMEOUT}s"
            stop_process "$pid"
        fi
        wait "$pid" 2>/dev/null || status=$?
        unset "DAEMON_PID_OF[$mountpoint]"
        fail_because "lsmfs -f $* $datadir $mountpoint did not mount (exit status $status)"
        show_log "$log"
        return 1
    fi
}

# lsmfs_daemon_pid MOUNTPOINT: the pid of the `lsmfs -f` serving MOUNTPOINT.
lsmfs_daemon_pid() {
    echo "${DAEMON_PID_OF[$1]:-}"
}

# lsmfs_log MOUNTPOINT: the log of the `lsmfs -f` serving MOUNTPOINT.
lsmfs_log() {
    echo "${DAEMON_LOG_OF[$1]:-}"
}

# lsmfs_unmount MOUNTPOINT [COMMAND...]: unmounts with COMMAND (default
# `fusermount3 -u`; retried while the mount is busy), waits for the daemon
# lsmfs_mount started, and fails if it exited non-zero, did not exit, or
# logged a sanitizer report.
lsmfs_unmount() {
    local mountpoint
    mountpoint=$(realpath "$1")
    shift
    local -a command=("$@")
    ((${#command[@]} > 0)) || command=(fusermount3 -u)
    local attempt errors=$SCRATCH/unmount.err
    for ((attempt = 0; ; attempt++)); do
        "${command[@]}" "$mountpoint" 2>"$errors" && break
        if ((attempt >= 50)) || ! is_mounted "$mountpoint"; then
            fail_because "${command[*]} $mountpoint failed: $(cat "$errors")"
            return 1
        fi
        sleep 0.1 # busy: a process is just closing a file there
    done
    wait_for_unmount "$mountpoint" || {
        fail_because "$mountpoint still mounted after ${command[*]}"
        return 1
    }
    lsmfs_wait_daemon "$mountpoint"
}

# lsmfs_wait_daemon MOUNTPOINT: waits for the `lsmfs -f` of MOUNTPOINT to
# exit after an unmount; fails if it does not, exits non-zero, or logged a
# sanitizer report.
lsmfs_wait_daemon() {
    local mountpoint=$1
    local pid=${DAEMON_PID_OF[$mountpoint]:-} log=${DAEMON_LOG_OF[$mountpoint]:-}
    [[ -n $pid ]] || return 0
    if ! wait_until_gone "$pid"; then
        fail_because "the daemon of $mountpoint (pid $pid) did not exit after the unmount"
        stop_process "$pid"
    fi
    local status=0
    wait "$pid" 2>/dev/null || status=$?
    unset "DAEMON_PID_OF[$mountpoint]"
    if ((status != 0)); then
        fail_because "the daemon of $mountpoint exited with status $status"
        show_log "$log"
        log_is_clean "$log"
        return 1
    fi
    log_is_clean "$log"
}

# lsmfs_kill9 MOUNTPOINT: kills the daemon of MOUNTPOINT with SIGKILL and
# removes the dead mount with fusermount3 -u -z (what a user does after a
# crash: the mount answers ENOTCONN until then).
lsmfs_kill9() {
    local mountpoint=$1
    local pid=${DAEMON_PID_OF[$mountpoint]:-}
    [[ -n $pid ]] || {
        fail_because "no daemon recorded for $mountpoint"
        return 1
    }
    kill -KILL "$pid"
    wait "$pid" 2>/dev/null
    unset "DAEMON_PID_OF[$mountpoint]"
    fusermount3 -u -z "$mountpoint" || {
        fail_because "fusermount3 -u -z could not remove the dead mount $mountpoint"
        return 1
    }
    wait_for_unmount "$mountpoint"
}

# lsmfs_sanitizer_env NAME: prints the environment assignments that make a
# daemon which runs without a terminal (no -f, or started by mount(8)) write
# sanitizer reports to $SCRATCH/sanitizer.NAME.<pid>; use with env(1).
# Keeps the caller's other ASAN_OPTIONS / UBSAN_OPTIONS.
lsmfs_sanitizer_env() {
    local path=$SCRATCH/sanitizer.$1
    local asan=${ASAN_OPTIONS:-} ubsan=${UBSAN_OPTIONS:-}
    echo "ASAN_OPTIONS=${asan:+$asan:}log_path=$path"
    echo "UBSAN_OPTIONS=${ubsan:+$ubsan:}log_path=$path"
}

# sanitizer_reports_clean NAME: no report written under lsmfs_sanitizer_env NAME.
sanitizer_reports_clean() {
    local report clean=0
    for report in "$SCRATCH/sanitizer.$1".*; do
        [[ -s $report ]] || continue
        echo "    sanitizer report $report:" >&2
        head -n 60 "$report" | sed 's/^/        | /' >&2
        clean=1
    done
    return "$clean"
}

# ---- trees ----

# tree_metadata DIR [PRECISION]: one sorted line per entry under DIR: its
# path, a tab, then type, mode, owner, link count (not directories), size
# (not directories: theirs is file-system specific) and mtime; PRECISION "s"
# gives mtimes in whole seconds (for tools that keep no more), default ns.
tree_metadata() {
    local dir=$1 time_format='%T@'
    [[ ${2:-ns} == s ]] && time_format='%Ts'
    (
        cd "$dir" || exit 1
        find . -type d -printf "%p\td %m %U:%G $time_format\n"
        find . ! -type d -printf "%p\t%y %m %U:%G %n %s $time_format\n"
    ) | LC_ALL=C sort
}

# same_tree_metadata SOURCE COPY [PRECISION]: tree_metadata matches; prints
# the first differences, entry by entry, when not.
same_tree_metadata() {
    local differences=$SCRATCH/metadata.diff
    tree_metadata "$1" "${3:-ns}" >"$SCRATCH/metadata.source" || return 1
    tree_metadata "$2" "${3:-ns}" >"$SCRATCH/metadata.copy" || return 1
    awk -F '\t' '
        NR == FNR { source[$1] = $2; next }
        !($1 in source) { print "only in the copy: " $1 " " $2; next }
        source[$1] != $2 { print $1 ": source " source[$1] ", copy " $2 }
        { delete source[$1] }
        END { for (path in source) print "only in the source: " path " " source[path] }
    ' "$SCRATCH/metadata.source" "$SCRATCH/metadata.copy" >"$differences"
    [[ -s $differences ]] || return 0
    echo "    metadata of $2 differs from $1 in $(wc -l <"$differences") entries" \
        "(type mode uid:gid [links size] mtime):" >&2
    head -n 10 "$differences" | sed 's/^/        | /' >&2
    return 1
}

# same_tree SOURCE COPY: diff -r (symlinks compared as links) finds nothing.
same_tree() {
    local differences=$SCRATCH/tree.diff
    if ! diff -r --no-dereference "$1" "$2" >"$differences" 2>&1; then
        echo "    diff -r $1 $2:" >&2
        head -n 20 "$differences" | sed 's/^/        | /' >&2
        return 1
    fi
}
