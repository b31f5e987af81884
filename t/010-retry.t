# The directive's behaviour: which responses pass a request on, what the client gets,
# and what $upstream_status / $upstream_addr and the error log say.
use Test::Nginx::Socket 'no_plan';
use UpstreamProtocol;

no_shuffle();
no_root_location();
log_level('info');
run_tests();

__DATA__

=== TEST 1: a listed 404 passes the request on; $upstream_status shows both attempts
--- http_config
    upstream u { server 127.0.0.1:1985; server 127.0.0.1:1986; }
    server { listen 127.0.0.1:1985; location / { return 404 "a\n"; } }
    server { listen 127.0.0.1:1986; location / { return 200 "b\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 404;
        add_header X-Status $upstream_status always;
        add_header X-Addr $upstream_addr always;
    }
--- request
GET /t
--- error_code: 200
--- response_headers
X-Status: 404, 200
X-Addr: 127.0.0.1:1985, 127.0.0.1:1986
--- response_body
b
--- error_log
next_upstream_status: upstream answered 404, passing request to the next server, peer: "127.0.0.1:1985"
request: "GET /t HTTP/1.1"
--- no_error_log
[error]



=== TEST 2: a status stock nginx cannot retry (410); the real status is logged, not 404
--- http_config
    upstream u { server 127.0.0.1:1985; server 127.0.0.1:1986; }
    server { listen 127.0.0.1:1985; location / { return 410 "a\n"; } }
    server { listen 127.0.0.1:1986; location / { return 200 "b\n"; } }
    log_format statuses "$status [$upstream_status] [$upstream_addr]";
--- config
    access_log logs/access.log statuses;
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 410;
    }
--- request
GET /t
--- error_code: 200
--- response_body
b
--- access_log
200 [410, 200] [127.0.0.1:1985, 127.0.0.1:1986]
--- error_log
upstream answered 410, passing request to the next server



=== TEST 3: a status that is not listed reaches the client as it is
--- http_config
    upstream u { server 127.0.0.1:1985; server 127.0.0.1:1986; }
    server { listen 127.0.0.1:1985; location / { return 418 "teapot\n"; } }
    server { listen 127.0.0.1:1986; location / { return 200 "b\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 404 410 5xx;
        add_header X-Status $upstream_status always;
    }
--- request
GET /t
--- error_code: 418
--- response_headers
X-Status: 418
--- response_body
teapot
--- no_error_log
passing request to the next server



=== TEST 4: a range: 503 in 500-504
--- http_config
    upstream u { server 127.0.0.1:1985; server 127.0.0.1:1986; }
    server { listen 127.0.0.1:1985; location / { return 503 "a\n"; } }
    server { listen 127.0.0.1:1986; location / { return 200 "b\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 500-504;
        add_header X-Status $upstream_status always;
    }
--- request
GET /t
--- error_code: 200
--- response_headers
X-Status: 503, 200
--- response_body
b



=== TEST 5: a class: 451 in 4xx, then 307 in 3xx, then an answer
--- http_config
    upstream u { server 127.0.0.1:1985; server 127.0.0.1:1986; server 127.0.0.1:1987; }
    server { listen 127.0.0.1:1985; location / { return 451 "a\n"; } }
    server { listen 127.0.0.1:1986; location / { return 307 http://example.com/; } }
    server { listen 127.0.0.1:1987; location / { return 200 "c\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 4xx 3xx;
        add_header X-Status $upstream_status always;
    }
--- request
GET /t
--- error_code: 200
--- response_headers
X-Status: 451, 307, 200
--- response_body
c



=== TEST 6: every server answers a listed status: the last server's own response reaches the client
--- http_config
    upstream u { server 127.0.0.1:1985; server 127.0.0.1:1986; }
    server { listen 127.0.0.1:1985; location / { return 404 "a\n"; } }
    server {
        listen 127.0.0.1:1986;
        location / { add_header X-Backend b always; return 410 "gone from b\n"; }
    }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 404 410;
        add_header X-Status $upstream_status always;
    }
--- request
GET /t
--- error_code: 410
--- response_headers
X-Status: 404, 410
X-Backend: b
--- response_body
gone from b



=== TEST 7: HEAD is passed on by default
--- http_config
    upstream u { server 127.0.0.1:1985; server 127.0.0.1:1986; }
    server { listen 127.0.0.1:1985; location / { return 404; } }
    server { listen 127.0.0.1:1986; location / { add_header X-Backend b; return 200 "b\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 404;
        add_header X-Status $upstream_status always;
    }
--- request
HEAD /t
--- error_code: 200
--- response_headers
X-Status: 404, 200
X-Backend: b



=== TEST 8: writes stay where they were sent by default: PUT is not passed on
--- http_config
    upstream u { server 127.0.0.1:1985; server 127.0.0.1:1986; }
    server { listen 127.0.0.1:1985; location / { return 404 "a\n"; } }
    server { listen 127.0.0.1:1986; location / { return 200 "b\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 404;
        add_header X-Status $upstream_status always;
    }
--- request
PUT /t
hello
--- error_code: 404
--- response_headers
X-Status: 404
--- response_body
a



=== TEST 9: methods=PUT passes a PUT on, with its body
--- http_config
    upstream u { server 127.0.0.1:1985; server 127.0.0.1:1986; }
    server { listen 127.0.0.1:1985; location / { return 404 "a\n"; } }
    server {
        listen 127.0.0.1:1986;
        location / {
            proxy_set_header X-Body $request_body;
            proxy_pass http://127.0.0.1:1986/echo;
        }
        location /echo { return 200 "b got $request_method $http_x_body\n"; }
    }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 404 methods=GET,PUT;
        add_header X-Status $upstream_status always;
    }
--- request
PUT /t
hello
--- error_code: 200
--- response_headers
X-Status: 404, 200
--- response_body
b got PUT hello



=== TEST 10: methods= narrows: with methods=GET a HEAD is not passed on
--- http_config
    upstream u { server 127.0.0.1:1985; server 127.0.0.1:1986; }
    server { listen 127.0.0.1:1985; location / { return 404; } }
    server { listen 127.0.0.1:1986; location / { return 200 "b\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 404 methods=GET;
        add_header X-Status $upstream_status always;
    }
--- request
HEAD /t
--- error_code: 404
--- response_headers
X-Status: 404



=== TEST 11: POST listed in methods= still needs non_idempotent, as in stock nginx
--- http_config
    upstream u { server 127.0.0.1:1985; server 127.0.0.1:1986; }
    server { listen 127.0.0.1:1985; location / { return 404 "a\n"; } }
    server { listen 127.0.0.1:1986; location / { return 200 "b\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 404 methods=POST;
        add_header X-Status $upstream_status always;
    }
--- request
POST /t
hello
--- error_code: 404
--- response_headers
X-Status: 404
--- response_body
a



=== TEST 12: POST listed in methods= with non_idempotent in proxy_next_upstream is passed on
--- http_config
    upstream u { server 127.0.0.1:1985; server 127.0.0.1:1986; }
    server { listen 127.0.0.1:1985; location / { return 404 "a\n"; } }
    server {
        listen 127.0.0.1:1986;
        location / {
            proxy_set_header X-Body $request_body;
            proxy_pass http://127.0.0.1:1986/echo;
        }
        location /echo { return 200 "b got $http_x_body\n"; }
    }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream error timeout non_idempotent;
        proxy_next_upstream_status 404 methods=POST;
        add_header X-Status $upstream_status always;
    }
--- request
POST /t
hello
--- error_code: 200
--- response_headers
X-Status: 404, 200
--- response_body
b got hello



=== TEST 13: proxy_next_upstream_tries limits the attempts
--- http_config
    upstream u {
        server 127.0.0.1:1985; server 127.0.0.1:1986; server 127.0.0.1:1987;
    }
    server { listen 127.0.0.1:1985; location / { return 404 "a\n"; } }
    server { listen 127.0.0.1:1986; location / { return 404 "b\n"; } }
    server { listen 127.0.0.1:1987; location / { return 200 "c\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_tries 2;
        proxy_next_upstream_status 404;
        add_header X-Status $upstream_status always;
    }
--- request
GET /t
--- error_code: 404
--- response_headers
X-Status: 404, 404
--- response_body
b



=== TEST 14: a retried status does not count against max_fails
Two requests: with max_fails=1 counting the 404, the second request would skip the first
server ("200" alone, or "404" from the second one first); it starts at the first again.
--- http_config
    upstream u {
        server 127.0.0.1:1985 max_fails=1 fail_timeout=60s;
        server 127.0.0.1:1986 backup;
    }
    server { listen 127.0.0.1:1985; location / { return 404 "a\n"; } }
    server { listen 127.0.0.1:1986; location / { return 200 "b\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 404;
        add_header X-Status $upstream_status always;
    }
--- request eval
["GET /t", "GET /t"]
--- error_code eval
[200, 200]
--- response_headers eval
["X-Status: 404, 200", "X-Status: 404, 200"]
--- no_error_log
upstream server temporarily disabled



=== TEST 15: not even a 5xx retried by the module counts against max_fails
--- http_config
    upstream u {
        server 127.0.0.1:1985 max_fails=1 fail_timeout=60s;
        server 127.0.0.1:1986 backup;
    }
    server { listen 127.0.0.1:1985; location / { return 502 "a\n"; } }
    server { listen 127.0.0.1:1986; location / { return 200 "b\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 502;
        add_header X-Status $upstream_status always;
    }
--- request eval
["GET /t", "GET /t"]
--- error_code eval
[200, 200]
--- response_headers eval
["X-Status: 502, 200", "X-Status: 502, 200"]
--- no_error_log
upstream server temporarily disabled



=== TEST 16: the directive is inherited from server level, and "off" cancels it
--- http_config
    upstream u { server 127.0.0.1:1985; server 127.0.0.1:1986 backup; }
    server { listen 127.0.0.1:1985; location / { return 404 "a\n"; } }
    server { listen 127.0.0.1:1986; location / { return 200 "b\n"; } }
--- config
    proxy_next_upstream_status 404;
    location /inherited { proxy_pass http://u; }
    location /off { proxy_pass http://u; proxy_next_upstream_status off; }
--- request eval
["GET /inherited", "GET /off"]
--- error_code eval
[200, 404]
--- response_body eval
["b\n", "a\n"]



=== TEST 17: a location's own list replaces the inherited one
--- http_config
    upstream u { server 127.0.0.1:1985; server 127.0.0.1:1986; }
    server { listen 127.0.0.1:1985; location / { return 404 "a\n"; } }
    server { listen 127.0.0.1:1986; location / { return 200 "b\n"; } }
--- config
    proxy_next_upstream_status 404;
    location / { proxy_pass http://u; proxy_next_upstream_status 410; }
--- request
GET /t
--- error_code: 404
--- response_body
a



=== TEST 18: the directive at http level
--- http_config
    proxy_next_upstream_status 404;
    upstream u { server 127.0.0.1:1985; server 127.0.0.1:1986; }
    server { listen 127.0.0.1:1985; location / { return 404 "a\n"; } }
    server { listen 127.0.0.1:1986; location / { return 200 "b\n"; } }
--- config
    location / { proxy_pass http://u; }
--- request
GET /t
--- error_code: 200
--- response_body
b



=== TEST 19: a retried response with a large body is discarded; the next answer is whole
--- http_config
    upstream u { server 127.0.0.1:1985; server 127.0.0.1:1986; }
    server {
        listen 127.0.0.1:1985;
        location / { error_page 404 /big.txt; return 404; }
        location = /big.txt { root html; internal; }
    }
    server { listen 127.0.0.1:1986; location / { return 200 "b\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 404;
        add_header X-Status $upstream_status always;
    }
--- user_files eval
">>> big.txt\n" . ("x" x 100000)
--- request
GET /t
--- error_code: 200
--- response_headers
X-Status: 404, 200
--- response_body
b



=== TEST 20: proxy_next_upstream off stops nginx's own retries, not the directive's
The first server answers 404 (listed): passed on.  Then the second refuses: with
proxy_next_upstream off nginx does not try the third, and the kept 404 is sent.
--- http_config
    upstream u {
        server 127.0.0.1:1985;
        server 127.0.0.1:1987;
        server 127.0.0.1:1986;
    }
    server { listen 127.0.0.1:1985; location / { return 404 "a\n"; } }
    server { listen 127.0.0.1:1986; location / { return 200 "c\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream off;
        proxy_next_upstream_status 404;
        add_header X-Status $upstream_status always;
    }
--- request
GET /t
--- error_code: 404
--- response_headers
X-Status: 404, 502
--- response_body
a
--- error_log
upstream answered 404, passing request to the next server
--- no_error_log
[alert]



=== TEST 21: passed on from a kept-alive connection to a server without one
The first request leaves a connection to the first server in the keepalive cache; the
second reuses it (over HTTP/2: the request's second stream, 3), gets the 404 and goes to the
backup on a new connection, where the request must start over as the connection's first
(over HTTP/2: stream 1; nginx itself leaves the frames numbered 3, and that server's
answer on stream 3 is then rejected).
--- http_config
    upstream u { server 127.0.0.1:1985; server 127.0.0.1:1986 backup; keepalive 4; }
    server {
        listen 127.0.0.1:1985;
        location = /warm { return 200 "warm\n"; }
        location / { return 404 "a\n"; }
    }
    server { listen 127.0.0.1:1986; location / { return 200 "b\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_set_header Connection "";
        proxy_next_upstream_status 404;
        add_header X-Status $upstream_status always;
    }
--- request eval
["GET /warm", "GET /t"]
--- error_code eval
[200, 200]
--- response_headers eval
["X-Status: 200", "X-Status: 404, 200"]
--- response_body eval
["warm\n", "b\n"]
--- no_error_log
[error]
