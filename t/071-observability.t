# The variables ($next_upstream_status_passed, $next_upstream_status_kept), the counters'
# zone and the metrics location (one worker here; t/072-metrics-load.t has two workers,
# concurrent load and a reload), and their configuration errors.
use Test::Nginx::Socket 'no_plan';
use HarnessExtensions;
use UpstreamProtocol;

no_shuffle();
no_root_location();
log_level('info');
my $common = <<'EOC';
    upstream direct { server 127.0.0.1:$TEST_NGINX_RAND_PORT_2; }
    upstream once {
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_2;
    }
    upstream twice {
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_3;
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_2;
    }
    upstream kept {
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_4;
    }
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1; location / { return 404 "a\n"; } }
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_3; location / { return 410 "c\n"; } }
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_2; location / { return 200 "b\n"; } }
    log_format obs "$uri $status passed=$next_upstream_status_passed kept=$next_upstream_status_kept [$upstream_status]";
EOC
my $locations = <<'EOC';
    access_log logs/access.log obs;
    proxy_next_upstream_status 404 410;
    add_header X-Passed $next_upstream_status_passed always;
    add_header X-Kept $next_upstream_status_kept always;
    location /direct { proxy_pass http://direct; }
    location /once { proxy_pass http://once; }
    location /twice { proxy_pass http://twice; }
    location /kept { proxy_pass http://kept; }
    location /none { return 200 "none\n"; }
EOC
# The blocks about the variables share one configuration.
add_block_preprocessor(sub {
    my $block = shift;
    return unless $block->name =~ /variables:/;
    $block->set_value(http_config => $common);
    $block->set_value(config => $locations);
});
run_tests();

__DATA__

=== TEST 1: variables: never passed on
--- request
GET /direct
--- response_headers
X-Passed: 0
!X-Kept
--- access_log
/direct 200 passed=0 kept= [200]



=== TEST 2: variables: passed on once
--- request
GET /once
--- response_headers
X-Passed: 1
!X-Kept
--- access_log
/once 200 passed=1 kept= [404, 200]



=== TEST 3: variables: passed on twice, after two listed statuses
--- request
GET /twice
--- response_headers
X-Passed: 2
!X-Kept
--- access_log
/twice 200 passed=2 kept= [404, 410, 200]



=== TEST 4: variables: the kept answer
--- request
GET /kept
--- error_code: 404
--- response_headers
X-Passed: 1
X-Kept: 404
--- access_log
/kept 404 passed=1 kept=404 [404, 502]



=== TEST 5: variables: no upstream at all
--- request
GET /none
--- response_headers
X-Passed: 0
!X-Kept
--- access_log
/none 200 passed=0 kept= [-]



=== TEST 6: the variables in a map
--- http_config
    upstream u {
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_2;
    }
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1; location / { return 404 "a\n"; } }
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_2; location / { return 200 "b\n"; } }
    map $next_upstream_status_passed $fell_through { 0 no; default yes; }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 404;
        add_header X-Fell-Through $fell_through always;
    }
--- request
GET /t
--- response_headers
X-Fell-Through: yes



=== TEST 7: metrics: passed, kept and exhausted, per upstream, server and status
One worker: the figures are exact. Implicit upstreams are named host:port.
--- http_config
    next_upstream_status_zone retries 64k;
    upstream both {
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_2 backup;
    }
    upstream dead {
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_4;
    }
    upstream nowhere {
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_3;
    }
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1; location / { return 404 "a\n"; } }
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_2; location / { return 200 "b\n"; } }
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_3; location / { return 410 "c\n"; } }
--- config
    proxy_next_upstream_status 404 410;
    location /both { proxy_pass http://both; }
    location /dead { proxy_pass http://dead; }
    location /nowhere { proxy_pass http://nowhere; }
    location /implicit { proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1; }
    location = /metrics { next_upstream_status_metrics; }
--- request eval
["GET /both", "GET /both", "GET /dead", "GET /nowhere", "GET /implicit", "GET /metrics"]
--- error_code eval
[200, 200, 404, 410, 404, 200]
--- response_headers eval
["", "", "", "", "", "Content-Type: text/plain; version=0.0.4"]
--- response_body eval
["b\n", "b\n", "a\n", "c\n", "a\n",
qq{# HELP nginx_next_upstream_status_passed_total Requests passed on to the next upstream server after this server answered this listed status.
# TYPE nginx_next_upstream_status_passed_total counter
nginx_next_upstream_status_passed_total{upstream="both",server="127.0.0.1:\$TEST_NGINX_RAND_PORT_1",status="404"} 2
nginx_next_upstream_status_passed_total{upstream="dead",server="127.0.0.1:\$TEST_NGINX_RAND_PORT_1",status="404"} 1
nginx_next_upstream_status_passed_total{upstream="nowhere",server="127.0.0.1:\$TEST_NGINX_RAND_PORT_1",status="404"} 1
# HELP nginx_next_upstream_status_kept_total Kept answers with this status sent instead of nginx's own error, because no later server gave an answer.
# TYPE nginx_next_upstream_status_kept_total counter
nginx_next_upstream_status_kept_total{upstream="dead",status="404"} 1
# HELP nginx_next_upstream_status_exhausted_total Requests for which every server tried answered a listed status; the last server's answer with this status was sent.
# TYPE nginx_next_upstream_status_exhausted_total counter
nginx_next_upstream_status_exhausted_total{upstream="nowhere",status="410"} 1
}]



=== TEST 8: metrics: an empty zone has every family's HELP and TYPE; HEAD; POST refused
--- http_config
    next_upstream_status_zone retries;
--- config
    location = /metrics { next_upstream_status_metrics; }
--- request eval
["GET /metrics", "HEAD /metrics", "POST /metrics\nx"]
--- error_code eval
[200, 200, 405]
--- response_body eval
["# HELP nginx_next_upstream_status_passed_total Requests passed on to the next upstream server after this server answered this listed status.
# TYPE nginx_next_upstream_status_passed_total counter
# HELP nginx_next_upstream_status_kept_total Kept answers with this status sent instead of nginx's own error, because no later server gave an answer.
# TYPE nginx_next_upstream_status_kept_total counter
# HELP nginx_next_upstream_status_exhausted_total Requests for which every server tried answered a listed status; the last server's answer with this status was sent.
# TYPE nginx_next_upstream_status_exhausted_total counter
", "", qr/405 Not Allowed/]



=== TEST 9: the smallest zone; a location without the directive counts nothing
--- http_config
    next_upstream_status_zone retries 32k;
    upstream u {
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_2 backup;
    }
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1; location / { return 404 "a\n"; } }
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_2; location / { return 200 "b\n"; } }
--- config
    location /plain { proxy_pass http://u; }
    location /on { proxy_pass http://u; proxy_next_upstream_status 404; }
    location = /metrics { next_upstream_status_metrics; }
--- request eval
["GET /plain", "GET /on", "GET /metrics"]
--- error_code eval
[404, 200, 200]
--- response_body_like eval
["a", "b", qr/\Qnginx_next_upstream_status_passed_total{upstream="u",server="127.0.0.1:\E\d+\Q",status="404"} 1\E\n#/]



=== TEST 10: a full zone: counts what it can, loses no request
An upstream name of 400-odd bytes per request fills a zone of 8 pages after a few dozen
entries; every request is still answered, the counters already in the zone go on counting.
(That the full zone is logged once is checked in t/072-metrics-load.t, which reads the whole log.)
--- needs_harness: 366: the last error_log check reads the log after nginx stopped (its exiting line)
--- config
    location / {
        proxy_pass http://$arg_u;
        proxy_next_upstream_status 404;
    }
    location = /metrics { next_upstream_status_metrics; }
--- http_config eval
my $ups = CORE::join "", map {
    "upstream " . ("x" x 400) . "_$_ { server 127.0.0.1:\$TEST_NGINX_RAND_PORT_1; server 127.0.0.1:\$TEST_NGINX_RAND_PORT_2 backup; }\n"
} 1 .. 120;
"next_upstream_status_zone retries 32k;
server { listen 127.0.0.1:\$TEST_NGINX_RAND_PORT_1; location / { return 404 \"a\\n\"; } }
server { listen 127.0.0.1:\$TEST_NGINX_RAND_PORT_2; location / { return 200 \"b\\n\"; } }
$ups"
--- request eval
[(map { "GET /t?u=" . ("x" x 400) . "_$_" } 1 .. 120, 1), "GET /metrics"]
--- error_code eval
[(200) x 121, 200]
--- response_body_like eval
[("b") x 121, qr/\A(?!.*_120",server).*_1",server="[^"]+",status="404"\} 2\n/s]
--- error_log eval
qr/passing request to the next server|exiting/



=== TEST 11: next_upstream_status_metrics without a zone
--- config
    location = /metrics { next_upstream_status_metrics; }
--- must_die
--- error_log
"next_upstream_status_metrics" needs "next_upstream_status_zone" in the http block



=== TEST 12: zone too small
--- http_config
    next_upstream_status_zone retries 16k;
--- must_die
--- error_log
zone "retries" is too small: at least 32768 bytes



=== TEST 13: invalid zone size
--- http_config
    next_upstream_status_zone retries 1x;
--- must_die
--- error_log
invalid zone size "1x"



=== TEST 14: invalid zone name
--- http_config
    next_upstream_status_zone "a b";
--- must_die
--- error_log
invalid zone name "a b"



=== TEST 15: the directive twice
--- http_config
    next_upstream_status_zone a;
    next_upstream_status_zone b;
--- must_die
--- error_log
"next_upstream_status_zone" directive is duplicate



=== TEST 16: a zone name another module already uses
--- http_config
    limit_req_zone $binary_remote_addr zone=shared:1m rate=1r/s;
    next_upstream_status_zone shared 1m;
--- must_die
--- error_log
the shared memory zone "shared" is already declared for a different use



=== TEST 17: the zone in a server block
--- config
    next_upstream_status_zone retries;
--- must_die
--- error_log
"next_upstream_status_zone" directive is not allowed here



=== TEST 18: the metrics directive with an argument
--- http_config
    next_upstream_status_zone retries;
--- config
    location = /metrics { next_upstream_status_metrics on; }
--- must_die
--- error_log
invalid number of arguments in "next_upstream_status_metrics" directive



=== TEST 19: too many zone arguments
--- http_config
    next_upstream_status_zone retries 1m 2m;
--- must_die
--- error_log
invalid number of arguments in "next_upstream_status_zone" directive
