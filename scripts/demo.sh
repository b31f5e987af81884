#!/bin/sh
# Starts nginx with the module on nginx-conf/demo.conf and shows reads falling through to the
# other site while writes stay on the local one. nginx keeps running afterwards.
set -eu
nginx_bin=$1
module_so=$2
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib.sh
. "$root/scripts/lib.sh"
prefix=$root/build/demo

mkdir -p "$prefix/conf" "$prefix/logs" "$prefix/modules"
cp "$root/nginx-conf/demo.conf" "$prefix/conf/nginx.conf"
install_so "$module_so" "$prefix/modules/$(basename "$module_so")"
if [ -f "$prefix/logs/nginx.pid" ]; then
    "$nginx_bin" -p "$prefix/" -s stop 2>/dev/null || true
    sleep 0.5
fi
"$nginx_bin" -p "$prefix/" -t -q
"$nginx_bin" -p "$prefix/"

show() {
    echo "\$ curl $*"
    curl -sS --retry 5 --retry-connrefused --retry-delay 1 "$@"
    echo
}
show http://127.0.0.1:8000/v2/demo/blobs/replicated
show http://127.0.0.1:8000/v2/demo/blobs/not-yet-replicated
show -X PUT http://127.0.0.1:8000/v2/demo/blobs/uploads/1

echo "access log ($prefix/logs/access.log):"
sed 's/^/    /' "$prefix/logs/access.log"
echo "error log ($prefix/logs/error.log), retries:"
grep 'next_upstream_status' "$prefix/logs/error.log" | sed 's/^/    /'
echo
echo "nginx is running on http://127.0.0.1:8000/ with $prefix/conf/nginx.conf"
echo "stop it with: $nginx_bin -p $prefix/ -s stop"
