#!/usr/bin/perl
# Measures what a request takes from its pool, from a debug nginx's error log
# (error_log ... debug) of one keep-alive connection: nginx logs every block and large
# allocation it makes ("posix_memalign: ADDR:SIZE", "malloc: ADDR:SIZE") and, when it
# destroys a pool, each large allocation ("free: ADDR") and each block with what is left in
# it ("free: ADDR, unused: N"). The request pool is the one destroyed right after
# "http close request".
#
#   pool-usage.pl FIRST LAST < error.log
#
# Prints "BLOCKS BLOCK_BYTES_USED LARGE_BYTES TOTAL" for requests FIRST..LAST (1-based, in
# the order they end), averaged; exits 1 if they differ from one another or are missing.
use strict;
use warnings;

my ($first, $last) = @ARGV;
die "usage: $0 FIRST LAST < error.log\n" unless defined $last;

my %size;          # address -> size of the latest allocation there
my @requests;      # [blocks, used, large] per request
my $phase = '';    # '' | 'large' (after "http close request") | 'blocks'
my $cur;
while (<STDIN>) {
    if (/ (?:posix_memalign|malloc): ([0-9A-Fa-f]+):(\d+)/) {
        $size{lc $1} = $2;
        next;
    }
    if (/ http close request$/) {
        $phase = 'large';
        $cur = [0, 0, 0];
        push @requests, $cur;
        next;
    }
    next unless $phase;
    if (/ free: ([0-9A-Fa-f]+), unused: (\d+)$/) {
        my $s = $size{lc $1} // die "pool-usage: block $1 of unknown size\n";
        $cur->[0]++;
        $cur->[1] += $s - $2;
        $phase = 'blocks';
    } elsif (/ free: ([0-9A-Fa-f]+)$/) {
        if ($phase eq 'blocks') {    # a later ngx_pfree(), not this pool's
            $phase = '';
            next;
        }
        $cur->[2] += $size{lc $1} // die "pool-usage: allocation $1 of unknown size\n";
    } elsif ($phase eq 'blocks') {
        $phase = '';
    }
}

die "pool-usage: only " . @requests . " requests in the log, wanted $last\n" if @requests < $last;
my @sel = @requests[$first - 1 .. $last - 1];
my %seen = map { join(' ', @$_) => 1 } @sel;
die "pool-usage: requests differ: " . join('; ', sort keys %seen) . "\n" if keys %seen > 1;
my ($blocks, $used, $large) = @{ $sel[0] };
print join(' ', $blocks, $used, $large, $used + $large), "\n";
