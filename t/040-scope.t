# Where the directive applies, and where nginx stays exactly as stock.
use Test::Nginx::Socket 'no_plan';
use HarnessExtensions;
use UpstreamProtocol;

no_shuffle();
no_root_location();
log_level('info');

# "http2 on;" is nginx 1.25.1+; older nginx (Debian 12: 1.22.1) takes "listen ... http2".
if (HarnessExtensions::nginx_version() < 1_025_001) {
    add_block_preprocessor(sub {
        my $block = shift;
        my $conf = $block->http_config // return;
        $conf =~ s/\blisten\s+([^;]+);\s*http2\s+on;/listen $1 http2;/g;
        $block->set_value('http_config', $conf);
    });
}

run_tests();

__DATA__

=== TEST 1: module loaded, directive unused: a 410 reaches the client, stock retry on 404 works
Not over HTTP/2: there stock nginx (1.29.4 to 1.31.4 at least) sends the second request's
retry to the backup with the stream number of the kept-alive connection it left (3), and
fails it ("upstream sent frame for unknown stream 3"). Where the directive is on, the module
puts the request's frames back to stream 1 (t/010-retry.t TEST 21).
--- skip_eval: 6: ($ENV{TEST_NGINX_UPSTREAM_HTTP} // '') eq '2'
--- http_config
    upstream u { server 127.0.0.1:1985; server 127.0.0.1:1986 backup; }
    server {
        listen 127.0.0.1:1985;
        location /gone { return 410 "a\n"; }
        location / { return 404 "a\n"; }
    }
    server { listen 127.0.0.1:1986; location / { return 200 "b\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream error timeout http_404;
        add_header X-Status $upstream_status always;
    }
--- request eval
["GET /gone", "GET /t"]
--- error_code eval
[410, 200]
--- response_headers eval
["X-Status: 410", "X-Status: 404, 200"]
--- no_error_log
next_upstream_status



=== TEST 2: directive used elsewhere: a location without it keeps stock behaviour
--- http_config
    upstream u { server 127.0.0.1:1985; server 127.0.0.1:1986 backup; }
    server { listen 127.0.0.1:1985; location / { return 410 "a\n"; } }
    server { listen 127.0.0.1:1986; location / { return 200 "b\n"; } }
--- config
    location /with { proxy_pass http://u; proxy_next_upstream_status 410; }
    location /without { proxy_pass http://u; add_header X-Status $upstream_status always; }
--- request eval
["GET /without", "GET /with"]
--- error_code eval
[410, 200]
--- response_headers eval
["X-Status: 410", ""]



=== TEST 3: the directive and stock proxy_next_upstream http_404 together
--- http_config
    upstream u {
        server 127.0.0.1:1985; server 127.0.0.1:1986; server 127.0.0.1:1987;
    }
    server { listen 127.0.0.1:1985; location / { return 404 "a\n"; } }
    server { listen 127.0.0.1:1986; location / { return 410 "b\n"; } }
    server { listen 127.0.0.1:1987; location / { return 200 "c\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream error timeout http_404;
        proxy_next_upstream_status 410;
        add_header X-Status $upstream_status always;
    }
--- request
GET /t
--- error_code: 200
--- response_headers
X-Status: 404, 410, 200
--- response_body
c



=== TEST 4: a stock-listed status still follows stock rules when the directive does not list it
A 404 with only 410 listed: no retry, even with the module's copy of the configuration
made for an earlier 410 of the same request.
--- http_config
    upstream u {
        server 127.0.0.1:1985; server 127.0.0.1:1986; server 127.0.0.1:1987;
    }
    server { listen 127.0.0.1:1985; location / { return 410 "a\n"; } }
    server { listen 127.0.0.1:1986; location / { return 404 "b\n"; } }
    server { listen 127.0.0.1:1987; location / { return 200 "c\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 410;
        add_header X-Status $upstream_status always;
    }
--- request
GET /t
--- error_code: 404
--- response_headers
X-Status: 410, 404
--- response_body
b



=== TEST 5: grpc_pass is not affected: the directive applies to proxy_pass only
--- http_config
    upstream g { server 127.0.0.1:1985; server 127.0.0.1:1986; }
    server { listen 127.0.0.1:1985; http2 on; location / { return 404; } }
    server { listen 127.0.0.1:1986; http2 on; location / { return 200; } }
--- config
    location / {
        grpc_pass grpc://g;
        proxy_next_upstream_status 404;
        add_header X-Status $upstream_status always;
    }
--- request
GET /t
--- error_code: 404
--- response_headers
X-Status: 404
--- no_error_log
next_upstream_status
[alert]



=== TEST 6: the same grpc setup passes on with stock grpc_next_upstream http_404 (the test above can fail)
--- http_config
    upstream g { server 127.0.0.1:1985; server 127.0.0.1:1986; }
    server { listen 127.0.0.1:1985; http2 on; location / { return 404; } }
    server { listen 127.0.0.1:1986; http2 on; location / { return 200; } }
--- config
    location / {
        grpc_pass grpc://g;
        grpc_next_upstream error timeout http_404;
        add_header X-Status $upstream_status always;
    }
--- request
GET /t
--- error_code: 200
--- response_headers
X-Status: 404, 200



=== TEST 7: proxy_pass to an address in a variable (no upstream block): the one server answers
--- config
    location / {
        set $addr 127.0.0.1:1985;
        proxy_pass http://$addr;
        proxy_next_upstream_status 404;
        add_header X-Status $upstream_status always;
    }
--- http_config
    server { listen 127.0.0.1:1985; location / { return 404 "a\n"; } }
--- request
GET /t
--- error_code: 404
--- response_headers
X-Status: 404
--- response_body
a



=== TEST 8: a cached answer is served from the cache, and a retried one is not what is cached
--- http_config
    proxy_cache_path cache keys_zone=c:1m;
    upstream u { server 127.0.0.1:1985; server 127.0.0.1:1986 backup; }
    server { listen 127.0.0.1:1985; location / { return 404 "a\n"; } }
    server { listen 127.0.0.1:1986; location / { return 200 "b\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_cache c;
        proxy_cache_valid any 1m;
        proxy_next_upstream_status 404;
        add_header X-Status $upstream_status always;
        add_header X-Cache $upstream_cache_status always;
    }
--- request eval
["GET /t", "GET /t"]
--- error_code eval
[200, 200]
--- response_headers eval
["X-Status: 404, 200\nX-Cache: MISS", "!X-Status\nX-Cache: HIT"]
--- response_body eval
["b\n", "b\n"]
