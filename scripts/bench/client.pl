#!/usr/bin/perl
# Sends COUNT requests for PATH one after another over a single keep-alive connection and
# checks that each gets EXPECT (default 200). Deterministic load for instruction counting:
# one request in flight, the same bytes every time.
#
#   client.pl HOST:PORT PATH COUNT [EXPECT]
#
# Waits up to 60 s for the server to accept (nginx under valgrind starts slowly).
# Exits non-zero on any unexpected status, short read or closed connection.
use strict;
use warnings;
use IO::Socket::INET;
use Time::HiRes qw(sleep);

my ($addr, $path, $count, $expect) = @ARGV;
die "usage: $0 HOST:PORT PATH COUNT [EXPECT]\n" unless defined $count && $count =~ /^\d+$/;
$expect //= 200;

my $sock;
for (1 .. 600) {
    $sock = IO::Socket::INET->new(PeerAddr => $addr, Proto => 'tcp');
    last if $sock;
    sleep 0.1;
}
die "client: cannot connect to $addr: $!\n" unless $sock;
$sock->autoflush(1);

my $request = "GET $path HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench-client\r\n\r\n";
my $buf = '';

sub fill {
    my $n = sysread($sock, $buf, 65536, length $buf);
    die "client: read: $!\n" unless defined $n;
    die "client: connection closed by server\n" if $n == 0;
}

for my $i (1 .. $count) {
    print {$sock} $request or die "client: write: $!\n";
    my $end;
    fill() until ($end = index($buf, "\r\n\r\n")) >= 0;
    my $head = substr($buf, 0, $end + 4, '');
    my ($status) = $head =~ m{^HTTP/1\.[01] (\d{3})}
        or die "client: bad status line in response $i\n";
    die "client: response $i: status $status, expected $expect\n" if $status != $expect;
    my ($len) = $head =~ /^Content-Length:\s*(\d+)\r$/mi;
    die "client: response $i has no Content-Length\n" unless defined $len;
    fill() while length $buf < $len;
    substr($buf, 0, $len, '');
    die "client: server closed the connection after response $i\n"
        if $head =~ /^Connection:\s*close\r$/mi && $i < $count;
}
close $sock;
