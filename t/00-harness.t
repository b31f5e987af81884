# Self-test of the test harness (t/lib/Test/Nginx/Socket.pm) against a plain
# nginx: no module needed.  Every block must pass; the blocks only use
# features that the upstream Test::Nginx::Socket has as well, except those
# named "this harness only", which skip themselves under upstream.
#
#   TEST_NGINX_BINARY=$PWD/build/nginx/sbin/nginx prove -I t/lib t/00-harness.t

use Test::Nginx::Socket 'no_plan';
use HarnessExtensions;
use UpstreamProtocol;

no_shuffle();
no_root_location();
log_level('debug');

# Blocks that do not say otherwise must log no [error].
add_block_preprocessor(sub {
    my $block = shift;
    if (!defined $block->no_error_log && !defined $block->must_die) {
        $block->set_value('no_error_log', "[error]\n");
    }
});

# Checks must also fail when they should: run a .t file whose blocks have
# wrong expectations, or log an [alert], and look for the failures in its
# output.  Only for our own harness (Test::Nginx::Socket::crash_lines is not
# upstream's).
if (Test::Nginx::Socket->can('crash_lines')) {
    self_check();
}

run_tests();

sub self_check {
    require File::Temp;
    my $dir = File::Temp::tempdir('harness-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my ($lib) = $INC{'Test/Nginx/Socket.pm'} =~ m{^(.*)/Test/Nginx/Socket\.pm$};

    open my $fh, '>', "$dir/must-fail.t" or die "$dir/must-fail.t: $!";
    print $fh <<'_EOT_';
use Test::Nginx::Socket 'no_plan';
no_shuffle();
master_on();    # worker_rlimit_nofile is applied by workers only
log_level('debug');
run_tests();

__DATA__

=== TEST 1: wrong expectations
--- config
    location = /t { add_header X-A a; return 200 "hello\n"; }
--- request
GET /t
--- error_code: 201
--- response_headers
X-A: b
--- response_body
hellO
--- error_log
no such line
--- no_error_log
[debug]

=== TEST 2: an [alert] in the error log fails the block
--- main_config
    worker_rlimit_nofile 999999999;
--- config
    location = /t { return 200 "ok\n"; }
--- request
GET /t
--- response_body
ok

=== TEST 3: a wrong tcp_query fails; a server that keeps its connection is still stopped
--- config
    location = /t { proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1; proxy_read_timeout 200ms; }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_reply:
--- tcp_no_close
--- tcp_query: not what nginx sends
--- request
GET /t
--- error_code: 504
_EOT_
    close $fh;

    my $out = do {
        local $ENV{TEST_NGINX_SERVROOT} = "$dir/servroot";
        local $ENV{TEST_NGINX_NO_SHUFFLE} = 1;
        my @cmd = map { "'" . s/'/'\\''/gr . "'" } $^X, "-I$lib", "$dir/must-fail.t";
        `@cmd 2>&1`;
    };
    my %fails = map { /^not ok \d+ - (.*)$/ ? ($1 => 1) : () } split /\n/, $out;
    for my $want (
        'TEST 1: wrong expectations - status code ok',
        'TEST 1: wrong expectations - header X-A ok',
        'TEST 1: wrong expectations - response_body - response is expected (repeated req 0, req 0)',
        'TEST 1: wrong expectations - pattern "no such line" should match a line in error.log (req 0)',
    ) {
        ok($fails{$want}, "harness self-check: fails: $want") or diag($out);
    }
    ok((grep { /^TEST 1: .*"\[debug\]" should not match/ } keys %fails),
       'harness self-check: fails: no_error_log [debug]');
    ok((grep { /^TEST 2: .* no crash or \[alert\] line, but has: .*\[alert\].*setrlimit/ } keys %fails),
       'harness self-check: fails: an [alert] line in error.log');
    ok($fails{'TEST 3: a wrong tcp_query fails; a server that keeps its connection is still stopped - tcp_query ok'},
       'harness self-check: fails: a wrong tcp_query') or diag($out);
    is(scalar(keys %fails), 7, 'harness self-check: no other failure') or diag($out);

    # Neither nginx nor the TCP server of must-fail.t outlives it.
    my @left;
    opendir my $proc, '/proc' or die "/proc: $!";
    for my $pid (grep { /^\d+$/ } readdir $proc) {
        open my $in, '<', "/proc/$pid/cmdline" or next;
        my $cmd = do { local $/; <$in> } // '';
        push @left, $pid if index($cmd, "$dir/") >= 0;
    }
    is("@left", '', 'harness self-check: no process of must-fail.t left behind');

    my @crash = Test::Nginx::Socket::crash_lines([
        "2026/01/01 00:00:00 [notice] 1#1: signal 17 (SIGCHLD) received from 2\n",
        "2026/01/01 00:00:00 [alert] 1#1: worker process 2 exited on signal 11 (core dumped)\n",
        "2026/01/01 00:00:00 [error] 2#2: *1 upstream timed out\n",
    ]);
    is(scalar(@crash), 1, 'harness self-check: crash_lines finds a crashed worker');
}

__DATA__

=== TEST 1: return 200 with a body and headers
--- config
    location = /t {
        add_header X-Foo bar;
        add_header X-Empty "";
        add_header X-Echo $http_x_test;
        return 200 "hello\n";
    }
--- request
GET /t
--- more_headers
X-Test: some value
--- error_code: 200
--- response_headers
X-Foo: bar
X-Echo: some value
Content-Type: text/plain
Content-Length: 6
!X-Empty
!X-Missing
--- response_headers_like
X-Foo: b.r
Server: nginx/\d+\.\d+\.\d+
--- response_body
hello



=== TEST 2: the $upstream_status of a proxied request, with next upstream on 404
--- http_config
    upstream backends {
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_2;
    }
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location / { return 404 "a\n"; }
    }
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_2;
        location / { return 200 "b\n"; }
    }
--- config
    location /t {
        proxy_pass http://backends;
        proxy_next_upstream error timeout http_404;
        add_header X-Upstream-Status $upstream_status always;
    }
--- request
GET /t
--- error_code: 200
--- response_headers
X-Upstream-Status: 404, 200
--- response_body
b
--- error_log
http next upstream, 200
--- no_error_log
[error]
[warn]



=== TEST 3: a HEAD request has no body
--- config
    location = /t {
        return 200 "hello\n";
    }
--- request
HEAD /t
--- response_headers
Content-Length: 6
--- response_body



=== TEST 4: a chunked response (ssi drops the length), from a user file
--- user_files
>>> index.html
a<!--# echo var="arg_x" default="-" -->c
--- config
    location / {
        root html;
        ssi on;
        ssi_types text/plain;
        chunked_transfer_encoding on;
    }
--- request
GET /index.html?x=b
--- response_headers
Transfer-Encoding: chunked
!Content-Length
--- response_body
abc



=== TEST 5: a chunked response through a proxy, with a long body
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location / {
            root html;
            ssi on;
            ssi_types text/plain;
        }
    }
--- user_files eval
[["big.txt", ("0123456789abcdef" x 4096) . "<!--# echo var=\"arg_x\" -->\n"]]
--- config
    location /t {
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/big.txt;
        proxy_http_version 1.1;
    }
--- request
GET /t?x=end
--- response_headers
Transfer-Encoding: chunked
--- response_body eval
("0123456789abcdef" x 4096) . "end\n"



=== TEST 6: nginx must die on an unknown directive
--- config
    location /t {
        no_such_directive on;
    }
--- must_die
--- error_log
unknown directive "no_such_directive"



=== TEST 7: two requests, each on its own connection
--- config
    location = /a { return 200 "a\n"; }
    location = /b { return 404 "no b\n"; }
--- request eval
["GET /a", "GET /b"]
--- error_code eval
[200, 404]
--- response_body eval
["a\n", "no b\n"]
--- response_headers eval
["Content-Length: 2", "Content-Length: 5"]



=== TEST 8: --- error_log and --- no_error_log, plain and eval
--- config
    location / {
        root html;
    }
--- request
GET /missing.html
--- error_code: 404
--- response_body_like: 404 Not Found
--- error_log
open() "
missing.html" failed (2: No such file or directory)
--- no_error_log eval
[qr/\[(crit|emerg)\]/, "no such line"]



=== TEST 9: a request body gets a Content-Length
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location / { return 200 "len=$content_length body=$request_body\n"; }
    }
--- config
    location /t {
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1;
    }
--- request
POST /t
hello world
--- response_body
len=11 body=



=== TEST 10: raw_request, response_body_like, access_log
--- config
    location = /t { return 200 "raw\n"; }
--- raw_request eval
"GET /t HTTP/1.0\r\nHost: localhost\r\n\r\n"
--- response_body_like chomp
^raw$
--- raw_response_headers_like: ^HTTP/1\.1 200 OK\r\n
--- access_log
"GET /t HTTP/1.0" 200
--- no_access_log
POST



=== TEST 11: --- abort: a read timeout is not a failure
--- config
    location = /t {
        limit_rate 1;
        return 200 "slow...\n";
    }
--- request
GET /t
--- timeout: 300ms
--- abort
--- ignore_response



=== TEST 12: --- wait, --- log_level, and $TEST_NGINX_SERVER_PORT in the config
--- log_level: info
--- config
    location = /t {
        return 200 "port=$server_port\n";
    }
    location = /e {
        return 200 "$TEST_NGINX_SERVER_PORT\n";
    }
--- request
GET /t
--- wait: 0.1
--- response_body
port=$TEST_NGINX_SERVER_PORT
--- no_error_log
[debug]



=== TEST 13: skip_nginx skips on an old nginx
--- skip_nginx: 1: < 1.0.0
--- config
    location = /t { return 200 "ok\n"; }
--- request
GET /t
--- response_body
ok



=== TEST 14: skip_nginx skips on a new nginx
--- skip_nginx: 3: > 1.0.0
--- config
    location = /t { return 200 "ok\n"; }
--- request
GET /t
--- response_body
never checked



=== TEST 15: tcp_listen: a raw TCP server answers for the upstream; tcp_query is what it received
--- http_config
    upstream tcp { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; }
--- config
    location /t {
        proxy_pass http://tcp;
        add_header X-Status $upstream_status always;
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_reply eval
"HTTP/1.1 201 Created\r\nX-From: tcp\r\nContent-Length: 6\r\n\r\nhello\n"
--- tcp_query eval
"GET /t?a=1 HTTP/1.0\r\nHost: tcp\r\nX-Test: 1\r\n\r\n"
--- request
GET /t?a=1
--- more_headers
X-Test: 1
--- error_code: 201
--- response_headers
X-From: tcp
X-Status: 201
--- response_body
hello



=== TEST 16: tcp_query_len, with a request body (read until that many bytes came)
--- http_config
    upstream tcp { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; }
--- config
    location /t { proxy_pass http://tcp; }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_reply eval
"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n"
--- tcp_query_len: 100054
--- request eval
"PUT /t\n" . ("x" x 100000)
--- response_body
ok



=== TEST 17: tcp_reply as an array: the pieces one after the other, after tcp_reply_delay
--- http_config
    upstream tcp { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; }
--- config
    location /t {
        proxy_pass http://tcp;
        add_header X-Time $upstream_header_time always;
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_reply_delay: 300ms
--- tcp_reply eval
["HTTP/1.1 200 OK\r\n", "Content-Length: 6\r\n\r\n", "ab", "cdef"]
--- request
GET /t
--- response_headers_like
X-Time: 0\.[3-9]\d*
--- response_body: abcdef



=== TEST 18: this harness only: several connections (one per request), each checked; tcp_reply as a sub
Upstream's TCP server serves one connection.
--- needs_harness: 12: several connections to the TCP server, tcp_reply as a sub
--- http_config
    upstream tcp { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; }
--- config
    location / { proxy_pass http://tcp; }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_reply eval
sub {
    my ($uri) = $_[0] =~ m{^GET (\S+) };
    my $body = "uri=$uri\n";
    return "HTTP/1.1 200 OK\r\nContent-Length: " . length($body) . "\r\n\r\n$body";
}
--- tcp_query_len: 30
--- request eval
["GET /a", "GET /b", "GET /c"]
--- response_body eval
["uri=/a\n", "uri=/b\n", "uri=/c\n"]



=== TEST 19: tcp_no_close: the server sends its reply (here nothing) and keeps the connection
--- http_config
    upstream tcp { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; }
--- config
    location /t {
        proxy_pass http://tcp;
        proxy_read_timeout 300ms;
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_reply:
--- tcp_no_close
--- request
GET /t
--- error_code: 504
--- error_log
upstream timed out (110: Connection timed out) while reading response header from upstream
--- no_error_log
[alert]



=== TEST 20: tcp_shutdown: 1 shuts the write side down when the connection is accepted (here 200 ms later)
Without the delay, nginx may see the end of the connection before it has sent the
request, and send nothing.
--- http_config
    upstream tcp { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; }
--- config
    location /t { proxy_pass http://tcp; }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_shutdown: 1
--- tcp_shutdown_delay: 0.2
--- tcp_query eval
"GET /t HTTP/1.0\r\nHost: tcp\r\n\r\n"
--- request
GET /t
--- error_code: 502
--- error_log
upstream prematurely closed connection while reading response header from upstream
--- no_error_log
[alert]



=== TEST 21: this harness only: delay_before between pieces (the body trickles in)
--- needs_harness: 5: tcp_reply pieces with delay_before
--- http_config
    upstream tcp { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; }
--- config
    location /t {
        proxy_pass http://tcp;
        proxy_buffering off;
        add_header X-Time $upstream_header_time always;
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_reply eval
["HTTP/1.1 200 OK\r\nContent-", {value => "Length: 6\r\n\r\n", delay_before => 0.2},
 {value => "abc", delay_before => "100ms"}, {value => "def", delay_before => 0.1}]
--- request
GET /t
--- response_headers_like
X-Time: 0\.[2-9]\d*
--- response_body: abcdef
--- access_log eval
qr/"GET \/t HTTP\/1\.1" 200 6 /



=== TEST 22: this harness only: a piece with reset => 1 resets the connection after it
--- needs_harness: 3: tcp_reply with reset => 1 (an RST)
--- http_config
    upstream tcp { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; }
--- config
    location /t { proxy_pass http://tcp; }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_reply eval
[{value => "HTTP/1.1 200 OK\r\nContent-Ty", reset => 1}]
--- request
GET /t
--- error_code: 502
--- error_log
recv() failed (104: Connection reset by peer) while reading response header from upstream
--- no_error_log
[alert]



=== TEST 23: http2: the request goes over cleartext HTTP/2 (curl), with a body; HEAD too
--- skip_eval: 10: `curl --version 2>/dev/null` !~ /^Features:.*\bHTTP2\b/m || !Test::Nginx::Socket->can('tcp_server_loop') && !eval { require IPC::Run; 1 }
--- http2
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        return 200 "$request_method len=$content_length\n";
    }
--- config
    # The body is read (by the proxy) before the answer: a stream answered
    # while its body is still coming is reset by nginx (NO_ERROR), and curl
    # 7.88 then fails with exit code 92 about half of the time.  (The server
    # answering is another port: before 1.25, an http2 port speaks only h2.)
    location = /t {
        add_header X-Proto $server_protocol;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1;
    }
--- request eval
["POST /t\nhello", "HEAD /t"]
--- error_code eval
[200, 200]
--- response_headers eval
["X-Proto: HTTP/2.0\nContent-Length: 11", "X-Proto: HTTP/2.0\nContent-Length: 10"]
--- response_body eval
["POST len=5\n", ""]
