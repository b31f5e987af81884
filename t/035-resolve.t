# Upstream servers named in DNS and re-resolved while nginx runs (`server ... resolve`,
# nginx 1.27.3+): their peers are made at run time, in the upstream's shared memory zone,
# and a listed status passes a request on between them like between any others.
#
# The names are answered by a DNS server this file runs on UDP on 127.0.0.1, as nginx's own
# tests do: every name under .test has the addresses in %ZONE; AAAA and other questions get
# an empty answer, unknown names NXDOMAIN. flip.test moves from 127.0.0.1 to 127.0.0.2 once
# the server is asked for flipnow.test.
use Test::Nginx::Socket 'no_plan';
use UpstreamProtocol;

use IO::Socket::INET;
use POSIX ();

our %ZONE = (
    'one.test' => ['127.0.0.1'],
    'two.test' => ['127.0.0.1', '127.0.0.2'],
    'flip.test' => ['127.0.0.1'],
    'flipnow.test' => ['127.0.0.1'],
);

my $dns = IO::Socket::INET->new(Proto => 'udp', LocalAddr => '127.0.0.1:0')
    or die "dns: cannot bind a UDP socket: $!";
$ENV{TEST_NGINX_DNS_PORT} = $dns->sockport;

my $parent = $$;
my $dns_pid = fork() // die "fork: $!";
if ($dns_pid == 0) {
    dns_server($dns, $parent);
    POSIX::_exit(0);
}
close $dns;
END { kill 'TERM', $dns_pid if $dns_pid && $$ == $parent }

# Every block: the resolver is the DNS server above, and /pause answers slowly (limit_rate),
# so that a block's first request gives nginx time to resolve its names after it started.
add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(http_config =>
        "    resolver 127.0.0.1:\$TEST_NGINX_DNS_PORT ipv6=off valid=1s;\n"
        . ($block->http_config // ''));
    $block->set_value(config =>
        "    location = /pause { limit_rate 50; return 200 \"0123456789012345678901234\\n\"; }\n"
        . ($block->config // ''));
});

no_shuffle();
no_root_location();
log_level('info');
run_tests();

# Answers queries until the .t process is gone.
sub dns_server {
    my ($sock, $parent) = @_;
    while (getppid() == $parent) {
        my $rin = '';
        vec($rin, fileno($sock), 1) = 1;
        next unless select(my $rout = $rin, undef, undef, 0.5);
        my $peer = $sock->recv(my $query, 512) // next;
        my $reply = dns_reply($query) // next;
        $sock->send($reply, 0, $peer);
    }
}

# A reply to one question (RFC 1035, 4.1): the header with the query's id, the question as
# asked, and an A record for each address of the name.
sub dns_reply {
    my ($query) = @_;
    return if length $query < 12;
    my ($id, $flags, $qdcount) = unpack 'n n n', $query;
    return if $qdcount != 1;

    my ($pos, @labels) = (12);
    while ((my $len = ord substr $query, $pos, 1) > 0) {
        push @labels, substr $query, $pos + 1, $len;
        $pos += 1 + $len;
        return if $pos >= length $query;
    }
    my $question = substr $query, 12, $pos + 5 - 12;    # name, zero byte, type, class
    my ($type) = unpack 'n', substr $query, $pos + 1, 2;
    my $name = lc join '.', @labels;
    $ZONE{'flip.test'} = ['127.0.0.2'] if $name eq 'flipnow.test';
    my $addrs = $ZONE{$name};

    my @answers;
    if ($addrs && $type == 1) {    # A
        @answers = map {
            pack('n n n N n', 0xc00c, 1, 1, 1, 4) . pack('C4', split /\./)
        } @$addrs;
    }
    my $rcode = $addrs ? 0 : 3;    # NXDOMAIN for a name not in the zone
    my $rd = $flags & 0x0100;
    return pack('n n n n n n', $id, 0x8080 | $rd | $rcode, 1, scalar @answers, 0, 0)
        . $question . join '', @answers;
}

__DATA__

=== TEST 1: a resolved server's 404 goes on to the backup
--- skip_nginx: 7: < 1.27.3
--- http_config
    upstream u {
        zone u 64k;
        server one.test:1985 resolve;
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
--- request eval
["GET /pause", "GET /t"]
--- error_code eval
[200, 200]
--- response_headers eval
["!X-Status", "X-Status: 404, 200\nX-Addr: 127.0.0.1:1985, 127.0.0.1:1986"]
--- response_body eval
["0123456789012345678901234\n", "b\n"]



=== TEST 2: two addresses of one name: the one that answers 404 passes the request to the other
Round robin starts the requests at either address in turn; the answer is always the second
address's.
--- skip_nginx: 10: < 1.27.3
--- http_config
    upstream u {
        zone u 64k;
        server two.test:1985 resolve;
    }
    server { listen 127.0.0.1:1985; location / { return 404 "a\n"; } }
    server { listen 127.0.0.2:1985; location / { return 200 "b\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 404;
        add_header X-Addr $upstream_addr always;
    }
--- request eval
["GET /pause", "GET /t", "GET /t"]
--- error_code eval
[200, 200, 200]
--- response_body eval
["0123456789012345678901234\n", "b\n", "b\n"]
--- response_headers_like eval
['X-Addr: ^$', 'X-Addr: ^(127.0.0.1:1985, )?127.0.0.2:1985$', 'X-Addr: ^(127.0.0.1:1985, )?127.0.0.2:1985$']



=== TEST 3: a name that does not resolve leaves the backup; its 404 is the answer
--- skip_nginx: 4: < 1.27.3
--- http_config
    upstream u {
        zone u 64k;
        server nowhere.test:1985 resolve;
        server 127.0.0.1:1986 backup;
    }
    server { listen 127.0.0.1:1986; location / { return 404 "b\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_next_upstream_status 404;
        add_header X-Status $upstream_status always;
    }
--- request eval
["GET /pause", "GET /t"]
--- error_code eval
[200, 404]
--- response_body eval
["0123456789012345678901234\n", "b\n"]



=== TEST 4: metrics: a resolved server's new address is counted as itself
When a name's address changes, nginx frees the old peer and makes a new one, whose name can
take the old name's memory: the same address, other bytes. A worker's cache of counters must
not count the new server into the old one's counter. /flip makes the DNS server answer
flip.test with 127.0.0.2 from then on; nginx asks again within two seconds (valid=1s: the
resolve timer is the validity plus a second), and the two /pause requests after /flip take
six.
--- skip_nginx: 25: < 1.27.3
--- http_config
    next_upstream_status_zone retries 64k;
    upstream u {
        zone u 64k;
        server flip.test:1985 resolve;
        server 127.0.0.1:1986 backup;
    }
    server {
        listen 127.0.0.1:1985;
        listen 127.0.0.2:1985;
        location / { return 404 "a\n"; }
    }
    server { listen 127.0.0.1:1986; location / { return 200 "b\n"; } }
--- config
    location /t {
        proxy_pass http://u;
        proxy_next_upstream_status 404;
        add_header X-Addr $upstream_addr always;
    }
    location = /flip {
        set $name flipnow.test;
        proxy_pass http://$name:1986;
    }
    location = /metrics { next_upstream_status_metrics; }
--- request eval
["GET /pause", "GET /t", "GET /t", "GET /flip", ("GET /pause") x 2, ("GET /t") x 3, "GET /metrics"]
--- error_code eval
[(200) x 10]
--- response_headers eval
["", ("X-Addr: 127.0.0.1:1985, 127.0.0.1:1986") x 2, ("") x 3,
 ("X-Addr: 127.0.0.2:1985, 127.0.0.1:1986") x 3, ""]
--- response_body eval
["0123456789012345678901234\n", "b\n", "b\n", "b\n", ("0123456789012345678901234\n") x 2,
 ("b\n") x 3,
qq{# HELP nginx_next_upstream_status_passed_total Requests passed on to the next upstream server after this server answered this listed status.
# TYPE nginx_next_upstream_status_passed_total counter
nginx_next_upstream_status_passed_total{upstream="u",server="127.0.0.1:1985",status="404"} 2
nginx_next_upstream_status_passed_total{upstream="u",server="127.0.0.2:1985",status="404"} 3
# HELP nginx_next_upstream_status_kept_total Kept answers with this status sent instead of nginx's own error, because no later server gave an answer.
# TYPE nginx_next_upstream_status_kept_total counter
# HELP nginx_next_upstream_status_exhausted_total Requests for which every server tried answered a listed status; the last server's answer with this status was sent.
# TYPE nginx_next_upstream_status_exhausted_total counter
}]
