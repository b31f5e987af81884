#!/bin/sh
# Makes the Debian package libnginx-mod-http-next-upstream-status for Debian 12's nginx out
# of the module scripts/build-debian.sh built (build/debian/*.so), laid out as Debian's own
# libnginx-mod-* packages are:
#   /usr/lib/nginx/modules/ngx_http_next_upstream_status_module.so
#   /usr/share/nginx/modules-available/mod-http-next-upstream-status.conf   (load_module)
#   /etc/nginx/modules-enabled/50-mod-http-next-upstream-status.conf        (symlink: postinst)
# and checks it with lintian: an error fails the build, warnings are shown.
# The files it is made of are in packaging/deb/. Output: build/deb/<package>_<version>_<arch>.deb
set -eu

repo=$(cd "$(dirname "$0")/.." && pwd)
package=libnginx-mod-http-next-upstream-status
module=ngx_http_next_upstream_status_module
files=$repo/packaging/deb
so=$repo/build/debian/$module.so
out=$repo/build/deb
[ -f "$so" ] || { echo "build-deb: no $so: run make debian first" >&2; exit 1; }

# The version is Cargo.toml's plus the Debian revision of packaging/deb/changelog's newest
# entry; a changelog that lags behind Cargo.toml is an error, not a silently wrong version.
upstream=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$repo/Cargo.toml" | head -1)
version=$(dpkg-parsechangelog -l "$files/changelog" -S Version)
case "$version" in
    "$upstream"-*) ;;
    *) echo "build-deb: packaging/deb/changelog is at $version, Cargo.toml at $upstream:" \
        "add a changelog entry" >&2; exit 1 ;;
esac
# Files in the package get the changelog entry's date, so the same sources give the same .deb.
SOURCE_DATE_EPOCH=$(dpkg-parsechangelog -l "$files/changelog" -S Timestamp)
export SOURCE_DATE_EPOCH

# The module works only with the nginx build whose tree (nginx-dev) it was built against.
# Debian's nginx names its build by the ABI it provides; the package depends on that name.
nginx_version=$(dpkg-query -W -f='${Version}' nginx)
[ "$nginx_version" = "$(dpkg-query -W -f='${Version}' nginx-dev)" ] ||
    { echo "build-deb: nginx $nginx_version and nginx-dev differ: apt-get upgrade" >&2; exit 1; }
abi=$(dpkg-query -W -f='${Provides}' nginx | tr ',' '\n' | sed -n 's/^ *\(nginx-abi-[^ ]*\).*/\1/p')
[ -n "$abi" ] || { echo "build-deb: the installed nginx provides no nginx-abi-*" >&2; exit 1; }
arch=$(dpkg --print-architecture)

umask 022
rm -rf "$out"
stage=$out/stage
doc=$stage/usr/share/doc/$package
install -d "$stage/DEBIAN" "$stage/usr/lib/nginx/modules" \
    "$stage/usr/share/nginx/modules-available" "$doc"
install -m 644 "$so" "$stage/usr/lib/nginx/modules/"
# What dh_strip does to a shared object: the debug line tables (release profile) go.
strip --strip-unneeded --remove-section=.comment --remove-section=.note \
    "$stage/usr/lib/nginx/modules/$module.so"
install -m 644 "$files/mod-http-next-upstream-status.conf" \
    "$stage/usr/share/nginx/modules-available/"
install -m 644 "$files/copyright" "$doc/"
gzip -9n <"$files/changelog" >"$doc/changelog.Debian.gz"
chmod 644 "$doc/changelog.Debian.gz"
install -m 755 "$files/postinst" "$files/prerm" "$files/postrm" "$stage/DEBIAN/"

# The libraries the .so needs (libc6, libgcc-s1), as dpkg-shlibdeps finds them; it wants to
# run in a source tree, hence the one-paragraph debian/control.
shlibs=$(
    cd "$out" && mkdir debian &&
    printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$package" "$package" >debian/control &&
    dpkg-shlibdeps -O "stage/usr/lib/nginx/modules/$module.so" | sed -n 's/^shlibs:Depends=//p'
)
rm -rf "$out/debian"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@INSTALLED_SIZE@/$size/" \
    -e "s/@NGINX_ABI@/$abi/" -e "s/@SHLIBS@/$shlibs/" "$files/control" >"$stage/DEBIAN/control"
(cd "$stage" && find usr -type f | sort | xargs md5sum) >"$stage/DEBIAN/md5sums"
chmod 644 "$stage/DEBIAN/control" "$stage/DEBIAN/md5sums"
find "$stage" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

deb=$out/${package}_${version}_$arch.deb
dpkg-deb --root-owner-group --build "$stage" "$deb" >/dev/null
rm -rf "$stage"
dpkg-deb --info "$deb" | sed -n 's/^ \(Package\|Version\|Depends\|Installed-Size\):/    \1:/p'
dpkg-deb --contents "$deb" | awk '!/\/$/ { printf "    %s %8s %s\n", $1, $3, $6 }'

# lintian exits non-zero on an error (its default --fail-on); warnings and info are shown.
# As root it warns that it should not run as root; that is not about the package.
echo "==> lintian $deb"
status=0
report=$(lintian --display-info "$deb" 2>&1) || status=$?
echo "$report" | grep -v 'running with root privileges is not recommended' | sed 's/^/    /'
# A package with lintian errors is not left where make test-deb would install it.
if [ "$status" -ne 0 ]; then
    rm -f "$deb"
    echo "build-deb: lintian found errors (exit $status); $deb removed" >&2
    exit 1
fi
echo "    no lintian errors"
