#!/bin/sh
# Tests build/deb/<suite>/*.deb in a clean chroot of its suite, with that suite's own nginx:
#  1. the chroot: mmdebstrap --variant=apt of SUITE with nginx, curl and the perl the t/
#     harness needs, from Debian's registry; cached in build/chroot/<suite> and reused;
#  2. the t/ suite against the chroot's /usr/sbin/nginx with the .so of the package
#     (dpkg-deb -x), prove inside the chroot;
#  3. scripts/test-deb.sh inside the chroot: apt-get install ./the.deb, nginx -t with Debian's
#     nginx.conf, a site in conf.d passing a 404 on (a real request), remove, purge, nginx
#     starts.
# Steps 2 and 3 run in the network namespace NETNS (default: none) when it is set, so that
# the fixed ports of t/ do not collide with other tests on this machine. Needs root.
#   SUITE=trixie|sid|bookworm  NETNS=ns-name
set -eu

repo=$(cd "$(dirname "$0")/.." && pwd)
suite=${SUITE:?SUITE=bookworm|trixie|sid}
root=$repo/build/chroot/$suite
package=libnginx-mod-http-next-upstream-status
set -- "$repo"/build/deb/$suite/${package}_*.deb
[ "$#" -eq 1 ] && [ -f "$1" ] ||
    { echo "test-deb-chroot: not one build/deb/$suite/${package}_*.deb: run make deb SUITE=$suite" >&2; exit 1; }
deb=$1

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

# nginx, curl (test-deb.sh), perl and the harness's modules, openssl (t/063's certificate),
# python3-prometheus-client (t/072)
packages="nginx curl perl libtest-base-perl libtest-longstring-perl openssl python3-prometheus-client"
start=$(date +%s)
if [ ! -x "$root/usr/sbin/nginx" ]; then
    echo "==> mmdebstrap $suite into $root"
    $sudo rm -rf "$root"
    mkdir -p "$(dirname "$root")"
    # Debian's registry as reached from here serves sid past its Valid-Until date.
    $sudo mmdebstrap --variant=apt --aptopt='Acquire::Check-Valid-Until "false"' \
        --include="$(echo $packages | tr ' ' ,)" \
        "$suite" "$root" http://deb.debian.org/debian >"$repo/build/chroot/$suite.log" 2>&1 ||
        { tail -20 "$repo/build/chroot/$suite.log"; exit 1; }
fi
# a cached chroot made with fewer packages gets the missing ones (network: not in NETNS)
# shellcheck disable=SC2086
if ! $sudo chroot "$root" dpkg-query -W $packages >/dev/null 2>&1; then
    $sudo cp /etc/resolv.conf "$root/etc/resolv.conf"
    $sudo chroot "$root" sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $packages" >/dev/null
fi
echo "    chroot $suite: nginx $($sudo chroot "$root" dpkg-query -W -f='${Version}' nginx)"

# the repo's tests and the package in /test of the chroot, fresh each run
$sudo rm -rf "$root/test"
$sudo mkdir -p "$root/test/build/deb/$suite" "$root/test/so"
(cd "$repo" && git ls-files -z t scripts | $sudo xargs -0 cp --parents -t "$root/test")
$sudo cp "$deb" "$root/test/build/deb/$suite/"
$sudo dpkg-deb -x "$deb" "$root/test/so"

mounted=""
cleanup() { for m in $mounted; do $sudo umount "$m" 2>/dev/null || true; done; }
trap cleanup EXIT
trap 'exit 1' INT TERM
for m in proc dev dev/pts; do
    if ! mountpoint -q "$root/$m"; then
        case $m in
            proc) $sudo mount -t proc proc "$root/proc" ;;
            dev) $sudo mount --bind /dev "$root/dev" ;;
            dev/pts) $sudo mount --bind /dev/pts "$root/dev/pts" ;;
        esac
        mounted="$root/$m $mounted"
    fi
done

in_root() {
    if [ -n "${NETNS:-}" ]; then
        $sudo ip netns exec "$NETNS" chroot "$root" "$@"
    else
        $sudo chroot "$root" "$@"
    fi
}

echo "==> t/ against $suite's /usr/sbin/nginx with the package's module"
in_root sh -c 'cd /test && TEST_NGINX_BINARY=/usr/sbin/nginx \
    TEST_NGINX_LOAD_MODULES=/test/so/usr/lib/nginx/modules/ngx_http_next_upstream_status_module.so \
    prove -I t/lib t/' 2>&1 | tee "$repo/build/chroot/$suite-prove.log" | tail -40
grep -q '^Result: PASS' "$repo/build/chroot/$suite-prove.log" || { echo "test-deb-chroot: t/ failed on $suite" >&2; exit 1; }

echo "==> scripts/test-deb.sh in the $suite chroot"
in_root env SUITE="$suite" sh /test/scripts/test-deb.sh
echo "test-deb-chroot $suite: ok ($(($(date +%s) - start)) s)"
