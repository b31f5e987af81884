#!/bin/sh
# Installs the Debian packages that the build, the tests and the benchmarks need.
# Idempotent and non-interactive: packages already present are not touched.
set -eu

# Perl: t/lib/Test/Nginx/Socket.pm is built on Test::Base (whose failure diffs use
# Text::Diff) and Test::LongString; everything else the .t files use (HTTP::Tiny, JSON::PP,
# IO::Socket::INET, ...) comes with perl itself.
packages="
build-essential pkg-config libclang-dev libpcre2-dev libssl-dev zlib1g-dev
perl libtest-base-perl libtext-diff-perl libtest-longstring-perl
curl openssl python3 python3-prometheus-client
"
# Extra groups, requested by name: e2e (real registries and client), bench, debian,
# deb (checks the Debian package that scripts/build-deb.sh makes).
for group in "$@"; do
    case "$group" in
        e2e) packages="$packages docker-registry skopeo" ;;
        bench) packages="$packages wrk valgrind iproute2 procps" ;;
        debian) packages="$packages nginx nginx-dev" ;;
        deb) packages="$packages lintian debhelper dpkg-dev nginx-dev mmdebstrap" ;;
        *) echo "install-deps: unknown group \"$group\"" >&2; exit 2 ;;
    esac
done

missing=""
for p in $packages; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
