#!/usr/bin/perl
# Prints the wall-clock tables (markdown) from the runs' results.
#   wall-report.pl RESULTS < SCENARIOS
# RESULTS: lines "ID ref|mod ROUND REQ/S P50_US P99_US REQUESTS FRONT_CPU_NS";
# SCENARIOS: lines "ID|TITLE|REFERENCE KIND|MODULE KIND|PATH", in the order of the table.
use strict;
use warnings;
use utf8;
binmode STDOUT, ':encoding(UTF-8)';

my ($results) = @ARGV;
my %runs;    # id -> side -> [ [rps, p50, p99, cpu_us_per_request], ... ] by round
open my $fh, '<', $results or die "wall-report: $results: $!\n";
while (<$fh>) {
    my ($id, $side, $round, $rps, $p50, $p99, $requests, $cpu_ns) = split;
    $runs{$id}{$side}[$round - 1] = [$rps, $p50, $p99, $cpu_ns / 1000 / $requests];
}

sub median {
    my @v = sort { $a <=> $b } @_;
    return @v % 2 ? $v[$#v / 2] : ($v[@v / 2 - 1] + $v[@v / 2]) / 2;
}

sub lat {    # microseconds, printed compactly
    my ($us) = @_;
    return $us >= 1000 ? sprintf('%.2f ms', $us / 1000) : sprintf('%.0f µs', $us);
}

sub mmm {
    my @v = sort { $a <=> $b } @_;
    return sprintf '%.3f / %.3f / %.3f', $v[0], median(@v), $v[-1];
}

my %names = (
    stock_200    => 'no module',
    mod_200      => 'module, directive on',
    modother_200 => 'module, directive elsewhere',
    stock_404x1  => 'stock `http_404`',
    mod_404x1    => 'module `404`',
    work_404     => 'intercept_errors + error_page',
    mod_410      => 'module `410`',
    stock_404x3  => 'stock `http_404`',
    mod_404x3    => 'module `404`',
    stock_404x7  => 'stock `http_404`',
    mod_404x7    => 'module `404`',
    modzone_200  => 'module, zone',
    modzone_404x1 => 'module `404`, zone',
);

print "| scenario | side | req/s | p50 | p99 | front CPU / request "
    . "| B/A req/s (min / med / max) | B/A CPU per request (min / med / max) |\n";
print "|---|---|---:|---:|---:|---:|---|---|\n";
my %per_try;
while (<STDIN>) {
    chomp;
    my ($id, $title, $ref, $mod) = split /\|/;
    next unless $runs{$id};
    my @a = @{ $runs{$id}{ref} };
    my @b = @{ $runs{$id}{mod} };
    my @ma = map { my $i = $_; median(map { $_->[$i] } @a) } 0 .. 3;
    my @mb = map { my $i = $_; median(map { $_->[$i] } @b) } 0 .. 3;
    printf "| **%s** %s | A: %s | %.0f | %s | %s | %.1f µs | | |\n",
        $id, $title, $names{$ref} // $ref, $ma[0], lat($ma[1]), lat($ma[2]), $ma[3];
    printf "| | B: %s | %.0f | %s | %s | %.1f µs | %s | %s |\n",
        $names{$mod} // $mod, $mb[0], lat($mb[1]), lat($mb[2]), $mb[3],
        mmm(map { $b[$_][0] / $a[$_][0] } 0 .. $#a), mmm(map { $b[$_][3] / $a[$_][3] } 0 .. $#a);
    $per_try{2} = [@ma, @mb] if $id eq 'b';
    $per_try{$1} = [@ma, @mb] if $id =~ /^e(\d+)$/;
}

if (keys %per_try > 1) {
    print "\nCost as tries grow (2 tries = scenario b): the front worker's CPU time per "
        . "request and p50 latency (medians):\n\n";
    print "| tries | stock CPU / request | module CPU / request | module - stock "
        . "| stock p50 | module p50 |\n";
    print "|---:|---:|---:|---:|---:|---:|\n";
    for my $t (sort { $a <=> $b } keys %per_try) {
        my ($a, $b) = ([@{ $per_try{$t} }[0 .. 3]], [@{ $per_try{$t} }[4 .. 7]]);
        printf "| %d | %.1f µs | %.1f µs | %+.1f µs | %s | %s |\n", $t, $a->[3], $b->[3],
            $b->[3] - $a->[3], lat($a->[1]), lat($b->[1]);
    }
}
