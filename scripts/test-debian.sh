#!/bin/sh
# Runs the t/ suite against Debian's own nginx (/usr/sbin/nginx) with the module built for it
# by scripts/build-debian.sh (build/debian/ngx_http_next_upstream_status_module.so).
# Arguments are passed to prove (default: t/).
#
# The suite needs nothing Debian 12's nginx lacks (it has http_v2, hence grpc, and the
# cache); blocks that need a module an nginx lacks, or syntax it does not know, skip
# themselves or adapt (see the t/*.t files). Listed below for the record.
set -eu

repo=$(cd "$(dirname "$0")/.." && pwd)
module=ngx_http_next_upstream_status_module
nginx=/usr/sbin/nginx
so=$repo/build/debian/$module.so

if [ ! -x "$nginx" ] || [ ! -f "$so" ]; then
    echo "test-debian: run scripts/build-debian.sh first (no $nginx or no $so)" >&2
    exit 1
fi

V=$("$nginx" -V 2>&1)
echo "$V" | head -1
for feature in http_v2_module http_ssl_module http_realip_module http_auth_request_module \
    debug threads; do
    case "$V" in
        *--with-$feature*) echo "  with    $feature" ;;
        *) echo "  without $feature" ;;
    esac
done
for feature in http_proxy_module http_grpc_module http_upstream_hash_module \
    http_upstream_random_module http_upstream_keepalive_module http_upstream_zone_module; do
    case "$V" in
        *--without-$feature*) echo "  without $feature" ;;
        *) echo "  with    $feature" ;;
    esac
done

cd "$repo"
[ "$#" -gt 0 ] || set -- t/
TEST_NGINX_BINARY=$nginx TEST_NGINX_LOAD_MODULES=$so \
TEST_NGINX_SERVROOT=$repo/build/servroot-debian \
    exec prove -I t/lib "$@"
