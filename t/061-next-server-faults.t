# The first server answers a listed 404; the next server fails in one of the ways below.
# For every kind of failure, the client gets the 404 that was passed over (keep_answer is
# on by default), for GET and for HEAD, with the body when it fits in proxy_buffer_size
# and without it when it does not, with keepalive connections to the servers; and with
# keep_answer=off it gets nginx's own 502/504, as with stock nginx.
#
# The blocks are generated from the two tables below (@faults x @variants), one behaviour
# per block, named "<fault>: <variant>".  Every block also checks the error log line that
# shows the fault really happened the way the block says, and $upstream_status.
#
# The failure nginx reports for each fault:
#   refused              502  nothing listens on the port
#   connect timeout      504  a listening socket whose accept queue is full drops the SYN
#                             (Linux), so the connect hangs until proxy_connect_timeout
#   read timeout         504  the server reads the request and never answers
#   closed mid-header    502  half a header, then the connection is closed (FIN)
#   reset mid-header     502  half a header, then the connection is reset (RST)
#   invalid header       502  a header line with a NUL byte
#   too big header       502  a header larger than proxy_buffer_size
use Test::Nginx::Socket 'no_plan';
use HarnessExtensions;
use UpstreamProtocol;
use IO::Socket::INET;
use Socket qw(PF_INET SOCK_STREAM pack_sockaddr_in unpack_sockaddr_in inet_aton);

# The "black hole" for the connect timeout: listen(2) with a backlog of 0 and one
# connection that is never accepted; the accept queue is full, so Linux drops every further
# SYN and the connect() of nginx times out.  Both sockets live as long as this file runs.
our ($BlackHole, $BlackHoleFiller);
socket($BlackHole, PF_INET, SOCK_STREAM, 0) or die "socket: $!";
bind($BlackHole, pack_sockaddr_in(0, inet_aton('127.0.0.1'))) or die "bind: $!";
listen($BlackHole, 0) or die "listen: $!";
$ENV{TEST_NGINX_BLACKHOLE_PORT} = (unpack_sockaddr_in(getsockname($BlackHole)))[0];
$BlackHoleFiller = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                         PeerPort => $ENV{TEST_NGINX_BLACKHOLE_PORT})
    or die "cannot fill the black hole's accept queue: $@";

no_shuffle();
no_root_location();
log_level('info');

my $ERR_PAGE = { 502 => '502 Bad Gateway', 504 => '504 Gateway Time-out' };

# name, nginx's failure, its error log line, sections for the next server (none: the
# server address is given instead).
my @faults = (
    {
        name   => 'refused',
        status => 502,
        log    => 'connect() failed (111: Connection refused) while connecting to upstream',
        server => '127.0.0.1:$TEST_NGINX_RAND_PORT_2',
    },
    {
        name   => 'connect timeout',
        status => 504,
        log    => 'upstream timed out (110: Connection timed out) while connecting to upstream',
        server => '127.0.0.1:$TEST_NGINX_BLACKHOLE_PORT',
    },
    {
        name   => 'read timeout',
        status => 504,
        log    => 'upstream timed out (110: Connection timed out) while reading response header from upstream',
        tcp    => "--- tcp_reply:\n--- tcp_no_close\n",
    },
    {
        name   => 'closed mid-header',
        status => 502,
        log    => 'upstream prematurely closed connection while reading response header from upstream',
        tcp    => qq{--- tcp_reply eval\n"HTTP/1.1 200 OK\\r\\nContent-Ty"\n},
    },
    {
        name   => 'reset mid-header',
        status => 502,
        log    => 'recv() failed (104: Connection reset by peer) while reading response header from upstream',
        tcp    => qq{--- tcp_reply eval\n[{value => "HTTP/1.1 200 OK\\r\\nContent-Ty", reset => 1}]\n},
        needs  => 'tcp_reply with reset => 1 (an RST)',
    },
    {
        name   => 'invalid header',
        status => 502,
        log    => 'upstream sent invalid header',
        tcp    => qq{--- tcp_reply eval\n"HTTP/1.1 200 OK\\r\\nX-Bad\\0Name: v\\r\\nContent-Length: 2\\r\\n\\r\\nb\\n"\n},
    },
    {
        name   => 'too big header',
        status => 502,
        log    => 'upstream sent too big header while reading response header from upstream',
        tcp    => qq{--- tcp_reply eval\n"HTTP/1.1 200 OK\\r\\nX-Big: " . ("x" x 10000) . "\\r\\nContent-Length: 2\\r\\n\\r\\nb\\n"\n},
    },
);

my @variants = ('GET', 'HEAD', 'a body larger than proxy_buffer_size', 'keepalive',
                'keep_answer=off');
# How many tests a variant's block makes, for the skip of a fault that `needs` this
# harness (--- needs_harness, t/lib/HarnessExtensions.pm).
my %tests_of = ('GET' => 9, 'HEAD' => 8, 'a body larger than proxy_buffer_size' => 7,
                'keepalive' => 8, 'keep_answer=off' => 6);

my ($spec, $n) = ('', 0);
for my $f (@faults) {
    for my $v (@variants) {
        $spec .= block(++$n, $f, $v);
    }
}
spec_string($spec);
run_tests();

sub block {
    my ($n, $f, $v) = @_;
    my $st = $f->{status};
    my $second = $f->{server} // '127.0.0.1:$TEST_NGINX_RAND_PORT_2';
    my $tcp = $f->{tcp} ? "--- tcp_listen: \$TEST_NGINX_RAND_PORT_2\n$f->{tcp}" : '';
    $tcp .= "--- needs_harness: $tests_of{$v}: $f->{needs}\n" if $f->{needs};
    my $kept_line = qq{next_upstream_status: no later server gave an answer ($st), }
                  . qq{sending the 404 answered by "127.0.0.1:};
    my $off = $v eq 'keep_answer=off' ? ' keep_answer=off' : '';

    # The first server: "a\n" with its own headers; a 100000-byte page for the large body;
    # for keepalive, /ok answers 200 so that its connection is kept for the next request,
    # and X-Conn shows that the 404 came on that same connection.
    my $first_locations = $v eq 'a body larger than proxy_buffer_size'
        ? qq{location / { error_page 404 /big.txt; return 404; }\n}
        . qq{        location = /big.txt { root html; internal; }}
        : $v eq 'keepalive'
        ? qq{location = /ok { return 200 "ok\\n"; }\n}
        . qq{        location / {
            add_header X-Site a always;
            add_header X-Conn \$connection_requests always;
            return 404 "a\\n";
        }}
        : qq{location / { return 404 "a\\n"; }};
    my $upstream = $v eq 'keepalive'
        ? "server 127.0.0.1:\$TEST_NGINX_RAND_PORT_1;\n"
        . "        server $second backup max_fails=0;\n        keepalive 4;"
        : "server 127.0.0.1:\$TEST_NGINX_RAND_PORT_1;\n        server $second;";
    my $keepalive_conf = $v eq 'keepalive'
        ? qq{        proxy_http_version 1.1;\n        proxy_set_header Connection "";\n}
        : '';

    my $head = <<"_EOB_";
=== TEST $n: $f->{name}: $v
--- http_config
    upstream u {
        $upstream
    }
    server {
        listen 127.0.0.1:\$TEST_NGINX_RAND_PORT_1;
        add_header X-Site a always;
        $first_locations
    }
    log_format st "\$status [\$upstream_status]";
--- config
    access_log logs/access.log st;
    location / {
        proxy_pass http://u;
        proxy_connect_timeout 300ms;
        proxy_read_timeout 300ms;
$keepalive_conf        proxy_next_upstream_status 404$off;
        add_header X-Status \$upstream_status always;
    }
$tcp
_EOB_
    $head .= qq{--- user_files eval\n[["big.txt", "x" x 100000]]\n}
        if $v eq 'a body larger than proxy_buffer_size';

    if ($v eq 'GET') {
        return $head . <<"_EOB_";
--- request
GET /t
--- error_code: 404
--- response_headers
X-Site: a
Content-Type: text/plain
Content-Length: 2
X-Status: 404, $st
--- response_body
a
--- access_log
404 [404, $st]
--- error_log
$f->{log}
$kept_line


_EOB_
    }
    if ($v eq 'HEAD') {
        return $head . <<"_EOB_";
--- request
HEAD /t
--- error_code: 404
--- response_headers
X-Site: a
Content-Length: 2
X-Status: 404, $st
--- response_body eval
""
--- access_log
404 [404, $st]
--- error_log
$f->{log}
$kept_line


_EOB_
    }
    if ($v eq 'a body larger than proxy_buffer_size') {
        return $head . <<"_EOB_";
--- request
GET /t
--- error_code: 404
--- response_headers
X-Site: a
Content-Length: 0
X-Status: 404, $st
--- response_body eval
""
--- error_log
$f->{log}
without its body: it does not fit in proxy_buffer_size


_EOB_
    }
    if ($v eq 'keepalive') {
        return $head . <<"_EOB_";
--- request eval
["GET /ok", "GET /t"]
--- error_code eval
[200, 404]
--- response_headers eval
["X-Status: 200", "X-Site: a\\nX-Conn: 2\\nX-Status: 404, $st"]
--- response_body eval
["ok\\n", "a\\n"]


_EOB_
    }
    # keep_answer=off: stock nginx
    return $head . <<"_EOB_";
--- request
GET /t
--- error_code: $st
--- response_headers
X-Status: 404, $st
--- response_body_like: $ERR_PAGE->{$st}
--- access_log
$st [404, $st]
--- error_log
$f->{log}
--- no_error_log
no later server gave an answer


_EOB_
}
