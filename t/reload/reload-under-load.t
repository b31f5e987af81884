# Reload and binary upgrade under load: nginx with the module keeps answering every request
# while it is reloaded ten times (SIGHUP) and then upgraded to a new master (SIGUSR2, WINCH,
# QUIT), with no failed request and no crashed worker.
#
#   prove t/reload/
#
# Environment: TEST_NGINX_BINARY (default build/nginx/sbin/nginx), TEST_NGINX_LOAD_MODULES
# (default build/modules/ngx_http_next_upstream_status_module.so), RELOAD_TEST_PORT (first of
# three ports, default: three free ones in 39000-39999), RELOAD_TEST_CLIENTS (concurrent keepalive clients, default 8),
# RELOAD_TEST_RELOADS (default 10), RELOAD_TEST_SERVROOT (default t/servroot-reload/, deleted
# at the start and left in place at the end for reading the logs).
#
# nginx serves the clients on one port and is its own two backends on the next two: the
# first answers 404, the second 200 "b". Every request goes through
# `proxy_next_upstream_status 404`, so every response must be 200 "b"; about half of them
# were passed on after the 404 (counted from $upstream_status).
#
# A client reuses its connection. When nginx closes an idle keepalive connection (an old
# worker shutting down does) just as the client sends its next request on it, the client sees
# the connection end before any byte of a response. HTTP lets a client send the request again
# in that case (RFC 9112, 9.3.1), as browsers and curl do; these clients do so once, on a new
# connection, and the figures count it. Anything else is a failure: a refused or failed new
# connection, a timeout, a response cut short, another status or body.

use strict;
use warnings;

use Cwd qw(abs_path);
use FindBin;
use lib "$FindBin::Bin/../lib";
use FreePorts qw(free_ports);
use File::Basename qw(dirname);
use File::Path qw(make_path remove_tree);
use IO::Select;
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Test::More;
use Time::HiRes qw(sleep time);

my $root = abs_path(dirname(__FILE__) . '/../..');
my $binary = abs_path($ENV{TEST_NGINX_BINARY} // "$root/build/nginx/sbin/nginx");
my @modules = map { abs_path($_) } split ' ',
    ($ENV{TEST_NGINX_LOAD_MODULES} // "$root/build/modules/ngx_http_next_upstream_status_module.so");
my $port = $ENV{RELOAD_TEST_PORT} // free_ports(3, 39000);
my ($port_a, $port_b) = ($port + 1, $port + 2);
my $clients = $ENV{RELOAD_TEST_CLIENTS} // 8;
my $reloads = $ENV{RELOAD_TEST_RELOADS} // 10;
my $prefix = abs_path($ENV{RELOAD_TEST_SERVROOT} // "$root/t/servroot-reload");
my $started = time;

plan skip_all => "no nginx at $binary (make build)" unless -x $binary;
for my $m (@modules) {
    plan skip_all => "no module at $m (make build)" unless -f $m;
}

# ---------------------------------------------------------------------------------------------
# nginx

# Two spellings of the same rule, alternated on each reload, so that every reload parses the
# directive anew (a reload builds a whole new configuration even when nothing changed).
my @spellings = ('404', '404 410 methods=GET,HEAD keep_answer=on');

sub write_conf {
    my ($generation) = @_;
    my $rule = $spellings[$generation % @spellings];
    my $load = join '', map { "load_module $_;\n" } @modules;
    # A binary upgrade starts the new master with the environment nginx builds, not ours:
    # keep AddressSanitizer's options when running under it.
    my $env = defined $ENV{ASAN_OPTIONS} ? "env ASAN_OPTIONS;\n" : '';
    my $user = $> == 0 ? "user root;\n" : '';
    open my $fh, '>', "$prefix/conf/nginx.conf.tmp" or die "nginx.conf: $!";
    print $fh <<"CONF";
$load$env$user
# generation $generation
daemon on;
master_process on;
worker_processes 2;
pid logs/nginx.pid;
error_log logs/error.log notice;

events {
    worker_connections 1024;
}

http {
    access_log off;

    upstream both {
        server 127.0.0.1:$port_a;
        server 127.0.0.1:$port_b;
    }

    server {
        listen 127.0.0.1:$port_a;
        location / { return 404 "a\\n"; }
    }

    server {
        listen 127.0.0.1:$port_b;
        location / { return 200 "b\\n"; }
    }

    server {
        listen 127.0.0.1:$port;
        keepalive_requests 100000;

        location / {
            proxy_pass http://both;
            proxy_next_upstream_status $rule;
            add_header X-Upstream-Status \$upstream_status always;
        }
    }
}
CONF
    close $fh or die "nginx.conf: $!";
    rename "$prefix/conf/nginx.conf.tmp", "$prefix/conf/nginx.conf" or die "nginx.conf: $!";
}

sub read_pid {
    my ($file) = @_;
    open my $fh, '<', "$prefix/logs/$file" or return undef;
    my $pid = <$fh>;
    return undef unless defined $pid && $pid =~ /^(\d+)$/;
    return $1;
}

# Gone: no such process, or a zombie that its new parent (after a binary upgrade, init or
# whatever reaps orphans here) has not collected yet.
sub alive {
    my ($pid) = @_;
    return 0 unless $pid && kill 0, $pid;
    open my $fh, '<', "/proc/$pid/stat" or return 1;
    my $stat = <$fh> // '';
    return $stat !~ /^\d+ \(.*\) Z /;
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

sub error_log {
    open my $fh, '<', "$prefix/logs/error.log" or return '';
    local $/;
    return <$fh> // '';
}

sub count_lines {
    my ($pattern) = @_;
    return scalar(() = error_log() =~ /$pattern/g);
}

# Stops whatever is left of nginx: the masters named in the pid files, QUIT then KILL.
my @masters;
sub stop_nginx {
    my @pids = grep { alive($_) } grep { defined } @masters,
        read_pid('nginx.pid'), read_pid('nginx.pid.oldbin');
    kill 'QUIT', @pids;
    wait_until(10, sub { !grep { alive($_) } @pids });
    kill 'KILL', grep { alive($_) } @pids;
}

remove_tree($prefix);
make_path(map { "$prefix/$_" } qw(conf logs html));
write_conf(0);

my $out = `'$binary' -p '$prefix/' -c conf/nginx.conf 2>&1`;
is $?, 0, 'nginx starts' or BAIL_OUT("nginx did not start: $out" . error_log());
my $master = read_pid('nginx.pid');
wait_until(5, sub { $master = read_pid('nginx.pid') });
ok $master && alive($master), "master runs (pid " . ($master // '?') . ")"
    or BAIL_OUT("no master: " . error_log());
push @masters, $master;
END { stop_nginx() if @masters }

ok wait_until(5, sub { IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port", Timeout => 1) }),
    "nginx accepts on $port";

# ---------------------------------------------------------------------------------------------
# The load: keepalive clients, each a process of its own, until the stop file appears.

my $stop_file = "$prefix/stop";
my $results = "$prefix/results";
make_path($results);

sub client {
    my ($id) = @_;
    my %n = map { $_ => 0 } qw(requests ok passed_on resent new_connections failed);
    my @failures;
    my $fail = sub {
        my ($what) = @_;
        $n{failed}++;
        push @failures, sprintf('%.3fs %s', time - $started, $what) if @failures < 20;
    };
    my ($sock, $reused);
    my $request = "GET /c$id HTTP/1.1\r\nHost: localhost\r\n\r\n";

    REQUEST: until (-e $stop_file) {
        my $resend = 0;
        ATTEMPT: {
            unless ($sock) {
                $n{new_connections}++;
                $sock = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port", Timeout => 5);
                unless ($sock) {
                    $fail->("connect: $!");
                    sleep 0.01;
                    next REQUEST;
                }
                $reused = 0;
            }
            my $sent = syswrite $sock, $request;
            my ($resp, $err) = defined $sent && $sent == length $request
                ? read_response($sock)
                : (undef, ["send: $!", 0]);
            if (!$resp) {
                my $nothing = !defined $err->[1] || $err->[1] == 0;
                close $sock;
                undef $sock;
                if ($reused && $nothing && !$resend) {
                    # The keepalive race described at the top: send it again, once.
                    $n{resent}++;
                    $resend = 1;
                    redo ATTEMPT;
                }
                $fail->(($reused ? 'reused' : 'new') . " connection: $err->[0]");
                next REQUEST;
            }
            $n{requests}++;
            if ($resp->{status} == 200 && $resp->{body} eq "b\n") {
                $n{ok}++;
            } else {
                $fail->("status $resp->{status}, body \"$resp->{body}\", upstream status "
                    . ($resp->{upstream_status} // '-'));
            }
            $n{passed_on}++ if ($resp->{upstream_status} // '') eq '404, 200';
            if ($resp->{close}) {
                close $sock;
                undef $sock;
            } else {
                $reused = 1;
            }
        }
    }
    open my $fh, '>', "$results/$id.tmp" or die;
    print $fh join(' ', map { "$_=$n{$_}" } sort keys %n), "\n", map { "$_\n" } @failures;
    close $fh;
    rename "$results/$id.tmp", "$results/$id";
    POSIX::_exit(0);    # not the parent's END blocks and test counts
}

# Returns ({status, body, upstream_status, close}) or (undef, [why, bytes received]).
sub read_response {
    my ($sock) = @_;
    my $buf = '';
    my $sel = IO::Select->new($sock);
    my $more = sub {
        return 'timeout' unless $sel->can_read(5);
        my $n = sysread $sock, $buf, 65536, length $buf;
        return "read: $!" unless defined $n;
        return 'closed' if $n == 0;
        return undef;
    };
    until ($buf =~ /\r\n\r\n/) {
        my $err = $more->();
        return (undef, [$err, length $buf]) if $err;
    }
    my ($head, $rest) = split /\r\n\r\n/, $buf, 2;
    my ($status) = $head =~ m{^HTTP/1\.[01] (\d{3}) } or return (undef, ["bad status line", 1]);
    my ($len) = $head =~ /^Content-Length:\s*(\d+)\s*$/mi;
    return (undef, ["no Content-Length", 1]) unless defined $len;
    $buf = $rest;
    while (length $buf < $len) {
        my $err = $more->();
        return (undef, ["$err in the body", 1]) if $err;
    }
    my ($upstream_status) = $head =~ /^X-Upstream-Status:\s*(.*?)\s*$/mi;
    return ({
        status          => $status,
        body            => substr($buf, 0, $len),
        upstream_status => $upstream_status,
        close           => scalar($head =~ /^Connection:\s*close\s*$/mi),
    });
}

my @kids;
my $load_start = time;
for my $id (1 .. $clients) {
    my $pid = fork // die "fork: $!";
    client($id) if $pid == 0;
    push @kids, $pid;
}
END { kill 'KILL', @kids if @kids }    # only if the test dies before the clients end

sleep 1;

# ---------------------------------------------------------------------------------------------
# Ten reloads, each waited for: the master says it is reconfiguring and starts new workers.

my $reloaded = 0;
for my $i (1 .. $reloads) {
    write_conf($i);
    my $workers_before = count_lines(qr/start worker process \d+/);
    kill 'HUP', $master;
    if (wait_until(10, sub {
            count_lines(qr/\(SIGHUP\) received .*reconfiguring/) >= $i
                && count_lines(qr/start worker process \d+/) >= $workers_before + 2 }))
    {
        $reloaded++;
    }
    sleep 0.5;
}
is $reloaded, $reloads, "$reloaded of $reloads reloads took effect";
ok alive($master), 'the master survived the reloads';

# ---------------------------------------------------------------------------------------------
# Binary upgrade: USR2 starts a new master with the binary the old one was started with
# (by the path it was started with; an absolute one here), then the old one is retired.

kill 'USR2', $master;
my $new_master;
ok wait_until(10, sub {
        ($new_master = read_pid('nginx.pid')) && $new_master != $master
            && (read_pid('nginx.pid.oldbin') // 0) == $master && alive($new_master) }),
    'USR2: a new master runs, the old pid file is nginx.pid.oldbin'
    or diag(error_log());
push @masters, $new_master if $new_master;
sleep 1;    # old and new workers serve side by side

kill 'WINCH', $master;    # the old workers shut down gracefully, the new ones take over
ok wait_until(10, sub { count_lines(qr/\(SIGWINCH\) received/) >= 1 }), 'WINCH: old workers retire';
sleep 1;

kill 'QUIT', $master;
ok wait_until(10, sub { !alive($master) }), 'QUIT: the old master exits';
ok $new_master && alive($new_master), 'the new master still runs';
sleep 2;    # load on the new generation alone

# ---------------------------------------------------------------------------------------------
# The figures.

open my $stop, '>', $stop_file or die;
close $stop;
for my $pid (@kids) {
    waitpid $pid, 0;
}
@kids = ();
my $load_time = time - $load_start;

my %total;
my @failures;
for my $id (1 .. $clients) {
    open my $fh, '<', "$results/$id" or do { fail "client $id left no results"; next };
    my ($counts, @lines) = <$fh>;
    $total{$1} += $2 while $counts =~ /(\w+)=(\d+)/g;
    push @failures, map { chomp; "client $id: $_" } @lines;
}

diag(sprintf "%d requests in %.0f s (%d clients): %d ok, %d failed; %d passed on after a 404; "
        . "%d sent again after an idle keepalive connection was closed; %d connections; "
        . "%d reloads, 1 binary upgrade",
    $total{requests} // 0, $load_time, $clients, $total{ok} // 0, $total{failed} // 0,
    $total{passed_on} // 0, $total{resent} // 0, $total{new_connections} // 0, $reloaded);

cmp_ok $total{requests} // 0, '>', 1000, 'the load ran';
is $total{failed} // 0, 0, 'no failed request' or diag(join "\n", @failures);
is $total{ok}, $total{requests}, 'every response 200 from the second backend';
cmp_ok $total{passed_on} // 0, '>', 0, 'the directive passed requests on';

stop_nginx();
@masters = ();

my $log = error_log();
my @bad = grep { /\[(alert|crit|emerg)\]|exited on signal|next_upstream_status/ } split /\n/, $log;
is scalar(@bad), 0, 'no crash, alert or module warning in error.log' or diag(join "\n", @bad);
is count_lines(qr/\(SIGHUP\) received .*reconfiguring/), $reloads, 'error.log shows every reload';

done_testing;
