#!/usr/bin/perl
# Benchmarks reads through nginx-conf/storage-front.conf over N = 1, 2, 4, 8 storage servers
# (nginx-conf/storage-server.conf), for its three placements (issues 11 and 18): round
# robin, consistent hash, sticky learn; tries per read, and requests per second as a ratio to
# N = 1.
#
#   scripts/bench-storage.pl [options]     full run, about 4 minutes on 2 CPUs
#   scripts/bench-storage.pl --quick       smoke run for `make test`, under half a minute
#
# Everything on 127.0.0.1: 8 storage servers (this nginx without the module) and one front
# per placement and N (nginx with the module, on the shipped configuration with the
# benchmark's addresses, one worker, its access log buffered). K objects of SIZE bytes are
# written through each front, then wrk reads random ones of them (the same sequence for
# every front) through it.
#
# Sticky learn needs nginx 1.29.6+ (`sticky`). When --nginx has no `sticky`, its fronts run
# on --sticky-nginx with --sticky-module; without those, on the newest nginx-<version>.tar.gz
# of 1.29.6+ in --nginx-src, built with its module by `scripts/test-matrix.sh --build` (the
# tree `make test-matrix` builds and reuses, configured with --nginx's configure arguments);
# with none of these (a fresh clone without ../shared) its rows are left out, and the report
# says why. The other placements' fronts and the storage servers run on --nginx.
#
# Rounds: each front runs once per round, in turn (rr N = 1 2 4 8, hash N = 1 2 4 8, sticky
# N = 1 2 4 8, the order turned by one each round); a run's req/s is divided by the req/s of
# the same round's
# N = 1 run of its placement: min / median / max of these ratios over the rounds. Tries per
# read: $upstream_status in the front's access log, over every timed run. Front CPU per
# read: the front worker's CPU time (/proc/PID/schedstat) over the requests of the run.
# Connections opened per read: TCP connects in the network namespace (/proc/net/snmp
# ActiveOpens) over the requests of the run, less wrk's own: the front's connections to
# the storage servers that its keepalive cache did not have (and anything else that ran).
#
# Exits non-zero when a front answers a read other than 200 before timing, when wrk sees a
# non-2xx answer or a socket error, or when nginx does not start.
#
# Options:
#   --quick             1 s runs, 1 round, no warm-up, 200 objects
#   --duration S        seconds per wrk run (default 3)
#   --rounds R          rounds (default 5)
#   --connections C     wrk connections (default 16)
#   --objects K         objects per front (default 1000)
#   --size BYTES        size of each object (default 4096)
#   --html-404          storage servers answer a miss with nginx's HTML error page (their
#                       `error_page 404` line removed): what the empty 404 saves
#   --pin | --no-pin    the front on CPU 1, wrk and the storage servers on CPU 0 (default:
#                       --pin with 2 or more CPUs)
#   --nginx PATH        nginx, with the dav module (default build/nginx/sbin/nginx)
#   --module PATH       the module (default build/modules/ngx_http_next_upstream_status_module.so)
#   --sticky-nginx PATH, --sticky-module PATH
#                       nginx 1.29.6+ and the module built against it, for the sticky learn
#                       fronts (when --nginx has no `sticky`)
#   --nginx-src DIR     nginx source tarballs to build those from (default $NGINX_SRC_DIR,
#                       else ../shared/nginx-src)
#   --keep              keep the working directory (configurations, logs)
#   --out FILE          also write the report (markdown) to FILE

use strict;
use utf8;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Copy qw(copy);
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use Getopt::Long qw(GetOptions);
use List::Util qw(sum);
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);

my $ROOT;
BEGIN { $ROOT = abs_path(dirname(abs_path(__FILE__)) . '/..') }
use lib "$ROOT/t/e2e/lib";
use E2E;        # spawn, stop, capture, wait_port, eventually, workers_of, ...
use Storage;    # the shipped configurations with real addresses, the HTTP client

my %o = (duration => 3, rounds => 5, connections => 16, objects => 1000, size => 4096,
    nginx => "$ROOT/build/nginx/sbin/nginx",
    module => "$ROOT/build/modules/ngx_http_next_upstream_status_module.so");
my $command_line = join ' ', 'scripts/bench-storage.pl', @ARGV;
GetOptions(\%o, 'quick', 'duration=f', 'rounds=i', 'connections=i', 'objects=i', 'size=i',
    'html-404', 'pin!', 'nginx=s', 'module=s', 'sticky-nginx=s', 'sticky-module=s', 'nginx-src=s',
    'keep', 'out=s', 'help')
    or die "bench-storage: bad option (see --help)\n";
if ($o{help}) {
    open my $self, '<', __FILE__ or die;
    while (<$self>) { last if /^use /; print s/^# ?//r if $. > 1 }
    exit 0;
}
@o{qw(duration rounds objects)} = (1, 1, 200) if $o{quick};
my $warmup = $o{quick} ? 0 : 1;

sub note_progress { printf STDERR "bench-storage: [%ds] %s\n", time - $^T, "@_" }

for my $tool (qw(wrk taskset)) {
    grep { -x "$_/$tool" } split /:/, $ENV{PATH} or die "bench-storage: $tool not found (scripts/install-deps.sh bench)\n";
}
-x $o{nginx} or die "bench-storage: no nginx at $o{nginx} (make build)\n";
-f $o{module} or die "bench-storage: no module at $o{module} (make build)\n";
my (undef, $V) = capture($o{nginx}, '-V');
$V =~ /--with-http_dav_module/ or die "bench-storage: $o{nginx} lacks --with-http_dav_module (make build)\n";

my $ncpu = () = slurp('/proc/cpuinfo') =~ /^processor\s*:/mg;
$o{pin} //= $ncpu >= 2;
my @FRONT_CPU = $o{pin} ? qw(taskset -c 1) : ();
my @LOAD_CPU  = $o{pin} ? qw(taskset -c 0) : ();

my $work = tempdir('nginx-bench-storage-XXXXXX', TMPDIR => 1, CLEANUP => !$o{keep});
chmod 0755, $work;    # nginx workers may run as nobody
note_progress("working directory $work") if $o{keep};
# Private copies: others may rebuild build/ while this runs.
make_path("$work/bin");
copy($o{nginx}, "$work/bin/nginx") && chmod(0755, "$work/bin/nginx") or die "copy nginx: $!\n";
copy($o{module}, "$work/bin/module.so") or die "copy module: $!\n";
my $NGINX = "$work/bin/nginx";
my @WORKER_IDS = $> == 0 ? (getpwnam('nobody'))[2, 3] : ();

# ---------------------------------------------------------------------------------------
# The nginx for the sticky learn fronts: %STICKY = (nginx, module), or $no_sticky says why not

# Why $nginx cannot run `sticky learn` ('' when it can).
sub sticky_missing {
    my ($nginx) = @_;
    my $dir = "$work/sticky-probe";
    make_path("$dir/conf", "$dir/logs");
    spew("$dir/conf/nginx.conf", "events {}\nhttp { upstream u { sticky learn create=\$uri lookup=\$uri "
        . "zone=u:1m; server 127.0.0.1:1; } }\n");
    my ($ok, $out) = capture($nginx, '-p', "$dir/", '-c', "$dir/conf/nginx.conf", '-t');
    return '' if $ok;
    my ($v) = (capture($nginx, '-v'))[1] =~ m{nginx/(\S+)};
    return "nginx $v has no `sticky` (1.29.6+)" if $out =~ /unknown directive "sticky"/;
    die "bench-storage: $nginx -t of a sticky learn configuration failed:\n$out";
}

sub version_of { my ($t) = @_; return $t =~ /nginx-(\d+)\.(\d+)\.(\d+)\.tar\.gz$/ ? $1 * 1e6 + $2 * 1e3 + $3 : 0 }

my %STICKY;
my $no_sticky = sticky_missing($o{nginx});
if (!$no_sticky) {
    %STICKY = (nginx => $NGINX, module => "$work/bin/module.so");
} elsif ($o{'sticky-nginx'} || $o{'sticky-module'}) {
    $o{'sticky-nginx'} && $o{'sticky-module'} or die "bench-storage: --sticky-nginx and --sticky-module go together\n";
    %STICKY = (nginx => $o{'sticky-nginx'}, module => $o{'sticky-module'});
} else {
    my $src = $o{'nginx-src'} // $ENV{NGINX_SRC_DIR} // "$ROOT/../shared/nginx-src";
    my ($tarball) = sort { version_of($b) <=> version_of($a) }
        grep { version_of($_) >= 1_029_006 } glob("$src/nginx-*.tar.gz");
    if ($tarball) {
        # the pinned build's configure arguments, so that `make test-matrix` reuses the tree
        my ($args) = $V =~ /^configure arguments: (.*)$/m;
        note_progress("building nginx and the module from $tarball for the sticky learn fronts (scripts/test-matrix.sh --build)");
        local $ENV{NGINX_CONFIGURE_FLAGS} = $args // '';
        my ($ok, $out) = capture("$ROOT/scripts/test-matrix.sh", '--build', $tarball);
        my @paths = grep { m{^/} && -e } split /\n/, $out;
        $ok && @paths >= 2 or die "bench-storage: scripts/test-matrix.sh --build $tarball failed:\n$out";
        %STICKY = (nginx => $paths[-2], module => $paths[-1]);
    } else {
        $no_sticky .= ", and no nginx-<version>.tar.gz of 1.29.6+ in $src to build one from";
    }
}
if (%STICKY && $STICKY{nginx} ne $NGINX) {
    -x $STICKY{nginx} && -f $STICKY{module} or die "bench-storage: no $STICKY{nginx} or $STICKY{module}\n";
    my $why = sticky_missing($STICKY{nginx});
    die "bench-storage: $STICKY{nginx}: $why\n" if $why;
    copy($STICKY{nginx}, "$work/bin/nginx-sticky") && chmod(0755, "$work/bin/nginx-sticky") or die "copy nginx: $!\n";
    copy($STICKY{module}, "$work/bin/module-sticky.so") or die "copy module: $!\n";
    %STICKY = (nginx => "$work/bin/nginx-sticky", module => "$work/bin/module-sticky.so");
}
$no_sticky = '' if %STICKY;
note_progress("sticky learn rows left out: $no_sticky") if $no_sticky;
my @PLACEMENTS = ('rr', 'hash', %STICKY ? 'sticky' : ());
my %NAME = (rr => 'round robin', hash => 'consistent hash', sticky => 'sticky learn');

# ---------------------------------------------------------------------------------------
# Storage servers

my @NS = (1, 2, 4, 8);
my $server_template = slurp("$ROOT/nginx-conf/storage-server.conf");
my @servers;    # addresses
for my $i (0 .. $NS[-1] - 1) {
    my $dir = "$work/storage-$i";
    make_path("$dir/conf", "$dir/logs", "$dir/store/data", "$dir/store/tmp");
    chown @WORKER_IDS, "$dir/store/data", "$dir/store/tmp" if @WORKER_IDS;
    my $addr = '127.0.0.1:' . free_port();
    my $c = server_conf($server_template, $addr, "$dir/store");
    # what every storage server logs is not what is measured
    $c =~ s{^(\s*)access_log\s+logs/access\.log;}{$1access_log off;}m or die "storage-server.conf: no access_log\n";
    if ($o{'html-404'}) {
        $c =~ s{^(\s*)error_page\s+404\s[^;]*;}{$1# (--html-404)}m or die "storage-server.conf: no error_page 404\n";
    }
    spew("$dir/conf/nginx.conf", $c);
    my $pid = spawn("storage $i", "$dir/logs/stderr.log",
        @LOAD_CPU, $NGINX, '-p', "$dir/", '-c', "$dir/conf/nginx.conf", '-g', 'daemon off;');
    wait_port($addr, $pid, 10);
    push @servers, $addr;
}

# ---------------------------------------------------------------------------------------
# Fronts, and the objects written through them

my $front_template = slurp("$ROOT/nginx-conf/storage-front.conf");
my (@fronts, %front);    # label => { placement, n, addr, pid, worker, dir }
my $body = join '', map { chr(65 + $_ % 26) } 1 .. $o{size};

for my $placement (@PLACEMENTS) {
    my ($nginx, $module) = $placement eq 'sticky' ? @STICKY{qw(nginx module)} : ($NGINX, "$work/bin/module.so");
    for my $n (@NS) {
        my $label = "$placement-$n";
        my $dir = "$work/front-$label";
        make_path("$dir/conf", "$dir/logs");
        my $addr = '127.0.0.1:' . free_port();
        my $c = front_conf($front_template, module => $module, listen => $addr,
            placement => $placement, servers => [@servers[0 .. $n - 1]]);
        # one worker, measured on its own CPU; the log buffered: one write per 64 KiB
        $c =~ s/^(\s*)worker_processes\s+auto;/${1}worker_processes 1;/m or die "storage-front.conf: no worker_processes auto\n";
        $c =~ s{^(\s*access_log\s+logs/access\.log\s+store);}{$1 buffer=64k;}m or die "storage-front.conf: no access_log\n";
        spew("$dir/conf/nginx.conf", $c);
        my $pid = spawn("front $label", "$dir/logs/stderr.log",
            @FRONT_CPU, $nginx, '-p', "$dir/", '-c', "$dir/conf/nginx.conf", '-g', 'daemon off;');
        push @E2E::diag_files, "$dir/logs/error.log";
        wait_port($addr, $pid, 10);
        my ($worker) = eventually(sub { workers_of($pid) }) or die "front $label: no worker\n";
        $front{$label} = { placement => $placement, n => $n, addr => $addr, pid => $pid, worker => $worker, dir => $dir,
            nginx => $nginx };
        push @fronts, $label;

        my $http = Storage::Client->new(keep_alive => 1, timeout => 10);
        for my $k (1 .. $o{objects}) {
            my $r = $http->put("http://$addr/b/$label/$k", { content => $body });
            $r->{status} == 201 or die "front $label: PUT /b/$label/$k answered $r->{status}\n";
        }
        my $r = $http->get("http://$addr/b/$label/$o{objects}");
        $r->{status} == 200 && $r->{content} eq $body or die "front $label: a read answered $r->{status}\n";

        # wrk reads random objects; LuaJIT's math.random, unseeded, is the same sequence
        # for every front
        spew("$dir/read.lua", qq{local n = $o{objects}\n}
            . qq{request = function() return wrk.format(nil, "/b/$label/" .. math.random(n)) end\n});
        truncate "$dir/logs/access.log", 0;
    }
}
note_progress(sprintf '%d storage servers, %d fronts, %d objects of %d bytes each written',
    scalar @servers, scalar @fronts, $o{objects}, $o{size});

# ---------------------------------------------------------------------------------------
# Timed runs

sub cpu_ns { my ($pid) = @_; return (split ' ', slurp("/proc/$pid/schedstat"))[0] }

# TCP connections opened so far in this network namespace (all processes).
sub active_opens {
    my ($names, $values) = slurp('/proc/net/snmp') =~ /^(Tcp: [A-Za-z].*)\n(Tcp: [-\d ].*)$/m or return 0;
    my %tcp;
    @tcp{ split ' ', $names } = split ' ', $values;
    return $tcp{ActiveOpens} // 0;
}

# One wrk run against a front: { rps, p50, p99, requests, cpu (front µs per request), opens
# (TCP connections opened on the machine per request, wrk's own left out) }.
sub run_wrk {
    my ($label, $seconds) = @_;
    my $f = $front{$label};
    my $c0 = cpu_ns($f->{worker});
    my $o0 = active_opens();
    my ($ok, $out) = capture(@LOAD_CPU, 'wrk', '-t1', "-c$o{connections}", "-d${seconds}s", '--timeout', '10s',
        '--latency', '-s', "$f->{dir}/read.lua", "http://$f->{addr}/");
    my $c1 = cpu_ns($f->{worker});
    my $o1 = active_opens();
    $ok or die "wrk against front $label failed:\n$out";
    open my $parse, '|-', "perl $ROOT/scripts/bench/wrk-parse.pl >$work/wrk.parsed" or die "wrk-parse: $!";
    print $parse $out;
    close $parse or die "wrk against front $label:\n" . join('', grep { /Non-2xx|Socket errors|requests in/ } split /^/, $out);
    my ($rps, $p50, $p99, $requests) = split ' ', slurp("$work/wrk.parsed");
    return { rps => $rps, p50 => $p50, p99 => $p99, requests => $requests, cpu => ($c1 - $c0) / 1000 / $requests,
        opens => ($o1 - $o0 - $o{connections}) / $requests };
}

if ($warmup) {
    run_wrk($_, $warmup) for @fronts;
    truncate "$front{$_}{dir}/logs/access.log", 0 for @fronts;    # (what is still buffered is counted)
}
note_progress("$o{rounds} rounds of " . scalar(@fronts) . " wrk runs of $o{duration} s, $o{connections} connections");
my %runs;    # label => [ run per round ]
for my $round (0 .. $o{rounds} - 1) {
    my @order = (@fronts[$round % @fronts .. $#fronts], @fronts[0 .. $round % @fronts - 1]);
    $runs{$_}[$round] = run_wrk($_, $o{duration}) for @order;
}

# Tries per read from the access logs: stopping a front (QUIT) writes out its log buffer.
my %tries;
for my $label (@fronts) {
    my $f = $front{$label};
    kill 'QUIT', $f->{pid};
    waitpid($f->{pid}, 0);
    delete $E2E::pids{ $f->{pid} };
    my ($lines, $total, $bad) = (0, 0, 0);
    open my $log, '<', "$f->{dir}/logs/access.log" or die "$f->{dir}/logs/access.log: $!\n";
    while (<$log>) {
        # (PUT lines of the writes may come late out of the buffer)
        my ($status, $us) = /\] GET \S+ (\d+) us="([^"]*)"/ or next;
        next if $status == 499;    # in flight when wrk closed its connections at the end of a run
        $lines++;
        $total += 1 + ($us =~ tr/,//);
        $bad++ if $status != 200;
    }
    die "front $label: $bad of $lines reads were not answered 200\n" if $bad;
    die "front $label: no reads in its access log\n" unless $lines;
    $tries{$label} = $total / $lines;
    # every object was written through this front: it remembers where each went
    die sprintf("front %s: %.3f tries per read, not 1: the front did not remember where the writes went\n",
        $label, $tries{$label}) if $f->{placement} eq 'sticky' && $total != $lines;
}

# ---------------------------------------------------------------------------------------
# Report

sub median { my @v = sort { $a <=> $b } @_; return @v % 2 ? $v[$#v / 2] : ($v[@v / 2 - 1] + $v[@v / 2]) / 2 }

my $cpu_model = (slurp('/proc/cpuinfo') =~ /^model name\s*:\s*(.*)$/m)[0] // 'unknown CPU';
sub nginx_version { my ($nginx) = @_; return ((capture($nginx, '-v'))[1] =~ m{nginx/(\S+)})[0] // '?' }
my $nginx_v = nginx_version($NGINX);
$nginx_v .= ' (sticky learn fronts: nginx ' . nginx_version($STICKY{nginx}) . ')' if %STICKY && $STICKY{nginx} ne $NGINX;
my ($wrk_v) = (capture('wrk', '-v'))[1] =~ /^wrk (\S+)/m;
my @report = (
    '# Local disks as one store: reads through the front',
    '',
    "- machine: $ncpu CPUs ($cpu_model), nginx $nginx_v, wrk " . ($wrk_v // '?'),
    '- load average at the end: ' . join(' ', (split ' ', slurp('/proc/loadavg'))[0 .. 2]),
    '- pinning: ' . ($o{pin} ? 'front on CPU 1, wrk and the storage servers on CPU 0' : 'none'),
    '- storage servers answer a miss with ' . ($o{'html-404'} ? "nginx's HTML error page (--html-404)" : 'an empty 404 (as shipped)'),
    "- command: `$command_line` ($o{rounds} rounds of wrk runs of $o{duration} s, $o{connections} connections, "
        . "$o{objects} objects of $o{size} bytes per front)",
    ($no_sticky ? ("- sticky learn rows left out: $no_sticky") : ()),
    '',
    '| placement | N | tries per read: expected | measured | req/s (median) | ratio to N = 1 (min / median / max) '
        . '| front CPU per read | connections opened per read |',
    '|---|---:|---:|---:|---:|---|---:|---:|',
);
for my $label (@fronts) {
    my $f = $front{$label};
    my @r = @{ $runs{$label} };
    my @one = @{ $runs{"$f->{placement}-1"} };
    my @ratio = sort { $a <=> $b } map { $r[$_]{rps} / $one[$_]{rps} } 0 .. $#r;
    push @report, sprintf '| %s | %d | %s | %.2f | %.0f | %.2f / %.2f / %.2f | %.1f µs | %.3f |',
        $NAME{ $f->{placement} }, $f->{n},
        $f->{placement} eq 'rr' ? sprintf('%.1f', ($f->{n} + 1) / 2) : '1',
        $tries{$label}, median(map { $_->{rps} } @r), $ratio[0], median(@ratio), $ratio[-1],
        median(map { $_->{cpu} } @r), median(map { $_->{opens} } @r);
}
# What a further try costs the front: the slope of CPU per read over tries per read (round
# robin, least squares).
my @pts = map { [$tries{"rr-$_"}, median(map { $_->{cpu} } @{ $runs{"rr-$_"} })] } @NS;
my ($mx, $my) = (sum(map { $_->[0] } @pts) / @pts, sum(map { $_->[1] } @pts) / @pts);
my $sxx = sum(map { ($_->[0] - $mx)**2 } @pts);
push @report, '', sprintf('Each further try costs the front about %.1f µs of CPU (round robin: slope of CPU per '
    . 'read over tries per read).', sum(map { ($_->[0] - $mx) * ($_->[1] - $my) } @pts) / $sxx) if $sxx > 0;
my $report = join("\n", @report) . "\n";
binmode STDOUT, ':encoding(UTF-8)';
print $report;
if ($o{out}) { open my $fh, '>:encoding(UTF-8)', $o{out} or die "$o{out}: $!\n"; print $fh $report }
note_progress('all checks passed');
