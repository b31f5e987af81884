#!/bin/sh
# Builds nginx and this module the way nginx users build third-party modules, in a fresh copy
# of the pinned nginx source:
#
#   auto/configure --with-compat ... --add-dynamic-module=<this repository>
#   make && make modules && make install
#
# then checks that the nginx it built loads the module it built: `nginx -t` with
# `load_module` and the directive, one request whose 404 falls through to the next server,
# and the t/ suite (skip it with --no-prove).
#
# Everything goes to build/add-dynamic-module/ (removed and rebuilt on every run).
# MODULE_DIR=<dir> builds another checkout of the module (default: this repository).
set -eu

repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib.sh
. "$repo/scripts/lib.sh"
module_dir=$(cd "${MODULE_DIR:-$repo}" && pwd)
module=ngx_http_next_upstream_status_module
prove=yes
for arg in "$@"; do
    case "$arg" in
        --no-prove) prove=no ;;
        *) echo "usage: $0 [--no-prove]" >&2; exit 2 ;;
    esac
done

"$repo/scripts/install-deps.sh"
src=$("$repo/scripts/nginx-src-dir")
version=$(sed -n 's/^#define NGINX_VERSION *"\(.*\)"/\1/p' "$src/src/core/nginx.h")
work=$repo/build/add-dynamic-module
tree=$work/nginx-$version
prefix=$work/nginx
jobs=$(nproc 2>/dev/null || echo 2)

step "fresh copy of nginx $version in $tree"
rm -rf "$work"
mkdir -p "$work"
cp -r "$src" "$tree"
took

step "auto/configure --with-compat --add-dynamic-module=$module_dir"
cd "$tree"
./auto/configure --prefix="$prefix" \
    --with-compat --with-debug --with-threads \
    --with-http_ssl_module --with-http_v2_module --with-http_realip_module \
    --with-http_auth_request_module \
    --add-dynamic-module="$module_dir" >configure.log 2>&1 ||
    { tail -20 configure.log; exit 1; }
grep -A2 "checking for cargo" configure.log | sed 's/^/    /'
took

step "make -j$jobs (nginx and the module)"
make -j"$jobs" >make.log 2>&1 || { tail -40 make.log; exit 1; }
took

step "make modules (nothing changed: cargo checks, nothing is relinked)"
make modules >make-modules.log 2>&1 || { tail -40 make-modules.log; exit 1; }
if grep -q -- "-o objs/$module.so" make-modules.log; then
    echo "    note: the module was relinked"
fi
took

step "make install (to $prefix)"
make install >install.log 2>&1 || { tail -20 install.log; exit 1; }
so=$prefix/modules/$module.so
nginx=$prefix/sbin/nginx
ls -l "$tree/objs/$module.so" "$so" | sed 's/^/    /'
echo "    dynamic symbols the module exports:"
nm -D --defined-only "$so" | awk '$2 ~ /[A-TV-Z]/ { print "      " $3 }'
took

# A server that answers 404 then a backup that answers 200: with the directive, the 404
# falls through and the client gets the backup's 200.
front=$(free_port); first=$(free_port); second=$(free_port)
run=$work/run
mkdir -p "$run/conf" "$run/logs"
cat >"$run/conf/nginx.conf" <<EOF
load_module $so;
error_log logs/error.log info;
pid logs/nginx.pid;
worker_processes 1;
events { worker_connections 64; }
http {
    access_log off;
    upstream backends {
        server 127.0.0.1:$first;
        server 127.0.0.1:$second backup;
    }
    server { listen 127.0.0.1:$first;  return 404 "first\n"; }
    server { listen 127.0.0.1:$second; return 200 "second\n"; }
    server {
        listen 127.0.0.1:$front;
        location / {
            proxy_pass http://backends;
            proxy_next_upstream_status 404;
            add_header X-Upstream-Status \$upstream_status always;
        }
    }
}
EOF

step "nginx -t with load_module and proxy_next_upstream_status"
"$nginx" -p "$run" -c conf/nginx.conf -t 2>&1 | sed 's/^/    /'
took

step "one request: the first server's 404 falls through to the second server"
pid=
stop() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -QUIT "$pid"
        for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    fi
    pid=
}
trap stop EXIT
trap 'exit 1' INT TERM
"$nginx" -p "$run" -c conf/nginx.conf
for _ in 1 2 3 4 5 6 7 8 9 10; do [ -s "$run/logs/nginx.pid" ] && break; sleep 0.1; done
pid=$(cat "$run/logs/nginx.pid")
response=$(curl -sS -D - "http://127.0.0.1:$front/" | tr -d '\r')
stop
echo "$response" | grep -E '^(HTTP/|X-Upstream-Status|first|second)' | sed 's/^/    /'
echo "$response" | grep -q '^HTTP/1.1 200' &&
    echo "$response" | grep -q '^X-Upstream-Status: 404, 200' &&
    echo "$response" | grep -q '^second' ||
    { echo "unexpected response; error log:"; tail -20 "$run/logs/error.log"; exit 1; }
grep "passing request to the next server" "$run/logs/error.log" | sed 's/^.*\] /    log: /'
took

if [ "$prove" = yes ]; then
    step "the t/ suite against this nginx and module"
    cd "$repo"
    TEST_NGINX_BINARY=$nginx TEST_NGINX_LOAD_MODULES=$so TEST_NGINX_SERVROOT=$work/servroot \
        prove -I t/lib t/
    took
fi

echo "OK: nginx $version built with --add-dynamic-module loads $module.so"
