#!/usr/bin/perl
# Reads wrk's output (run with --latency) and prints "REQ/S P50_US P99_US REQUESTS".
# Exits 1 when wrk saw non-2xx/3xx responses or socket errors, or made no request.
use strict;
use warnings;

my %unit = (us => 1, ms => 1e3, s => 1e6, m => 60e6, h => 3600e6);
my ($rps, %pct, $requests, $bad);
while (<STDIN>) {
    $rps = $1 if /^Requests\/sec:\s+([\d.]+)/;
    $pct{$1} = $2 * $unit{$3} if /^\s+(50|99)%\s+([\d.]+)(us|ms|s|m|h)\s*$/;
    $requests = $1 if /^\s+(\d+) requests in /;
    $bad .= $_ if /Non-2xx or 3xx responses: *[1-9]/;
    $bad .= $_ if /Socket errors: / && /[1-9]/;
}
if ($bad || !$requests || !defined $rps || !defined $pct{50} || !defined $pct{99}) {
    print STDERR "wrk-parse: ", ($bad // "no requests or no latency distribution\n");
    exit 1;
}
printf "%.1f %.1f %.1f %d\n", $rps, $pct{50}, $pct{99}, $requests;
