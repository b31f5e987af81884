#!/bin/sh
# Runs the t/ suite against an nginx built with AddressSanitizer, with the module built
# against that nginx, and fails if AddressSanitizer reported anything.
#
#   scripts/test-asan.sh             # the whole t/ suite and t/reload/
#   scripts/test-asan.sh t/010-retry.t ...
#
# Everything goes under build/asan/: the nginx tree (a copy of the pinned source, configured
# with the Makefile's flags plus ASan), its installation (build/asan/sbin/nginx), the module
# (build/asan/modules/), the test server root and the reports (build/asan/reports/). The
# module gets its own cargo target dir, build/target/asan. A second run rebuilds only what
# changed.
#
# What is covered: every access that nginx's C code makes, including those it makes on the
# module's behalf (ngx_palloc/ngx_list_push/ngx_hash_find on what the module passes, the
# filters and buffers it hands on, memcpy/memset from Rust, which ASan intercepts), and the
# module's pool memory: nginx is compiled with NGX_DEBUG_PALLOC, so that every pool
# allocation is a malloc of its own, with red zones and a use-after-free check after the pool
# is destroyed. What is not: loads and stores compiled from Rust (they are not instrumented;
# that needs -Zsanitizer, which stable Rust does not have).
#
# Leaks are checked too (LeakSanitizer, at each nginx process's exit): memory the module
# mallocs (a Rust Box, Vec or String) and strands, for example in pool memory that is freed
# without dropping it. nginx itself leaves two kinds of allocation behind by design; reports
# with nothing else are set aside (see below). nginx unloads the module before it exits, so
# the Rust frames of a leak show as "<unknown module>"; the report still fails the run.
#
# Environment: NGINX_CONFIGURE_FLAGS and NGINX_VERSION (default: the Makefile's), JOBS (make
# -j, default: number of CPUs), ASAN_DETECT_LEAKS=0 to turn LeakSanitizer off.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"
MODULE=ngx_http_next_upstream_status_module

# The Makefile's values, so that the ASan build differs from the normal one only by ASan.
make_var() {
    printf '_print_var: ; @echo $(%s)\n' "$1" |
        make -s --no-print-directory -f Makefile -f - _print_var
}
NGINX_VERSION=${NGINX_VERSION:-$(make_var NGINX_VERSION)}
NGINX_CONFIGURE_FLAGS=${NGINX_CONFIGURE_FLAGS:-$(make_var NGINX_CONFIGURE_FLAGS)}

ASAN_DIR=$ROOT/build/asan
TREE=$ASAN_DIR/nginx-$NGINX_VERSION
NGINX=$ASAN_DIR/sbin/nginx
MODULE_SO=$ASAN_DIR/modules/$MODULE.so
TARGET_DIR=$ROOT/build/target/asan
REPORTS=$ASAN_DIR/reports
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}

# -O1 keeps the stack traces usable; NGX_DEBUG_PALLOC makes each pool allocation its own
# malloc, so that ASan can see its bounds (otherwise a pool is a few large blocks).
ASAN_CC_OPT='-fsanitize=address -fno-omit-frame-pointer -O1 -DNGX_DEBUG_PALLOC=1'
ASAN_LD_OPT='-fsanitize=address'

flags=""
for f in $NGINX_CONFIGURE_FLAGS; do
    case "$f" in
        --prefix=*) ;;
        --with-cc-opt=* | --with-ld-opt=*)
            echo "test-asan: $f in NGINX_CONFIGURE_FLAGS is not supported here" >&2
            exit 2
            ;;
        *) flags="$flags $f" ;;
    esac
done
flags="--prefix=$ASAN_DIR$flags"
stamp="$flags --with-cc-opt=$ASAN_CC_OPT --with-ld-opt=$ASAN_LD_OPT"

start=$(date +%s)
log() { echo "test-asan: [$(($(date +%s) - start))s] $*"; }

# 1. nginx with ASan, configured once (again when the flags change).
if [ ! -f "$TREE/Makefile" ] || [ "$(cat "$TREE/.asan-configure" 2>/dev/null)" != "$stamp" ]; then
    log "configuring $TREE"
    rm -rf "$TREE"
    mkdir -p "$ASAN_DIR"
    cp -r "$(scripts/nginx-src-dir)" "$TREE"
    # shellcheck disable=SC2086 # the flags are words
    (cd "$TREE" && ./auto/configure $flags \
        --with-cc-opt="$ASAN_CC_OPT" --with-ld-opt="$ASAN_LD_OPT" >configure.log)
    echo "$stamp" >"$TREE/.asan-configure"
fi
log "building nginx with AddressSanitizer"
make -s -C "$TREE" -j"$JOBS" >/dev/null
make -s -C "$TREE" install >/dev/null

# 2. The module, against that tree.
log "building the module against $TREE/objs"
NGINX_BUILD_DIR=$TREE/objs cargo build --quiet --release --locked --target-dir "$TARGET_DIR"
mkdir -p "$(dirname "$MODULE_SO")"
install_so "$TARGET_DIR/release/lib$MODULE.so" "$MODULE_SO"

# 3. The suite. Reports go to files, one per process ($REPORTS/asan.<pid>): nginx's workers
# write to the error log, not to the terminal, and a report must not get lost in prove's
# output. ASan reads ASAN_OPTIONS when the master starts; the workers are forked from it
# without exec, so they keep the same runtime and options (nginx clearing the environment
# for its workers does not matter).
rm -rf "$REPORTS"
mkdir -p "$REPORTS"
# atexit=1: every process that exits (exit(), not a signal) writes its exit statistics to its
# file, so that the files count the nginx processes ASan watched to the end; a file without
# "ERROR:" is such a clean exit.
export ASAN_OPTIONS="log_path=$REPORTS/asan:atexit=1:detect_leaks=${ASAN_DETECT_LEAKS:-1}"
if command -v llvm-symbolizer >/dev/null 2>&1; then
    ASAN_SYMBOLIZER_PATH=$(command -v llvm-symbolizer)
    export ASAN_SYMBOLIZER_PATH
fi

export TEST_NGINX_BINARY="$NGINX"
export TEST_NGINX_LOAD_MODULES="$MODULE_SO"
export TEST_NGINX_SERVROOT="$ASAN_DIR/servroot"
export RELOAD_TEST_SERVROOT="$ASAN_DIR/servroot-reload"
# The suite, and reloads and a binary upgrade under load: configuration memory freed with an
# old cycle, and a new master started by exec (t/reload/ passes ASAN_OPTIONS on with `env`).
[ $# -gt 0 ] || set -- t/ t/reload/

# The .t files listen on fixed ports (1984-1999); in a network namespace of its own (root,
# util-linux's unshare and iproute2's ip) the run cannot collide with another suite running at
# the same time. Otherwise it runs like `make prove`, which must then not run meanwhile.
prove_cmd='prove -I t/lib "$@"'
if [ "${ASAN_NETNS:-1}" = 1 ] && command -v ip >/dev/null 2>&1 && unshare --net true 2>/dev/null
then
    log "running the suite in a network namespace of its own"
    # shellcheck disable=SC2016 # expanded by the inner shell
    run() { unshare --net sh -c 'ip link set lo up && '"$prove_cmd" prove "$@"; }
else
    run() { eval "$prove_cmd"; }
fi

log "running $* with ASAN_OPTIONS=$ASAN_OPTIONS"
suite_start=$(date +%s)
status=0
run "$@" || status=$?
log "suite finished in $(($(date +%s) - suite_start))s (prove exit status $status)"

# 4. nginx's own leaks by design, set aside when a report has nothing else:
#    - an nginx that stops before it runs (nginx -t, a configuration error) leaves main()'s
#      init_cycle pool and what ngx_process_options() put in it (nginx.c);
#    - a worker frees its connection and event arrays (ngx_event_process_init) only by
#      exiting: they point at each other, and nothing else points at them once the cycle
#      pool is destroyed.
#    Any other leak, and any error report, counts.
known=$REPORTS/nginx-own-leaks
clean=$REPORTS/clean-exits
processes=$(find "$REPORTS" -maxdepth 1 -type f -name 'asan.*' | wc -l)
for f in $(find "$REPORTS" -maxdepth 1 -type f -name 'asan.*'); do
    if ! grep -q 'ERROR: ' "$f"; then
        mkdir -p "$clean"
        mv "$f" "$clean/"
    elif perl -0777 -ne '
        exit 1 unless /ERROR: LeakSanitizer: detected memory leaks/ && !/ERROR: AddressSanitizer/;
        for my $leak (split /\n(?=(?:Direct|Indirect) leak of )/) {
            next unless $leak =~ /^(?:Direct|Indirect) leak of /;
            next if $leak =~ / in ngx_event_process_init /
                || $leak =~ / in ngx_process_options /
                || $leak =~ / in ngx_create_pool [^\n]*\n[^\n]* in main /;
            exit 1;
        }
        exit 0;' "$f"; then
        mkdir -p "$known"
        mv "$f" "$known/"
    fi
done
count() { if [ -d "$1" ]; then ls "$1" | wc -l; else echo 0; fi; }

# 5. Any other report fails the run, whatever the tests said; so does a run in which no
# process wrote its exit statistics (ASan was not there to check anything).
reports=$(find "$REPORTS" -maxdepth 1 -type f -name 'asan.*' | sort)
n_clean=$(count "$clean")
n_known=$(count "$known")
n_reports=$(echo "$reports" | grep -c . || true)
log "$processes nginx process(es) checked by ASan to their exit: $n_clean clean," \
    "$n_known with only nginx's own exit-time leaks (set aside in $known)," \
    "$n_reports with an error report"
if [ "$processes" -eq 0 ]; then
    echo "test-asan: FAIL: no nginx process wrote AddressSanitizer exit statistics" >&2
    exit 1
fi
if [ -n "$reports" ]; then
    for f in $reports; do
        echo "===== $f"
        cat "$f"
    done
    echo "test-asan: FAIL: $(echo "$reports" | wc -l) AddressSanitizer report(s) in $REPORTS" >&2
    exit 1
fi
if [ "$status" -ne 0 ]; then
    echo "test-asan: FAIL: the suite failed under AddressSanitizer (no ASan report)" >&2
    exit "$status"
fi
log "PASS: no AddressSanitizer report"
