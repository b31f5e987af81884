# Faults around a retry: servers that answer slowly, in pieces, with garbage, or not at all;
# clients that go away; nginx's own limits (proxy_next_upstream_timeout, _tries, max_fails);
# request bodies; internal redirects and subrequests; the cache.  The next server is often
# the harness's raw TCP server (--- tcp_listen), which can misbehave at will.
#
# The failure kinds of the next server that end a request with a kept answer (refused,
# timeouts, reset, invalid and too big headers) are in t/061-next-server-faults.t, for
# GET, HEAD, large bodies, keepalive and keep_answer=off.
use Test::Nginx::Socket 'no_plan';
use HarnessExtensions;
use UpstreamProtocol;

no_shuffle();
no_root_location();
log_level('info');

# A request body of 1 MiB: pseudo-random bytes of every value, between two markers (the
# harness trims white space at the ends of a body).
my $PutBody;
sub main::put_body {
    return $PutBody if defined $PutBody;
    my $x = 42;
    my @bytes = map { $x = ($x * 1103515245 + 12345) % 2**31; chr($x >> 23) } 1 .. 1048574;
    return $PutBody = join '', '<', @bytes, '>';
}

run_tests();

__DATA__

=== TEST 1: send timeout: the next server does not read a large PUT; the 404 is kept
The next server reads 64 KiB of the request and then nothing for 5 s: nginx cannot send
the rest of the 29 MiB body within proxy_send_timeout (the socket buffers of a connection
that is not read from hold a few MiB; the test server takes bodies up to 30M).
--- http_config
    upstream u { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; server 127.0.0.1:$TEST_NGINX_RAND_PORT_2; }
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        client_max_body_size 30m;
        location / { add_header X-Site a always; return 404 "a\n"; }
    }
--- config
    location / {
        proxy_pass http://u;
        proxy_send_timeout 300ms;
        proxy_next_upstream_status 404 methods=PUT;
        add_header X-Status $upstream_status always;
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_2
--- tcp_reply_delay: 5s
--- tcp_reply eval
"HTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nb\n"
--- request eval
"PUT /t\n" . ("x" x (29 * 1024 * 1024))
--- error_code: 404
--- response_headers
X-Site: a
X-Status: 404, 504
--- response_body
a
--- error_log
upstream timed out (110: Connection timed out) while sending request to upstream
next_upstream_status: no later server gave an answer (504), sending the 404 answered by



=== TEST 2: send timeout with keep_answer=off: nginx's 504
--- http_config
    upstream u { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; server 127.0.0.1:$TEST_NGINX_RAND_PORT_2; }
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        client_max_body_size 30m;
        location / { return 404 "a\n"; }
    }
--- config
    location / {
        proxy_pass http://u;
        proxy_send_timeout 300ms;
        proxy_next_upstream_status 404 methods=PUT keep_answer=off;
        add_header X-Status $upstream_status always;
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_2
--- tcp_reply_delay: 5s
--- tcp_reply eval
"HTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nb\n"
--- request eval
"PUT /t\n" . ("x" x (29 * 1024 * 1024))
--- error_code: 504
--- response_headers
X-Status: 404, 504
--- response_body_like: 504 Gateway Time-out
--- error_log
upstream timed out (110: Connection timed out) while sending request to upstream
--- no_error_log
no later server gave an answer



=== TEST 3: a garbage status line is an HTTP/0.9 answer to nginx: it reaches the client, nothing is kept
nginx takes a response without a valid status line for an HTTP/0.9 one (status "009" in
the log) and passes it on as it is, without a header: that is the server's own answer.
--- http_config
    upstream u { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; server 127.0.0.1:$TEST_NGINX_RAND_PORT_2; }
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1; location / { return 404 "a\n"; } }
    log_format st "$status [$upstream_status]";
--- config
    access_log logs/access.log st;
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 404;
        add_header X-Status $upstream_status always;
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_2
--- tcp_reply eval
"garbage\r\n\r\n"
--- request
GET /t
--- error_code_like: ^$
--- raw_response_headers_like: \Agarbage\r\n\z
--- access_log
009 [404, 200]
--- error_log
upstream sent no valid HTTP/1.0 header while reading response header from upstream
--- no_error_log
no later server gave an answer



=== TEST 4: the next server's header comes in pieces, the status line split: its 200 reaches the client
--- needs_harness: 4: tcp_reply pieces with delay_before
--- http_config
    upstream u { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; server 127.0.0.1:$TEST_NGINX_RAND_PORT_2; }
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1; location / { return 404 "a\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 404;
        add_header X-Status $upstream_status always;
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_2
--- tcp_reply eval
["HTTP/1.1 2", {value => "00 OK\r\nX-Si", delay_before => 0.1},
 {value => "te: b\r\nContent-Length: 2\r\n", delay_before => 0.1},
 {value => "\r\nb\n", delay_before => 0.1}]
--- request
GET /t
--- error_code: 200
--- response_headers
X-Site: b
X-Status: 404, 200
--- response_body
b



=== TEST 5: a listed 404 that comes in pieces is passed on like any other
The first server is the TCP one: the module sees its header parsed in several calls.
--- needs_harness: 4: tcp_reply pieces with delay_before
--- http_config
    upstream u { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; server 127.0.0.1:$TEST_NGINX_RAND_PORT_2; }
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_2; location / { return 200 "b\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 404;
        add_header X-Status $upstream_status always;
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_reply eval
["HTTP/1.1 40", {value => "4 Not Found\r\nX-Si", delay_before => 0.1},
 {value => "te: a\r\nContent-Length: 2\r\n", delay_before => 0.1},
 {value => "\r\na\n", delay_before => 0.1}]
--- request
GET /t
--- error_code: 200
--- response_headers
X-Status: 404, 200
--- response_body
b
--- error_log
upstream answered 404, passing request to the next server



=== TEST 6: a listed 404 that came in pieces is kept whole when the next server refuses
--- needs_harness: 7: tcp_reply pieces with delay_before
--- http_config
    upstream u { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; server 127.0.0.1:$TEST_NGINX_RAND_PORT_2; }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 404;
        add_header X-Status $upstream_status always;
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_reply eval
["HTTP/1.1 40", {value => "4 Not Found\r\nX-Si", delay_before => 0.1},
 {value => "te: a\r\nContent-Length: 3\r\n", delay_before => 0.1},
 {value => "\r\nno\n", delay_before => 0.1}]
--- request
GET /t
--- error_code: 404
--- response_headers
X-Site: a
Content-Length: 3
X-Status: 404, 502
--- response_body
no
--- error_log
next_upstream_status: no later server gave an answer (502), sending the 404 answered by
--- no_error_log
without its body



=== TEST 7: a listed 404 whose body comes after its header, in another packet: kept with the body
The module waits for the rest of a body that fits in proxy_buffer_size before passing on.
--- needs_harness: 7: tcp_reply pieces with delay_before
--- http_config
    upstream u { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; server 127.0.0.1:$TEST_NGINX_RAND_PORT_2; }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 404;
        add_header X-Status $upstream_status always;
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_reply eval
["HTTP/1.1 404 Not Found\r\nX-Site: a\r\nContent-Length: 3\r\n\r\n",
 {value => "no\n", delay_before => 0.2}]
--- request
GET /t
--- error_code: 404
--- response_headers
X-Site: a
Content-Length: 3
X-Status: 404, 502
--- response_body
no
--- error_log
sending the 404 answered by
--- no_error_log
without its body



=== TEST 8: a listed 404 with a chunked body, in two pieces: kept with the body, chunked to the client as stock nginx sends it
--- needs_harness: 7: tcp_reply pieces with delay_before
--- http_config
    upstream u { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; server 127.0.0.1:$TEST_NGINX_RAND_PORT_2; }
--- config
    location / {
        proxy_pass http://u;
        proxy_http_version 1.1;
        proxy_next_upstream_status 404;
        add_header X-Status $upstream_status always;
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_reply eval
["HTTP/1.1 404 Not Found\r\nX-Site: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nno\n\r\n",
 {value => "0\r\n\r\n", delay_before => 0.2}]
--- request
GET /t
--- error_code: 404
--- response_headers
X-Site: a
!Content-Length
Transfer-Encoding: chunked
X-Status: 404, 502
--- response_body
no
--- no_error_log
without its body



=== TEST 9: the next server trickles its body: the client gets all of it
--- needs_harness: 3: tcp_reply pieces with delay_before
--- http_config
    upstream u { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; server 127.0.0.1:$TEST_NGINX_RAND_PORT_2; }
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1; location / { return 404 "a\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 404;
        add_header X-Status $upstream_status always;
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_2
--- tcp_reply eval
["HTTP/1.1 200 OK\r\nContent-Length: 14\r\n\r\n",
 {value => "one ", delay_before => 0.1}, {value => "two ", delay_before => 0.1},
 {value => "three", delay_before => 0.1}, {value => "\n", delay_before => 0.1}]
--- request
GET /t
--- error_code: 200
--- response_headers
X-Status: 404, 200
--- response_body
one two three



=== TEST 10: the next server breaks off in its body: its header is out, nothing is kept
The client gets the 200 and the part of the body that came (the harness warns that the
body is truncated), not the 404: an answer already being sent is never replaced.
--- needs_harness: 7: tcp_reply pieces with delay_before
--- http_config
    upstream u { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; server 127.0.0.1:$TEST_NGINX_RAND_PORT_2; }
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1; location / { return 404 "a\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 404;
        add_header X-Status $upstream_status always;
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_2
--- tcp_reply eval
["HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", {value => "abc", delay_before => 0.1}]
--- request
GET /t
--- error_code: 200
--- response_headers
X-Status: 404, 200
--- response_body chomp
abc
--- error_log
upstream prematurely closed connection while reading upstream
--- no_error_log
no later server gave an answer



=== TEST 11: every server answers a listed status: the last server's own answer, not a kept one
--- http_config
    upstream u { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; server 127.0.0.1:$TEST_NGINX_RAND_PORT_2; }
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location / { add_header X-Site a always; return 404 "a\n"; }
    }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 404 410;
        add_header X-Status $upstream_status always;
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_2
--- tcp_reply eval
"HTTP/1.1 410 Gone\r\nX-Site: b\r\nContent-Length: 7\r\n\r\nb gone\n"
--- request
GET /t
--- error_code: 410
--- response_headers
X-Site: b
X-Status: 404, 410
--- response_body
b gone
--- no_error_log
no later server gave an answer



=== TEST 12: the client goes away while the next server is slow: 499, nothing kept, nothing sent
The client gives up after 300 ms; the next server would answer after 2 s.
--- http_config
    upstream u { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; server 127.0.0.1:$TEST_NGINX_RAND_PORT_2; }
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1; location / { return 404 "a\n"; } }
    log_format st "$status [$upstream_status]";
--- config
    access_log logs/access.log st;
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 404;
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_2
--- tcp_reply_delay: 2s
--- tcp_reply eval
"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nb\n"
--- request
GET /t
--- timeout: 300ms
--- abort
--- error_code_like: ^$
--- access_log
499 [404, 
--- error_log
upstream answered 404, passing request to the next server
client prematurely closed connection
--- no_error_log
no later server gave an answer



=== TEST 13: proxy_next_upstream_timeout passed when the listed answer comes: it reaches the client
The first server answers 410 after 500 ms, past the 200 ms: no retry.  A retry staged
anyway would be refused by nginx, which would then send the 404 it was shown (over
HTTP/1.1 with the server's status line "410 Gone", but $status says 404).
--- http_config
    upstream u { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; server 127.0.0.1:$TEST_NGINX_RAND_PORT_2; }
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_2; location / { return 200 "b\n"; } }
    log_format st "$status [$upstream_status]";
--- config
    access_log logs/access.log st;
    location / {
        proxy_pass http://u;
        proxy_next_upstream_timeout 200ms;
        proxy_next_upstream_status 410;
        add_header X-Status $upstream_status always;
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_reply_delay: 500ms
--- tcp_reply eval
"HTTP/1.1 410 Gone\r\nX-Site: a\r\nContent-Length: 5\r\n\r\ngone\n"
--- request
GET /t
--- error_code: 410
--- response_headers
X-Site: a
X-Status: 410
--- response_body
gone
--- access_log
410 [410]
--- no_error_log
passing request to the next server



=== TEST 14: the same with a proxy_next_upstream_timeout not yet passed: the request is passed on
--- http_config
    upstream u { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; server 127.0.0.1:$TEST_NGINX_RAND_PORT_2; }
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_2; location / { return 200 "b\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_timeout 5s;
        proxy_next_upstream_status 410;
        add_header X-Status $upstream_status always;
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_reply_delay: 500ms
--- tcp_reply eval
"HTTP/1.1 410 Gone\r\nX-Site: a\r\nContent-Length: 5\r\n\r\ngone\n"
--- request
GET /t
--- error_code: 200
--- response_headers
X-Status: 410, 200
--- response_body
b
--- error_log
upstream answered 410, passing request to the next server



=== TEST 15: proxy_next_upstream_tries used up by listed answers: the last try's own answer
Three servers, two tries: the second server's 410 is listed but there is no try left, so
it reaches the client (a retry staged anyway would make it a 404, see TEST 13).
--- http_config
    upstream u {
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_2;
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_3;
    }
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1; location / { return 404 "a\n"; } }
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_3; location / { return 200 "c\n"; } }
    log_format st "$status [$upstream_status]";
--- config
    access_log logs/access.log st;
    location / {
        proxy_pass http://u;
        proxy_next_upstream_tries 2;
        proxy_next_upstream_status 404 410;
        add_header X-Status $upstream_status always;
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_2
--- tcp_reply eval
"HTTP/1.1 410 Gone\r\nX-Site: b\r\nContent-Length: 7\r\n\r\nb gone\n"
--- request
GET /t
--- error_code: 410
--- response_headers
X-Site: b
X-Status: 404, 410
--- response_body
b gone
--- access_log
410 [404, 410]
--- no_error_log
upstream answered 410



=== TEST 16: a server marked down by max_fails through other traffic: "no live upstreams", the 404 is kept
/other (stock http_404 retry, no directive) sends the first request on to the TCP server,
which breaks off: with max_fails=1 it is down for 60 s.  /t then finds no live server
after the first server's 404.
--- http_config
    upstream u {
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_2 max_fails=1 fail_timeout=60s;
    }
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1; location / { return 404 "a\n"; } }
--- config
    add_header X-Status $upstream_status always;
    add_header X-Addr $upstream_addr always;
    location /other {
        proxy_pass http://u;
        proxy_next_upstream error timeout http_404;
    }
    location /t {
        proxy_pass http://u;
        proxy_next_upstream_status 404;
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_2
--- tcp_reply eval
"HTTP/1.1 200 OK\r\nContent-Ty"
--- tcp_query eval
"GET /other HTTP/1.0\r\nHost: u\r\n\r\n"
--- request eval
["GET /other", "GET /t"]
--- error_code eval
[502, 404]
--- response_headers eval
["X-Status: 404, 502", "X-Status: 404, 502"]
--- response_headers_like eval
["X-Addr: 127\\.0\\.0\\.1:\\d+, 127\\.0\\.0\\.1:\\d+", "X-Addr: 127\\.0\\.0\\.1:\\d+, u"]
--- response_body_like eval
["502 Bad Gateway", "^a\n\\z"]



=== TEST 17: a buffered 1 MiB PUT is sent again byte for byte to the next server
The next server is the TCP one: tcp_query is exactly what it must receive, header and
body; it answers only when all of it came.
--- http_config
    upstream u { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; server 127.0.0.1:$TEST_NGINX_RAND_PORT_2; }
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1; location / { return 404 "a\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_read_timeout 5s;
        proxy_next_upstream_status 404 methods=PUT;
        add_header X-Status $upstream_status always;
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_2
--- tcp_reply eval
"HTTP/1.1 201 Created\r\nContent-Length: 7\r\n\r\nstored\n"
--- tcp_query eval
"PUT /t HTTP/1.0\r\nHost: u\r\nContent-Length: 1048576\r\n\r\n" . main::put_body()
--- request eval
"PUT /t\n" . main::put_body()
--- error_code: 201
--- response_headers
X-Status: 404, 201
--- response_body
stored



=== TEST 18: proxy_request_buffering off: a streamed PUT body is never sent again
The first server's 410 is listed and PUT is in methods=, but the body went out as it came:
the 410 reaches the client (a retry staged anyway would make it a 404, see TEST 13).
--- http_config
    upstream u { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; server 127.0.0.1:$TEST_NGINX_RAND_PORT_2; }
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location / { add_header X-Site a always; return 410 "gone\n"; }
    }
    log_format st "$status [$upstream_status]";
--- config
    access_log logs/access.log st;
    location / {
        proxy_pass http://u;
        proxy_request_buffering off;
        proxy_next_upstream_status 410 methods=PUT;
        add_header X-Status $upstream_status always;
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_2
--- tcp_reply eval
"HTTP/1.1 201 Created\r\nContent-Length: 7\r\n\r\nstored\n"
--- request eval
"PUT /t\n" . main::put_body()
--- error_code: 410
--- response_headers
X-Site: a
X-Status: 410
--- response_body
gone
--- access_log
410 [410]
--- no_error_log
passing request to the next server



=== TEST 19: X-Accel-Redirect from the next server: the internal redirect is followed
--- http_config
    upstream u { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; server 127.0.0.1:$TEST_NGINX_RAND_PORT_2; }
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1; location / { return 404 "a\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 404;
    }
    location /internal/ {
        internal;
        add_header X-Status $upstream_status always;
        return 200 "internal $uri\n";
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_2
--- tcp_reply eval
"HTTP/1.1 200 OK\r\nX-Accel-Redirect: /internal/x\r\nContent-Length: 0\r\n\r\n"
--- request
GET /t
--- error_code: 200
--- response_headers
X-Status: 404, 200
--- response_body
internal /internal/x
--- no_error_log
no later server gave an answer



=== TEST 20: proxy_intercept_errors with error_page 404 = @fallback, the directive listing only 410
The first server's 410 is passed on (not intercepted as the 404 nginx is shown); the
second server's 404 is intercepted.
--- http_config
    upstream u { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; server 127.0.0.1:$TEST_NGINX_RAND_PORT_2; }
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1; location / { return 410 "a\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_intercept_errors on;
        error_page 404 = @fallback;
        proxy_next_upstream_status 410;
    }
    location @fallback {
        add_header X-Status $upstream_status always;
        return 200 "fallback\n";
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_2
--- tcp_reply eval
"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nb\n"
--- request
GET /t
--- error_code: 200
--- response_headers
X-Status: 410, 404
--- response_body
fallback



=== TEST 21: proxy_intercept_errors with error_page 410: a 410 meant for the error page is not kept
nginx would not have sent the server's 410 as it is, so it is not kept for the client; the
next server's failure is then nginx's own (502), as without the module.
--- http_config
    upstream u { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; server 127.0.0.1:$TEST_NGINX_RAND_PORT_2; }
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1; location / { return 410 "a\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_intercept_errors on;
        error_page 410 = @fallback;
        proxy_next_upstream_status 410;
        add_header X-Status $upstream_status always;
    }
    location @fallback {
        return 200 "fallback\n";
    }
--- request
GET /t
--- error_code: 502
--- response_headers
X-Status: 410, 502
--- response_body_like: 502 Bad Gateway
--- no_error_log
no later server gave an answer



=== TEST 22: error_page 404 = @proxy from a static location: a retry and a kept answer after the redirect
--- http_config
    upstream u { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; server 127.0.0.1:$TEST_NGINX_RAND_PORT_2; }
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location / { add_header X-Site a always; return 404 "a\n"; }
    }
--- config
    location /static/ {
        root html;
        error_page 404 = @proxy;
    }
    location @proxy {
        proxy_pass http://u;
        proxy_next_upstream_status 404;
        add_header X-Status $upstream_status always;
    }
--- request
GET /static/missing
--- error_code: 404
--- response_headers
X-Site: a
X-Status: 404, 502
--- response_body
a
--- error_log
next_upstream_status: no later server gave an answer (502), sending the 404 answered by



=== TEST 23: auth_request to a location with the directive: the subrequest is passed on, access granted
--- http_config
    upstream u { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; server 127.0.0.1:$TEST_NGINX_RAND_PORT_2; }
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1; location / { return 403 "denied\n"; } }
--- config
    location = /auth {
        internal;
        proxy_pass http://u;
        proxy_pass_request_body off;
        proxy_set_header Content-Length "";
        proxy_next_upstream_status 403;
    }
    location / {
        auth_request /auth;
        auth_request_set $auth_status $upstream_status;
        add_header X-Auth $auth_status always;
        root html;
    }
--- user_files
>>> t
main
--- tcp_listen: $TEST_NGINX_RAND_PORT_2
--- tcp_reply eval
"HTTP/1.1 204 No Content\r\n\r\n"
--- request
GET /t
--- error_code: 200
--- response_headers
X-Auth: 403, 204
--- response_body
main



=== TEST 24: auth_request: the kept 403 of the subrequest denies access (stock nginx: 502, so 500)
--- http_config
    upstream u { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; server 127.0.0.1:$TEST_NGINX_RAND_PORT_2; }
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1; location / { return 403 "denied\n"; } }
--- config
    location = /auth {
        internal;
        proxy_pass http://u;
        proxy_pass_request_body off;
        proxy_set_header Content-Length "";
        proxy_next_upstream_status 403;
    }
    location / {
        auth_request /auth;
        auth_request_set $auth_status $upstream_status;
        add_header X-Auth $auth_status always;
        root html;
    }
--- user_files
>>> t
main
--- request
GET /t
--- error_code: 403
--- response_headers
X-Auth: 403, 502
--- response_body_like: 403 Forbidden
--- error_log
next_upstream_status: no later server gave an answer (502), sending the 403 answered by



=== TEST 25: auth_request with keep_answer=off: the subrequest's 502 is an error, 500
--- http_config
    upstream u { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; server 127.0.0.1:$TEST_NGINX_RAND_PORT_2; }
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1; location / { return 403 "denied\n"; } }
--- config
    location = /auth {
        internal;
        proxy_pass http://u;
        proxy_pass_request_body off;
        proxy_set_header Content-Length "";
        proxy_next_upstream_status 403 keep_answer=off;
    }
    location / {
        auth_request /auth;
        root html;
    }
--- user_files
>>> t
main
--- request
GET /t
--- error_code: 500
--- error_log
auth request unexpected status: 502



=== TEST 26: SSI include through a location with the directive: the subrequest is passed on
--- http_config
    upstream u { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; server 127.0.0.1:$TEST_NGINX_RAND_PORT_2; }
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1; location / { return 404 "a\n"; } }
--- config
    location = /sub {
        proxy_pass http://u;
        proxy_next_upstream_status 404;
    }
    location / {
        root html;
        ssi on;
    }
--- user_files
>>> page.html
[<!--# include virtual="/sub" -->]
--- tcp_listen: $TEST_NGINX_RAND_PORT_2
--- tcp_reply eval
"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nb\n"
--- request
GET /page.html
--- error_code: 200
--- response_body
[b
]



=== TEST 27: SSI include: the subrequest's kept 404 body is included, not nginx's 502 page
--- http_config
    upstream u { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; server 127.0.0.1:$TEST_NGINX_RAND_PORT_2; }
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1; location / { return 404 "a\n"; } }
--- config
    location = /sub {
        proxy_pass http://u;
        proxy_next_upstream_status 404;
    }
    location / {
        root html;
        ssi on;
    }
--- user_files
>>> page.html
[<!--# include virtual="/sub" -->]
--- request
GET /page.html
--- error_code: 200
--- response_body
[a
]
--- error_log
next_upstream_status: no later server gave an answer (502), sending the 404 answered by



=== TEST 28: proxy_cache: a response cached after a retry is then a HIT; no server is asked again
--- http_config
    proxy_cache_path cache levels=1 keys_zone=c:1m;
    upstream u { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; server 127.0.0.1:$TEST_NGINX_RAND_PORT_2; }
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1; location / { return 404 "a\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_cache c;
        proxy_next_upstream_status 404;
        add_header X-Cache $upstream_cache_status always;
        add_header X-Status $upstream_status always;
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_2
--- tcp_reply eval
"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 7\r\n\r\ncached\n"
--- tcp_query eval
"GET /t HTTP/1.0\r\nHost: u\r\n\r\n"
--- request eval
["GET /t", "GET /t"]
--- error_code eval
[200, 200]
--- response_headers eval
["X-Cache: MISS\nX-Status: 404, 200", "X-Cache: HIT\n!X-Status"]
--- response_body eval
["cached\n", "cached\n"]



=== TEST 29: proxy_cache_use_stale: a stale 410 is served as 410 when tries remain (not as 404)
/fill (no directive) caches the TCP server's 410, already expired (X-Accel-Expires: @1).
/t lists 410; its request goes to the next server in turn, which refuses; with
proxy_next_upstream off the stale 410 is sent at once, while two tries are left (three
servers).  The module must not take the cached 410, which nginx parses again with the
proxy's header parser, for a server's answer to pass on.  ($status is checked as well as
the status line: a retry staged and refused would leave the status line "410 Gone" but
make nginx's status 404.)
--- http_config
    proxy_cache_path cache levels=1 keys_zone=c:1m;
    upstream u {
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_2;
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_3;
    }
--- config
    proxy_cache c;
    proxy_cache_key k;
    add_header X-Cache $upstream_cache_status always;
    add_header X-Nginx-Status $status always;
    add_header X-Status $upstream_status always;
    location /fill {
        proxy_pass http://u;
    }
    location /t {
        proxy_pass http://u;
        proxy_next_upstream off;
        proxy_cache_use_stale error;
        proxy_next_upstream_status 410;
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_reply eval
"HTTP/1.1 410 Gone\r\nX-Accel-Expires: \@1\r\nX-Site: a\r\nContent-Length: 5\r\n\r\ngone\n"
--- request eval
["GET /fill", "GET /t"]
--- error_code eval
[410, 410]
--- response_headers eval
["X-Cache: MISS\nX-Site: a\nX-Nginx-Status: 410\nX-Status: 410",
 "X-Cache: STALE\nX-Site: a\nX-Nginx-Status: 410\nX-Status: 502"]
--- response_body eval
["gone\n", "gone\n"]
--- no_error_log
passing request to the next server



=== TEST 30: proxy_cache_revalidate: the server's 304 revalidates the entry (404 listed)
--- needs_harness: 9: tcp_reply as a sub, two connections
--- http_config
    proxy_cache_path cache levels=1 keys_zone=c:1m;
    upstream u {
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_2 backup;
    }
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_2; location / { return 200 "second\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_cache c;
        proxy_cache_revalidate on;
        proxy_next_upstream_status 404;
        add_header X-Cache $upstream_cache_status always;
        add_header X-Status $upstream_status always;
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_reply eval
sub {
    return $_[0] =~ /^If-None-Match: "e1"\r$/mi
        ? "HTTP/1.1 304 Not Modified\r\nETag: \"e1\"\r\nX-Accel-Expires: \@1\r\n\r\n"
        : "HTTP/1.1 200 OK\r\nETag: \"e1\"\r\nX-Accel-Expires: \@1\r\nContent-Length: 6\r\n\r\nfirst\n";
}
--- request eval
["GET /t", "GET /t"]
--- error_code eval
[200, 200]
--- response_headers eval
["X-Cache: MISS\nX-Status: 200", "X-Cache: REVALIDATED\nX-Status: 304"]
--- response_body eval
["first\n", "first\n"]



=== TEST 31: proxy_cache_revalidate with 304 listed: the revalidation's 304 is not passed on
The 304 that answers nginx's own conditional request revalidates the cached entry
("first", REVALIDATED); it is not passed on to the next server ("second").
--- needs_harness: 11: tcp_reply as a sub, two connections
--- http_config
    proxy_cache_path cache levels=1 keys_zone=c:1m;
    upstream u {
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_2 backup;
    }
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_2; location / { return 200 "second\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_cache c;
        proxy_cache_revalidate on;
        proxy_next_upstream_status 304 404;
        add_header X-Cache $upstream_cache_status always;
        add_header X-Status $upstream_status always;
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_reply eval
sub {
    return $_[0] =~ /^If-None-Match: "e1"\r$/mi
        ? "HTTP/1.1 304 Not Modified\r\nETag: \"e1\"\r\nX-Accel-Expires: \@1\r\n\r\n"
        : "HTTP/1.1 200 OK\r\nETag: \"e1\"\r\nX-Accel-Expires: \@1\r\nContent-Length: 6\r\n\r\nfirst\n";
}
--- request eval
["GET /t", "GET /t"]
--- error_code eval
[200, 200]
--- response_headers eval
["X-Cache: MISS\nX-Status: 200", "X-Cache: REVALIDATED\nX-Status: 304"]
--- response_body eval
["first\n", "first\n"]
--- no_error_log
passing request to the next server



=== TEST 32: proxy_cache_valid for errors: a request that got a kept answer leaves no cached 502
nginx would store its 502 as the cache entry's error (proxy_cache_valid any) although the
client got the kept 404; the second request would then be a HIT with nginx's 502 page.
--- http_config
    proxy_cache_path cache levels=1 keys_zone=c:1m;
    upstream u {
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_2 backup;
    }
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location / { add_header X-Site a always; return 404 "a\n"; }
    }
--- config
    location / {
        proxy_pass http://u;
        proxy_cache c;
        proxy_cache_valid any 1m;
        proxy_next_upstream_status 404;
        add_header X-Cache $upstream_cache_status always;
        add_header X-Status $upstream_status always;
    }
--- request eval
["GET /t", "GET /t"]
--- error_code eval
[404, 404]
--- response_headers eval
["X-Cache: MISS\nX-Site: a\nX-Status: 404, 502", "X-Cache: MISS\nX-Site: a\nX-Status: 404, 502"]
--- response_body eval
["a\n", "a\n"]



=== TEST 33: an early hints response (103) before the listed status: the request is passed on
nginx 1.29.0+ reads a 103 and then the final answer from the same server; the module judges
only the final one.
--- skip_nginx: 3: < 1.29.0
--- http_config
    upstream u { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; server 127.0.0.1:1986 backup; }
    server { listen 127.0.0.1:1986; location / { return 200 "b\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 404;
        add_header X-Status $upstream_status always;
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_reply eval
"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
. "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\nConnection: close\r\n\r\na\n"
--- request
GET /t
--- error_code: 200
--- response_headers
X-Status: 404, 200
--- response_body
b
