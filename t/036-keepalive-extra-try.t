# nginx's extra try after an error on a kept-alive connection: when a cached connection
# fails (the server closed it as the request went out), ngx_http_upstream_next() gives the
# try back (`u->peer.tries++`), since the server never saw the request. Upstream keepalive
# is the default since nginx 1.29.7, so this now happens on ordinary traffic; the module
# reads the tries left where nginx does, and so still passes a listed status on after it.
#
# The server here is this file's own, on a port of its own: it answers a connection's first
# request and keeps the connection, and closes a connection when a second request comes on
# it, before answering, as a server whose keepalive timeout just ran out does. /warm is
# answered 200, anything else 404. It speaks HTTP/1.1, which every block states.
use Test::Nginx::Socket 'no_plan';

use IO::Select;
use IO::Socket::INET;
use POSIX ();

my $listen = IO::Socket::INET->new(
    LocalAddr => '127.0.0.1:0', Listen => 16, ReuseAddr => 1, Proto => 'tcp',
) or die "cannot listen: $!";
$ENV{TEST_NGINX_CLOSING_PORT} = $listen->sockport;

my $parent = $$;
my $server_pid = fork() // die "fork: $!";
if ($server_pid == 0) {
    closing_server($listen, $parent);
    POSIX::_exit(0);
}
close $listen;
END { kill 'TERM', $server_pid if $server_pid && $$ == $parent }

no_shuffle();
no_root_location();
log_level('info');
run_tests();

sub closing_server {
    my ($listen, $parent) = @_;
    my $sel = IO::Select->new($listen);
    my %conn;    # fileno => { sock, buf, requests }
    while (getppid() == $parent) {
        for my $sock ($sel->can_read(0.5)) {
            if ($sock == $listen) {
                my $c = $listen->accept or next;
                $sel->add($c);
                $conn{ fileno $c } = { sock => $c, buf => '', requests => 0 };
                next;
            }
            my $c = $conn{ fileno $sock };
            my $n = sysread($sock, my $data, 65536);
            if (!$n) {
                $sel->remove($sock);
                delete $conn{ fileno $sock };
                close $sock;
                next;
            }
            $c->{buf} .= $data;
            while ($c->{buf} =~ s/^(.*?)\r\n\r\n//s) {
                my ($uri) = $1 =~ m{^\S+ (\S+)};
                if ($c->{requests}++ > 0) {    # a second request: the connection is closed
                    $sel->remove($sock);
                    delete $conn{ fileno $sock };
                    close $sock;
                    last;
                }
                my ($status, $body) = $uri eq '/warm' ? ('200 OK', "warm\n") : ('404 Not Found', "a\n");
                syswrite($sock, "HTTP/1.1 $status\r\nContent-Length: " . length($body)
                    . "\r\n\r\n$body");
            }
        }
    }
}

__DATA__

=== TEST 1: the try given back after a failed kept-alive connection counts for a listed status
The upstream lists this file's server twice (one address, so one keepalive cache entry
serves both). /warm goes to the first entry and leaves its connection in the cache; /t goes
to the second entry, which reuses that connection, and fails. nginx gives the try back and
asks the first entry on a new connection: 404. Two tries are allowed, and with the one
given back one is left, so the 404 is passed on to the backup. ($upstream_status lists the
failed connection as 502.) Without the try given back the 404 would be the answer (TEST 2
shows it with one try fewer).
--- http_config
    upstream u {
        server 127.0.0.1:$TEST_NGINX_CLOSING_PORT max_fails=0;
        server 127.0.0.1:$TEST_NGINX_CLOSING_PORT max_fails=0;
        server 127.0.0.1:1986 backup;
        keepalive 4;
    }
    server { listen 127.0.0.1:1986; location / { return 200 "b\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_next_upstream_tries 2;
        proxy_next_upstream_status 404;
        add_header X-Status $upstream_status always;
    }
--- request eval
["GET /warm", "GET /t"]
--- error_code eval
[200, 200]
--- response_headers eval
["X-Status: 200", "X-Status: 502, 404, 200"]
--- response_body eval
["warm\n", "b\n"]



=== TEST 2: one try fewer: the 404 after the failed kept-alive connection is the answer
The same with `proxy_next_upstream_tries 1`: the try given back is the one the 404 came on,
none is left, and the client gets the 404.
--- http_config
    upstream u {
        server 127.0.0.1:$TEST_NGINX_CLOSING_PORT max_fails=0;
        server 127.0.0.1:$TEST_NGINX_CLOSING_PORT max_fails=0;
        server 127.0.0.1:1986 backup;
        keepalive 4;
    }
    server { listen 127.0.0.1:1986; location / { return 200 "b\n"; } }
--- config
    location / {
        proxy_pass http://u;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_next_upstream_tries 1;
        proxy_next_upstream_status 404;
        add_header X-Status $upstream_status always;
    }
--- request eval
["GET /warm", "GET /t"]
--- error_code eval
[200, 404]
--- response_headers eval
["X-Status: 200", "X-Status: 502, 404"]
--- response_body eval
["warm\n", "a\n"]
