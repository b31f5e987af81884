#!/bin/sh
# Tests the package scripts/build-deb.sh made (build/deb/*.deb) the way a user meets it: with
# Debian's own nginx and its own /etc/nginx/nginx.conf.
#  1. apt-get install ./<file>.deb: the module is enabled by a symlink in
#     /etc/nginx/modules-enabled/, and nginx -t passes;
#  2. a site in /etc/nginx/conf.d/ with the directive, on a free 127.0.0.1 port, in front of
#     two servers (the first answers 404, the second, a backup, 200): the client gets the
#     second's 200, with $upstream_status "404, 200" and the module's info line in the site's
#     error log;
#  3. apt-get remove, then purge: the link is renamed *.removed, then gone; nginx -t passes
#     and nginx starts again without the module and serves Debian's default site.
# Needs root (or sudo). Debian's nginx must not be running: this starts and stops it, which
# needs port 80 (its default site).
# Leaves the machine as it found it but for the lines nginx and apt add to their logs in
# /var/log/; the package is purged at the end, also when it was installed before.
set -eu

repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib.sh
. "$repo/scripts/lib.sh"
package=libnginx-mod-http-next-upstream-status
nginx=/usr/sbin/nginx
link=/etc/nginx/modules-enabled/50-mod-http-next-upstream-status.conf
site=/etc/nginx/conf.d/test-deb-next-upstream-status.conf
pidfile=/run/nginx.pid

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

suite=${SUITE:-$(. /etc/os-release && echo "$VERSION_CODENAME")}
set -- "$repo"/build/deb/$suite/${package}_*.deb
[ "$#" -eq 1 ] && [ -f "$1" ] ||
    { echo "test-deb: not one build/deb/$suite/${package}_*.deb: run make deb SUITE=$suite" >&2; exit 1; }
deb=$1

ok() { echo "ok   $*"; }
fail() { echo "FAIL $*" >&2; exit 1; }
running() { [ -f "$pidfile" ] && $sudo kill -0 "$(cat "$pidfile")" 2>/dev/null; }
# nginx -s quit returns at once; wait for the master to exit (it removes its pid file).
stop_nginx() {
    running || return 0
    # (without its notice "signal process started", which says nothing here)
    $sudo "$nginx" -s quit 2>&1 | grep -v 'signal process started' >&2 || true
    for _ in $(seq 50); do running || return 0; sleep 0.1; done
    fail "nginx did not exit within 5 s of nginx -s quit"
}

running && fail "Debian's nginx is running (pid $(cat "$pidfile")): stop it, the test starts one"
[ -e "$site" ] && fail "$site exists; the test writes its own site there"

# The site's port: one the kernel says is free now (this machine runs other tests on fixed
# and on random ports). The two servers behind it listen on unix sockets in $work.
front=$(free_port)

# Whatever happens, nginx stops and the site and the package go; the machine is left as found.
work=$(mktemp -d)
chmod 755 "$work"    # nginx's workers (www-data) connect to the sockets in it
cleanup() {
    (stop_nginx) || true    # a subshell: its fail must not end the cleanup
    $sudo rm -f "$site"
    if dpkg-query -W "$package" >/dev/null 2>&1; then
        $sudo apt-get purge -y -qq "$package" >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

export DEBIAN_FRONTEND=noninteractive

echo "==> apt-get install $deb"
# apt reads a local file as user _apt where it can and says so when it cannot: not an error.
# apt-get's exit status is lost in the pipe; dpkg's record below says whether it installed.
$sudo apt-get install -y -q -o Dpkg::Use-Pty=0 "$deb" 2>&1 |
    grep -v '^N: Download is performed unsandboxed' | sed 's/^/    /'
[ "$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null)" = "install ok installed" ] ||
    fail "$package is not installed"
ok "$package $(dpkg-query -W -f='${Version}' "$package") installed"
[ "$(readlink "$link")" = /usr/share/nginx/modules-available/mod-http-next-upstream-status.conf ] ||
    fail "$link is not a link to the module's conf"
ok "$link -> $(readlink "$link")"
$sudo "$nginx" -t -q || fail "nginx -t with /etc/nginx/nginx.conf and the module"
ok "nginx -t with /etc/nginx/nginx.conf and the module"

echo "==> a site with proxy_next_upstream_status 404, in front of a 404 and a 200 server"
# The logs of the site go to a directory of the test's own, not to /var/log/nginx/.
$sudo tee "$site" >/dev/null <<CONF
upstream test_deb_backends {
    server unix:$work/first.sock;
    server unix:$work/second.sock backup;
}
server {
    listen unix:$work/first.sock;
    access_log off;
    return 404 "first\n";
}
server {
    listen unix:$work/second.sock;
    access_log off;
    return 200 "second\n";
}
server {
    listen 127.0.0.1:$front;
    access_log off;
    error_log $work/error.log info;
    location / {
        proxy_pass http://test_deb_backends;
        proxy_next_upstream_status 404;
        add_header X-Upstream-Status \$upstream_status always;
    }
}
CONF
$sudo "$nginx" -t -q || fail "nginx -t with the site"
ok "nginx -t with the site"
$sudo "$nginx" || fail "nginx did not start"
running || fail "nginx did not start"
ok "nginx started (pid $(cat "$pidfile"))"
status=$(curl -s -o "$work/body" -D "$work/headers" -w '%{http_code}' "http://127.0.0.1:$front/") ||
    fail "no answer from 127.0.0.1:$front"
upstream_status=$(sed -n 's/^X-Upstream-Status: \(.*\)\r$/\1/p' "$work/headers")
echo "    $status $(cat "$work/body"), X-Upstream-Status: $upstream_status"
[ "$status" = 200 ] && [ "$(cat "$work/body")" = second ] ||
    fail "the client did not get the second server's 200"
[ "$upstream_status" = "404, 200" ] || fail "\$upstream_status is not \"404, 200\""
ok "the 404 passed on: 200 from the second server, \$upstream_status \"404, 200\""
stop_nginx
grep -q 'next_upstream_status: upstream answered 404, passing request to the next server' \
    "$work/error.log" || fail "no info line of the module in the site's error log"
ok "the module's info line in the site's error log"

echo "==> apt-get remove, then purge"
$sudo rm -f "$site"
$sudo apt-get remove -y -qq "$package" >/dev/null || fail "apt-get remove"
[ ! -e "$link" ] && [ -L "$link.removed" ] ||
    fail "after remove: $link is not renamed to *.removed"
[ ! -e /usr/lib/nginx/modules/ngx_http_next_upstream_status_module.so ] ||
    fail "after remove: the .so is still there"
ok "removed: the .so gone, the link renamed to $link.removed"
$sudo "$nginx" -t -q || fail "nginx -t after remove"
ok "nginx -t after remove (the *.removed link is not loaded)"
$sudo apt-get purge -y -qq "$package" >/dev/null || fail "apt-get purge"
[ ! -e "$link" ] && [ ! -L "$link.removed" ] ||
    fail "after purge: a link is left in /etc/nginx/modules-enabled/"
dpkg-query -W "$package" >/dev/null 2>&1 && fail "after purge: dpkg still knows $package"
ok "purged: no link left in /etc/nginx/modules-enabled/"
$sudo "$nginx" -t -q || fail "nginx -t without the module"
ok "nginx -t without the module"
$sudo "$nginx" || fail "nginx did not start without the module"
running || fail "nginx did not start without the module"
ok "nginx started without the module (pid $(cat "$pidfile"))"
status=$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1/) || true
[ "$status" = 200 ] || fail "Debian's default site answered \"$status\", not 200"
ok "Debian's default site answers 200"
stop_nginx
ok "nginx stopped"
