package FreePorts;

# free_ports(N, LOW): the first of N consecutive TCP ports of 127.0.0.1, all free now, picked
# at random in LOW .. LOW + 999 (200 tries, then it dies). For the .t files that run their
# own nginx outside Test::Nginx::Socket and need a block of ports (the front and its
# backends at fixed offsets). The ports are only free when it looks: another process may
# take one before nginx binds it (run in a network namespace of your own to rule that out).

use strict;
use warnings;

use Exporter 'import';
use IO::Socket::INET;

our @EXPORT_OK = qw(free_ports);

sub free_ports {
    my ($n, $low) = @_;
    for (1 .. 200) {
        my $first = $low + int(rand(1000 - $n));
        my @held = map {
            IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $_, Proto => 'tcp',
                Listen => 1, ReuseAddr => 1)
        } $first .. $first + $n - 1;
        return $first unless grep { !defined } @held;
    }
    die "no $n free consecutive ports in $low-" . ($low + 999) . "\n";
}

1;
