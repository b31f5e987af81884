# Bad input: every malformed use is a configuration error that names the bad token,
# in nginx's words (nginx adds "in FILE:LINE"), and nginx does not start.
use Test::Nginx::Socket 'no_plan';

no_shuffle();
no_root_location();
run_tests();

__DATA__

=== TEST 1: rejected: a non-number
--- config
    location / {
        proxy_pass http://127.0.0.1:1985;
        proxy_next_upstream_status abc;
    }
--- must_die
--- error_log
invalid status "abc"

=== TEST 2: rejected: a two-digit code
--- config
    location / {
        proxy_pass http://127.0.0.1:1985;
        proxy_next_upstream_status 40;
    }
--- must_die
--- error_log
invalid status "40"

=== TEST 3: rejected: a four-digit code
--- config
    location / {
        proxy_pass http://127.0.0.1:1985;
        proxy_next_upstream_status 4040;
    }
--- must_die
--- error_log
invalid status "4040"

=== TEST 4: rejected: a signed code
--- config
    location / {
        proxy_pass http://127.0.0.1:1985;
        proxy_next_upstream_status +404;
    }
--- must_die
--- error_log
invalid status "+404"

=== TEST 5: rejected: a success code
--- config
    location / {
        proxy_pass http://127.0.0.1:1985;
        proxy_next_upstream_status 200;
    }
--- must_die
--- error_log
status "200" is out of range: nginx passes a request on only after a status from 300 to 599

=== TEST 6: rejected: a code above 599
--- config
    location / {
        proxy_pass http://127.0.0.1:1985;
        proxy_next_upstream_status 600;
    }
--- must_die
--- error_log
status "600" is out of range

=== TEST 7: rejected: a 2xx class
--- config
    location / {
        proxy_pass http://127.0.0.1:1985;
        proxy_next_upstream_status 2xx;
    }
--- must_die
--- error_log
status "2xx" is out of range

=== TEST 8: rejected: a 1xx..2xx range
--- config
    location / {
        proxy_pass http://127.0.0.1:1985;
        proxy_next_upstream_status 200-404;
    }
--- must_die
--- error_log
status "200-404" is out of range

=== TEST 9: rejected: a reversed range
--- config
    location / {
        proxy_pass http://127.0.0.1:1985;
        proxy_next_upstream_status 504-500;
    }
--- must_die
--- error_log
invalid range "504-500": the first status is greater than the last

=== TEST 10: rejected: a range with no end
--- config
    location / {
        proxy_pass http://127.0.0.1:1985;
        proxy_next_upstream_status 500-;
    }
--- must_die
--- error_log
invalid status "500-"

=== TEST 11: rejected: a bad class
--- config
    location / {
        proxy_pass http://127.0.0.1:1985;
        proxy_next_upstream_status 4x;
    }
--- must_die
--- error_log
invalid status "4x"

=== TEST 12: rejected: a duplicate code
--- config
    location / {
        proxy_pass http://127.0.0.1:1985;
        proxy_next_upstream_status 404 404;
    }
--- must_die
--- error_log
duplicate status 404 in "404"

=== TEST 13: rejected: a code inside a listed class
--- config
    location / {
        proxy_pass http://127.0.0.1:1985;
        proxy_next_upstream_status 4xx 404;
    }
--- must_die
--- error_log
duplicate status 404 in "404"

=== TEST 14: rejected: overlapping ranges
--- config
    location / {
        proxy_pass http://127.0.0.1:1985;
        proxy_next_upstream_status 500-503 502-504;
    }
--- must_die
--- error_log
duplicate status 502 in "502-504"

=== TEST 15: rejected: off with codes
--- config
    location / {
        proxy_pass http://127.0.0.1:1985;
        proxy_next_upstream_status off 404;
    }
--- must_die
--- error_log
"off" cannot be combined with other parameters

=== TEST 16: rejected: methods only
--- config
    location / {
        proxy_pass http://127.0.0.1:1985;
        proxy_next_upstream_status methods=GET;
    }
--- must_die
--- error_log
no status is listed

=== TEST 17: rejected: an empty methods=
--- config
    location / {
        proxy_pass http://127.0.0.1:1985;
        proxy_next_upstream_status 404 methods=;
    }
--- must_die
--- error_log
empty method list in "methods="

=== TEST 18: rejected: an unknown method
--- config
    location / {
        proxy_pass http://127.0.0.1:1985;
        proxy_next_upstream_status 404 methods=GET,FETCH;
    }
--- must_die
--- error_log
unknown method "FETCH" in "methods=GET,FETCH"

=== TEST 19: rejected: a lower-case method
--- config
    location / {
        proxy_pass http://127.0.0.1:1985;
        proxy_next_upstream_status 404 methods=get;
    }
--- must_die
--- error_log
unknown method "get" in "methods=get"

=== TEST 20: rejected: a trailing comma
--- config
    location / {
        proxy_pass http://127.0.0.1:1985;
        proxy_next_upstream_status 404 methods=GET,;
    }
--- must_die
--- error_log
unknown method "" in "methods=GET,"

=== TEST 21: rejected: a duplicate method
--- config
    location / {
        proxy_pass http://127.0.0.1:1985;
        proxy_next_upstream_status 404 methods=GET,GET;
    }
--- must_die
--- error_log
duplicate method "GET" in "methods=GET,GET"

=== TEST 22: rejected: methods= twice
--- config
    location / {
        proxy_pass http://127.0.0.1:1985;
        proxy_next_upstream_status 404 methods=GET methods=HEAD;
    }
--- must_die
--- error_log
duplicate parameter "methods=HEAD"

=== TEST 23: rejected: no argument
--- config
    location / {
        proxy_pass http://127.0.0.1:1985;
        proxy_next_upstream_status;
    }
--- must_die
--- error_log
invalid number of arguments in "proxy_next_upstream_status" directive

=== TEST 24: rejected: the directive twice
--- config
    location / {
        proxy_pass http://127.0.0.1:1985;
        proxy_next_upstream_status 404; proxy_next_upstream_status 410;
    }
--- must_die
--- error_log
"proxy_next_upstream_status" directive is duplicate

=== TEST 25: rejected: a misspelt parameter
--- config
    location / {
        proxy_pass http://127.0.0.1:1985;
        proxy_next_upstream_status 404 method=GET;
    }
--- must_die
--- error_log
invalid status "method=GET"

=== TEST 26: rejected: keep_answer= other than on or off
--- config
    location / {
        proxy_pass http://127.0.0.1:1985;
        proxy_next_upstream_status 404 keep_answer=yes;
    }
--- must_die
--- error_log
invalid value "keep_answer=yes": it must be "on" or "off"



=== TEST 27: rejected: keep_answer= twice
--- config
    location / {
        proxy_pass http://127.0.0.1:1985;
        proxy_next_upstream_status 404 keep_answer=on keep_answer=off;
    }
--- must_die
--- error_log
duplicate parameter "keep_answer=off"



=== TEST 28: rejected: inside "if"
--- config
    location / {
        proxy_pass http://127.0.0.1:1985;
        if ($request_method = GET) {
            proxy_next_upstream_status 404;
        }
    }
--- must_die
--- error_log
"proxy_next_upstream_status" directive is not allowed here

=== TEST 29: rejected: inside "upstream"
--- http_config
    upstream u {
        server 127.0.0.1:1985;
        proxy_next_upstream_status 404;
    }
--- config
    location / { proxy_pass http://u; }
--- must_die
--- error_log
"proxy_next_upstream_status" directive is not allowed here

=== TEST 30: the error names the file and line
--- config
    location / {
        proxy_pass http://127.0.0.1:1985;
        proxy_next_upstream_status 404 abc;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid status "abc" in \S+nginx\.conf:\d+/

=== TEST 31: accepted: every form at once, and "off"
--- config
    proxy_next_upstream_status 404 410 500-504 3xx methods=GET,HEAD,PUT,DELETE,OPTIONS;
    location / {
        proxy_pass http://127.0.0.1:1985;
    }
    location /off {
        proxy_pass http://127.0.0.1:1985;
        proxy_next_upstream_status off;
    }
--- request
GET /nowhere
--- error_code: 502
