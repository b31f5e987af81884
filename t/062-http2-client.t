# The same behaviour for a client speaking HTTP/2 (cleartext, prior knowledge): the
# harness sends the requests with curl (--- http2, as upstream Test::Nginx does).
# HTTP/2 has no status line, so the client sees nginx's own idea of the status: a retry
# staged but then refused by nginx would show here as the 404 nginx was shown.
use Test::Nginx::Socket;
use UpstreamProtocol;

my $curl = `curl --version 2>/dev/null` // '';
if ($curl !~ /^Features:.*\bHTTP2\b/m) {
    plan(skip_all => 'needs curl with HTTP/2 support');
} else {
    plan('no_plan');
}

no_shuffle();
no_root_location();
log_level('info');
run_tests();

__DATA__

=== TEST 1: HTTP/2: a listed 404 is passed on to the next server
--- http2
--- http_config
    upstream u { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; server 127.0.0.1:$TEST_NGINX_RAND_PORT_2; }
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1; location / { return 404 "a\n"; } }
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_2; location / { return 200 "b\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 404;
        add_header X-Status $upstream_status always;
        add_header X-Proto $server_protocol always;
    }
--- request
GET /t
--- error_code: 200
--- response_headers
X-Proto: HTTP/2.0
X-Status: 404, 200
--- response_body
b



=== TEST 2: HTTP/2: the kept 404 when the next server refuses: status, headers, body
--- http2
--- http_config
    upstream u { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; server 127.0.0.1:$TEST_NGINX_RAND_PORT_2; }
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location / {
            add_header X-Site a always;
            default_type application/json;
            return 404 '{"errors":[]}\n';
        }
    }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 404;
        add_header X-Status $upstream_status always;
    }
--- request
GET /t
--- error_code: 404
--- response_headers
X-Site: a
Content-Type: application/json
Content-Length: 14
X-Status: 404, 502
--- response_body
{"errors":[]}
--- error_log
next_upstream_status: no later server gave an answer (502), sending the 404 answered by



=== TEST 3: HTTP/2: HEAD gets the kept 404's headers and no body
--- http2
--- http_config
    upstream u { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; server 127.0.0.1:$TEST_NGINX_RAND_PORT_2; }
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location / { add_header X-Site a always; return 404 "a\n"; }
    }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 404;
        add_header X-Status $upstream_status always;
    }
--- request
HEAD /t
--- error_code: 404
--- response_headers
X-Site: a
Content-Length: 2
X-Status: 404, 502
--- response_body eval
""



=== TEST 4: HTTP/2: the kept 404 when the next server times out, its body too large to keep
--- http2
--- http_config
    upstream u { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; server 127.0.0.1:$TEST_NGINX_RAND_PORT_2; }
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        add_header X-Site a always;
        location / { error_page 404 /big.txt; return 404; }
        location = /big.txt { root html; internal; }
    }
--- config
    location / {
        proxy_pass http://u;
        proxy_read_timeout 300ms;
        proxy_next_upstream_status 404;
        add_header X-Status $upstream_status always;
    }
--- user_files eval
[["big.txt", "x" x 100000]]
--- tcp_listen: $TEST_NGINX_RAND_PORT_2
--- tcp_reply:
--- tcp_no_close
--- request
GET /t
--- error_code: 404
--- response_headers
X-Site: a
Content-Length: 0
X-Status: 404, 504
--- response_body eval
""
--- error_log
upstream timed out (110: Connection timed out) while reading response header from upstream
without its body: it does not fit in proxy_buffer_size



=== TEST 5: HTTP/2 with keep_answer=off: nginx's 502
--- http2
--- http_config
    upstream u { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; server 127.0.0.1:$TEST_NGINX_RAND_PORT_2; }
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1; location / { return 404 "a\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 404 keep_answer=off;
        add_header X-Status $upstream_status always;
    }
--- request
GET /t
--- error_code: 502
--- response_headers
X-Status: 404, 502
--- response_body_like: 502 Bad Gateway



=== TEST 6: HTTP/2: a listed 410 past proxy_next_upstream_timeout reaches the client as 410
--- http2
--- http_config
    upstream u { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; server 127.0.0.1:$TEST_NGINX_RAND_PORT_2; }
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_2; location / { return 200 "b\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_timeout 200ms;
        proxy_next_upstream_status 410;
        add_header X-Status $upstream_status always;
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_reply_delay: 500ms
--- tcp_reply eval
"HTTP/1.1 410 Gone\r\nContent-Length: 5\r\n\r\ngone\n"
--- request
GET /t
--- error_code: 410
--- response_headers
X-Status: 410
--- response_body
gone



=== TEST 7: HTTP/2: a buffered PUT is passed on with its body
--- http2
--- http_config
    upstream u { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; server 127.0.0.1:$TEST_NGINX_RAND_PORT_2; }
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1; location / { return 404 "a\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 404 methods=PUT;
        add_header X-Status $upstream_status always;
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_2
--- tcp_reply eval
"HTTP/1.1 201 Created\r\nContent-Length: 7\r\n\r\nstored\n"
--- tcp_query eval
"PUT /t HTTP/1.0\r\nHost: u\r\nContent-Length: 11\r\n\r\nhello world"
--- request
PUT /t
hello world
--- error_code: 201
--- response_headers
X-Status: 404, 201
--- response_body
stored
