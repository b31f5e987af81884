# The kept answer is stock nginx's answer: for each row of a table, a client asks
# two locations of one nginx that differ only in their upstream:
#
#   kept:  server A, then a backup that refuses; `proxy_next_upstream_status <status>`
#   stock: server A alone, no directive (stock nginx: A's answer is the final one)
#
# Both have the row's other directives. Server A is a scripted raw HTTP/1 server that gives
# the row's answer (status, headers, body) on both paths, written at once or, in the paused
# rows, the header first and each piece of the body after a pause, so that nginx reads them
# in separate segments. The client's bytes from the kept answer must equal its bytes from
# stock nginx, for GET and HEAD, from an HTTP/1.1 client (raw socket) and an HTTP/2 client
# (curl, cleartext prior knowledge). The access log proves which path each request took:
# "<status>, 502" (and $next_upstream_status_kept) on the kept path, "<status>" on the other.
#
# With TEST_NGINX_UPSTREAM_HTTP=2 (nginx 1.29.4+, `make test-matrix`), nginx speaks HTTP/2
# to server A: A is then an nginx server block of the same nginx (`http2 on`) that relays
# the raw server's answer unchanged (it passes and ignores the X-Accel-* headers and Server,
# rewrites nothing, and does not buffer, so the pauses reach the front as separate frames).
#
# What is normalised before comparing, and why:
# - the value of Date (the two answers are made at different moments);
# - HTTP/1.1 chunked bodies are compared de-chunked (the Transfer-Encoding header itself is
#   compared): nginx's chunked filter writes one chunk per output chain, and how a body is
#   cut into chains depends on how its bytes arrived, in stock nginx too;
# - HTTP/2 to the client: the response as curl prints it (status line, headers in their
#   order, then the DATA frames' bytes joined): frame boundaries are not compared, for the
#   same reason.
# Nothing else: header order, header case, Content-Length, gzip bytes are compared exactly.
# (Stock nginx's gzip bytes do not depend on how the body arrived as long as it buffers the
# answer; with `proxy_buffering off` each piece is flushed, so the table has no row with both
# gzip and proxy_buffering off.) A control run (KEPT_STOCK_CONTROL=1, below) asks stock
# nginx on both sides: every row passes, paused ones included.
#
# Not in the table, on purpose: a body larger than proxy_buffer_size (the kept answer then
# has status and headers without the body, the documented fallback: it differs from stock by
# design) and a body delimited by the server closing the connection.
#
# The error log must have no [alert], [crit], crashed worker, nor a kept answer sent
# "without its body" (every body in the table fits in proxy_buffer_size).
#
#   prove -I t/lib t/051-kept-answer-as-stock.t
#
# Environment: TEST_NGINX_BINARY (default build/nginx/sbin/nginx), TEST_NGINX_LOAD_MODULES
# (default build/modules/ngx_http_next_upstream_status_module.so), TEST_NGINX_UPSTREAM_HTTP
# (1.1 or 2, see t/lib/UpstreamProtocol.pm), TEST_NGINX_SERVROOT (this file's server root is
# "$TEST_NGINX_SERVROOT-stock", else t/servroot-stock; left in place for reading the logs),
# KEPT_STOCK_ONLY (a regex: run only the rows whose name matches), KEPT_STOCK_CONTROL=1 (the
# control run: the "kept" locations are stock ones too, so every row must pass whatever the
# module does; it shows that the comparison itself is deterministic on this machine).

use strict;
use warnings;

use Cwd qw(abs_path);
use FindBin;
use lib "$FindBin::Bin/lib";
use FreePorts qw(free_ports);
use UpstreamProtocol;
use File::Basename qw(dirname);
use File::Path qw(make_path remove_tree);
use File::Spec;
use IO::Compress::Gzip qw(gzip $GzipError);
use IO::Socket::INET;
use POSIX ();
use Test::More;
use Text::Diff qw(diff);    # Debian's libtext-diff-perl (scripts/install-deps.sh)
use Time::HiRes qw(sleep time);

my $root = abs_path(dirname(__FILE__) . '/..');
my $binary = abs_path($ENV{TEST_NGINX_BINARY} // "$root/build/nginx/sbin/nginx");
my @modules = map { abs_path($_) } split ' ',
    ($ENV{TEST_NGINX_LOAD_MODULES} // "$root/build/modules/ngx_http_next_upstream_status_module.so");
my $prefix = File::Spec->rel2abs($ENV{TEST_NGINX_SERVROOT} ? "$ENV{TEST_NGINX_SERVROOT}-stock"
    : "$root/t/servroot-stock");
my $upstream_http = $UpstreamProtocol::Protocol;
my $pause = 0.15;    # between the header and each piece of the body, in the paused rows
my $parallel = 6;    # clients at once
my $control = $ENV{KEPT_STOCK_CONTROL};

plan skip_all => "no nginx at $binary (make build)" unless -x $binary;
for my $m (@modules) {
    plan skip_all => "no module at $m (make build)" unless -f $m;
}
my $V = `'$binary' -V 2>&1`;
my ($version) = $V =~ m{nginx/(\d+\.\d+\.\d+)};
my $vnum = sprintf '%d%03d%03d', split /\./, $version;
plan skip_all => "no proxy_http_version 2 before nginx 1.29.4 (this is $version)"
    if $upstream_http eq '2' && $vnum < 1_029_004;
plan skip_all => 'needs curl for the HTTP/2 client (scripts/install-deps.sh)'
    unless system('curl --version >/dev/null 2>&1') == 0;
my $has_sub = $V =~ /--with-http_sub_module\b/;

# ---------------------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------------------

sub gz {
    my ($text) = @_;
    gzip(\$text => \my $out, Minimal => 1, Time => 0) or die "gzip: $GzipError";
    return $out;
}

my $page54 = "<html><body><h1>404: it is not her</h1></body></html>\n";
length($page54) == 54 or die "page54 is " . length($page54) . " bytes";

# Server A's answers. `body` is a list of pieces: with `chunked`, the chunks as written
# (the terminator goes with the last piece); else the pieces of a body sent with its
# Content-Length. Every answer says "Connection: close" (A closes after each answer) so
# that no nginx version keeps A's connection for a later request.
my %answer = (
    small404 => { status => '404 Not Found', headers => ['Content-Type: text/plain'],
        body => ["not ", "here\n"] },
    empty404 => { status => '404 Not Found', headers => ['Content-Type: text/plain'],
        body => [] },
    page404 => { status => '404 Not Found', headers => ['Content-Type: text/html'],
        body => [$page54] },
    emptychunked404 => { status => '404 Not Found', chunked => 1,
        headers => ['Content-Type: text/plain'], body => ["0\r\n\r\n"] },
    notype404 => { status => '404 Not Found', headers => [], body => ["no type\n"] },
    page3k404 => { status => '404 Not Found', headers => ['Content-Type: text/plain'],
        body => [join('', map { sprintf "%03d not here, not here, not here\n", $_ } 1 .. 50),
            join('', map { sprintf "%03d still not here, not here\n", $_ } 51 .. 100)] },
    # Only with proxy_ignore_headers X-Accel-Redirect: an answer nginx would follow to
    # another location is not kept (README, "The kept answer"; t/052 TEST 14).
    xaccel404 => { status => '404 Not Found', headers => ['Content-Type: text/plain',
            'X-Accel-Redirect: /internal/elsewhere'],
        body => ["look elsewhere\n"] },
    chunked404 => { status => '404 Not Found', chunked => 1,
        headers => ['Content-Type: text/plain'],
        body => ["5\r\nnot h\r\n", "4\r\nere\n\r\n0\r\n\r\n"] },
    gzip404 => { status => '404 Not Found',
        headers => ['Content-Type: text/plain', 'Content-Encoding: gzip', 'Vary: Accept-Encoding'],
        body => [gz("this page is not here, and it came gzipped from the server\n" x 3)] },
    json404 => { status => '404 Not Found', headers => ['Content-Type: application/json',
            'Docker-Distribution-Api-Version: registry/2.0', 'X-Custom: one', 'X-Custom: two'],
        body => ['{"errors":[{"code":"BLOB_UNKNOWN"}]}' . "\n"] },
    cookie404 => { status => '404 Not Found', headers => ['Content-Type: text/plain',
            'Set-Cookie: sid=abc; Path=/app; Domain=backend.internal',
            'Set-Cookie: lang=en; Path=/app/x; Domain=.backend.internal; Max-Age=60'],
        body => ["no session\n"] },
    found302 => { status => '302 Found', headers => ['Content-Type: text/html',
            'Location: http://backend.internal/app/login?next=%2F', 'Set-Cookie: t=1; Path=/app'],
        body => ["<a href=\"http://backend.internal/app/login\">login</a>\n"] },
    moved301 => { status => '301 Moved Permanently',
        headers => ['Content-Type: text/html', 'Location: /app/new'],
        body => ["moved\n"] },
    auth401 => { status => '401 Unauthorized', headers => ['Content-Type: application/json',
            'WWW-Authenticate: Bearer realm="https://auth.example/token",service="registry"'],
        body => ['{"errors":[{"code":"UNAUTHORIZED"}]}' . "\n"] },
    meta403 => { status => '403 Forbidden', headers => ['Content-Type: text/plain',
            'Last-Modified: Tue, 01 Sep 2026 10:00:00 GMT', 'ETag: "abc"',
            'Cache-Control: max-age=60', 'Expires: Wed, 02 Sep 2026 10:00:00 GMT',
            'Accept-Ranges: bytes'],
        body => ["forbidden here\n"] },
    accel410 => { status => '410 Gone', headers => ['Content-Type: text/html',
            'X-Accel-Buffering: no', 'X-Accel-Limit-Rate: 100000', 'X-Accel-Expires: 10',
            'X-Accel-Charset: koi8-r', 'X-Custom: c'],
        body => ["gone\n"] },
    hidden404 => { status => '404 Not Found', headers => ['Content-Type: text/plain',
            'Server: backend/1.0', 'X-Powered-By: php/8', 'X-Secret: s', 'X-Pad: avoid browser bug',
            'Link: </a>; rel=preload', 'Link: </b>; rel=preload'],
        body => ["hidden\n"] },
    html500 => { status => '500 Internal Server Error',
        headers => ['Content-Type: text/html', 'Retry-After: 120'],
        body => ["<p>backend broke</p>\n", "<p>ask backend later</p>\n"] },
    retry503 => { status => '503 Service Unavailable',
        headers => ['Content-Type: text/plain', 'Retry-After: 120'],
        body => ["down for maintenance\n"] },
);

# The locations' directives (beside proxy_pass and, on the kept path, the directive).
my %dirs = (
    plain => '',
    cookie => 'proxy_cookie_domain backend.internal example.com; '
        . 'proxy_cookie_path /app /; proxy_cookie_flags ~ secure httponly samesite=strict;',
    redirect => 'proxy_redirect http://backend.internal/ http://example.com/;',
    redirect_rel => 'proxy_redirect http://backend.internal/ /;',
    gzip => 'gzip on; gzip_proxied any; gzip_types text/plain text/html application/json; '
        . 'gzip_min_length 1; gzip_vary on;',
    add_header => 'add_header X-Front f always; add_header X-Front-Ok ok;',
    charset => 'charset utf-8;',
    sub_filter => 'sub_filter backend front; sub_filter_once off;',
    expires => 'expires max;',
    expires_epoch => 'expires epoch; add_header Cache-Control private;',
    etag => 'etag on; if_modified_since before;',
    hide_pass => 'proxy_hide_header X-Secret; proxy_pass_header Server; '
        . 'proxy_pass_header X-Pad; proxy_hide_header Link;',
    pass_accel => 'proxy_pass_header X-Accel-Buffering; proxy_pass_header X-Accel-Charset;',
    hide_typed => 'proxy_hide_header ETag; proxy_hide_header Last-Modified; '
        . 'proxy_hide_header Cache-Control;',
    unbuffered => 'proxy_buffering off;',
    ignore_xaccel => 'proxy_ignore_headers X-Accel-Redirect;',
    ignore => 'proxy_ignore_headers X-Accel-Charset X-Accel-Buffering X-Accel-Limit-Rate '
        . 'Expires Cache-Control Set-Cookie Vary; charset utf-8;',
);

# Request headers besides Host and Connection.
my %ask = (
    plain => [],
    gzip => ['Accept-Encoding: gzip'],
    cond => ['If-None-Match: "abc"', 'If-Modified-Since: Tue, 01 Sep 2026 10:00:00 GMT'],
    range => ['Range: bytes=0-3', 'Accept-Encoding: gzip'],
);

# Rows: [answer, directives, request headers, paused too?]
my @table = (
    [small404 => 'plain', 'plain', 1],
    [empty404 => 'plain', 'plain', 0],
    [page404 => 'plain', 'plain', 1],
    [chunked404 => 'plain', 'plain', 1],
    [json404 => 'plain', 'plain', 0],
    [emptychunked404 => 'plain', 'plain', 0],
    [notype404 => 'plain', 'plain', 0],
    [page3k404 => 'plain', 'plain', 1],
    [page3k404 => 'gzip', 'gzip', 1],
    [xaccel404 => 'ignore_xaccel', 'plain', 0],
    [gzip404 => 'plain', 'gzip', 1],
    [gzip404 => 'gzip', 'gzip', 1],
    [small404 => 'gzip', 'gzip', 1],
    [chunked404 => 'gzip', 'gzip', 1],
    [json404 => 'gzip', 'range', 0],
    [empty404 => 'gzip', 'gzip', 0],
    [cookie404 => 'plain', 'plain', 0],
    [cookie404 => 'cookie', 'plain', 1],
    [found302 => 'plain', 'plain', 0],
    [found302 => 'redirect', 'plain', 1],
    [found302 => 'redirect_rel', 'plain', 0],
    [found302 => 'cookie', 'plain', 0],
    [found302 => 'expires', 'plain', 0],
    [found302 => 'add_header', 'plain', 0],
    [moved301 => 'plain', 'plain', 0],
    [moved301 => 'expires_epoch', 'plain', 0],
    [auth401 => 'plain', 'plain', 1],
    [auth401 => 'add_header', 'plain', 0],
    [meta403 => 'plain', 'cond', 0],
    [meta403 => 'etag', 'cond', 1],
    [meta403 => 'gzip', 'range', 0],
    [meta403 => 'ignore', 'plain', 0],
    [meta403 => 'hide_typed', 'cond', 0],
    [small404 => 'unbuffered', 'plain', 1],
    [chunked404 => 'unbuffered', 'plain', 1],
    [accel410 => 'plain', 'plain', 1],
    [accel410 => 'pass_accel', 'plain', 0],
    [accel410 => 'charset', 'plain', 0],
    [accel410 => 'ignore', 'plain', 0],
    [hidden404 => 'plain', 'plain', 0],
    [hidden404 => 'hide_pass', 'plain', 0],
    [html500 => 'charset', 'plain', 1],
    [html500 => 'sub_filter', 'plain', 1],
    [html500 => 'add_header', 'plain', 0],
    [page404 => 'sub_filter', 'gzip', 0],
    [retry503 => 'plain', 'plain', 0],
    [retry503 => 'expires', 'plain', 0],
);

# Each row by its name: "<answer>-<directives>-<request headers>[-paused]".
my (%row, @names);
for my $r (@table) {
    my ($answer, $dir, $ask, $paused_too) = @$r;
    die "no answer $answer" unless $answer{$answer};
    die "no directives $dir" unless exists $dirs{$dir};
    die "no request headers $ask" unless $ask{$ask};
    for my $paused (0 .. ($paused_too ? 1 : 0)) {
        my $name = join '-', $answer, $dir, $ask, ($paused ? 'paused' : ());
        die "row $name twice" if $row{$name};
        $row{$name} = { answer => $answer{$answer}, dir => $dir, ask => $ask{$ask},
            paused => $paused };
        push @names, $name;
    }
}
if (!$has_sub) {
    my @skip = grep { $row{$_}{dir} eq 'sub_filter' } @names;
    note "nginx without --with-http_sub_module: rows @skip not run";
    @names = grep { $row{$_}{dir} ne 'sub_filter' } @names;
}
if (defined $ENV{KEPT_STOCK_ONLY}) {
    @names = grep { /$ENV{KEPT_STOCK_ONLY}/ } @names;
}

# ---------------------------------------------------------------------------------------
# Server A: the scripted raw HTTP/1 server (and, for HTTP/2, nginx's relay in front of it)
# ---------------------------------------------------------------------------------------

# Below Linux's ephemeral ports (32768-60999): a connection to the refusing port from an
# ephemeral port of the same number would connect to itself (TCP simultaneous open), and
# nginx would read its own request as the backup's answer.
my $port = free_ports(6, 22000);
my ($front1, $front2, $raw, $relay, $refused) = map { $port + $_ } 0 .. 4;

sub status_code { ($_[0] =~ /^(\d{3})/)[0] }

sub serve_connection {
    my ($c) = @_;
    my $req = '';
    while ($req !~ /\r\n\r\n/) {
        my $n = sysread $c, $req, 4096, length $req;
        return unless $n;
    }
    my ($method, $path) = $req =~ m{^(\S+) (\S+) HTTP/1\.[01]\r\n};
    my ($name) = ($path // '') =~ m{^/[ks]/([^?]+)};
    my $r = defined $name ? $row{$name} : undef;
    if (!$r) {
        syswrite $c, "HTTP/1.1 500 No Such Row\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        return;
    }
    my $a = $r->{answer};
    my @pieces = @{ $a->{body} };
    my $length = 0;
    $length += length $_ for @pieces;
    my $head = "HTTP/1.1 $a->{status}\r\n"
        . join('', map { "$_\r\n" } @{ $a->{headers} })
        . ($a->{chunked} ? "Transfer-Encoding: chunked\r\n" : "Content-Length: $length\r\n")
        . "Connection: close\r\n\r\n";
    @pieces = () if $method eq 'HEAD';
    if ($r->{paused}) {
        syswrite $c, $head;
        for (@pieces) { sleep $pause; syswrite $c, $_ }
    } else {
        syswrite $c, join '', $head, @pieces;
    }
}

sub start_raw_server {
    my $listen = IO::Socket::INET->new(LocalAddr => "127.0.0.1:$raw", Listen => 128,
        ReuseAddr => 1) or die "raw server on $raw: $!";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        $SIG{CHLD} = 'IGNORE';
        my $parent = getppid;
        while (1) {
            my $c = $listen->accept or next;
            my $kid = fork;
            if (defined $kid && $kid == 0) {
                serve_connection($c);
                shutdown $c, 1;
                1 while sysread $c, my $junk, 4096;    # until nginx closes: no reset
                POSIX::_exit(0);
            }
            close $c;
            POSIX::_exit(0) if getppid != $parent;
        }
    }
    close $listen;
    return $pid;
}

# ---------------------------------------------------------------------------------------
# nginx
# ---------------------------------------------------------------------------------------

sub write_conf {
    my $load = join '', map { "load_module $_;\n" } @modules;
    my $env = defined $ENV{ASAN_OPTIONS} ? "env ASAN_OPTIONS;\n" : '';
    my $user = $> == 0 ? "user root;\n" : '';
    my ($listen2, $http2_on) = $vnum >= 1_025_001 ? ('', 'http2 on;') : (' http2', '');
    my $a = $upstream_http eq '2' ? $relay : $raw;
    my $locations = '';
    my $kept_upstream = $control ? 'stock' : 'kept';
    for my $name (@names) {
        my $r = $row{$name};
        my $status = status_code($r->{answer}{status});
        my $directive = $control ? '' : "proxy_next_upstream_status $status;";
        $locations .= <<"LOC";
        location = /k/$name {
            proxy_pass http://$kept_upstream;
            $directive
            $dirs{$r->{dir}}
        }
        location = /s/$name {
            proxy_pass http://stock;
            $dirs{$r->{dir}}
        }
LOC
    }
    my $relay_server = $upstream_http ne '2' ? '' : <<"RELAY";
    server {
        listen 127.0.0.1:$relay;
        http2 on;
        access_log off;
        location / {
            proxy_pass http://127.0.0.1:$raw;
            proxy_http_version 1.1;
            proxy_buffering off;
            proxy_redirect off;
            proxy_ignore_headers X-Accel-Redirect X-Accel-Expires X-Accel-Limit-Rate
                X-Accel-Buffering X-Accel-Charset Expires Cache-Control Set-Cookie Vary;
            proxy_pass_header Server;
            proxy_pass_header X-Pad;
            proxy_pass_header X-Accel-Redirect;
            proxy_pass_header X-Accel-Expires;
            proxy_pass_header X-Accel-Limit-Rate;
            proxy_pass_header X-Accel-Buffering;
            proxy_pass_header X-Accel-Charset;
        }
    }
RELAY
    open my $fh, '>', "$prefix/conf/nginx.conf" or die "nginx.conf: $!";
    print $fh <<"CONF";
$load$env$user
daemon on;
master_process on;
worker_processes 1;
pid logs/nginx.pid;
error_log logs/error.log info;

events {
    worker_connections 1024;
}

http {
    access_log off;
    default_type text/plain;
    log_format rows "\$request_method \$request_uri \$server_protocol|\$upstream_status|\$next_upstream_status_kept|\$status";

    charset_map koi8-r utf-8 { }    # X-Accel-Charset: koi8-r with `charset utf-8`

    upstream kept { server 127.0.0.1:$a; server 127.0.0.1:$refused backup max_fails=0; }
    upstream stock { server 127.0.0.1:$a; }

$relay_server
    server {
        listen 127.0.0.1:$front1;
        listen 127.0.0.1:$front2$listen2;
        $http2_on
        server_name localhost;
        access_log logs/access.log rows;
        proxy_http_version $upstream_http;

$locations
        location /internal/ {
            internal;
            return 200 "internal redirect to \$uri\\n";
        }
    }
}
CONF
    close $fh or die "nginx.conf: $!";
}

sub read_log {
    my ($name) = @_;
    open my $fh, '<', "$prefix/logs/$name" or return '';
    local $/;
    return <$fh> // '';
}

sub wait_until {
    my ($seconds, $cond) = @_;
    my $deadline = time + $seconds;
    while (time < $deadline) {
        return 1 if $cond->();
        sleep 0.05;
    }
    return $cond->() ? 1 : 0;
}

# ---------------------------------------------------------------------------------------
# The clients
# ---------------------------------------------------------------------------------------

# HTTP/1.1: the response's bytes, as read from the socket until nginx closes it.
sub ask_http1 {
    my ($method, $uri, $headers) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$front1", Timeout => 10)
        or return "connect: $!";
    my $req = "$method $uri HTTP/1.1\r\nHost: localhost\r\n"
        . join('', map { "$_\r\n" } @$headers) . "Connection: close\r\n\r\n";
    syswrite $s, $req;
    my $resp = '';
    local $SIG{ALRM} = sub { die "timeout\n" };
    eval {
        alarm 10;
        1 while sysread $s, $resp, 65536, length $resp;
        alarm 0;
    };
    $resp .= "\n[client: $@]" if $@;
    return $resp;
}

# HTTP/2: the response as curl prints it.
sub ask_http2 {
    my ($method, $uri, $headers, $file) = @_;
    my @cmd = ('curl', '-sS', '-i', '--http2-prior-knowledge', '--max-time', '10',
        ($method eq 'HEAD' ? '--head' : ()), (map { ('-H', $_) } @$headers),
        '-o', $file, "http://127.0.0.1:$front2$uri");
    system(@cmd);
    open my $fh, '<', $file or return "curl wrote nothing ($?)";
    local $/;
    my $out = <$fh> // '';
    $out .= "\n[curl exit status $?]" if $?;
    return $out;
}

sub dechunk {
    my ($body) = @_;
    my $out = '';
    while ($body =~ s/^([0-9a-fA-F]+)[^\r\n]*\r\n//) {
        my $n = hex $1;
        return "[malformed chunked body: $body]" if length($body) < $n + 2;
        last if $n == 0;
        $out .= substr $body, 0, $n, '';
        $body =~ s/^\r\n// or return "[malformed chunked body: $body]";
    }
    return $out;
}

# The normalisations stated in the header of this file.
sub normalise {
    my ($resp) = @_;
    my ($head, $body) = split /\r\n\r\n/, $resp, 2;
    $body //= '';
    $head =~ s/^(date:) .*$/$1 (normalised)/mig;
    $body = "(de-chunked) " . dechunk($body) if $head =~ /^transfer-encoding: chunked\r?$/mi;
    return "$head\r\n\r\n$body";
}

sub show {
    my ($s) = @_;
    $s =~ s/([^\x20-\x7e\n])/sprintf '\\x%02x', ord $1/ge;
    $s =~ s/\\x0d\n/\\r\n/g;
    return $s;
}

# ---------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------

my ($master, $raw_pid);
END {
    my $status = $?;
    if ($master) { kill 'QUIT', $master; wait_until(10, sub { !kill 0, $master }) }
    if ($raw_pid) { kill 'KILL', $raw_pid; waitpid $raw_pid, 0 }
    $? = $status;
}

remove_tree($prefix);
make_path(map { "$prefix/$_" } qw(conf logs out));
write_conf();
$raw_pid = start_raw_server();
my $started = time;
my $out = `'$binary' -p '$prefix/' -c conf/nginx.conf 2>&1`;
is $?, 0, "nginx $version starts (HTTP/$upstream_http to server A)"
    or BAIL_OUT("nginx did not start: $out" . read_log('error.log'));
wait_until(5, sub { ($master) = read_log('nginx.pid') =~ /^(\d+)/; $master });
ok wait_until(5, sub { IO::Socket::INET->new(PeerAddr => "127.0.0.1:$front1", Timeout => 1) }),
    "nginx accepts on $front1";

# The cases: each row for each client protocol and method (a paused row: GET only, as a
# HEAD answer has no body to pause before). Each case asks the kept location, then the stock
# one, and writes both answers under out/.
my @cases;
for my $name (@names) {
    for my $proto ('1.1', '2') {
        for my $method ('GET', 'HEAD') {
            next if $method eq 'HEAD' && $row{$name}{paused};
            push @cases, { name => $name, proto => $proto, method => $method,
                id => "$name.$method.h" . ($proto eq '2' ? '2' : '1') };
        }
    }
}

sub run_case {
    my ($c) = @_;
    for my $path ('k', 's') {
        my $file = "$prefix/out/$c->{id}.$path";
        my $resp = $c->{proto} eq '2'
            ? ask_http2($c->{method}, "/$path/$c->{name}", $row{$c->{name}}{ask}, "$file.curl")
            : ask_http1($c->{method}, "/$path/$c->{name}", $row{$c->{name}}{ask});
        open my $fh, '>', $file or die "$file: $!";
        print $fh $resp;
        close $fh;
    }
}

my @kids;
for my $k (0 .. $parallel - 1) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        for my $i (grep { $_ % $parallel == $k } 0 .. $#cases) {
            run_case($cases[$i]);
        }
        POSIX::_exit(0);
    }
    push @kids, $pid;
}
waitpid $_, 0 for @kids;
my $took = time - $started;

sub slurp {
    open my $fh, '<', $_[0] or return "(no answer: $_[0])";
    local $/;
    return <$fh> // '';
}

for my $c (@cases) {
    my $kept = normalise(slurp("$prefix/out/$c->{id}.k"));
    my $stock = normalise(slurp("$prefix/out/$c->{id}.s"));
    ok $kept eq $stock, "$c->{id}: the kept answer is stock's"
        or diag("$c->{id}: stock (-) and kept (+) answers, normalised:\n"
            . diff(\show($stock), \show($kept), { STYLE => 'Unified', CONTEXT => 20 }));
}

# The access log: which path each request took.
kill 'QUIT', $master;
ok wait_until(10, sub { !kill 0, $master }), 'nginx stops';
undef $master;

my %log;
for (split /\n/, read_log('access.log')) {
    my ($req, $us, $kept, $status) = split /\|/;
    push @{ $log{$req} }, "$us|$kept|$status";
}
my @wrong;
for my $c (@cases) {
    my $status = status_code($row{$c->{name}}{answer}{status});
    my $protocol = $c->{proto} eq '2' ? 'HTTP/2.0' : 'HTTP/1.1';
    my $k = $log{"$c->{method} /k/$c->{name} $protocol"} // ['(no line)'];
    my $s = $log{"$c->{method} /s/$c->{name} $protocol"} // ['(no line)'];
    # $next_upstream_status_kept is the module's, which an internal redirect (X-Accel-Redirect)
    # resets: it may be empty then.
    my $kept_path = $control ? qr/^\Q$status||\E\d+$/ : qr/^\Q$status, 502|\E(\Q$status\E)?\|\d+$/;
    push @wrong, "$c->{id}: kept path @$k" unless "@$k" =~ $kept_path;
    push @wrong, "$c->{id}: stock path @$s" unless "@$s" =~ /^\Q$status||\E\d+$/;
}
is scalar(@wrong), 0, 'the access log shows A then the refusing backup on every kept path, '
    . 'A alone on every stock path'
    or diag(join "\n", @wrong);

my @bad = grep { /\[(alert|crit|emerg)\]|exited on signal|without its body/ }
    split /\n/, read_log('error.log');
is scalar(@bad), 0, 'no [alert], [crit], crash, nor a kept answer sent without its body'
    or diag(join "\n", @bad);

note sprintf '%d rows, %d cases, %d requests in %.1f s (HTTP/%s to server A)%s',
    scalar(@names), scalar(@cases), 2 * @cases, $took, $upstream_http,
    $control ? ', control run: stock against stock' : '';

done_testing;
