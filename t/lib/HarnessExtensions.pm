package HarnessExtensions;

# Lets a block say that it needs one of this harness's extensions (t/lib/README.md,
# "Extensions"), so that under the upstream Test::Nginx::Socket it is skipped with that
# reason instead of failing:
#
#   use Test::Nginx::Socket 'no_plan';
#   use HarnessExtensions;
#   ...
#   --- needs_harness: 4: tcp_reply as a sub
#
# The number is the tests to skip, as in `--- skip_eval: N: ...`. Under this harness the
# section does nothing (the block runs). Under upstream it becomes
# `--- skip_nginx: N: >= 0.0.1: needs t/lib's harness: REASON`, the one skip section whose
# reason upstream prints (a block that also has its own skip_nginx gets upstream's unnamed
# skip_eval instead). Also nginx_version(), the same number under both harnesses, and an
# empty --- config for a block without one, as this harness has it.

use strict;
use warnings;

use Test::Nginx::Socket ();
use Exporter 'import';
our @EXPORT_OK = qw(nginx_version);

# nginx_version(): the version of $TEST_NGINX_BINARY as one number, 1.25.1 -> 1_025_001,
# under either harness (this one has Test::Nginx::Socket::nginx_version with that scale;
# upstream has none before run_tests, and a 1.025001 scale after).
sub nginx_version () {
    return Test::Nginx::Socket::nginx_version() unless $HarnessExtensions::Upstream;
    my $bin = $ENV{TEST_NGINX_BINARY} || 'nginx';
    (my $q = $bin) =~ s/'/'\\''/g;
    my $v = `'$q' -v 2>&1` // '';
    $v =~ m{nginx/(\d+)\.(\d+)\.(\d+)} or die "cannot tell the version of $bin: $v\n";
    return $1 * 1_000_000 + $2 * 1000 + $3;
}

# This harness has tcp_server_loop (its embedded TCP server); upstream's Socket.pm has not.
our $Upstream = Test::Nginx::Socket->can('tcp_server_loop') ? 0 : 1;

Test::Nginx::Socket::add_block_preprocessor(sub {
    my $block = shift;
    # A block without --- config: here an empty one; upstream would reuse the previous
    # block's, or bail out when there is none.
    $block->set_value(config => '') if $Upstream && !defined $block->config;
    my $needs = $block->needs_harness // return;
    $needs =~ /^\s*(\d+)\s*:\s*(\S.*?)\s*$/s
        or die $block->name . ": --- needs_harness must be \"N: reason\", not \"$needs\"\n";
    my ($n, $reason) = ($1, $2);
    return unless $Upstream;
    if (defined $block->skip_nginx) {
        $block->set_value(skip_eval => "$n: 1");
    } else {
        $block->set_value(skip_nginx => "$n: >= 0.0.1: needs t/lib's harness: $reason");
    }
});

1;
