#!/bin/sh
# Builds the module for Debian's own nginx (Debian 12: nginx 1.22.1 in /usr/sbin/nginx):
#
# 1. installs the packages nginx and nginx-dev (non-interactive; the nginx service is not
#    started, and one started anyway by the install is stopped again);
# 2. copies nginx-dev's source tree (/usr/share/nginx/src) to build/debian-nginx-<version>/
#    and configures it the way nginx-dev's debhelper build system does: the flags of its
#    conf_flags file plus the Debian build flags (re-done only when nginx-dev changed);
# 3. builds the module against that tree and puts it at
#    build/debian/ngx_http_next_upstream_status_module.so;
# 4. checks that /usr/sbin/nginx loads it (`nginx -t` with load_module and the directive).
#
# How the module is built (step 3):
#   --cargo  (default) cargo build against the tree's objs/, one cargo target dir per tree
#            (build/target/debian-nginx-<version>), like `make module`;
#   --nginx  nginx's own way, as Debian builds module packages: configure with
#            --add-dynamic-module=<this repository>, then `make -f objs/Makefile modules`
#            (MODULE_DIR=<dir> builds another checkout of the module that way).
set -eu

repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib.sh
. "$repo/scripts/lib.sh"
module_dir=$(cd "${MODULE_DIR:-$repo}" && pwd)
module=ngx_http_next_upstream_status_module
mode=cargo
for arg in "$@"; do
    case "$arg" in
        --cargo) mode=cargo ;;
        --nginx) mode=nginx ;;
        *) echo "usage: $0 [--cargo | --nginx]" >&2; exit 2 ;;
    esac
done

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

# --- 1. packages -----------------------------------------------------------------------
step "packages: nginx, nginx-dev and the build dependencies"
if installed nginx && installed nginx-dev; then
    "$repo/scripts/install-deps.sh" debian
else
    # Debian starts a service when its package is installed, unless policy-rc.d says no.
    # Say no for the duration of the install (only if the system has no policy of its own),
    # and stop an nginx that was started anyway.
    policy=/usr/sbin/policy-rc.d
    own_policy=no
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\n# temporary, from %s\nexit 101\n' "$0" | $sudo tee "$policy" >/dev/null
        $sudo chmod 755 "$policy"
        own_policy=yes
        trap '$sudo rm -f "$policy"' EXIT
        trap 'exit 1' INT TERM
    fi
    running_before=$(cat /run/nginx.pid 2>/dev/null || true)
    "$repo/scripts/install-deps.sh" debian
    if [ "$own_policy" = yes ]; then
        $sudo rm -f "$policy"
        trap - EXIT INT TERM
    fi
    running_after=$(cat /run/nginx.pid 2>/dev/null || true)
    if [ -n "$running_after" ] && [ "$running_after" != "$running_before" ] &&
        kill -0 "$running_after" 2>/dev/null; then
        echo "    the package started nginx (pid $running_after): stopping it"
        $sudo kill -QUIT "$running_after"
    fi
fi
version=$(/usr/sbin/nginx -v 2>&1 | sed -n 's|^nginx version: nginx/||p')
package=$(dpkg-query -W -f='${Version}' nginx-dev)
echo "    /usr/sbin/nginx $version, nginx-dev $package"
took

# --- 2. the configured tree --------------------------------------------------------------
tree=$repo/build/debian-nginx-$version
stamp="nginx-dev $package, $mode"
[ "$mode" = nginx ] && stamp="$stamp $module_dir"
step "configured tree $tree"
if [ -f "$tree/objs/ngx_auto_config.h" ] && [ "$(cat "$tree/.configured" 2>/dev/null)" = "$stamp" ]
then
    echo "    up to date ($stamp)"
else
    rm -rf "$tree"
    mkdir -p "$repo/build"
    cp -r /usr/share/nginx/src "$tree"
    add_module=
    [ "$mode" = nginx ] && add_module="--add-dynamic-module=$module_dir"
    # conf_flags is a bash array (NGX_CONF_FLAGS); the compiler and linker flags are the
    # ones Debian's nginx_mod build system (nginx-dev) adds.
    (
        cd "$tree"
        bash -c '
            . ./conf_flags
            ./configure \
                --with-cc-opt="$(dpkg-buildflags --get CFLAGS) -fPIC $(dpkg-buildflags --get CPPFLAGS)" \
                --with-ld-opt="$(dpkg-buildflags --get LDFLAGS) -fPIC" \
                "${NGX_CONF_FLAGS[@]}" $0' "$add_module"
    ) >"$repo/build/debian-configure.log" 2>&1 ||
        { tail -20 "$repo/build/debian-configure.log"; exit 1; }
    echo "$stamp" >"$tree/.configured"
    echo "    configured with: $(sed -n 's/^NGX_CONF_FLAGS=( *\(.*\) *)$/\1/p' "$tree/conf_flags" |
        tr ' ' '\n' | grep -c .) flags from conf_flags${add_module:+ and $add_module}"
fi
took

# --- 3. the module -----------------------------------------------------------------------
out=$repo/build/debian/$module.so
mkdir -p "$repo/build/debian"
if [ "$mode" = cargo ]; then
    target=$repo/build/target/debian-nginx-$version
    step "cargo build --release against $tree/objs"
    (
        cd "$repo"
        NGINX_BUILD_DIR=$tree/objs cargo build --release --locked --target-dir "$target"
    )
    install_so "$target/release/lib$module.so" "$out"
else
    step "make -f objs/Makefile modules"
    make -C "$tree" -f objs/Makefile modules >"$repo/build/debian-make.log" 2>&1 ||
        { tail -40 "$repo/build/debian-make.log"; exit 1; }
    install_so "$tree/objs/$module.so" "$out"
fi
ls -l "$out" | sed 's/^/    /'
took

# --- 4. does Debian's nginx load it? ------------------------------------------------------
step "/usr/sbin/nginx -t with load_module $out"
check=$(mktemp -d)
cat >"$check/nginx.conf" <<EOF
load_module $out;
pid $check/nginx.pid;
events {}
http {
    upstream backends { server 127.0.0.1:1; server 127.0.0.1:2; }
    server {
        listen 127.0.0.1:1;
        location / { proxy_pass http://backends; proxy_next_upstream_status 404 410; }
    }
}
EOF
# nginx's output is kept apart from its exit status: piped into sed, a failing nginx -t
# would not fail this script (a pipeline's status is its last command's).
status=0
result=$(/usr/sbin/nginx -p "$check" -c "$check/nginx.conf" -g 'error_log stderr;' -t 2>&1) ||
    status=$?
echo "$result" | sed 's/^/    /'
rm -rf "$check"
[ "$status" -eq 0 ] || { echo "build-debian: /usr/sbin/nginx -t failed with $out" >&2; exit 1; }
took
