#!/usr/bin/perl
# Prints instructions per request (markdown) from pairs of callgrind runs, and where the
# module's instructions go.
#
#   callgrind-report.pl TSV DIR MODULE_FILE_NAME
#
# TSV lines: KIND LABEL N1 IR1 N2 IR2 (tab-separated); DIR holds callgrind.KIND.N.out.
# Per request = (Ir after N2 requests - Ir after N1) / (N2 - N1): start-up, configuration
# and shutdown are the same in both runs and cancel out. Not counted: what ngx_time_update()
# calls, formatting its cached time strings once per new second: that follows the seconds
# that pass, which valgrind stretches, not the requests.
use strict;
use warnings;
use utf8;
binmode STDOUT, ':encoding(UTF-8)';

my ($tsv, $dir, $module_file) = @ARGV;
die "usage: $0 TSV DIR MODULE_FILE_NAME\n" unless defined $module_file;

my (%per_req, %label, %runs, @order, %clock);
open my $fh, '<', $tsv or die "callgrind-report: $tsv: $!\n";
while (<$fh>) {
    chomp;
    my ($kind, $label, $n1, $i1, $n2, $i2) = split /\t/;
    my $t1 = time_update("$dir/callgrind.$kind.$n1.out");
    my $t2 = time_update("$dir/callgrind.$kind.$n2.out");
    $per_req{$kind} = (($i2 - $t2) - ($i1 - $t1)) / ($n2 - $n1);
    $clock{$kind} = ($t2 - $t1) / ($n2 - $n1);
    $label{$kind} = $label;
    $runs{$kind} = [$n1, $n2];
    push @order, $kind;
}

sub time_update {    # inclusive cost of the calls ngx_time_update() makes in a run
    my ($file) = @_;
    my (undef, $calls) = profile($file);
    my $sum = 0;
    for my $ob (values %$calls) {
        for my $cob (values %{ $ob->{ngx_time_update} // {} }) {
            $sum += $_ for values %$cob;
        }
    }
    return $sum;
}

# module front, reference front, target in percent (or undef)
my @comparisons = (
    ['mod_200',       'stock_200',   0.5],
    ['modother_200',  'stock_200',   0.5],
    ['modunused_200', 'stock_200',   undef],
    ['mod_404x1',     'stock_404x1', 1.0],
    ['modnokeep_404x1', 'stock_404x1', 1.0],
    ['mod_410',       'stock_404x1', undef],
    ['mod_404x1',     'work_404',    undef],
    ['modzone_200',   'mod_200',     undef],
    ['modzone_404x1', 'mod_404x1',   undef],
);

print "| front | instructions / request | (time formatting, not counted) |\n|---|---:|---:|\n";
printf "| %s | %.0f | %.0f |\n", $label{$_}, $per_req{$_}, $clock{$_} for @order;
print "\n| comparison | module side | reference | difference | target | met |\n"
    . "|---|---:|---:|---:|---:|---|\n";
for my $c (@comparisons) {
    my ($m, $r, $target) = @$c;
    next unless defined $per_req{$m} && defined $per_req{$r};
    my $d = $per_req{$m} - $per_req{$r};
    my $pct = 100 * $d / $per_req{$r};
    printf "| %s vs %s | %.0f | %.0f | %+.0f (%+.2f%%) | %s | %s |\n", $label{$m}, $label{$r},
        $per_req{$m}, $per_req{$r}, $d, $pct,
        defined $target ? "+$target%" : '',
        defined $target ? ($pct <= $target ? 'yes' : '**no**') : '';
}

# Self cost per (object, function) and inclusive cost of each call, from a callgrind file.
sub profile {
    my ($file) = @_;
    my (%name, %self, %calls);
    my ($ob, $fn, $cob, $cfn, $in_call) = ('', '', undef, '', 0);
    my $named = sub {    # "(id) name" defines an id, "(id)" refers to it; one space per kind
        my ($space, $v) = @_;
        return $v unless $v =~ /^\((\d+)\)\s*(.*)$/;
        $name{$space}{$1} = $2 if length $2;
        return $name{$space}{$1} // "?$1";
    };
    open my $in, '<', $file or die "callgrind-report: $file: $!\n";
    while (<$in>) {
        chomp;
        if (/^ob=(.*)/)       { $ob  = $named->('ob', $1); next }
        if (/^fn=(.*)/)       { $fn  = $named->('fn', $1); next }
        if (/^cob=(.*)/)      { $cob = $named->('ob', $1); next }
        if (/^cfn=(.*)/)      { $cfn = $named->('fn', $1); next }
        if (/^c?f[lie]=(.*)/) { $named->('fl', $1); next }
        if (/^calls=/)        { $in_call = 1; next }
        next unless /^[-+*0-9]/;
        my (undef, $ir) = split ' ';
        $ir //= 0;
        if ($in_call) {    # the line after calls= is the call's inclusive cost
            $calls{$ob}{$fn}{ $cob // $ob }{$cfn} += $ir;
            ($in_call, $cob) = (0, undef);
        } else {
            $self{$ob}{$fn} += $ir;
        }
    }
    return (\%self, \%calls);
}

sub short { my ($f) = @_; $f =~ s/^ngx_http_next_upstream_status_module:://; $f }

# Callees that are nginx's own work, done without the module too: the callbacks and
# balancer the module wraps, and the next filters in the chains.
sub passes_through {
    my ($callee) = @_;
    return $callee =~ /_filter$/
        || $callee =~ /^ngx_http_proxy_(process_status_line|process_header|reinit_request|finalize_request)$/
        || $callee =~ /^ngx_http_upstream_init_\w*peer$/;
}

# Where the difference between two fronts goes: self cost per function, all objects.
sub fn_self_per_request {
    my ($kind) = @_;
    my ($n1, $n2) = @{ $runs{$kind} };
    my ($s1) = profile("$dir/callgrind.$kind.$n1.out");
    my ($s2) = profile("$dir/callgrind.$kind.$n2.out");
    my %per;
    for my $ob (keys %$s2) {
        for my $fn (keys %{ $s2->{$ob} }) {
            $per{ short($fn) } += ($s2->{$ob}{$fn} - ($s1->{$ob}{$fn} // 0)) / ($n2 - $n1);
        }
    }
    return \%per;
}

for my $c (grep { defined $_->[2] } @comparisons) {
    my ($m, $r) = @$c;
    next unless defined $per_req{$m} && defined $per_req{$r};
    my ($pm, $pr) = (fn_self_per_request($m), fn_self_per_request($r));
    my %d;
    $d{$_} = ($pm->{$_} // 0) - ($pr->{$_} // 0) for keys %{ { %$pm, %$pr } };
    my @top = grep { abs $d{$_} >= 3 } sort { abs $d{$b} <=> abs $d{$a} || $a cmp $b } keys %d;
    splice @top, 15 if @top > 15;
    printf "
Where the %+.0f instructions of \"%s\" over \"%s\" go (self cost per function, "
        . "module side minus reference, the 15 largest of at least 3):\n\n",
        $per_req{$m} - $per_req{$r}, $label{$m}, $label{$r};
    print "| function | Ir / request |\n|---|---:|\n";
    printf "| `%s` | %+.1f |\n", $_, $d{$_} for @top;
}

my $is_module = qr{/\Q$module_file\E$};
for my $kind (grep { /^mod/ } @order) {
    my ($n1, $n2) = @{ $runs{$kind} };
    my $per = sub { ($_[0] - ($_[1] // 0)) / ($n2 - $n1) };
    my ($s1, $c1) = profile("$dir/callgrind.$kind.$n1.out");
    my ($s2, $c2) = profile("$dir/callgrind.$kind.$n2.out");
    my (%self, %own, %through);
    for my $ob (grep { $_ =~ $is_module } keys %$s2) {
        $self{ short($_) } += $per->($s2->{$ob}{$_}, $s1->{$ob}{$_}) for keys %{ $s2->{$ob} };
        for my $fn (keys %{ $c2->{$ob} }) {
            for my $cob (grep { $_ !~ $is_module } keys %{ $c2->{$ob}{$fn} }) {
                for my $cfn (keys %{ $c2->{$ob}{$fn}{$cob} }) {
                    my $d = $per->($c2->{$ob}{$fn}{$cob}{$cfn}, $c1->{$ob}{$fn}{$cob}{$cfn});
                    my $into = passes_through($cfn) ? \%through : \%own;
                    $into->{ short($fn) . ' → ' . $cfn } += $d;
                }
            }
        }
    }
    my ($self_total, $own_total) = (0, 0);
    $self_total += $_ for values %self;
    $own_total += $_ for values %own;
    printf "\n**%s**: %.0f instructions / request in the module's code, "
        . "%.0f in what it calls (allocation, copies), %.0f together.\n\n",
        $label{$kind}, $self_total, $own_total, $self_total + $own_total;
    print "| module function (self) or call out of the module (inclusive) | Ir / request |\n"
        . "|---|---:|\n";
    for my $fn (sort { $self{$b} <=> $self{$a} || $a cmp $b } grep { abs $self{$_} >= 0.5 } keys %self) {
        printf "| `%s` | %.1f |\n", $fn, $self{$fn};
    }
    for my $c (sort { $own{$b} <=> $own{$a} || $a cmp $b } grep { abs $own{$_} >= 0.5 } keys %own) {
        printf "| `%s` | %.1f |\n", $c, $own{$c};
    }
    for my $c (sort { $through{$b} <=> $through{$a} || $a cmp $b } grep { abs $through{$_} >= 0.5 } keys %through) {
        printf "| `%s` (nginx's own work, passed through) | %.1f |\n", $c, $through{$c};
    }
}
