#!/bin/sh
# Builds the Debian package libnginx-mod-http-next-upstream-status for one Debian suite with
# dpkg-buildpackage and debian/ (debhelper, dh_nginx of nginx-dev): build/deb/<suite>/*.deb.
#
#   SUITE=bookworm|trixie|sid (default: this machine's own suite)
#
# The suite's nginx-dev is fetched with apt from Debian's registry into build/deb/<suite>/apt
# (its own lists and cache; no chroot: the Rust toolchain is only on the host, and a module
# built against nginx-dev's configured tree needs nothing else of the suite) and unpacked
# into build/deb/<suite>/nginx-dev; debian/rules configures that tree and takes its nginx-abi.
# The crates are fetched before (cargo fetch); the package build itself is cargo --offline.
# lintian then checks the package: an error fails the build, warnings are shown.
set -eu

repo=$(cd "$(dirname "$0")/.." && pwd)
suite=${SUITE:-$(. /etc/os-release && echo "$VERSION_CODENAME")}
case "$suite" in
    bookworm) rev="~deb12" ;;
    trixie) rev="~deb13" ;;
    sid) rev="~sid" ;;
    *) echo "build-deb: unknown suite $suite (bookworm, trixie or sid)" >&2; exit 2 ;;
esac
out=$repo/build/deb/$suite
apt=$out/apt
mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial"
chmod -R a+rwX "$apt" 2>/dev/null || true

echo "==> nginx-dev of $suite (apt, into $apt)"
cat >"$apt/sources.list" <<SOURCES
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $suite main
SOURCES
[ "$suite" = bookworm ] &&
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main" >>"$apt/sources.list"
[ "$suite" = trixie ] &&
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security trixie-security main" >>"$apt/sources.list"
aptopts="-o Dir::Etc::SourceList=$apt/sources.list -o Dir::Etc::SourceParts=/dev/null
    -o Dir::State::Lists=$apt/lists -o Dir::Cache=$apt/cache -o Dir::State::status=/dev/null
    -o Acquire::Check-Valid-Until=false -o APT::Architecture=$(dpkg --print-architecture)"
# shellcheck disable=SC2086
apt-get $aptopts -qq update
# shellcheck disable=SC2086
version=$(apt-cache $aptopts show nginx-dev | sed -n 's/^Version: //p' | sort -V | tail -1)
dev=$out/nginx-dev
if [ "$(cat "$dev/.version" 2>/dev/null)" != "$version" ]; then
    # shellcheck disable=SC2086
    (cd "$apt/cache/archives" && apt-get $aptopts -qq download "nginx-dev=$version")
    rm -rf "$dev"
    dpkg-deb -x "$apt/cache/archives/nginx-dev_$(echo "$version" | sed 's/:/%3a/')_all.deb" "$dev"
    echo "$version" >"$dev/.version"
fi
echo "    nginx-dev $version, $(grep "^nginx:abi=" "$dev/usr/share/nginx/src/debian/libnginx-mod.abisubstvars")"

echo "==> cargo fetch (the package build is offline)"
(cd "$repo" && cargo fetch --locked -q)

echo "==> dpkg-buildpackage in $out/src"
src=$out/src
rm -rf "$src"
mkdir -p "$src"
(cd "$repo" && git ls-files -z | xargs -0 cp --parents -t "$src")
upstream=$(sed -n '1s/.*(\(.*\)).*/\1/p' "$repo/debian/changelog")
(
    cd "$src"
    # the suite's own version and distribution (bookworm: 0.1.0-1~deb12)
    sed -i "1s/(.*) [a-z]*;/($upstream$rev) $suite;/" debian/changelog
    NGINX_DEV_ROOT=$dev CARGO_TARGET_DIR=$repo/build/target/deb-$suite \
        dpkg-buildpackage -b -us -uc -d >"$out/build.log" 2>&1 ||
        { tail -40 "$out/build.log"; exit 1; }
)
deb=$(ls "$out"/libnginx-mod-http-next-upstream-status_*"$rev"_*.deb | tail -1)
dpkg-deb --info "$deb" | sed -n 's/^ \(Package\|Version\|Depends\|Installed-Size\):/    \1:/p'
dpkg-deb --contents "$deb" | awk '!/\/$/ { printf "    %s %8s %s\n", $1, $3, $6 }'

echo "==> lintian $deb"
status=0
lintian --display-info "$deb" 2>&1 | sed 's/^/    /' || status=$?
lintian -q "$deb" >/dev/null 2>&1 || status=$?
if [ "$status" -ne 0 ]; then
    rm -f "$deb"
    echo "build-deb: lintian found errors (exit $status); $deb removed" >&2
    exit 1
fi
echo "    no lintian errors"
