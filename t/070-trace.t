# The debug trace: with `error_log ... debug` on an nginx built --with-debug, one line per
# step (hooked, status seen, the decision and the condition that decided it, pass on staged,
# configuration restored, answer kept or not and why, kept answer sent).
use Test::Nginx::Socket;
use HarnessExtensions;
use UpstreamProtocol;

my $binary = $ENV{TEST_NGINX_BINARY} // 'nginx';
if (`$binary -V 2>&1` !~ /--with-debug/) {
    plan(skip_all => 'needs an nginx built --with-debug');
} else {
    plan('no_plan');
}

no_shuffle();
no_root_location();
run_tests();

__DATA__

=== TEST 1: passed on after 404, then 200: every step
--- http_config
    upstream u {
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_2;
    }
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1; location / { return 404 "a\n"; } }
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_2; location / { return 200 "b\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 404;
    }
--- request
GET /t
--- response_body
b
--- error_log eval
[
    'next_upstream_status: hooked request, upstream "u"',
    qr/next_upstream_status: upstream answered 404, peer: "127\.0\.0\.1:\d+": passing on$/,
    "next_upstream_status: answer kept",
    "next_upstream_status: pass on staged: 404 shown to nginx as 404",
    "next_upstream_status: configuration and status 404 restored",
    qr/next_upstream_status: upstream answered 200, peer: "127\.0\.0\.1:\d+": not passing on: status not listed$/,
]
--- no_error_log
kept answer due
every server tried



=== TEST 2: not listed: one status line and the verdict, nothing staged
--- http_config
    upstream u {
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_2;
    }
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1; location / { return 410 "a\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 404;
    }
--- request
GET /t
--- error_code: 410
--- error_log eval
qr/next_upstream_status: upstream answered 410, peer: "127\.0\.0\.1:\d+": not passing on: status not listed$/
--- no_error_log
pass on staged



=== TEST 3: method not listed
--- http_config
    upstream u {
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_2;
    }
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1; location / { return 404 "a\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 404;
    }
--- request
DELETE /t
--- error_code: 404
--- error_log
": not passing on: method not listed
--- no_error_log
pass on staged



=== TEST 4: no tries left (proxy_next_upstream_tries 1)
--- http_config
    upstream u {
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_2;
    }
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1; location / { return 404 "a\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_tries 1;
        proxy_next_upstream_status 404;
    }
--- request
GET /t
--- error_code: 404
--- error_log
next_upstream_status: hooked request
": not passing on: no tries left
--- no_error_log
pass on staged
every server tried



=== TEST 5: proxy_next_upstream_timeout passed
--- http_config
    upstream u {
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_2;
    }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_timeout 100ms;
        proxy_next_upstream_status 404;
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_reply_delay: 300ms
--- tcp_reply eval
"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\na\n"
--- request
GET /t
--- error_code: 404
--- error_log
": not passing on: proxy_next_upstream_timeout passed
--- no_error_log
pass on staged



=== TEST 6: request body streamed (proxy_request_buffering off)
--- http_config
    upstream u {
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_2;
    }
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1; location / { return 404 "a\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_request_buffering off;
        proxy_next_upstream_status 404 methods=PUT;
    }
--- request eval
"PUT /t\n" . ("x" x 1048576)
--- error_code: 404
--- error_log
": not passing on: request body streamed
--- no_error_log
pass on staged



=== TEST 7: POST sent without non_idempotent
--- http_config
    upstream u {
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_2;
    }
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1; location / { return 404 "a\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 404 methods=POST;
    }
--- request
POST /t
x
--- error_code: 404
--- error_log
": not passing on: non-idempotent request sent, no "non_idempotent"



=== TEST 8: a stale cached response is not passed on: "response from cache"
/fill caches the TCP server's 410, already expired; /t's servers refuse, so nginx serves the
stale entry, parsing its header with tries left.
--- http_config
    proxy_cache_path cache levels=1 keys_zone=c:1m;
    upstream fill { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; }
    upstream u {
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_2;
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_3;
    }
--- config
    proxy_cache c;
    proxy_cache_key k;
    location /fill {
        proxy_pass http://fill;
    }
    location /t {
        proxy_pass http://u;
        proxy_next_upstream off;
        proxy_cache_use_stale error;
        proxy_next_upstream_status 410;
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_reply eval
"HTTP/1.1 410 Gone\r\nX-Accel-Expires: \@1\r\nContent-Length: 5\r\n\r\ngone\n"
--- request eval
["GET /fill", "GET /t"]
--- error_code eval
[410, 410]
--- error_log eval
[qr/": not passing on: response from cache|"GET \/fill HTTP/]



=== TEST 9: the 304 that revalidates the cache
--- needs_harness: 5: tcp_reply as a sub, two connections
--- http_config
    proxy_cache_path cache levels=1 keys_zone=c:1m;
    upstream u {
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_2 backup;
    }
--- config
    location / {
        proxy_pass http://u;
        proxy_cache c;
        proxy_cache_revalidate on;
        proxy_next_upstream_status 304 404;
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
--- wait: 1.1
--- error_code eval
[200, 200]
--- error_log eval
[qr/": not passing on: 304 revalidates the cache|upstream answered 200/]



=== TEST 10: the next server refuses: the answer kept is due and sent
--- http_config
    upstream u {
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_2;
    }
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1; location / { return 404 "a\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 404;
    }
--- request
GET /t
--- error_code: 404
--- error_log
next_upstream_status: answer kept
next_upstream_status: configuration and status 404 restored
next_upstream_status: request ends with 502: kept answer due
next_upstream_status: kept answer 404 sent



=== TEST 11: keep_answer=off: not kept, and why
--- http_config
    upstream u {
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_2;
    }
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1; location / { return 404 "a\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 404 keep_answer=off;
    }
--- request
GET /t
--- error_code: 502
--- error_log
next_upstream_status: answer not kept: keep_answer=off
next_upstream_status: request ends with 502: answer not sent, none kept
--- no_error_log
kept answer due



=== TEST 12: an answer an error_page intercepts is not kept
--- http_config
    upstream u {
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_2;
    }
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1; location / { return 404 "a\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_intercept_errors on;
        error_page 404 /nf;
        proxy_next_upstream_status 404;
    }
    location = /nf { return 404 "own\n"; }
--- request
GET /t
--- error_code: 502
--- error_log
next_upstream_status: answer not kept: an error_page intercepts it



=== TEST 13: every server answers a listed status: exhausted
--- http_config
    upstream u {
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_2;
    }
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1; location / { return 404 "a\n"; } }
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_2; location / { return 404 "b\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 404;
    }
--- request
GET /t
--- error_code: 404
--- response_body
b
--- error_log
next_upstream_status: pass on staged
": not passing on: no tries left
next_upstream_status: every server tried answered a listed status



=== TEST 14: a location without the directive: no trace at all
--- http_config
    upstream u {
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_2;
    }
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1; location / { return 404 "a\n"; } }
--- config
    location /other { proxy_next_upstream_status 404; }
    location / {
        proxy_pass http://u;
    }
--- request
GET /t
--- error_code: 404
--- no_error_log
next_upstream_status:
