#!/bin/sh
# The version matrix: for each nginx source tarball in a directory, build nginx and the module
# against it, then run on that nginx the whole t/ suite with HTTP/1.1 to the upstream
# servers, the module's t/ files again with HTTP/2 to them where that nginx has
# `proxy_http_version 2` (1.29.4+), and the end-to-end tests (t/e2e/registry.t,
# t/e2e/storage.t: its sticky learn placement runs on 1.29.6+).
#
#   scripts/test-matrix.sh [DIR]     DIR defaults to $NGINX_SRC_DIR, else ../shared/nginx-src
#   scripts/test-matrix.sh --build TARBALL
#                                    only build that nginx and the module against it (as
#                                    below, reused when built), then print two lines: the
#                                    nginx binary and the module (scripts/bench-storage.pl)
#
# Tarballs are nginx-<version>.tar.gz unpacking to nginx-<version>/ (a release tarball with
# ./configure, or a repository archive with ./auto/configure). Each is built once, under
# build/matrix/nginx-<version>/ (tree) and .../prefix (installed nginx); the module goes to
# build/modules/nginx-<version>/ through the Makefile's `module` target, so later runs rebuild
# only what changed. NGINX_CONFIGURE_FLAGS (from the Makefile): the configure flags.
#
# No tarballs (a fresh clone without ../shared): one line saying so, exit 0.
# At the end a table: version, builds (the module, and `make test-bitfields` on that tree),
# loads, passed/total for each run ("-" where a run does not apply), and the time it all took
# (build included); the exit status is non-zero if any version fails anything.
set -eu

repo=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-${NGINX_SRC_DIR:-$repo/../shared/nginx-src}}
# the pinned build's flags but its --prefix (run alone: what storage.t needs, the dav module, too)
flags=$(for f in ${NGINX_CONFIGURE_FLAGS:---with-compat --with-debug --with-http_v2_module --with-http_dav_module}; do
    case "$f" in --prefix=*) ;; *) printf '%s ' "$f" ;; esac
done)
module=ngx_http_next_upstream_status_module
jobs=$(nproc 2>/dev/null || echo 2)

build_only=
if [ "${1:-}" = --build ]; then
    build_only=${2:?test-matrix: --build needs a tarball}
    [ -f "$build_only" ] || { echo "test-matrix: no $build_only" >&2; exit 1; }
    exec 3>&1 1>&2    # progress on stderr, the two paths on stdout
fi

tarballs=$(ls "$dir"/nginx-*.tar.gz 2>/dev/null || true)
[ -z "$build_only" ] || tarballs=$build_only
if [ -z "$tarballs" ]; then
    echo "test-matrix: no nginx-*.tar.gz in $dir, version matrix skipped"
    exit 0
fi

work=$repo/build/matrix
mkdir -p "$work"
report=$work/report.txt
: >"$report"
failed=0

# The module's own t/ files, the ones run again over HTTP/2 (t/00-harness.t tests the
# harness, not the module).
h2_files=$(cd "$repo" && grep -l '^use UpstreamProtocol;' t/*.t | grep -v '^t/00-harness\.t$')

# prove's summary as "passed/total": Tests=N minus the failed subtests it lists.
tally() {
    awk '/^Files=.*Tests=/ { sub(/.*Tests=/, ""); sub(/,.*/, ""); total = $0 }
         /Failed [0-9]+\/[0-9]+ subtests/ { split($2, f, "/"); bad += f[1] }
         /Parse errors|Bad plan/ { broken = 1 }
         END { printf "%d/%d%s", total - bad, total, broken ? " (file errors)" : "" }' "$1"
}

# Runs prove with the rest of the arguments, its output to $1; prints the tally, and on
# stderr what failed.
run_prove() {
    out=$1
    shift
    (cd "$repo" && prove "$@") >"$out" 2>&1 || true
    grep -q '^Result: PASS' "$out" || grep -E '(\.t \.\.|Failed test)' "$out" | tail -30 >&2
    tally "$out"
}

for tarball in $tarballs; do
    version=$(basename "$tarball" .tar.gz)
    version=${version#nginx-}
    tree=$work/nginx-$version
    prefix=$tree/prefix
    nginx=$prefix/sbin/nginx
    so=$repo/build/modules/nginx-$version/$module.so
    log=$work/nginx-$version.log
    builds=no loads=no t_h1=- t_h2=- e2e=-
    started=$(date +%s)
    echo "==> nginx $version ($tarball)"
    rm -f "$work"/*-"$version".txt

    # configured again when the tarball or the flags changed
    if [ ! -f "$tree/objs/Makefile" ] || [ "$tarball" -nt "$tree/objs/Makefile" ] ||
        [ "$(cat "$tree/configure-flags" 2>/dev/null)" != "$flags" ]; then
        rm -rf "$tree"
        tar xzf "$tarball" -C "$work"
        configure=./configure
        [ -x "$tree/configure" ] || configure=./auto/configure
        # shellcheck disable=SC2086 # the flags are words
        (cd "$tree" && $configure --prefix="$prefix" $flags) >"$log" 2>&1 &&
            echo "$flags" >"$tree/configure-flags" ||
            { tail -20 "$log"; echo "nginx $version: configure failed"; }
    fi
    if [ ! -x "$nginx" ] && [ -f "$tree/objs/Makefile" ]; then
        (make -C "$tree" -j"$jobs" && make -C "$tree" install) >>"$log" 2>&1 ||
            { tail -20 "$log"; echo "nginx $version: make failed"; }
    fi
    # builds: the module, and its reads and writes of nginx's bit fields equal the C
    # compiler's on this tree (make test-bitfields)
    if [ -x "$nginx" ] && make -C "$repo" --no-print-directory NGINX_SOURCE_DIR="$tree" module \
        test-bitfields >>"$log" 2>&1; then
        builds=yes
    else
        tail -20 "$log"
    fi
    if [ -n "$build_only" ]; then
        [ "$builds" = yes ] || exit 1
        printf '%s\n%s\n' "$nginx" "$so" >&3
        exit 0
    fi

    if [ "$builds" = yes ]; then
        conf=$work/load-test-$version.conf
        printf 'load_module %s;\nevents {}\nhttp { proxy_next_upstream_status 404; }\n' "$so" >"$conf"
        if "$nginx" -t -p "$prefix" -c "$conf" >>"$log" 2>&1; then
            loads=yes
        else
            tail -3 "$log"
        fi
    fi

    if [ "$loads" = yes ]; then
        export TEST_NGINX_BINARY=$nginx TEST_NGINX_LOAD_MODULES=$so
        export TEST_NGINX_SERVROOT=$work/servroot-$version
        t_h1=$(TEST_NGINX_UPSTREAM_HTTP=1.1 run_prove "$work/t-http1-$version.txt" -I t/lib t/)
        printf 'load_module %s;\nevents {}\nhttp { proxy_http_version 2; }\n' "$so" >"$conf"
        if "$nginx" -t -p "$prefix" -c "$conf" >/dev/null 2>&1; then
            # shellcheck disable=SC2086 # a list of files
            t_h2=$(TEST_NGINX_UPSTREAM_HTTP=2 run_prove "$work/t-http2-$version.txt" -I t/lib $h2_files)
        fi
        e2e=$(NGINX_BINARY=$nginx NGX_MODULE=$so run_prove "$work/e2e-$version.txt" t/e2e/registry.t \
            t/e2e/storage.t)
        for out in "$work"/*-"$version".txt; do
            grep -q '^Result: PASS' "$out" || failed=1
        done
    else
        failed=1
    fi
    printf '| %s | %s | %s | %s | %s | %s | %s s |\n' "$version" "$builds" "$loads" "$t_h1" \
        "$t_h2" "$e2e" "$(($(date +%s) - started))" | tee -a "$report"
done

echo
echo "| nginx | builds | loads | t/, HTTP/1.1 upstreams | t/, HTTP/2 upstreams | t/e2e | time |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
cat "$report"
exit "$failed"
