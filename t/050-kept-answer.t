# When a request was passed on after a listed status and no later server gives an answer of
# its own, the client gets the answer that was passed over, not nginx's 502/504.
use Test::Nginx::Socket 'no_plan';
use UpstreamProtocol;

no_shuffle();
no_root_location();
log_level('info');
run_tests();

__DATA__

=== TEST 1: next server refuses: the first server's 404 reaches the client, status, headers and body
--- http_config
    upstream u { server 127.0.0.1:1985; server 127.0.0.1:1999; }
    server {
        listen 127.0.0.1:1985;
        location / {
            add_header Docker-Distribution-Api-Version registry/2.0 always;
            add_header X-Site a always;
            default_type application/json;
            return 404 '{"errors":[{"code":"BLOB_UNKNOWN"}]}\n';
        }
    }
    log_format statuses "$status [$upstream_status]";
--- config
    access_log logs/access.log statuses;
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 404;
        add_header X-Status $upstream_status always;
    }
--- request
GET /v2/x/blobs/sha256:1
--- error_code: 404
--- response_headers
Content-Type: application/json
Docker-Distribution-Api-Version: registry/2.0
X-Site: a
X-Status: 404, 502
Content-Length: 37
--- response_body
{"errors":[{"code":"BLOB_UNKNOWN"}]}
--- access_log
404 [404, 502]
--- error_log
next_upstream_status: no later server gave an answer (502), sending the 404 answered by "127.0.0.1:1985"
connect() failed (111: Connection refused)



=== TEST 2: HEAD: the kept answer's headers, with the length the server declared and no body
--- http_config
    upstream u { server 127.0.0.1:1985; server 127.0.0.1:1999; }
    server {
        listen 127.0.0.1:1985;
        location / { add_header X-Site a always; return 404 "not here\n"; }
    }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 404;
    }
--- request
HEAD /t
--- error_code: 404
--- response_headers
X-Site: a
Content-Length: 9
--- response_body



=== TEST 3: keep_answer=off restores stock behaviour: nginx's 502
--- http_config
    upstream u { server 127.0.0.1:1985; server 127.0.0.1:1999; }
    server { listen 127.0.0.1:1985; location / { return 404 "a\n"; } }
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
--- no_error_log
no later server gave an answer



=== TEST 4: next server marked down by max_fails ("no live upstreams")
The first request marks the second server down; the second request finds no live server
after the first one's 410.
--- http_config
    upstream u {
        server 127.0.0.1:1985;
        server 127.0.0.1:1999 max_fails=1 fail_timeout=60s;
    }
    server { listen 127.0.0.1:1985; location / { return 410 "gone\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 410;
        add_header X-Status $upstream_status always;
        add_header X-Addr $upstream_addr always;
    }
--- request eval
["GET /t", "GET /t"]
--- error_code eval
[410, 410]
--- response_headers eval
["X-Status: 410, 502\nX-Addr: 127.0.0.1:1985, 127.0.0.1:1999",
 "X-Status: 410, 502\nX-Addr: 127.0.0.1:1985, u"]
--- response_body eval
["gone\n", "gone\n"]



=== TEST 5: proxy_next_upstream_tries reached by errors after the listed status
--- http_config
    upstream u {
        server 127.0.0.1:1985; server 127.0.0.1:1998; server 127.0.0.1:1999;
        server 127.0.0.1:1986;
    }
    server { listen 127.0.0.1:1985; location / { return 404 "a\n"; } }
    server { listen 127.0.0.1:1986; location / { return 200 "d\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_tries 3;
        proxy_next_upstream_status 404;
        add_header X-Status $upstream_status always;
    }
--- request
GET /t
--- error_code: 404
--- response_headers
X-Status: 404, 502, 502
--- response_body
a



=== TEST 6: the LAST listed answer is kept: 404 from the first, 410 from the second, third refuses
--- http_config
    upstream u { server 127.0.0.1:1985; server 127.0.0.1:1986; server 127.0.0.1:1999; }
    server { listen 127.0.0.1:1985; location / { return 404 "a\n"; } }
    server { listen 127.0.0.1:1986; location / { return 410 "b\n"; } }
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
X-Status: 404, 410, 502
--- response_body
b



=== TEST 7: a body larger than the proxy buffer: status and headers kept, body not, and the log says so
--- http_config
    upstream u { server 127.0.0.1:1985; server 127.0.0.1:1999; }
    server {
        listen 127.0.0.1:1985;
        add_header X-Site a always;
        location / { error_page 404 /big.txt; return 404; }
        location = /big.txt { root html; internal; }
    }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 404;
    }
--- user_files eval
">>> big.txt\n" . ("x" x 100000)
--- request
GET /t
--- error_code: 404
--- response_headers
X-Site: a
Content-Length: 0
--- response_body eval
""
--- error_log
without its body: it does not fit in proxy_buffer_size



=== TEST 8: with keepalive to the servers and the client's connection kept open
--- http_config
    upstream u { server 127.0.0.1:1985; server 127.0.0.1:1999; keepalive 4; }
    server { listen 127.0.0.1:1985; location / { return 404 "a\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_set_header Connection "";
        proxy_next_upstream_status 404;
        add_header X-Status $upstream_status always;
    }
--- request eval
["GET /t", "GET /t"]
--- error_code eval
[404, 404]
--- response_body eval
["a\n", "a\n"]



=== TEST 9: a later server's own answer is not replaced: 404, then 500 (not listed) reaches the client
--- http_config
    upstream u { server 127.0.0.1:1985; server 127.0.0.1:1986; }
    server { listen 127.0.0.1:1985; location / { return 404 "a\n"; } }
    server { listen 127.0.0.1:1986; location / { return 500 "b broke\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 404;
        add_header X-Status $upstream_status always;
    }
--- request
GET /t
--- error_code: 500
--- response_headers
X-Status: 404, 500
--- response_body
b broke
--- no_error_log
no later server gave an answer



=== TEST 10: without a listed status there is nothing to keep: a plain 502
--- http_config
    upstream u { server 127.0.0.1:1999; server 127.0.0.1:1998; }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 404;
    }
--- request
GET /t
--- error_code: 502
--- response_body_like: 502 Bad Gateway



=== TEST 11: headers nginx hides from upstream answers stay hidden (proxy_hide_header)
--- http_config
    upstream u { server 127.0.0.1:1985; server 127.0.0.1:1999; }
    server {
        listen 127.0.0.1:1985;
        location / {
            add_header X-Secret s always;
            add_header X-Accel-Expires 10 always;
            add_header X-Kept k always;
            return 404 "a\n";
        }
    }
--- config
    location / {
        proxy_pass http://u;
        proxy_hide_header X-Secret;
        proxy_next_upstream_status 404;
    }
--- request
GET /t
--- error_code: 404
--- response_headers
!X-Secret
!X-Accel-Expires
X-Kept: k
--- response_body
a



=== TEST 12: an error_page for 502 does not take the kept answer's place
--- http_config
    upstream u { server 127.0.0.1:1985; server 127.0.0.1:1999; }
    server { listen 127.0.0.1:1985; location / { return 404 "a\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 404;
        error_page 502 /oops;
    }
    location = /oops { return 503 "oops\n"; }
--- request
GET /t
--- error_code: 404
--- response_body
a



=== TEST 13: the same error_page serves nginx's 502 when there is nothing to keep
--- http_config
    upstream u { server 127.0.0.1:1999; }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 404;
        error_page 502 /oops;
    }
    location = /oops { return 503 "oops\n"; }
--- request
GET /t
--- error_code: 502
--- response_body
oops
