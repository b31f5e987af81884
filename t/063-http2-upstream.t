# HTTP/2 to the upstream servers (`proxy_http_version 2`, nginx 1.29.4+), over cleartext
# (h2c) and TLS (ALPN h2): what the rest of t/ checks with TEST_NGINX_UPSTREAM_HTTP=2, plus
# what only HTTP/2 has: the kept answer's body read out of DATA frames (one or several,
# with or without a length), a body that did not come whole with the header, and a retry
# from a kept-alive connection to a new one over TLS.
use Test::Nginx::Socket;
use HarnessExtensions;

use File::Temp ();

if (HarnessExtensions::nginx_version() < 1_029_004) {
    plan(skip_all => 'no proxy_http_version 2 before nginx 1.29.4');
} else {
    plan('no_plan');
}

# A certificate for the TLS servers, made for this run.
my $certs = File::Temp::tempdir('h2-certs-XXXXXX', TMPDIR => 1, CLEANUP => 1);
system("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost"
    . " -keyout $certs/key.pem -out $certs/cert.pem 2>/dev/null") == 0
    or die "openssl could not make a certificate (scripts/install-deps.sh installs openssl)\n";
$ENV{TEST_NGINX_CERTS} = $certs;

our $BIG = join '', map { sprintf "%05d\n", $_ } 1 .. 3500;    # 21000 bytes: two DATA frames

no_shuffle();
no_root_location();
log_level('info');
run_tests();

__DATA__

=== TEST 1: h2c: the next server refuses; the kept answer carries the server's own body
The report's case: nginx 1.30.4 sent the 9 bytes of the DATA frame's header as the body.
--- http_config
    upstream u { server 127.0.0.1:1985; server 127.0.0.1:1999; }
    server { listen 127.0.0.1:1985; http2 on; location / { return 404 "not on a\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_http_version 2;
        proxy_next_upstream_status 404;
        add_header X-Status $upstream_status always;
    }
--- request
GET /t
--- error_code: 404
--- response_headers
X-Status: 404, 502
Content-Length: 9
--- response_body
not on a
--- error_log
sending the 404 answered by "127.0.0.1:1985"



=== TEST 2: h2c: a body in two DATA frames is kept whole
The first server answers 404 with a 21000-byte page (error_page), more than one DATA frame.
--- user_files eval
[["big.txt", $main::BIG]]
--- http_config
    upstream u { server 127.0.0.1:1985; server 127.0.0.1:1999; }
    server {
        listen 127.0.0.1:1985;
        http2 on;
        root html;
        error_page 404 /big.txt;
    }
--- config
    location / {
        proxy_pass http://u;
        proxy_http_version 2;
        proxy_buffer_size 64k;
        proxy_buffers 4 64k;
        proxy_next_upstream_status 404;
    }
--- request
GET /t
--- error_code: 404
--- response_headers
Content-Length: 21000
--- response_body eval
$main::BIG



=== TEST 3: h2c: a body that did not come whole with the header: status and headers, no body
21000 bytes do not fit the default proxy_buffer_size: the frames read with the header end
before the stream does.
--- user_files eval
[["big.txt", $main::BIG]]
--- http_config
    upstream u { server 127.0.0.1:1985; server 127.0.0.1:1999; }
    server {
        listen 127.0.0.1:1985;
        http2 on;
        root html;
        error_page 404 /big.txt;
        add_header X-Site a always;
    }
--- config
    location / {
        proxy_pass http://u;
        proxy_http_version 2;
        proxy_next_upstream_status 404;
    }
--- request
GET /t
--- error_code: 404
--- response_headers
X-Site: a
Content-Length: 0
--- response_body chop

--- error_log
without its body



=== TEST 4: h2c: a body without a length (the server's own upstream sent it chunked) is kept
The first server proxies to a raw TCP server that answers chunked; over HTTP/2 it sends
DATA frames and no Content-Length, and the end of the stream marks the end of the body. As
stock nginx sends such an answer, the client gets it chunked.
--- http_config
    upstream u { server 127.0.0.1:1985; server 127.0.0.1:1999; }
    server {
        listen 127.0.0.1:1985;
        http2 on;
        location / {
            proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1;
            proxy_http_version 1.1;
        }
    }
--- config
    location / {
        proxy_pass http://u;
        proxy_http_version 2;
        proxy_next_upstream_status 404;
        add_header X-Status $upstream_status always;
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_reply eval
"HTTP/1.1 404 Not Found\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
. "5\r\nnot o\r\n4\r\nn a\n\r\n0\r\n\r\n"
--- request
GET /t
--- error_code: 404
--- response_headers
X-Status: 404, 502
!Content-Length
Transfer-Encoding: chunked
--- response_body
not on a



=== TEST 5: TLS with ALPN h2: the kept answer's body
--- http_config
    upstream u { server 127.0.0.1:1985; server 127.0.0.1:1999; }
    server {
        listen 127.0.0.1:1985 ssl;
        http2 on;
        ssl_certificate $TEST_NGINX_CERTS/cert.pem;
        ssl_certificate_key $TEST_NGINX_CERTS/key.pem;
        location / { add_header X-Protocol $server_protocol always; return 404 "not on a\n"; }
    }
--- config
    location / {
        proxy_pass https://u;
        proxy_http_version 2;
        proxy_next_upstream_status 404;
        add_header X-Status $upstream_status always;
    }
--- request
GET /t
--- error_code: 404
--- response_headers
X-Status: 404, 502
X-Protocol: HTTP/2.0
Content-Length: 9
--- response_body
not on a



=== TEST 6: TLS with ALPN h2: from a kept-alive connection on to a new one, and a HEAD
/warm leaves a TLS connection to the first server in the cache; /t reuses it (stream 3),
gets the 404 and goes on to the backup on a new connection (stream 1). Then a HEAD the
first server answers 404 while the backup's port is closed: the kept answer's headers.
--- http_config
    upstream u { server 127.0.0.1:1985; server 127.0.0.1:1986 backup; keepalive 4; }
    upstream v { server 127.0.0.1:1985; server 127.0.0.1:1999 backup; keepalive 4; }
    server {
        listen 127.0.0.1:1985 ssl;
        listen 127.0.0.1:1986 ssl;
        http2 on;
        ssl_certificate $TEST_NGINX_CERTS/cert.pem;
        ssl_certificate_key $TEST_NGINX_CERTS/key.pem;
        location = /warm { return 200 "warm\n"; }
        location / {
            if ($server_port = 1986) { return 200 "b $server_protocol\n"; }
            return 404 "not on a\n";
        }
    }
--- config
    location /v {
        proxy_pass https://v;
        proxy_http_version 2;
        proxy_next_upstream_status 404;
        add_header X-Status $upstream_status always;
    }
    location / {
        proxy_pass https://u;
        proxy_http_version 2;
        proxy_next_upstream_status 404;
        add_header X-Status $upstream_status always;
    }
--- request eval
["GET /warm", "GET /t", "HEAD /v"]
--- error_code eval
[200, 200, 404]
--- response_headers eval
["X-Status: 200", "X-Status: 404, 200", "X-Status: 404, 502\nContent-Length: 9"]
--- response_body eval
["warm\n", "b HTTP/2.0\n", ""]
