#!/usr/bin/perl
# End-to-end test of nginx-conf/storage-front.conf over storage servers running
# nginx-conf/storage-server.conf, all on 127.0.0.1: plain local
# disks as one object store, "write to any one, read until one answers".
#
#   4 storage servers: the built nginx without the module (a storage server needs only
#   nginx's dav module), each with its own directory;
#   the front: nginx with the module, on the shipped configuration with the test's
#   addresses, once per placement (round robin, `hash $uri consistent`, then
#   `sticky learn` where the nginx has `sticky`: 1.29.6+; skipped, saying so, on older ones);
#   1,000 content-addressed objects (the path ends in the SHA-256 of the content), 1 byte
#   to 4 MiB, written through the front and read back with their checksums compared.
#
# For each placement: where the writes landed and how many servers each read asked (from
# $upstream_status in the access log); the same reads without the directive; deletes; one
# storage server killed (reads of the others' objects succeed, reads of its objects get
# 404, never 502; writes go on; keep_answer=off gives 502), then restarted (its objects are
# back); a fifth server added with `nginx -s reload` (every object still readable; the share
# of reads that needed more than one try is reported). Sticky learn besides: every read one
# try, also after the reloads and the fifth server; the 40 objects written while a server
# was down read in one try from where they went; a restart of the front forgets (reads
# search again) and reads teach it again.
#
# Run: prove t/e2e   (or: perl t/e2e/storage.t)
# Environment:
#   NGINX_BINARY  nginx to run, with --with-http_dav_module (default TEST_NGINX_BINARY, else
#                 build/nginx/sbin/nginx)
#   NGX_MODULE    module to load    (default build/modules/ngx_http_next_upstream_status_module.so)
#   E2E_SEED      seed of the object sizes and read orders (default: random, printed)
#   E2E_KEEP=1    keep the temporary directory (logs, configurations, storage) for inspection
#   E2E_PLACEMENTS  the placements to run, of "rr hash sticky" (default: all three)

use strict;
use warnings;

use Test::More;
use Cwd qw(abs_path);
use Digest::SHA qw(sha256_hex);
use File::Basename qw(dirname);
use File::Find qw(find);
use File::Path qw(make_path remove_tree);
use File::Temp qw(tempdir);
use HTTP::Tiny;
use List::Util qw(shuffle sum max);
use Time::HiRes qw(sleep time);

use FindBin;
use lib "$FindBin::Bin/lib";
use E2E;        # spawn, stop, kill_group, capture, wait_port, eventually, ...: t/e2e/lib/E2E.pm
use Storage;    # the shipped configurations with real addresses: t/e2e/lib/Storage.pm

my $ROOT   = abs_path(dirname(abs_path(__FILE__)) . '/../..');
my $NGINX  = $ENV{NGINX_BINARY} || $ENV{TEST_NGINX_BINARY} || "$ROOT/build/nginx/sbin/nginx";
my $MODULE = $ENV{NGX_MODULE}   || "$ROOT/build/modules/ngx_http_next_upstream_status_module.so";
my $FRONT_CONF  = slurp("$ROOT/nginx-conf/storage-front.conf");
my $SERVER_CONF = slurp("$ROOT/nginx-conf/storage-server.conf");

plan skip_all => "no nginx at $NGINX (make build)" unless -x $NGINX;
plan skip_all => "no module at $MODULE (make module)" unless -f $MODULE;
my (undef, $V) = capture($NGINX, '-V');
BAIL_OUT("$NGINX lacks the dav module the storage servers need (built before the Makefile had "
    . '--with-http_dav_module? `make build` configures it again)') unless $V =~ /--with-http_dav_module/;

my $T0 = time;
my $SEED = $ENV{E2E_SEED} // int(rand(1 << 31));
srand($SEED);
note("E2E_SEED=$SEED");

my $TMP = tempdir('e2e-storage-XXXXXX', TMPDIR => 1, CLEANUP => !$ENV{E2E_KEEP});
chmod 0755, $TMP;    # nginx workers may run as nobody
diag("temporary directory: $TMP") if $ENV{E2E_KEEP};

# nginx started as root runs its workers as nobody: the storage directories must be theirs.
my @WORKER_IDS = $> == 0 ? (getpwnam('nobody'))[2, 3] : ();

my $FAIL_TIMEOUT = $FRONT_CONF =~ /fail_timeout=(\d+)s/ ? $1 : die "storage-front.conf: no fail_timeout=Ns\n";

# ---------------------------------------------------------------------------------------
# Storage servers: $srv[$i] = { port, addr, dir, pid }

my @srv = map { my $p = free_port(); { port => $p, addr => "127.0.0.1:$p", dir => "$TMP/storage-$_" } } 0 .. 4;
my %srv_of_addr = map { $srv[$_]{addr} => $_ } 0 .. $#srv;

sub start_storage {
    my ($i) = @_;
    my $s = $srv[$i];
    make_path("$s->{dir}/conf", "$s->{dir}/logs", "$s->{dir}/store/data", "$s->{dir}/store/tmp");
    chown @WORKER_IDS, "$s->{dir}/store/data", "$s->{dir}/store/tmp" if @WORKER_IDS;
    spew("$s->{dir}/conf/nginx.conf", server_conf($SERVER_CONF, $s->{addr}, "$s->{dir}/store"));
    push @E2E::diag_files, "$s->{dir}/logs/error.log";
    $s->{pid} = spawn("storage $i", "$s->{dir}/logs/stderr.log",
        $NGINX, '-p', "$s->{dir}/", '-c', "$s->{dir}/conf/nginx.conf", '-g', 'daemon off;');
    wait_port($s->{addr}, $s->{pid}, 10);
}

# The machine goes away: master and workers killed at once.
sub kill_storage {
    my ($i) = @_;
    kill_group(delete $srv[$i]{pid});
    ok(wait_closed($srv[$i]{addr}), "storage server $i killed: its port is closed");
}

sub wipe_storage {
    my ($i) = @_;
    stop(delete $srv[$i]{pid}) if $srv[$i]{pid};
    remove_tree($srv[$i]{dir});
}

# Which servers hold each object now: { path => [server index, ...] }, from their directories.
sub placement {
    my %on;
    for my $i (0 .. $#srv) {
        my $data = "$srv[$i]{dir}/store/data";
        next unless -d $data;
        find({ no_chdir => 1, wanted => sub { push @{ $on{substr($_, length $data)} }, $i if -f $_ } }, $data);
    }
    return \%on;
}

# ---------------------------------------------------------------------------------------
# The front

my $FPORT  = free_port();
my $FADDR  = "127.0.0.1:$FPORT";
my $PREFIX = "$TMP/front";
make_path("$PREFIX/conf", "$PREFIX/logs");
my $ACCESS_LOG = "$PREFIX/logs/access.log";
my $ERROR_LOG  = "$PREFIX/logs/error.log";
push @E2E::diag_files, $ERROR_LOG;
my $front_pid;

# The shipped configuration with the test's addresses (Storage::front_conf): the servers
# @$servers (indexes into @srv), placement "rr" or "hash", $edit (optional) changes the
# directive line.
sub front_conf_for {
    my ($placement, $servers, $edit) = @_;
    return front_conf($FRONT_CONF, module => $MODULE, listen => $FADDR, placement => $placement,
        servers => [map { $srv[$_]{addr} } @$servers], edit => $edit);
}

sub nginx_t {
    my ($conf, $label) = @_;
    spew("$PREFIX/conf/nginx.conf.$label", $conf);
    my ($ok, $t) = capture($NGINX, '-p', "$PREFIX/", '-c', "$PREFIX/conf/nginx.conf.$label", '-t');
    die "nginx -t failed for configuration \"$label\":\n$t" unless $ok;
    spew("$PREFIX/conf/nginx.conf", $conf);
}

sub start_front {
    my ($conf, $label) = @_;
    stop($front_pid) if $front_pid;
    nginx_t($conf, $label);
    $front_pid = spawn('front', "$PREFIX/logs/stderr.log",
        $NGINX, '-p', "$PREFIX/", '-c', "$PREFIX/conf/nginx.conf", '-g', 'daemon off;');
    wait_port($FADDR, $front_pid, 10);
    note("front running configuration \"$label\"");
}

# `nginx -s reload` with a new configuration; returns once the old workers are gone.
sub reload_front {
    my ($conf, $label) = @_;
    nginx_t($conf, $label);
    my %old = map { $_ => 1 } workers_of($front_pid);
    my ($ok, $out) = capture($NGINX, '-p', "$PREFIX/", '-c', "$PREFIX/conf/nginx.conf", '-s', 'reload');
    die "nginx -s reload: $out" unless $ok;
    eventually(sub { my @w = workers_of($front_pid); @w && !grep { $old{$_} } @w }, 10)
        or die "reload to \"$label\": the old workers did not go\n";
    note("front reloaded with configuration \"$label\"");
}

# Why this nginx cannot run the sticky learn placement ('' when it can): `sticky` is nginx
# 1.29.6+.
# (A prefix of its own: the front's error log gets no emerg line from it.)
sub sticky_missing {
    my $probe = "$TMP/sticky-probe";
    make_path("$probe/conf", "$probe/logs");
    spew("$probe/conf/nginx.conf", front_conf_for('sticky', [0 .. 3]));
    my ($ok, $t) = capture($NGINX, '-p', "$probe/", '-c', "$probe/conf/nginx.conf", '-t');
    return '' if $ok;
    my ($v) = $V =~ m{nginx/(\S+)};
    return "nginx $v has no `sticky` (nginx 1.29.6+): the sticky learn placement is not run"
        if $t =~ /unknown directive "sticky"/;
    die "nginx -t failed for the sticky learn configuration:\n$t";
}

# Access log entries: { method, uri, status, us, ua, tries, last }.
sub access_log {
    my @e;
    open my $fh, '<', $ACCESS_LOG or return ();
    while (<$fh>) {
        my ($m, $u, $s, $us, $ua) = /^\S+ \[[^\]]*\] (\S+) (\S+) (\d+) us="([^"]*)" ua="([^"]*)"/ or next;
        my @addr = split /, /, $ua;
        push @e, { method => $m, uri => $u, status => $s, us => $us, ua => $ua, line => $_,
                   tries => scalar(@addr), addrs => \@addr, statuses => [split /, /, $us] };
    }
    return @e;
}

# The log entries of the requests for @objects (objects or paths), just made: the last
# entries of the log, once they are the ones for these paths (nginx writes an entry after
# it has sent the response, so the client can be a little ahead of the log).
sub entries_of {
    my @want = sort map { ref $_ ? $_->{path} : $_ } @_;
    my $n = @want;
    my @e = eventually(sub {
        my @e = access_log();
        return () if @e < $n;
        @e = @e[-$n .. -1];
        return join(' ', sort map { $_->{uri} } @e) eq join(' ', @want) ? @e : ();
    });
    die "access log: no entries for the $n requests just made\n" unless @e;
    return @e;
}

sub show { join '', map { $_->{line} } @_ }

# ---------------------------------------------------------------------------------------
# Objects: content-addressed, the path ends in the SHA-256 of the content

my $POOL = join '', map { pack 'N', int rand 2**32 } 1 .. (1 << 20);   # 4 MiB of random bytes

# Sizes: 80% up to 64 KiB, 18% 64 KiB to 1 MiB, 2% 1 to 4 MiB.
sub random_size {
    my $r = rand;
    return 1 + int rand(64 << 10) if $r < 0.80;
    return (64 << 10) + int rand(960 << 10) if $r < 0.98;
    return (1 << 20) + int rand(3 << 20);
}

my $made = 0;
sub body_of {
    my ($obj) = @_;
    my $head = "object $obj->{n} of run $$ $SEED\n";
    return substr($head . substr($POOL, $obj->{offset}, $obj->{size}), 0, $obj->{size});
}

sub new_object {
    my $o = { n => $made++, size => random_size() };
    $o->{offset} = int rand(length($POOL) - $o->{size} + 1);
    my $hex = sha256_hex(body_of($o));
    $o->{sha} = $hex;
    $o->{path} = '/blobs/sha256/' . substr($hex, 0, 2) . "/$hex";
    return $o;
}

my $http;
sub client { $http = Storage::Client->new(timeout => 30, keep_alive => 1, max_redirect => 0) }

# PUTs the objects through the front; returns the paths whose answer was not 201.
sub write_objects {
    my @bad;
    for my $o (@_) {
        my $r = $http->put("http://$FADDR$o->{path}", { content => body_of($o) });
        push @bad, "$o->{path}: $r->{status}" unless $r->{status} == 201;
    }
    return @bad;
}

# GETs the objects (in the order given) through the front; returns { path => status }
# and the paths that came back with a wrong body.
sub read_objects {
    my (%status, @wrong);
    for my $o (@_) {
        my $r = $http->get("http://$FADDR$o->{path}");
        $status{ $o->{path} } = $r->{status};
        push @wrong, $o->{path} if $r->{status} == 200 && sha256_hex($r->{content}) ne $o->{sha};
    }
    return (\%status, \@wrong);
}

sub mean { @_ ? sum(@_) / @_ : 0 }

# A subtest that notes how long it took.
sub timed {
    my ($name, $code) = @_;
    my $t = time;
    subtest $name => $code;
    note(sprintf '(%.1f s)', time - $t);
}

# Tries per read: mean and the distribution ("1: 250, 2: 260, ...").
sub tries_summary {
    my (@e) = @_;
    my %n;
    $n{ $_->{tries} }++ for @e;
    return sprintf('%.2f (%s)', mean(map { $_->{tries} } @e), join(', ', map { "$_: $n{$_}" } sort { $a <=> $b } keys %n));
}

# ---------------------------------------------------------------------------------------
# The scenarios, once per placement

my $N_OBJECTS = 1000;
my @objects = map { new_object() } 1 .. $N_OBJECTS;
note(sprintf '%d objects, %.1f MiB, largest %.2f MiB', scalar @objects,
    sum(map { $_->{size} } @objects) / 2**20, max(map { $_->{size} } @objects) / 2**20);

my %figures;    # placement => { ... } for the summary at the end
my %NAME = (rr => 'round robin', hash => 'consistent hash', sticky => 'sticky learn');
my @placements = split ' ', $ENV{E2E_PLACEMENTS} // 'rr hash sticky';
die "E2E_PLACEMENTS: rr, hash, sticky\n" if grep { !$NAME{$_} } @placements;
my $no_sticky = grep({ $_ eq 'sticky' } @placements) ? sticky_missing() : '';
@placements = grep { $_ ne 'sticky' } @placements if $no_sticky;

for my $placement (@placements) {
    my $name = $NAME{$placement};
    my @four = (0 .. 3);
    my %live = map { $_->{path} => $_ } @objects;    # what should be readable
    my $on;                                          # path => [servers]
    my $fig = $figures{$placement} = {};

    wipe_storage($_) for 0 .. $#srv;
    start_storage($_) for @four;
    start_front(front_conf_for($placement, \@four), "$placement-4");
    client();

    timed "$name: 1,000 objects written through the front, each to one server" => sub {
        truncate $ACCESS_LOG, 0;
        my @bad = write_objects(@objects);
        is("@bad", '', 'every PUT answered 201 Created');
        $on = placement();
        my @not_one = grep { @{ $on->{ $_->{path} } // [] } != 1 } @objects;
        is(scalar(@not_one), 0, 'every object is on exactly one server') or diag(join "\n", map { $_->{path} } @not_one[0 .. 4]);
        my %count;
        $count{ $on->{ $_->{path} }[0] // -1 }++ for @objects;
        $fig->{spread} = join ' / ', map { $count{$_} // 0 } @four;
        ok(!grep({ ($count{$_} // 0) < 0.1 * $N_OBJECTS } @four), "each server took at least 10%: $fig->{spread}");
        my @e = entries_of(@objects);
        my @off = grep { $_->{us} ne '201' || ($srv_of_addr{ $_->{ua} } // -1) != ($on->{ $_->{uri} }[0] // -2) } @e;
        ok(!@off, 'each write: one try ($upstream_status 201), to the server that has the file') or diag(show(@off[0 .. 4]));
    };

    timed "$name: every object read back, checksum compared" => sub {
        truncate $ACCESS_LOG, 0;
        my @order = shuffle(@objects);
        my ($status, $wrong) = read_objects(@order);
        my @not200 = grep { $status->{ $_->{path} } != 200 } @objects;
        is(scalar(@not200), 0, 'every GET answered 200') or diag(join "\n", map { "$_->{path}: $status->{$_->{path}}" } @not200[0 .. 4]);
        is(scalar(@$wrong), 0, 'every body has the SHA-256 of its path');
        my @e = entries_of(@order);
        my @off = grep {
            my $e = $_;
            $e->{statuses}[-1] ne '200' || grep({ $_ ne '404' } @{ $e->{statuses} }[0 .. $e->{tries} - 2])
                || $srv_of_addr{ $e->{addrs}[-1] } != $on->{ $e->{uri} }[0]
        } @e;
        ok(!@off, '$upstream_status: 404 from the servers asked before the one that has it, 200 from it')
            or diag(show(@off[0 .. 4]));
        $fig->{tries} = tries_summary(@e);
        my $mean = mean(map { $_->{tries} } @e);
        if ($placement eq 'rr') {
            # the server a write went to and the one a read asks first are unrelated: on
            # average (N+1)/2 = 2.5 tries (1,000 reads: the mean is within 2.5 +- 0.11 with
            # 99.8% probability)
            ok($mean > 2.2 && $mean < 2.8, "tries per read: $fig->{tries}, about (N+1)/2 = 2.5");
        } elsif ($placement eq 'hash') {
            is($mean, 1, "tries per read: $fig->{tries}: the first server asked is the one that took the write");
        } else {
            is($mean, 1, "tries per read: $fig->{tries}: the first server asked is the one the front remembers for the path");
        }

        my @sample = @order[0 .. 49];
        my @heads = map { $http->request('HEAD', "http://$FADDR$_->{path}") } @sample;
        is(join(' ', grep { $heads[$_]{status} != 200 || $heads[$_]{headers}{'content-length'} != $sample[$_]{size} } 0 .. $#sample),
            '', 'HEAD of 50 objects: 200 with the right Content-Length');

        truncate $ACCESS_LOG, 0;
        my @miss = map { "/blobs/sha256/00/" . sha256_hex("missing $_ $$") } 1 .. 20;
        my @ms = map { $http->get("http://$FADDR$_")->{status} } @miss;
        is("@ms", join(' ', (404) x 20), '20 GETs of objects no server has: 404');
        @e = entries_of(@miss);
        ok(!grep({ $_->{us} ne '404, 404, 404, 404' } @e), 'each asked all four servers') or diag(show(@e));
    };

    timed "$name: without the directive" => sub {
        reload_front(front_conf_for($placement, \@four, sub { $_ = '' }), "$placement-4-no-directive");
        client();
        truncate $ACCESS_LOG, 0;
        my @sample = (shuffle(@objects))[0 .. 199];
        my ($status) = read_objects(@sample);
        my $n404 = grep { $_ == 404 } values %$status;
        my @e = entries_of(@sample);
        ok(!grep({ $_->{tries} != 1 } @e), 'every read asks one server');
        if ($placement eq 'rr') {
            # 3 in 4 reads ask a server that lacks the object
            ok($n404 > 100, "$n404 of 200 reads get 404 for an object that is there");
        } else {
            is($n404, 0, $placement eq 'hash'
                ? 'every read gets 200: while the set of servers is unchanged, a hash read needs no second try'
                : 'every read gets 200: the remembered server has it (the memory kept across nginx -s reload)');
        }
        reload_front(front_conf_for($placement, \@four), "$placement-4");
        client();
    };

    timed "$name: DELETE finds the object wherever it is" => sub {
        my @del = (shuffle(values %live))[0 .. 29];
        truncate $ACCESS_LOG, 0;
        my @st = map { $http->delete("http://$FADDR$_->{path}")->{status} } @del;
        is("@st", join(' ', (204) x 30), 'DELETE of 30 objects: 204 each');
        my @e = entries_of(@del);
        ok(!grep({ $_->{statuses}[-1] ne '204' || $srv_of_addr{ $_->{addrs}[-1] } != $on->{ $_->{uri} }[0] } @e),
            'answered by the server that had it') or diag(show(@e));
        my $after = placement();
        ok(!grep({ $after->{ $_->{path} } } @del), 'their files are gone');
        delete $live{ $_->{path} } for @del;
        my ($status) = read_objects(@del);
        is(join(' ', map { $status->{ $_->{path} } } @del), join(' ', (404) x 30), 'GET of each: 404');
        @st = map { $http->delete("http://$FADDR$_->{path}")->{status} } @del[0 .. 4];
        is("@st", '404 404 404 404 404', 'DELETE again: 404');

        return unless $placement eq 'rr';
        # without DELETE in methods=, a DELETE asks one server only
        reload_front(front_conf_for($placement, \@four, sub { s/ methods=[^;\s]+// }), "$placement-4-default-methods");
        client();
        my @try = (shuffle(values %live))[0 .. 19];
        @st = map { $http->delete("http://$FADDR$_->{path}")->{status} } @try;
        my @missed = grep { $st[$_] == 404 } 0 .. $#try;
        ok(@missed >= 5, scalar(@missed) . ' of 20 DELETEs with methods=GET,HEAD (the default) get 404');
        $after = placement();
        ok(!grep({ !$after->{ $try[$_]{path} } } @missed), 'and their objects are still there');
        delete $live{ $try[$_]{path} } for grep { $st[$_] == 204 } 0 .. $#try;
        reload_front(front_conf_for($placement, \@four), "$placement-4");
        client();
    };

    my $dead = 1;
    my @written_while_down;
    timed "$name: storage server $dead killed" => sub {
        kill_storage($dead);
        my @order  = shuffle(values %live);
        my @its    = grep { $on->{ $_->{path} }[0] == $dead } @order;
        my @others = grep { $on->{ $_->{path} }[0] != $dead } @order;

        # keep_answer=off: nginx's 502 whenever the dead server is the last one asked (always,
        # once nginx has marked it down)
        reload_front(front_conf_for($placement, \@four, sub { s/;$/ keep_answer=off;/ }), "$placement-4-keep-off");
        client();
        my ($status) = read_objects(@its[0 .. 29]);
        my $n502 = grep { $_ == 502 } values %$status;
        ok($n502 >= 15, "with keep_answer=off $n502 of 30 reads of its objects get 502");
        reload_front(front_conf_for($placement, \@four), "$placement-4");
        client();

        my $log_from = -s $ERROR_LOG;
        truncate $ACCESS_LOG, 0;
        ($status, my $wrong) = read_objects(@order);
        is(join(',', sort { $a <=> $b } keys %{{ map { $status->{ $_->{path} } => 1 } @others }}), '200',
            scalar(@others) . ' reads of objects on the other servers: 200');
        is(scalar(@$wrong), 0, 'with the right bodies');
        is(join(',', sort { $a <=> $b } keys %{{ map { $status->{ $_->{path} } => 1 } @its }}), '404',
            scalar(@its) . " reads of server $dead\'s objects: 404, never 502");
        my @e = entries_of(@order);
        my %by_uri = map { $_->{uri} => $_ } @e;
        if ($placement eq 'sticky') {
            my @more = grep { $_->{tries} != 1 } map { $by_uri{ $_->{path} } } @others;
            ok(!@more, 'the objects on the other servers: one try each (their server remembered)')
                or diag(show(@more[0 .. 4]));
        }
        my @its_e = map { $by_uri{ $_->{path} } } @its;
        my $failed = grep { $_->{us} =~ /\b502\b/ } @its_e;
        my $nolive = grep { $_->{ua} =~ /\bstore$/ } @its_e;
        $fig->{dead_reads} = scalar(@its) . " reads: $nolive ended in \"no live upstreams\", the server down, skipped";
        ok($failed > 0, "$failed of them passed over the dead server (\$upstream_status ...502...), $nolive after nginx marked it down")
            or diag(show(@its_e[0 .. 4]));
        like(substr(slurp($ERROR_LOG), $log_from),
            qr/\[warn\].*next_upstream_status: no later server gave an answer \(502\), sending the 404 answered by/,
            'error log: the kept answer\'s warn line');

        my @new = map { new_object() } 1 .. 40;
        truncate $ACCESS_LOG, 0;
        my @bad = write_objects(@new);
        is("@bad", '', '40 new objects written: 201 each');
        my $now = placement();
        ok(!grep({ @{ $now->{ $_->{path} } // [] } != 1 } @new), 'each on exactly one live server');
        @e = entries_of(@new);
        my $passed = grep { $_->{us} =~ /^502, 201$/ } @e;
        note("$passed of 40 PUTs went to the dead server first and were passed on");
        @written_while_down = @new;
        $on->{ $_->{path} } = $now->{ $_->{path} } for @new;
        $live{ $_->{path} } = $_ for @new;
    };

    timed "$name: storage server $dead restarted" => sub {
        start_storage($dead);
        my @its = grep { $on->{ $_->{path} }[0] == $dead } values %live;
        # The front's workers marked the server down when they last failed to reach it; each
        # asks it again fail_timeout later.
        my $t = time;
        my $back = eventually(sub {
            !grep { HTTP::Tiny->new(timeout => 5)->get("http://$FADDR$_->{path}")->{status} != 200 } @its[0 .. 9]
        }, $FAIL_TIMEOUT + 3);
        ok($back, sprintf 'its objects are back, %.1f s after the restart (fail_timeout=%ds)', time - $t, $FAIL_TIMEOUT);
        # Every worker's mark runs out fail_timeout after its last failure, which came before
        # the restart, in nginx's whole seconds (that one answered proves only one's).
        sleep($t + $FAIL_TIMEOUT + 1.2 - time) if time < $t + $FAIL_TIMEOUT + 1.2;
        client();
        truncate $ACCESS_LOG, 0;
        my @order = shuffle(@its, @written_while_down);
        my ($status, $wrong) = read_objects(@order);
        my @bad = grep { $status->{$_} != 200 } sort keys %$status;
        is(scalar(@bad), 0, 'all ' . scalar(@its) . " of its objects and the 40 written while it was down: 200")
            or diag(join "\n", map { "$_: $status->{$_}" } @bad[0 .. ($#bad < 4 ? $#bad : 4)]);
        is(scalar(@$wrong), 0, 'with the right bodies');
        if ($placement eq 'sticky') {
            my @e = entries_of(@order);
            my %w = map { $_->{path} => 1 } @written_while_down;
            my @more = grep { $w{ $_->{uri} } && $_->{tries} != 1 } @e;
            ok(!@more, 'the 40 written while it was down: one try each, from the server that took them')
                or diag(show(@more[0 .. 4]));
        }
        return unless $placement eq 'hash';
        # A path that hashes to the server that was down was written to the next server on
        # the ring: now its read asks the server that is back first (404), then that one.
        my @e = entries_of(@order);
        my %w = map { $_->{path} => 1 } @written_while_down;
        my @moved = grep { $w{ $_->{uri} } && $_->{tries} > 1 } @e;
        ok(!grep({ $_->{tries} != 2 || $_->{addrs}[0] ne $srv[$dead]{addr} } @moved),
            scalar(@moved) . " of the 40 were written while their server was down: server $dead (404), then the next one")
            or diag(show(@moved));
        ok(!grep({ !$w{ $_->{uri} } && $_->{tries} != 1 } @e), "its own objects: one try each");
    };

    timed "$name: a fifth server added with nginx -s reload" => sub {
        start_storage(4);
        my @five = (0 .. 4);
        reload_front(front_conf_for($placement, \@five), "$placement-5");
        client();
        my @order = shuffle(values %live);
        truncate $ACCESS_LOG, 0;
        my ($status, $wrong) = read_objects(@order);
        is(join(',', sort keys %{{ map { $_ => 1 } values %$status }}), '200',
            'all ' . scalar(@order) . ' objects still readable: 200');
        is(scalar(@$wrong), 0, 'with the right bodies');
        my @e = entries_of(@order);
        my $more = grep { $_->{tries} > 1 } @e;
        $fig->{added} = sprintf '%.1f%% of reads needed more than one try; tries per read %s', 100 * $more / @e, tries_summary(@e);
        note("after adding a fifth server: $fig->{added}");
        if ($placement eq 'hash') {
            # Only the paths that now hash to the new server are asked elsewhere: first the
            # new server (404), then the next server on the ring, the one that took the write.
            # (Paths written while their server was down may take one try more: above.)
            my %w = map { $_->{path} => 1 } @written_while_down;
            my @odd = grep { !$w{ $_->{uri} } && $_->{tries} > 1 && ($_->{tries} != 2 || $_->{addrs}[0] ne $srv[4]{addr}) } @e;
            ok(!@odd, 'every read that needed more than one try: the new server (404), then the one that has it')
                or diag(show(@odd[0 .. 4]));
            ok($more > 0.05 * @e && $more < 0.4 * @e, "$more of " . scalar(@e) . ' reads needed two tries (about 1/5 expected)');

            # and without the directive those reads fail
            reload_front(front_conf_for($placement, \@five, sub { $_ = '' }), "$placement-5-no-directive");
            client();
            my @sample = (shuffle(@order))[0 .. 199];
            ($status) = read_objects(@sample);
            my $n404 = grep { $_ == 404 } values %$status;
            ok($n404 > 10, "without the directive $n404 of 200 reads get 404");
        } elsif ($placement eq 'sticky') {
            # the servers' ids are their addresses: the reload kept the zone and every
            # record in it still names the right server
            is($more, 0, 'every read one try: the memory survives the reload, and a new server moves nothing');
        } else {
            my $mean = mean(map { $_->{tries} } @e);
            ok($mean > 2.5 && $mean < 3.5, sprintf 'tries per read %.2f, about 3 (the holder\'s place among 5 in turn)', $mean);
        }
    };

    next unless $placement eq 'sticky';
    timed "$name: the front restarted forgets, reads teach it again" => sub {
        start_front(front_conf_for($placement, [0 .. 4]), "$placement-5-restarted");
        client();
        my @sample = (shuffle(values %live))[0 .. 199];
        for my $pass (1, 2) {
            truncate $ACCESS_LOG, 0;
            my ($status, $wrong) = read_objects(@sample);
            my @bad = grep { $status->{ $_->{path} } != 200 } @sample;
            is(scalar(@bad) + scalar(@$wrong), 0, "pass $pass: 200 reads, 200 each, right bodies");
            my @e = entries_of(@sample);
            my $t = tries_summary(@e);
            my $mean = mean(map { $_->{tries} } @e);
            if ($pass == 1) {
                # round robin over 5: about 3 tries per read
                ok($mean > 1.5, "tries per read $t: searched again, the memory went with the restart");
                $fig->{restart} = "after a restart $t";
            } else {
                is($mean, 1, "read again: one try each, $t: remembered from the first pass");
                $fig->{restart} .= ", read again $t";
            }
        }
    };
}

SKIP: {
    skip $no_sticky, 1 if $no_sticky;
}

subtest 'housekeeping' => sub {
    my $log = -e $ERROR_LOG ? slurp($ERROR_LOG) : '';
    my $errs = join '', grep { /\[(alert|emerg|crit)\]|exited on signal/ } split /^/, $log;
    is($errs, '', 'no alert/crit/emerg or crashed worker in the front\'s error log');
};

for my $p (@placements) {
    my $f = $figures{$p};
    note("$p: writes per server $f->{spread}; tries per read $f->{tries}; server down: $f->{dead_reads}; "
        . "fifth server: $f->{added}" . ($f->{restart} ? "; $f->{restart}" : ''));
}
note($no_sticky) if $no_sticky;
note(sprintf 'e2e run time %.1fs', time - $T0);
done_testing();
