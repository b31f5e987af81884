# The counters of next_upstream_status_zone under concurrent load on two workers: exact
# (compared with the access log, line by line), kept across `nginx -s reload`, and read by a
# real Prometheus text parser (Debian's python3-prometheus-client).
#
#   prove t/072-metrics-load.t
#
# Environment: TEST_NGINX_BINARY (default build/nginx/sbin/nginx), TEST_NGINX_LOAD_MODULES
# (default build/modules/ngx_http_next_upstream_status_module.so), METRICS_TEST_CLIENTS
# (concurrent clients, default 8), METRICS_TEST_REQUESTS (requests per client and round,
# default 150), METRICS_TEST_SERVROOT (default $TEST_NGINX_SERVROOT-metrics, else
# t/servroot-metrics/; deleted at the start and left in place at the end for reading the logs).
#
# One nginx with two workers (`listen ... reuseport`, so that both take connections) is the
# front and its own backends: A answers 404, B 200, C 410, D refuses. The fronts' upstreams:
# both (A, then B), dead (A, then D), nowhere (A, then C), direct (B). The clients ask for
# them at random; the access log records, per request, the upstream's attempts, the
# variables and the worker's pid. What the counters must say is derived from those lines.
#
# Between the load and the reload, one connection asks for more keys than a worker's cache of
# counters has slots (256), so that keys share slots: 300 upstream blocks v001..v300 of the
# same server E (404 then B), and one block w whose server E answers 292 statuses in turn.
# A key that finds its slot holding another that differs only in its upstream block, or only
# in its status, must not be counted there.

use strict;
use warnings;

use Cwd qw(abs_path);
use FindBin;
use lib "$FindBin::Bin/lib";
use FreePorts qw(free_ports);
use File::Basename qw(dirname);
use File::Path qw(make_path remove_tree);
use IO::Socket::INET;
use POSIX ();
use Test::More;
use Time::HiRes qw(sleep time);

my $root = abs_path(dirname(__FILE__) . '/..');
my $binary = abs_path($ENV{TEST_NGINX_BINARY} // "$root/build/nginx/sbin/nginx");
my @modules = map { abs_path($_) } split ' ',
    ($ENV{TEST_NGINX_LOAD_MODULES} // "$root/build/modules/ngx_http_next_upstream_status_module.so");
my $clients = $ENV{METRICS_TEST_CLIENTS} // 8;
my $requests = $ENV{METRICS_TEST_REQUESTS} // 150;
my $prefix = abs_path($ENV{METRICS_TEST_SERVROOT}
    // (defined $ENV{TEST_NGINX_SERVROOT} ? "$ENV{TEST_NGINX_SERVROOT}-metrics" : "$root/t/servroot-metrics"));
my $python = '/usr/bin/python3';

plan skip_all => "no nginx at $binary (make build)" unless -x $binary;
for my $m (@modules) {
    plan skip_all => "no module at $m (make build)" unless -f $m;
}
plan skip_all => 'needs python3-prometheus-client (scripts/install-deps.sh)'
    unless system("$python -c 'import prometheus_client.parser' 2>/dev/null") == 0;

my $port = free_ports(6, 37000);
my ($port_a, $port_b, $port_c, $port_d, $port_e) = map { $port + $_ } 1 .. 5;
my %upstream_of = (both => 'both', dead => 'dead', nowhere => 'nowhere', direct => 'direct');
my @uris = sort keys %upstream_of;
# The statuses E answers: 300 to 599 but those nginx closes the connection on or sends as
# another (304, 408, 444, 494 to 497, 499).
my @statuses = grep { !/^(304|408|444|49[4-7]|499)$/ } 300 .. 599;
my @many = map { sprintf 'v%03d', $_ } 1 .. 300;

sub write_conf {
    my ($generation) = @_;
    my $load = join '', map { "load_module $_;\n" } @modules;
    my $env = defined $ENV{ASAN_OPTIONS} ? "env ASAN_OPTIONS;\n" : '';
    my $user = $> == 0 ? "user root;\n" : '';
    my $many = join '', map {
        "    upstream $_ { server 127.0.0.1:$port_e; server 127.0.0.1:$port_b backup; }\n"
    } @many, 'w';
    my $answers = join '', map { "        location = /s$_ { return $_; }\n" } @statuses;
    open my $fh, '>', "$prefix/conf/nginx.conf.tmp" or die "nginx.conf: $!";
    print $fh <<"CONF";
$load$env$user
# generation $generation
daemon on;
master_process on;
worker_processes 2;
pid logs/nginx.pid;
error_log logs/error.log info;

events {
    worker_connections 1024;
}

http {
    access_log off;
    next_upstream_status_zone retries 1m;
    proxy_http_version 1.1;    # stated: the default changed in nginx 1.29.7
    log_format obs "\$uri|\$upstream_addr|\$upstream_status|\$status|\$next_upstream_status_passed|\$next_upstream_status_kept|\$pid";

    upstream both { server 127.0.0.1:$port_a; server 127.0.0.1:$port_b backup; }
    upstream dead { server 127.0.0.1:$port_a; server 127.0.0.1:$port_d backup; }
    upstream nowhere { server 127.0.0.1:$port_a; server 127.0.0.1:$port_c backup; }
    upstream direct { server 127.0.0.1:$port_b; }

    server { listen 127.0.0.1:$port_a; location / { return 404 "a\\n"; } }
    server { listen 127.0.0.1:$port_b; location / { return 200 "b\\n"; } }
    server { listen 127.0.0.1:$port_c; location / { return 410 "c\\n"; } }
$many
    server {
        listen 127.0.0.1:$port_e;
$answers    }

    server {
        listen 127.0.0.1:$port reuseport;

        location ~ ^/([a-z]+)\$ {
            access_log logs/access.log obs;
            proxy_pass http://\$1;
            proxy_next_upstream_status 404 410;
        }
        location ~ ^/([a-z0-9]+)/(s[0-9]+)\$ {
            access_log logs/access.log obs;
            proxy_pass http://\$1/\$2;
            proxy_next_upstream_status 3xx 4xx 5xx;
        }
        location = /metrics {
            next_upstream_status_metrics;
        }
    }
}
CONF
    close $fh or die "nginx.conf: $!";
    rename "$prefix/conf/nginx.conf.tmp", "$prefix/conf/nginx.conf" or die "nginx.conf: $!";
}

sub read_file {
    my ($name) = @_;
    open my $fh, '<', "$prefix/logs/$name" or return '';
    local $/;
    return <$fh> // '';
}

sub read_pid {
    my $pid = read_file('nginx.pid');
    return $pid =~ /^(\d+)$/ ? $1 : undef;
}

sub wait_until {
    my ($seconds, $cond) = @_;
    my $deadline = time + $seconds;
    while (time < $deadline) {
        return 1 if $cond->();
        sleep 0.05;
    }
    return $cond->() ? 1 : 0;
}

sub count_lines {
    my ($pattern) = @_;
    return scalar(() = read_file('error.log') =~ /$pattern/g);
}

# One request on a connection of its own: (status, body).
sub get {
    my ($uri) = @_;
    my $sock = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port", Timeout => 5)
        or return (0, "connect: $!");
    print $sock "GET $uri HTTP/1.0\r\nHost: localhost\r\n\r\n";
    local $/;
    my $resp = <$sock> // '';
    close $sock;
    my ($head, $body) = split /\r\n\r\n/, $resp, 2;
    my ($status) = ($head // '') =~ m{^HTTP/1\.[01] (\d{3})};
    return ($status // 0, $body // '');
}

my $master;
END { if ($master) { kill 'QUIT', $master; wait_until(10, sub { !kill 0, $master }) } }

remove_tree($prefix);
make_path(map { "$prefix/$_" } qw(conf logs));
write_conf(0);
my $out = `'$binary' -p '$prefix/' -c conf/nginx.conf 2>&1`;
is $?, 0, 'nginx starts' or BAIL_OUT("nginx did not start: $out" . read_file('error.log'));
wait_until(5, sub { $master = read_pid() });
ok $master, 'master runs' or BAIL_OUT('no master: ' . read_file('error.log'));
ok wait_until(5, sub { IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port", Timeout => 1) }),
    "nginx accepts on $port";

# $clients processes, $requests requests each, at random over the four upstreams. A request
# whose answer is not what its upstream gives (200 b, 404 a, 410 c, 200 b) fails the test.
sub load {
    my @kids;
    for my $id (1 .. $clients) {
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            my %want = (both => "200 b\n", dead => "404 a\n", nowhere => "410 c\n",
                direct => "200 b\n");
            my $bad = 0;
            for (1 .. $requests) {
                my $uri = $uris[int rand @uris];
                my ($status, $body) = get("/$uri");
                $bad++ if "$status $body" ne $want{$uri};
            }
            POSIX::_exit($bad ? 1 : 0);
        }
        push @kids, $pid;
    }
    my $failed = 0;
    for my $pid (@kids) {
        waitpid $pid, 0;
        $failed++ if $?;
    }
    return $failed;
}

# What the counters must say, from the access log: for each request, each attempt but the
# last that answered a listed status was passed on from that server; a kept answer was sent
# when $next_upstream_status_kept is set; every server answered a listed status when all
# attempts (two or more) did.
sub expected_from_access_log {
    my %want;
    my %pids;
    my $passed_var = 0;
    for my $line (split /\n/, read_file('access.log')) {
        my ($uri, $addrs, $statuses, $status, $passed, $kept, $pid) = split /\|/, $line;
        $pids{$pid}++;
        my ($upstream, $listed);
        if ($uri =~ m{^/(\w+)/s\d+$}) {
            ($upstream, $listed) = ($1, sub { $_[0] >= 300 });
        } else {
            (my $name = $uri) =~ s{^/}{};
            $upstream = $upstream_of{$name} // next;
            $listed = sub { $_[0] == 404 || $_[0] == 410 };
        }
        my @addr = split /, /, $addrs;
        my @st = split /, /, $statuses;
        for my $i (0 .. $#st - 1) {
            $want{"passed|$upstream|$addr[$i]|$st[$i]"}++ if $listed->($st[$i]);
        }
        $want{"kept|$upstream||$kept"}++ if $kept ne '';
        $want{"exhausted|$upstream||$st[-1]"}++
            if @st >= 2 && !grep { !$listed->($_) } @st;
        $passed_var += $passed;
    }
    return (\%want, scalar(keys %pids), $passed_var);
}

# Many keys on one connection, so one worker counts them all: each of v001..v300 once, then
# each of w's statuses; then every other one of both again, in the opposite order. Pipelined:
# the requests are written at once, nginx answers them in turn. Returns how many answers were
# not 200 b.
sub many_keys {
    my $i = 0;
    my @first = ((map { "/$_/s404" } @many), (map { "/w/s$_" } @statuses));
    my @uris = (@first, reverse grep { $i++ % 2 } @first);
    my $sock = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port", Timeout => 30)
        or return scalar @uris;
    print $sock join '', map { "GET $_ HTTP/1.1\r\nHost: localhost\r\n\r\n" } @uris;
    print $sock "GET /direct HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    local $/;
    my $resp = <$sock> // '';
    close $sock;
    my $good = () = $resp =~ m{^HTTP/1\.1 200 OK\r\n.*?\r\n\r\nb\n}msg;
    return @uris + 1 - $good;
}

# The metrics location's answer, through prometheus_client's parser: "family|upstream|server|
# status" => value, and the families' types and help texts.
sub scrape {
    my ($status, $body) = get('/metrics');
    is $status, 200, 'GET /metrics: 200';
    open my $tmp, '>', "$prefix/metrics.txt" or die;
    print $tmp $body;
    close $tmp;
    my $parsed = `$python - '$prefix/metrics.txt' <<'PY'
import sys
from prometheus_client.parser import text_string_to_metric_families
for family in text_string_to_metric_families(open(sys.argv[1]).read()):
    print("family", family.name, family.type, bool(family.documentation), sep="|")
    for s in family.samples:
        print("sample", s.name, s.labels.get("upstream", ""), s.labels.get("server", ""),
              s.labels.get("status", ""), int(s.value), sep="|")
PY
`;
    is $?, 0, 'prometheus_client parses the answer' or diag($body);
    my (%got, %families);
    for (split /\n/, $parsed) {
        my @f = split /\|/;
        if ($f[0] eq 'family') {
            $families{$f[1]} = "$f[2] $f[3]";
        } else {
            (my $family = $f[1]) =~ s/^nginx_next_upstream_status_(\w+)_total$/$1/;
            $got{"$family|$f[2]|$f[3]|$f[4]"} = $f[5];
        }
    }
    is_deeply \%families, {
        map { ("nginx_next_upstream_status_$_" => 'counter True') } qw(passed kept exhausted)
    }, 'three counter families, each with its help text';
    return \%got;
}

# Round 1: concurrent load on two workers.
is load(), 0, "$clients clients x $requests requests: every answer right";
sleep 0.3;    # the last access log lines
my ($want, $workers, $passed_var) = expected_from_access_log();
is $workers, 2, 'both workers served requests';
my $got = scrape();
is_deeply $got, $want, 'the counters are exactly what the access log shows';
my $passed_total = 0;
$passed_total += $got->{$_} for grep { /^passed\|/ } keys %$got;
is $passed_total, $passed_var, 'passed_total sums to the sum of $next_upstream_status_passed';
ok $got->{"passed|both|127.0.0.1:$port_a|404"}, 'passed on from A in "both"';
ok $got->{'kept|dead||404'}, 'kept answers in "dead"';
ok $got->{'exhausted|nowhere||410'}, 'exhausted in "nowhere"';

# More keys than a worker caches.
is many_keys(), 0, 'many keys on one connection: every answer right';
sleep 0.3;
($want) = expected_from_access_log();
is scalar(grep { /^passed\|v\d+\|/ } keys %$want), 300, 'v001..v300 passed on';
is scalar(grep { /^passed\|w\|/ } keys %$want), scalar(@statuses), "w passed on after each status";
is_deeply scrape(), $want, 'the counters are exactly what the access log shows, many keys too';

# Reload: the counters carry on.
write_conf(1);
my $workers_before = count_lines(qr/start worker process \d+/);
kill 'HUP', $master;
ok wait_until(10, sub {
        count_lines(qr/\(SIGHUP\) received .*reconfiguring/) >= 1
            && count_lines(qr/start worker process \d+/) >= $workers_before + 2 }),
    'reload: new workers started';
sleep 0.5;
is_deeply scrape(), $want, 'after the reload, the same counts';

# Round 2: more load on the new workers; the counts add up over both generations.
is load(), 0, 'after the reload: every answer right';
sleep 0.3;
($want) = expected_from_access_log();
is_deeply scrape(), $want, 'the counters are exactly what the access log shows, both generations';

kill 'QUIT', $master;
ok wait_until(10, sub { !kill 0, $master }), 'nginx stops';
undef $master;
my @bad = grep { /\[(alert|crit|emerg)\]|exited on signal|is full/ } split /\n/, read_file('error.log');
is scalar(@bad), 0, 'no alert, crash or full zone in error.log' or diag(join "\n", @bad);

done_testing;
