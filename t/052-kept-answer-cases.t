# The kept answer's cases beside the table of t/051-kept-answer-as-stock.t: a later server's
# real answer handed to an error_page, auth_request reading a kept 401, SSI including a kept
# answer or the metrics location, an HTTP/2 server whose frames for other streams come
# between the answer's HEADERS and DATA, and a server that writes the header and the body
# apart. In each, the client must get what stock nginx gives for that server's answer.
use Test::Nginx::Socket 'no_plan';
use HarnessExtensions;
use UpstreamProtocol;

no_shuffle();
no_root_location();
log_level('info');

# HTTP/2 frames for the raw HTTP/2 server of the blocks 8 and 9 (nginx's request is read
# and not looked at: nginx 1.29.4+ sends it on stream 1 of a new connection).
sub main::h2_frame {
    my ($type, $flags, $stream, $payload) = @_;
    return pack('NCN', (length($payload) << 8) | $type, $flags, $stream) . $payload;
}

# The server's answer: its SETTINGS, the ACK of nginx's, then HEADERS on stream 1:
# ":status: 404" (static index 13), "content-type: text/plain" and "content-length: N"
# (literals with the static table's names, 31 and 28). HPACK by hand, no Huffman.
sub main::h2_answer_start {
    my ($length) = @_;
    my $block = "\x8d" . "\x0f\x10\x0atext/plain"
        . "\x0f\x0d" . chr(length $length) . $length;
    return main::h2_frame(4, 0, 0, '') . main::h2_frame(4, 1, 0, '')
        . main::h2_frame(1, 0x4, 1, $block);
}

run_tests();

__DATA__

=== TEST 1: a later server's real 503 goes to the location's error_page (proxy_intercept_errors)
A answers 404 (listed), B answers 503 of its own: that is a real answer, which stock nginx
hands to `error_page 503` when the location intercepts errors. The kept 404 must not take
its place.
--- http_config
    upstream u { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; server 127.0.0.1:$TEST_NGINX_RAND_PORT_2; }
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1; location / { return 404 "not on a\n"; } }
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_2; location / { return 503 "b is down\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 404;
        proxy_intercept_errors on;
        error_page 503 /maint.html;
    }
    location = /maint.html { internal; root html; }
--- user_files
>>> maint.html
down for maintenance
--- request
GET /t
--- error_code: 503
--- response_body
down for maintenance
--- no_error_log
no later server gave an answer



=== TEST 2: the same with HEAD: the error_page's status and no body
--- http_config
    upstream u { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; server 127.0.0.1:$TEST_NGINX_RAND_PORT_2; }
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1; location / { return 404 "not on a\n"; } }
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_2; location / { return 503 "b is down\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 404;
        proxy_intercept_errors on;
        error_page 503 /maint.html;
    }
    location = /maint.html { internal; root html; }
--- user_files
>>> maint.html
down for maintenance
--- request
HEAD /t
--- error_code: 503
--- response_headers
Content-Length: 21
--- response_body
--- no_error_log
no later server gave an answer



=== TEST 3: auth_request: a kept 401 reaches the client with its WWW-Authenticate, as stock
The auth module reads the subrequest's typed WWW-Authenticate header.
--- http_config
    upstream auth { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; server 127.0.0.1:$TEST_NGINX_RAND_PORT_2 backup; }
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location / {
            add_header WWW-Authenticate 'Bearer realm="https://auth.example/token",service="registry"' always;
            return 401 "no token\n";
        }
    }
--- config
    location / {
        auth_request /auth;
        root html;
    }
    location = /auth {
        internal;
        proxy_pass http://auth;
        proxy_pass_request_body off;
        proxy_set_header Content-Length "";
        proxy_next_upstream_status 401;
    }
--- user_files
>>> secret.txt
secret
--- request
GET /secret.txt
--- error_code: 401
--- response_headers
WWW-Authenticate: Bearer realm="https://auth.example/token",service="registry"
--- response_body_like: 401 Authorization Required
--- error_log
next_upstream_status: no later server gave an answer



=== TEST 4: auth_request, stock: the same server alone (what TEST 3 must equal)
--- http_config
    upstream auth { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; }
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location / {
            add_header WWW-Authenticate 'Bearer realm="https://auth.example/token",service="registry"' always;
            return 401 "no token\n";
        }
    }
--- config
    location / {
        auth_request /auth;
        root html;
    }
    location = /auth {
        internal;
        proxy_pass http://auth;
        proxy_pass_request_body off;
        proxy_set_header Content-Length "";
    }
--- user_files
>>> secret.txt
secret
--- request
GET /secret.txt
--- error_code: 401
--- response_headers
WWW-Authenticate: Bearer realm="https://auth.example/token",service="registry"
--- response_body_like: 401 Authorization Required



=== TEST 5: SSI includes a kept answer with an empty body: the page is whole, no alert
"zero size buf in output" was logged at [alert] (the harness fails a block on any [alert])

--- http_config
    upstream u { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; server 127.0.0.1:$TEST_NGINX_RAND_PORT_2 backup; }
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location / { error_page 404 /empty.txt; return 404; }
        location = /empty.txt { internal; root html; }
    }
--- config
    location = /page.html { ssi on; root html; }
    location /part/ {
        proxy_pass http://u;
        proxy_next_upstream_status 404;
    }
--- user_files eval
[["page.html", "before\n<!--# include virtual=\"/part/empty\" -->\nafter\n"], ["empty.txt", ""]]
--- request
GET /page.html
--- error_code: 200
--- response_body
before

after
--- error_log
sending the 404 answered by
--- no_error_log
zero size buf



=== TEST 6: SSI includes a kept answer with a body in the middle of a page
--- http_config
    upstream u { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; server 127.0.0.1:$TEST_NGINX_RAND_PORT_2 backup; }
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1; location / { return 404 "not on a\n"; } }
--- config
    location = /page.html { ssi on; root html; }
    location /part/ {
        proxy_pass http://u;
        proxy_next_upstream_status 404;
    }
--- user_files
>>> page.html
before
<!--# include virtual="/part/x" -->
after
--- request
GET /page.html
--- error_code: 200
--- response_body
before
not on a

after
--- error_log
sending the 404 answered by



=== TEST 7: SSI includes the metrics location in the middle of a page: the rest arrives
The metrics handler set last_buf in a subrequest: the final chunk went out before the rest
of the page.
--- http_config
    next_upstream_status_zone retries 1m;
--- config
    location = /page.html { ssi on; root html; }
    location = /metrics { next_upstream_status_metrics; }
--- user_files
>>> page.html
before
<!--# include virtual="/metrics" -->
after
--- request
GET /page.html
--- error_code: 200
--- response_body_like: ^before\n# HELP nginx_next_upstream_status_passed_total .*\nafter\n$



=== TEST 8: the same over HTTP/2 to the client: the stream does not end at the include
--- http_config
    next_upstream_status_zone retries 1m;
--- config
    location = /page.html { ssi on; root html; }
    location = /metrics { next_upstream_status_metrics; }
--- user_files
>>> page.html
before
<!--# include virtual="/metrics" -->
after
--- http2
--- request
GET /page.html
--- error_code: 200
--- response_body_like: ^before\n# HELP nginx_next_upstream_status_passed_total .*\nafter\n$



=== TEST 9: HTTP/2 server: DATA of another stream after the HEADERS is not the kept body
The server answers HEADERS on stream 1 (nginx's stream), then DATA on stream 3, then its
own DATA on stream 1. nginx itself fails an answer with a frame for another stream
("upstream sent data frame for unknown stream 3"): stream 3's bytes must never be the
client's body. The kept answer then has either stream 1's body or none, and a warn line
that does not blame proxy_buffer_size.
--- skip_nginx: 5: < 1.29.4
--- needs_harness: 5: tcp_reply as a sub
--- http_config
    upstream u { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; server 127.0.0.1:$TEST_NGINX_RAND_PORT_2 backup; }
--- config
    location / {
        proxy_pass http://u;
        proxy_http_version 2;
        proxy_next_upstream_status 404;
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_reply eval
sub {
    return main::h2_answer_start(9)
        . main::h2_frame(0, 0x1, 3, "FOREIGN!\n")
        . main::h2_frame(0, 0x1, 1, "not on a\n");
}
--- request
GET /t
--- error_code: 404
--- response_body_like: ^(not on a\n)?$
--- error_log
sending the 404 answered by
--- no_error_log
proxy_buffer_size



=== TEST 10: HTTP/2 server: a PRIORITY frame for another stream before the DATA
The server answers HEADERS on stream 1, PRIORITY for stream 3, then its DATA on stream 1.
The module took the first stream after the HEADERS (3) for its own and dropped the real
body, blaming proxy_buffer_size. nginx itself fails an answer with a frame for another
stream ("upstream sent frame for unknown stream 3"), so the body may be kept or not, but a
kept body is stream 1's and the warn line does not blame proxy_buffer_size.
--- skip_nginx: 5: < 1.29.4
--- needs_harness: 5: tcp_reply as a sub
--- http_config
    upstream u { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; server 127.0.0.1:$TEST_NGINX_RAND_PORT_2 backup; }
--- config
    location / {
        proxy_pass http://u;
        proxy_http_version 2;
        proxy_next_upstream_status 404;
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_reply eval
sub {
    return main::h2_answer_start(9)
        . main::h2_frame(2, 0, 3, "\x00\x00\x00\x00\x10")
        . main::h2_frame(0, 0x1, 1, "not on a\n");
}
--- request
GET /t
--- error_code: 404
--- response_body_like: ^(not on a\n)?$
--- error_log
sending the 404 answered by
--- no_error_log
proxy_buffer_size



=== TEST 11: HTTP/2 server: a PRIORITY frame for nginx's own stream before the DATA is skipped
nginx skips it (a frame type it does not act on): the kept body is the DATA's.
--- skip_nginx: 5: < 1.29.4
--- needs_harness: 5: tcp_reply as a sub
--- http_config
    upstream u { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; server 127.0.0.1:$TEST_NGINX_RAND_PORT_2 backup; }
--- config
    location / {
        proxy_pass http://u;
        proxy_http_version 2;
        proxy_next_upstream_status 404;
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_reply eval
sub {
    return main::h2_answer_start(9)
        . main::h2_frame(2, 0, 1, "\x00\x00\x00\x00\x10")
        . main::h2_frame(0, 0x1, 1, "not on a\n");
}
--- request
GET /t
--- error_code: 404
--- response_body
not on a
--- error_log
sending the 404 answered by
--- no_error_log
without its body



=== TEST 12: a server that writes the header, pauses, then a 54-byte body with its length
Python's, Go's, Node's and Java's servers write the header and the body apart. The kept
answer has the body, as stock has, and no warn line blames proxy_buffer_size or an unknown
length.
--- needs_harness: 6: tcp_reply pieces with delay_before
--- http_config
    upstream u { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; server 127.0.0.1:$TEST_NGINX_RAND_PORT_2 backup; }
--- config
    location / {
        proxy_pass http://u;
        proxy_http_version 1.1;
        proxy_next_upstream_status 404;
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_reply eval
["HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: 54\r\nConnection: close\r\n\r\n",
 {value => "<html><body><h1>404: it is not her</h1></body></html>\n", delay_before => 0.2}]
--- request
GET /t
--- error_code: 404
--- response_headers
Content-Length: 54
--- response_body
<html><body><h1>404: it is not her</h1></body></html>
--- error_log
sending the 404 answered by
--- no_error_log
proxy_buffer_size



=== TEST 13: a chunked 404 in two pieces: the kept answer has the whole body
--- needs_harness: 5: tcp_reply pieces with delay_before
--- http_config
    upstream u { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; server 127.0.0.1:$TEST_NGINX_RAND_PORT_2 backup; }
--- config
    location / {
        proxy_pass http://u;
        proxy_http_version 1.1;
        proxy_next_upstream_status 404;
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_reply eval
["HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nnot h\r\n",
 {value => "4\r\nere\n\r\n0\r\n\r\n", delay_before => 0.2}]
--- request
GET /t
--- error_code: 404
--- response_body
not here
--- error_log
sending the 404 answered by
--- no_error_log
proxy_buffer_size



=== TEST 14: an answer with X-Accel-Redirect is passed on but not kept: the client gets nginx's 502
nginx follows such an answer to another location (an internal redirect), which can only start
where nginx accepts an answer, not where it ends the request with its own failure; the module
does not keep it (README, "The kept answer").
--- http_config
    upstream u { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; server 127.0.0.1:$TEST_NGINX_RAND_PORT_2 backup; }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 404;
        add_header X-Status $upstream_status always;
    }
    location /internal/ { internal; return 200 "redirected\n"; }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_reply eval
"HTTP/1.1 404 Not Found\r\nX-Accel-Redirect: /internal/x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nno\n"
--- request
GET /t
--- error_code: 502
--- response_headers
X-Status: 404, 502
--- no_error_log
sending the 404 answered by
