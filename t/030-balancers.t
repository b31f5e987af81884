# The module wraps every upstream block's peer.init, whatever balancer set it: each
# balancer and upstream form passes a listed status on.
use Test::Nginx::Socket 'no_plan';
use UpstreamProtocol;

no_shuffle();
no_root_location();
log_level('info');
run_tests();

__DATA__


=== TEST 1: round robin with keepalive connections to the servers
--- http_config
    upstream u { server 127.0.0.1:1985; server 127.0.0.1:1986 backup; keepalive 4; }
    server { listen 127.0.0.1:1985; location / { return 404 "a\n"; } }
    server { listen 127.0.0.1:1986; location / { return 200 "b\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_set_header Connection "";
        proxy_next_upstream_status 404;
        add_header X-Status $upstream_status always;
    }
--- request eval
["GET /t", "GET /t", "GET /t"]
--- error_code eval
[200, 200, 200]
--- response_headers eval
["X-Status: 404, 200", "X-Status: 404, 200", "X-Status: 404, 200"]
--- response_body eval
["b\n", "b\n", "b\n"]



=== TEST 2: hash: every key ends at the server that has the answer
--- http_config
    upstream u { hash $arg_k; server 127.0.0.1:1985; server 127.0.0.1:1986; }
    server { listen 127.0.0.1:1985; location / { return 404 "a\n"; } }
    server { listen 127.0.0.1:1986; location / { return 200 "b\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 404;
        add_header X-Status $upstream_status always;
    }
--- request eval
["GET /t?k=1", "GET /t?k=2", "GET /t?k=3", "GET /t?k=4", "GET /t?k=5", "GET /t?k=6"]
--- error_code eval
[200, 200, 200, 200, 200, 200]
--- response_body eval
["b\n", "b\n", "b\n", "b\n", "b\n", "b\n"]
--- response_headers_like eval
['X-Status: ^(404, )?200$', 'X-Status: ^(404, )?200$', 'X-Status: ^(404, )?200$', 'X-Status: ^(404, )?200$', 'X-Status: ^(404, )?200$', 'X-Status: ^(404, )?200$']



=== TEST 3: consistent hash
--- http_config
    upstream u { hash $arg_k consistent; server 127.0.0.1:1985; server 127.0.0.1:1986; }
    server { listen 127.0.0.1:1985; location / { return 404 "a\n"; } }
    server { listen 127.0.0.1:1986; location / { return 200 "b\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 404;
        add_header X-Status $upstream_status always;
    }
--- request eval
["GET /t?k=1", "GET /t?k=2", "GET /t?k=3", "GET /t?k=4", "GET /t?k=5", "GET /t?k=6"]
--- error_code eval
[200, 200, 200, 200, 200, 200]
--- response_body eval
["b\n", "b\n", "b\n", "b\n", "b\n", "b\n"]
--- response_headers_like eval
['X-Status: ^(404, )?200$', 'X-Status: ^(404, )?200$', 'X-Status: ^(404, )?200$', 'X-Status: ^(404, )?200$', 'X-Status: ^(404, )?200$', 'X-Status: ^(404, )?200$']



=== TEST 4: least_conn
--- http_config
    upstream u { least_conn; server 127.0.0.1:1985; server 127.0.0.1:1986; }
    server { listen 127.0.0.1:1985; location / { return 404 "a\n"; } }
    server { listen 127.0.0.1:1986; location / { return 200 "b\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 404;
        add_header X-Status $upstream_status always;
    }
--- request
GET /t
--- error_code: 200
--- response_headers
X-Status: 404, 200
--- response_body
b



=== TEST 5: random
--- http_config
    upstream u { random; server 127.0.0.1:1985; server 127.0.0.1:1986; }
    server { listen 127.0.0.1:1985; location / { return 404 "a\n"; } }
    server { listen 127.0.0.1:1986; location / { return 200 "b\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 404;
        add_header X-Status $upstream_status always;
    }
--- request eval
["GET /t?k=1", "GET /t?k=2", "GET /t?k=3", "GET /t?k=4", "GET /t?k=5", "GET /t?k=6"]
--- error_code eval
[200, 200, 200, 200, 200, 200]
--- response_body eval
["b\n", "b\n", "b\n", "b\n", "b\n", "b\n"]
--- response_headers_like eval
['X-Status: ^(404, )?200$', 'X-Status: ^(404, )?200$', 'X-Status: ^(404, )?200$', 'X-Status: ^(404, )?200$', 'X-Status: ^(404, )?200$', 'X-Status: ^(404, )?200$']



=== TEST 6: random two least_conn
--- http_config
    upstream u { random two least_conn; server 127.0.0.1:1985; server 127.0.0.1:1986; }
    server { listen 127.0.0.1:1985; location / { return 404 "a\n"; } }
    server { listen 127.0.0.1:1986; location / { return 200 "b\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 404;
        add_header X-Status $upstream_status always;
    }
--- request eval
["GET /t?k=1", "GET /t?k=2", "GET /t?k=3", "GET /t?k=4", "GET /t?k=5", "GET /t?k=6"]
--- error_code eval
[200, 200, 200, 200, 200, 200]
--- response_body eval
["b\n", "b\n", "b\n", "b\n", "b\n", "b\n"]
--- response_headers_like eval
['X-Status: ^(404, )?200$', 'X-Status: ^(404, )?200$', 'X-Status: ^(404, )?200$', 'X-Status: ^(404, )?200$', 'X-Status: ^(404, )?200$', 'X-Status: ^(404, )?200$']



=== TEST 7: a backup server is tried after the primary's listed status
--- http_config
    upstream u { server 127.0.0.1:1985; server 127.0.0.1:1986 backup; }
    server { listen 127.0.0.1:1985; location / { return 404 "a\n"; } }
    server { listen 127.0.0.1:1986; location / { return 200 "b\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 404;
        add_header X-Status $upstream_status always;
    }
--- request
GET /t
--- error_code: 200
--- response_headers
X-Status: 404, 200
--- response_body
b



=== TEST 8: a shared memory zone
--- http_config
    upstream u { zone u 64k; server 127.0.0.1:1985; server 127.0.0.1:1986; }
    server { listen 127.0.0.1:1985; location / { return 404 "a\n"; } }
    server { listen 127.0.0.1:1986; location / { return 200 "b\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 404;
        add_header X-Status $upstream_status always;
    }
--- request
GET /t
--- error_code: 200
--- response_headers
X-Status: 404, 200
--- response_body
b



=== TEST 9: proxy_pass with a variable naming an upstream block
--- http_config
    upstream u { server 127.0.0.1:1985; server 127.0.0.1:1986; }
    map $uri $pool { default u; }
    server { listen 127.0.0.1:1985; location / { return 404 "a\n"; } }
    server { listen 127.0.0.1:1986; location / { return 200 "b\n"; } }
--- config
    location / {
        proxy_pass http://$pool;
        proxy_next_upstream_status 404;
        add_header X-Status $upstream_status always;
    }
--- request
GET /t
--- error_code: 200
--- response_headers
X-Status: 404, 200
--- response_body
b



=== TEST 10: the scenario's routing: reads go to both sites, writes to the local one
--- http_config
    upstream registry_local { server 127.0.0.1:1985; }
    upstream registry_both { server 127.0.0.1:1985; server 127.0.0.1:1986; }
    map $request_method $pool { GET registry_both; HEAD registry_both; default registry_local; }
    server { listen 127.0.0.1:1985; location / { return 404 "a\n"; } }
    server { listen 127.0.0.1:1986; location / { return 200 "b\n"; } }
--- config
    location / {
        proxy_pass http://$pool;
        proxy_next_upstream_status 404;
        add_header X-Status $upstream_status always;
    }
--- request eval
["GET /t", "PUT /t\nx"]
--- error_code eval
[200, 404]
--- response_headers eval
["X-Status: 404, 200", "X-Status: 404"]
--- response_body eval
["b\n", "a\n"]



=== TEST 11: an implicit upstream (proxy_pass to an address) is wrapped too: its one server answers
--- http_config

    server { listen 127.0.0.1:1985; location / { return 404 "a\n"; } }
    server { listen 127.0.0.1:1986; location / { return 200 "b\n"; } }
--- config
    location / {
        proxy_pass http://127.0.0.1:1985;
        proxy_next_upstream_status 404;
        add_header X-Status $upstream_status always;
    }
--- request
GET /t
--- error_code: 404
--- response_headers
X-Status: 404
--- response_body
a
--- no_error_log
[alert]
[error]




=== TEST 12: sticky cookie: the server the cookie names answers 404, the next one is asked
The cookie then names the server that gave the answer.
--- skip_nginx: 5: < 1.29.6
--- http_config
    upstream u {
        server 127.0.0.1:1985 route=a;
        server 127.0.0.1:1986 route=b;
        sticky cookie srv;
    }
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
--- more_headers
Cookie: srv=a
--- error_code: 200
--- response_headers
X-Status: 404, 200
X-Addr: 127.0.0.1:1985, 127.0.0.1:1986
--- raw_response_headers_like: Set-Cookie: srv=b\b
--- response_body
b



=== TEST 13: sticky route: the routed server's 404 is passed on
--- skip_nginx: 4: < 1.29.6
--- http_config
    upstream u {
        server 127.0.0.1:1985 route=a;
        server 127.0.0.1:1986 route=b;
        sticky route $arg_route;
    }
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
GET /t?route=a
--- error_code: 200
--- response_headers
X-Status: 404, 200
X-Addr: 127.0.0.1:1985, 127.0.0.1:1986
--- response_body
b



=== TEST 14: sticky learn: the session is learned from the server that answered after a 404
The first request goes to a (round robin), which answers 404, then to b, whose cookie
starts the session; the session's requests then go to b first (without sticky, round robin
would send the second to a).
--- skip_nginx: 6: < 1.29.6
--- http_config
    upstream u {
        server 127.0.0.1:1985;
        server 127.0.0.1:1986;
        sticky learn create=$upstream_cookie_sid lookup=$cookie_sid zone=sessions:1m;
    }
    server { listen 127.0.0.1:1985; location / { return 404 "a\n"; } }
    server {
        listen 127.0.0.1:1986;
        location /login { add_header Set-Cookie "sid=s1"; return 200 "b\n"; }
        location / { return 200 "b\n"; }
    }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 404;
        add_header X-Status $upstream_status always;
    }
--- request eval
["GET /login", "GET /t", "GET /t"]
--- more_headers eval
["", "Cookie: sid=s1", "Cookie: sid=s1"]
--- error_code eval
[200, 200, 200]
--- response_headers eval
["X-Status: 404, 200", "X-Status: 200", "X-Status: 200"]



=== TEST 15: least_time: the primary's 404 goes on to the backup
--- skip_nginx: 4: < 1.31.0
--- http_config
    upstream u {
        least_time header;
        server 127.0.0.1:1985;
        server 127.0.0.1:1986 backup;
    }
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
