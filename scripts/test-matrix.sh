#!/bin/sh
# The version matrix: for each nginx source tarball in a directory, build nginx and the module
# against it, then run the whole t/ suite and the end-to-end tests (t/e2e) on that nginx.
#
#   scripts/test-matrix.sh [DIR]     DIR defaults to $NGINX_SRC_DIR, else ../shared/nginx-src
#
# Tarballs are nginx-<version>.tar.gz unpacking to nginx-<version>/ (a release tarball with
# ./configure, or a repository archive with ./auto/configure). Each is built once, under
# build/matrix/nginx-<version>/ (tree) and .../prefix (installed nginx); the module goes to
# build/modules/nginx-<version>/ through the Makefile's `module` target, so later runs rebuild
# only what changed. NGINX_CONFIGURE_FLAGS (from the Makefile) are the pinned build's flags.
#
# No tarballs (a fresh clone without ../shared): one line saying so, exit 0.
# At the end a table: version, builds, loads, t/ passed/total, e2e passed/total; the exit
# status is non-zero if any version fails anything.
set -eu

repo=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-${NGINX_SRC_DIR:-$repo/../shared/nginx-src}}
flags=${NGINX_CONFIGURE_FLAGS:---with-compat --with-debug --with-threads --with-http_ssl_module --with-http_v2_module}
module=ngx_http_next_upstream_status_module
jobs=$(nproc 2>/dev/null || echo 2)

tarballs=$(ls "$dir"/nginx-*.tar.gz 2>/dev/null || true)
if [ -z "$tarballs" ]; then
    echo "test-matrix: no nginx-*.tar.gz in $dir, version matrix skipped"
    exit 0
fi

work=$repo/build/matrix
mkdir -p "$work"
report=$work/report.txt
: >"$report"
failed=0

# prove's summary as "passed/total": Tests=N minus the failed subtests it lists.
tally() {
    awk '/^Files=.*Tests=/ { sub(/.*Tests=/, ""); sub(/,.*/, ""); total = $0 }
         /Failed [0-9]+\/[0-9]+ subtests/ { split($2, f, "/"); bad += f[1] }
         /Parse errors|Bad plan|Wstat/ { broken = 1 }
         END { printf "%d/%d%s", total - bad, total, broken ? " (file errors)" : "" }' "$1"
}

for tarball in $tarballs; do
    version=$(basename "$tarball" .tar.gz)
    version=${version#nginx-}
    tree=$work/nginx-$version
    prefix=$tree/prefix
    nginx=$prefix/sbin/nginx
    so=$repo/build/modules/nginx-$version/$module.so
    log=$work/nginx-$version.log
    builds=no loads=no t_result=- e2e_result=-
    echo "==> nginx $version ($tarball)"

    if [ ! -f "$tree/objs/Makefile" ] || [ "$tarball" -nt "$tree/objs/Makefile" ]; then
        rm -rf "$tree"
        tar xzf "$tarball" -C "$work"
        configure=./configure
        [ -x "$tree/configure" ] || configure=./auto/configure
        # shellcheck disable=SC2086 # the flags are words
        (cd "$tree" && $configure --prefix="$prefix" $flags) >"$log" 2>&1 ||
            { tail -20 "$log"; echo "nginx $version: configure failed"; }
    fi
    if [ ! -x "$nginx" ] && [ -f "$tree/objs/Makefile" ]; then
        (make -C "$tree" -j"$jobs" && make -C "$tree" install) >>"$log" 2>&1 ||
            { tail -20 "$log"; echo "nginx $version: make failed"; }
    fi
    if [ -x "$nginx" ] && make -C "$repo" --no-print-directory NGINX_SOURCE_DIR="$tree" module \
        >>"$log" 2>&1; then
        builds=yes
    else
        tail -20 "$log"
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
        out=$work/prove-t-$version.txt
        TEST_NGINX_BINARY=$nginx TEST_NGINX_LOAD_MODULES=$so \
        TEST_NGINX_SERVROOT=$work/servroot-$version \
            prove -I "$repo/t/lib" "$repo/t/" >"$out" 2>&1 || true
        t_result=$(tally "$out")
        grep -q '^Result: PASS' "$out" || { grep -E '^(t/|Failed|not ok)' "$out" | tail -30; failed=1; }

        out=$work/prove-e2e-$version.txt
        NGINX_BINARY=$nginx NGX_MODULE=$so prove "$repo/t/e2e" >"$out" 2>&1 || true
        e2e_result=$(tally "$out")
        grep -q '^Result: PASS' "$out" || { tail -30 "$out"; failed=1; }
    else
        failed=1
    fi
    printf '| %s | %s | %s | %s | %s |\n' "$version" "$builds" "$loads" "$t_result" \
        "$e2e_result" | tee -a "$report"
done

echo
echo "| nginx | builds | loads | t/ passed/total | e2e passed/total |"
echo "| --- | --- | --- | --- | --- |"
cat "$report"
exit "$failed"
