package Test::Nginx::Socket;

# A small, self-contained implementation of the subset of the upstream
# Test::Nginx::Socket (openresty/test-nginx) block format that this project's
# .t files use, so that the same .t files run both under this harness and
# under the real upstream module.
#
# Per block (and per repeat_each() repetition) it:
#   1. lays out a fresh server root (conf/, logs/, html/, *_temp/),
#   2. writes conf/nginx.conf from the block's config sections,
#   3. starts the embedded TCP server of --- tcp_listen, if any,
#   4. starts nginx in the foreground (daemon off) in its own process group,
#   5. sends the request(s) over plain TCP (or with curl over HTTP/2, for
#      --- http2) and checks the responses,
#   6. stops nginx (QUIT, then TERM, then KILL of the whole group) and checks
#      the error log, including an always-on check for crashed workers, then
#      kills the TCP server and checks what it received.
#
# Block sections are parsed by Test::Base (so "--- foo eval", "chomp",
# "--- ONLY", "--- SKIP" work as usual); see t/lib/README.md for the list of
# supported sections and environment variables.

use strict;
use warnings;

# Lowercase -base: become a Test::Base subclass (and export its functions
# to the .t file) without Spiffy's "my $self = shift" source filter.
use Test::Base -base;

use File::Path ();
use File::Spec ();
use IO::Select;
use IO::Socket::INET;
use List::Util ();
use POSIX ();
use Scalar::Util ();
use Socket ();
use Test::LongString ();
use Time::HiRes ();

our $VERSION = '0.01';

our @EXPORT = qw(
    run_tests run_test
    repeat_each no_shuffle log_level
    master_on master_off master_process_enabled
    workers worker_connections
    no_long_string no_root_location
    add_block_preprocessor add_cleanup_handler
    env_to_nginx config_preamble
    server_name server_addr server_port server_root html_dir timeout
    is_str bail_out
);

# ---------------------------------------------------------------------------
# Settings (the .t file changes them through the exported functions)
# ---------------------------------------------------------------------------

our $NginxBinary = $ENV{TEST_NGINX_BINARY} || 'nginx';
our $ServerPort  = $ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT} || 1984;
our $ServerAddr  = '127.0.0.1';
our $ServerName  = 'localhost';
our $ServRoot    = File::Spec->rel2abs(
    $ENV{TEST_NGINX_SERVROOT} || $ENV{TEST_NGINX_SERVER_ROOT} || 't/servroot');
our $HtmlDir     = "$ServRoot/html";

# For the .t files' own use (upstream exports only TEST_NGINX_SERVER_ROOT).
$ENV{TEST_NGINX_SERVROOT}    = $ServRoot;
$ENV{TEST_NGINX_SERVER_ROOT} = $ServRoot;
$ENV{TEST_NGINX_HTML_DIR}    = $HtmlDir;

our $LogLevel             = $ENV{TEST_NGINX_LOG_LEVEL} || 'debug';
our $MasterProcessEnabled = $ENV{TEST_NGINX_MASTER_PROCESS} || 'on';
our $Workers              = 1;
our $WorkerConnections    = 1024;
our $RepeatEach           = 1;
our $NoShuffle            = $ENV{TEST_NGINX_NO_SHUFFLE} || 0;
our $NoLongString         = 0;
our $NoRootLocation       = 0;
our $ConfigPreamble       = '';
our $Timeout              = $ENV{TEST_NGINX_TIMEOUT} || 5;  # per request, seconds
our $StartTimeout         = 5;  # seconds for nginx to write its pid file (or die)
our $StopTimeout          = 5;  # seconds for a graceful (QUIT) shutdown

our @EnvToNginx;
our @BlockPreprocessors;
our @CleanupHandlers;

# State of the nginx started for the current block.
my $NginxPid;       # pid of the nginx we forked (also its process group id)
my $NginxStatus;    # its wait status once reaped, else undef
my %RandPorts;      # TEST_NGINX_RAND_PORT_N => port, for the current block
my $NginxVersionCache;
my $NginxVCache;

sub conf_file   () { "$ServRoot/conf/nginx.conf" }
sub err_log     () { "$ServRoot/logs/error.log" }
sub acc_log     () { "$ServRoot/logs/access.log" }
sub pid_file    () { "$ServRoot/logs/nginx.pid" }
sub stderr_file () { "$ServRoot/logs/nginx.stderr" }

# ---------------------------------------------------------------------------
# Exported setters/getters (same names and behaviour as upstream)
# ---------------------------------------------------------------------------

sub repeat_each (@)        { $RepeatEach = shift if @_; $RepeatEach }
sub no_shuffle ()          { $NoShuffle = 1 }
sub log_level (@)          { $LogLevel = shift if @_; $LogLevel }
sub master_on ()           { $MasterProcessEnabled = 'on' }
sub master_off ()          { $MasterProcessEnabled = 'off' }
sub workers (@)            { $Workers = shift if @_; $Workers }
sub worker_connections (@) { $WorkerConnections = shift if @_; $WorkerConnections }
sub no_long_string ()      { $NoLongString = 1 }
sub no_root_location ()    { $NoRootLocation = 1 }
sub config_preamble ($)    { $ConfigPreamble = shift }
sub server_name (@)        { $ServerName = shift if @_; $ServerName }
sub server_addr (@)        { $ServerAddr = shift if @_; $ServerAddr }
sub server_port (@)        { $ServerPort = shift if @_; $ServerPort }
sub server_root ()         { $ServRoot }
sub html_dir ()            { $HtmlDir }
sub timeout (@)            { $Timeout = shift if @_; $Timeout }

sub master_process_enabled (@) {
    $MasterProcessEnabled = (shift() ? 'on' : 'off') if @_;
    $MasterProcessEnabled;
}

sub add_block_preprocessor (&) { push @BlockPreprocessors, shift }
sub add_cleanup_handler ($)    { unshift @CleanupHandlers, shift }

sub env_to_nginx (@) {
    croak "env_to_nginx: no arguments specified" unless @_;
    for my $v (@_) {
        croak "env_to_nginx: bad argument value: $v" if $v !~ /^[A-Za-z_]/ || $v =~ /\n/;
        push @EnvToNginx, $v;
    }
}

sub is_str (@) {
    my ($got, $expected, $desc) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    return Test::More::like($got, $expected, $desc) if ref $expected eq 'Regexp';
    return Test::More::is($got, $expected, $desc) if $NoLongString;
    return Test::LongString::is_string($got, $expected, $desc);
}

sub bail_out (@) {
    cleanup();
    Test::More::BAIL_OUT(join '', @_);
}

# ---------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------

# Sections this harness implements.
my %Supported = map { $_ => 1 } qw(
    main_config post_main_config http_config config user_files log_level
    request raw_request more_headers timeout abort wait ignore_response
    error_code error_code_like
    response_headers response_headers_like
    raw_response_headers_like raw_response_headers_unlike
    response_body response_body_like response_body_unlike
    error_log no_error_log access_log no_access_log
    must_die skip_nginx skip_eval http2 needs_harness
    tcp_listen tcp_reply tcp_reply_delay tcp_no_close tcp_shutdown tcp_shutdown_delay
    tcp_query tcp_query_len tcp_query_auto_timeout
    ONLY SKIP LAST
);

# Upstream sections with no effect on the outcome, accepted and ignored.
my %Ignored = map { $_ => 1 } qw(no_check_leak curl);

# Everything else (upstream features we don't implement, or typos such as
# "--- reponse_body") makes the block die, so that no check is skipped
# silently.
sub check_sections ($) {
    my $block = shift;
    my $order = $block->_section_order || [];
    for my $s (@$order) {
        next if $Supported{$s} || $Ignored{$s};
        croak $block->name . ": section '--- $s' is not supported by "
            . __FILE__ . " (a typo, or an upstream feature this harness lacks)";
    }
}

# ---------------------------------------------------------------------------
# Running the blocks
# ---------------------------------------------------------------------------

sub run_tests () {
    my $tb = Test::More->builder;
    Test::More::plan('no_plan') unless $tb->has_plan;

    $ENV{TEST_NGINX_SERVER_PORT} = $ServerPort;    # server_port() may have changed it

    # Make sure nginx does not outlive us when interrupted.
    local $SIG{INT}  = \&on_signal;
    local $SIG{TERM} = \&on_signal;
    local $SIG{HUP}  = \&on_signal;

    # A mistake in the .t file (bad "eval" code, unknown section, undefined
    # $TEST_NGINX_ variable...) fails its block with the message, and the
    # other blocks still run.
    my @blocks = eval { Test::Base::blocks() };
    if ($@) {
        Test::More::fail("reading the test blocks");
        diag($@);
        return;
    }
    @blocks = List::Util::shuffle(@blocks) unless $NoShuffle;

    for my $block (@blocks) {
        next if eval {
            $_->($block) for @BlockPreprocessors;
            run_test($block);
            1;
        };
        my $err = $@;
        stop_nginx();
        stop_tcp_server();
        Test::More::fail($block->name . " - error in the test block");
        diag($err);
    }

    cleanup();
}

sub run_test ($) {
    my $block = shift;
    return if defined $block->SKIP;

    my $name = $block->name;
    check_sections($block);
    %RandPorts = ();

    my ($skip_count, $skip_reason) = skip_spec($block);

    for my $rep (0 .. $RepeatEach - 1) {
        if (defined $skip_count) {
            SKIP: { Test::More::skip("$name - $skip_reason", $skip_count) }
            next;
        }

        my $first_test = Test::More->builder->current_test;
        my $shown;    # run_one showed the logs already
        my $ok = eval { $shown = run_one($block, $rep); 1 };
        my $err = $@;
        stop_nginx();    # in case run_one died half-way
        stop_tcp_server();
        die $err unless $ok;

        # Show the interesting part of the error log when something failed:
        # the next block wipes the server root.
        my $last_test = Test::More->builder->current_test;
        if (!$shown
            && grep { !$_ } (Test::More->builder->summary)[$first_test .. $last_test - 1])
        {
            diag_error_log($name);
        }
    }
}

sub on_signal {
    my $sig = shift;
    kill_nginx_group();
    stop_tcp_server();
    print STDERR "# Test::Nginx::Socket: caught SIG$sig, nginx killed\n";
    exit 1;
}

# One repetition of one block.  Returns true if it has shown the logs in a
# diagnostic already.
sub run_one ($$) {
    my ($block, $rep) = @_;
    my $name = $block->name;

    prepare_servroot($block);
    write_config($block);
    start_tcp_server($block) unless defined $block->must_die;
    start_nginx();

    if (defined $block->must_die) {
        check_must_die($block, $rep);
        return 0;
    }

    my $started = wait_started();
    if (!$started->{ok}) {
        stop_nginx();
        Test::More::fail("$name - nginx started");
        diag("nginx failed to start: $started->{why}");
        diag_lines("nginx stderr", read_lines(stderr_file()));
        diag_lines("error.log", read_lines(err_log()));
        return 1;
    }

    croak "$name - cannot use --- http2 with --- raw_request (as upstream)"
        if defined $block->http2 && defined $block->raw_request;
    my $reqs = requests_from_block($block);
    my $need_array = @$reqs > 1;
    my $timeout = parse_time($block->timeout) // $Timeout;
    my $err_pos = 0;    # error.log offset of the lines not checked yet

    for my $i (0 .. $#$reqs) {
        my $req = $reqs->[$i];
        my ($raw_resp, $why) = defined $block->http2
            ? send_request_by_curl($block, $req->{raw}, $timeout)
            : send_request($req->{raw}, $timeout);

        if (defined $why) {
            if ($why eq 'timeout') {
                Test::More::fail("$name - ERROR: client socket timed out")
                    unless defined $block->abort;
            } else {
                diag("$name - $why");
            }
        }

        if (!defined $block->ignore_response) {
            my $res = parse_response($name, $raw_resp, $req->{head});
            check_error_code($block, $res, $i, $need_array);
            check_raw_response_headers($block, $res, $i, $need_array);
            check_response_headers($block, $res, $i, $need_array);
            check_response_body($block, $res, $i, $rep, $need_array);
        }

        # Like upstream: the log checks run after every request, each time
        # on the lines logged since the previous check.  After the last
        # request nginx is stopped first, so shutdown lines are included.
        if ($i < $#$reqs) {
            Time::HiRes::sleep($block->wait) if $block->wait;
            Time::HiRes::sleep(0.05);    # let the log phase finish
            my ($lines, $pos) = read_lines(err_log(), $err_pos);
            $err_pos = $pos;
            check_log_patterns($block, 'error_log', $lines, $rep);
            check_log_patterns($block, 'access_log', (read_lines(acc_log()))[0], $rep)
                unless defined $block->ignore_response;
        }
    }

    Time::HiRes::sleep($block->wait) if $block->wait;
    my $stop = stop_nginx();
    stop_tcp_server();

    my ($lines) = read_lines(err_log(), $err_pos);
    check_log_patterns($block, 'error_log', $lines, $rep);
    check_log_patterns($block, 'access_log', (read_lines(acc_log()))[0], $rep)
        unless defined $block->ignore_response;
    check_tcp_query($block);

    check_crash($block, $stop, $rep);
    return 0;
}

sub check_must_die ($$) {
    my ($block, $rep) = @_;
    my $name = $block->name;
    my $must_die = $block->must_die;

    # It has either exited, or written its pid file (so it got past the
    # configuration) and is still running a moment later.
    my $started = wait_started();
    my $status = $started->{ok} ? wait_exit(0.2) : reap();
    if (!defined $status) {
        Test::More::fail("$name - die as expected");
        diag("nginx started and is running; stopping it");
    } elsif (Scalar::Util::looks_like_number($must_die)) {
        Test::More::is($status >> 8, $must_die, "$name - die with the expected exit code");
    } else {
        Test::More::isnt($status, 0, "$name - die as expected");
    }

    my $stop = stop_nginx();
    delete $stop->{early} if $stop;    # dying early is what we want here

    # Configuration errors go both to stderr and to logs/error.log (nginx
    # opens the prefix's default error log before it reads the config).
    my ($err) = read_lines(stderr_file());
    my ($log) = read_lines(err_log());
    check_log_patterns($block, 'error_log', [@$err, @$log], $rep);

    check_crash($block, $stop, $rep);
}

# Always-on check: a crashed worker (or any [alert]) fails the block, unless
# the block itself asks about such lines in --- error_log/--- no_error_log.
# Emits a test only when it fails, so that passing blocks have the same
# number of tests as under upstream.
sub check_crash ($$$) {
    my ($block, $stop, $rep) = @_;
    my $name = $block->name;

    my $expects_alert = 0;
    for my $sec (qw(error_log no_error_log)) {
        my $v = $block->$sec;
        next unless defined $v;
        $expects_alert = 1 if value_contains($v, '[alert') || value_contains($v, 'exited on signal');
    }

    if (!$expects_alert) {
        my ($lines) = read_lines(err_log());
        for my $line (crash_lines($lines)) {
            Test::More::fail("$name - error.log must have no crash or [alert] line, but has: "
                . fmt_str($line) . " (req $rep)");
        }
    }

    if ($stop && defined $stop->{status} && ($stop->{status} & 127)) {
        Test::More::fail("$name - nginx exited on signal " . ($stop->{status} & 127) . " (req $rep)");
    } elsif ($stop && $stop->{early}) {
        Test::More::fail("$name - nginx exited before the end of the block, wait status "
            . "$stop->{status} (req $rep)");
    }
    diag("$name - nginx did not stop within ${StopTimeout}s of QUIT nor 2s of TERM; killed it")
        if $stop && $stop->{forced};
}

# Lines of an error log that show a crashed worker or an [alert].
sub crash_lines ($) {
    my $lines = shift;
    return grep { /\[alert\]/ || /exited on signal/ } @$lines;
}

# (count, reason) when the block must be skipped, else ().
sub skip_spec ($) {
    my $block = shift;
    my $name = $block->name;

    if (defined(my $spec = $block->skip_nginx)) {
        $spec =~ /^\s*(\d+)\s*:\s*([<>]=?)\s*(\d+)\.(\d+)\.(\d+)(?:\s*:\s*(.*?))?\s*$/s
            or croak "$name - invalid --- skip_nginx spec: $spec";
        my ($n, $op, @want) = ($1, $2, $3, $4, $5);
        my $reason = $6 || "nginx version $op $want[0].$want[1].$want[2]";
        my $have = nginx_version();
        my $want = $want[0] * 1_000_000 + $want[1] * 1000 + $want[2];
        my $skip = $op eq '<'  ? $have <  $want
                 : $op eq '<=' ? $have <= $want
                 : $op eq '>'  ? $have >  $want
                 :               $have >= $want;
        return ($n, $reason) if $skip;
    }

    if (defined(my $spec = $block->skip_eval)) {
        $spec =~ /^\s*(\d+)\s*:\s*(.*)$/s
            or croak "$name - invalid --- skip_eval spec: $spec";
        my ($n, $code) = ($1, $2);
        my $skip = eval "package main; $code";
        croak "$name - skip_eval - failed to eval \"$code\": $@" if $@;
        return ($n, 'skip_eval') if $skip;
    }

    return;
}

sub nginx_version () {
    return $NginxVersionCache if defined $NginxVersionCache;
    my $v = nginx_V();
    $v =~ m{nginx version: \S+?/(\d+)\.(\d+)\.(\d+)}
        or croak "cannot tell the version of $NginxBinary from 'nginx -V': $v";
    return $NginxVersionCache = $1 * 1_000_000 + $2 * 1000 + $3;
}

sub nginx_V () {
    return $NginxVCache if defined $NginxVCache;
    (my $q = $NginxBinary) =~ s/'/'\\''/g;
    $NginxVCache = `'$q' -V 2>&1` // '';
}

# ---------------------------------------------------------------------------
# Server root and nginx.conf
# ---------------------------------------------------------------------------

my @ServRootDirs = qw(conf logs html client_body_temp proxy_temp fastcgi_temp
                      uwsgi_temp scgi_temp);

sub prepare_servroot ($) {
    my $block = shift;

    kill_stale_nginx();
    if (-e $ServRoot) {
        # Guard against a mistyped TEST_NGINX_SERVROOT: only wipe a directory
        # that is empty or has the conf/ we lay out.
        opendir my $dh, $ServRoot or croak "cannot read $ServRoot: $!";
        my @entries = grep { !/^\.\.?$/ } readdir $dh;
        closedir $dh;
        croak "refusing to delete $ServRoot (TEST_NGINX_SERVROOT): it is not empty "
            . "and has no conf/ directory; delete it by hand if it is really a server root"
            if @entries && !-d "$ServRoot/conf";
        File::Path::remove_tree($ServRoot);
    }
    File::Path::make_path("$ServRoot/$_") for @ServRootDirs;
    write_user_files($block);
}

# An nginx left running in our server root by an earlier run that was killed
# hard (SIGKILL of prove) would hold the ports: stop it.
sub kill_stale_nginx () {
    my $pidf = pid_file();
    return unless -f $pidf;
    my ($pid) = (slurp($pidf) // '') =~ /(\d+)/;
    return unless $pid && kill(0, $pid);
    my $cmd = slurp("/proc/$pid/cmdline") // '';
    return unless $cmd =~ /nginx/ && index($cmd, $ServRoot) >= 0;
    diag("killing a stale nginx (pid $pid) left in $ServRoot");
    kill 'QUIT', $pid;
    for (1 .. 200) {
        last unless kill 0, $pid;
        Time::HiRes::sleep(0.01);
    }
    # We started it in its own process group: that takes its workers too.
    kill '-KILL', $pid;
    kill 'KILL', $pid;
}

sub write_user_files ($) {
    my $block = shift;
    my $files = $block->user_files;
    return unless defined $files;
    my $name = $block->name;

    if (!ref $files) {
        my @list;
        for my $line (split /^/, $files) {
            if ($line =~ /^>>> (\S+)(?:\s+(.+))?/) {
                push @list, [$1, '', $2];
            } elsif (@list) {
                $list[-1][1] .= $line;
            }
        }
        $files = \@list;
    }
    croak "$name - --- user_files must be text or an array" unless ref $files eq 'ARRAY';

    for my $f (@$files) {
        my ($fname, $body, $date) = @$f;
        my $path = $fname =~ m{^/} ? $fname : "$HtmlDir/$fname";
        File::Path::make_path($1) if $path =~ m{(.*)/} && !-d $1;
        spew($path, expand_env($body // '', $name));
        if ($date) {
            local $ENV{TZ} = 'GMT';
            system('touch', '-t', $date, $path) == 0
                or croak "$name - touch -t '$date' $path failed";
        }
    }
}

sub write_config ($) {
    my $block = shift;
    my $name = $block->name;

    my $main_config      = expand_env($block->main_config // '', $name);
    my $post_main_config = expand_env($block->post_main_config // '', $name);
    my $http_config      = expand_env($block->http_config // '', $name);
    my $config           = expand_env($block->config // '', $name);
    my $log_level        = $block->log_level || $LogLevel;

    my $modules = join '', map {
        'load_module ' . File::Spec->rel2abs($_) . ";\n"
    } grep { length } split /\s+/, $ENV{TEST_NGINX_LOAD_MODULES} // '';

    my $env = join '', map { my $v = /\s/ ? "'$_'" : $_; "env $v;\n" } @EnvToNginx;
    my $user = $> == 0 ? "user root;\n" : '';    # workers must write our files

    # Temp paths inside the server root, skipping modules built out and paths
    # the test sets itself.
    my $temp_paths = '';
    my $V = nginx_V();
    for my $m (qw(client_body proxy fastcgi uwsgi scgi)) {
        next if $m ne 'client_body' && $V =~ /--without-http_${m}_module/;
        next if $http_config =~ /\b${m}_temp_path\b/;
        $temp_paths .= "    ${m}_temp_path $ServRoot/${m}_temp;\n";
    }

    # --- http2: cleartext HTTP/2 ("prior knowledge") on the test server, as upstream.
    my $listen_http2 = '';
    if (defined $block->http2) {
        $listen_http2 = nginx_version() >= 1_025_001 ? ";\n        http2 on" : ' http2';
    }

    my $root_location = $NoRootLocation ? '' : <<"_EOC_";
        location / {
            root $HtmlDir;
            index index.html index.htm;
        }
_EOC_

    my $conf = <<"_EOC_";
# Generated by Test::Nginx::Socket for: $name
${modules}daemon off;
master_process $MasterProcessEnabled;
worker_processes $Workers;
error_log logs/error.log $log_level;
pid logs/nginx.pid;
$user$env
$main_config

events {
    accept_mutex off;
    worker_connections $WorkerConnections;
}

$post_main_config

http {
    access_log logs/access.log;
$temp_paths
    default_type text/plain;
    keepalive_timeout 68;

$http_config

    server {
        listen $ServerPort$listen_http2;
        server_name $ServerName;
        client_max_body_size 30M;

$ConfigPreamble
        # Begin test case config...
$config
        # End test case config.

$root_location    }
}
_EOC_

    spew(conf_file(), $conf);
}

# Replaces $TEST_NGINX_XXX by the environment variable's value (dies when it
# is undefined, like upstream).  $TEST_NGINX_RAND_PORT_N gets a free port,
# the same one everywhere in the block.
sub expand_env ($$) {
    my ($text, $name) = @_;
    return $text unless defined $text && !ref $text;
    $text =~ s{\$(TEST_NGINX_[_A-Z0-9]+)}{
        my $var = $1;
        if ($var =~ /^TEST_NGINX_RAND_PORT_\d+$/) {
            $RandPorts{$var} = rand_port() unless defined $RandPorts{$var};
            $RandPorts{$var};
        } else {
            defined $ENV{$var}
                or croak "$name - No environment $var defined (used as \$$var)";
            $ENV{$var};
        }
    }ge;
    return $text;
}

# A free TCP port below the usual ephemeral range (so that the kernel does
# not hand it out for an outgoing connection meanwhile).
sub rand_port () {
    my %used = ($ServerPort => 1, map { $_ => 1 } values %RandPorts);
    for (1 .. 1000) {
        my $port = 10000 + int(rand(20000));
        next if $used{$port};
        my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port,
                                      Proto => 'tcp', Listen => 1, ReuseAddr => 1);
        next unless $s;
        close $s;
        return $port;
    }
    croak "cannot find a free TCP port";
}

# ---------------------------------------------------------------------------
# Starting and stopping nginx
# ---------------------------------------------------------------------------

sub start_nginx () {
    my @cmd = ($NginxBinary, '-p', "$ServRoot/", '-c', 'conf/nginx.conf');

    my $pid = fork // croak "fork failed: $!";
    if ($pid == 0) {
        # Own process group: the master and its workers can be killed at once.
        POSIX::setpgid(0, 0);
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', stderr_file();
        open STDERR, '>>', stderr_file();
        { no warnings 'exec'; exec { $cmd[0] } @cmd; }
        print STDERR "cannot exec $cmd[0]: $!\n";
        POSIX::_exit(127);    # no END blocks, no Test::Builder output here
    }
    POSIX::setpgid($pid, $pid);    # also from here, so no kill can race it
    $NginxPid = $pid;
    undef $NginxStatus;
}

# nginx writes its pid file after it has opened all its listening sockets, so
# this is the readiness signal (a probe connection would show up in the logs).
sub wait_started () {
    my $deadline = Time::HiRes::time() + $StartTimeout;
    while (Time::HiRes::time() < $deadline) {
        my $status = reap();
        if (defined $status) {
            return { ok => 0, why => "nginx exited at start, wait status $status"
                                     . ($status >> 8 ? " (exit code " . ($status >> 8) . ")" : '') };
        }
        my $pid = slurp(pid_file());
        return { ok => 1 } if defined $pid && $pid =~ /^\d+\n/;
        Time::HiRes::sleep(0.01);
    }
    return { ok => 0, why => "no pid file after ${StartTimeout}s" };
}

# Wait status of our nginx if it has exited (reaping it), else undef.
sub reap () {
    return $NginxStatus if defined $NginxStatus || !defined $NginxPid;
    my $r = waitpid($NginxPid, POSIX::WNOHANG());
    $NginxStatus = $? if $r == $NginxPid;
    $NginxStatus = 0 if $r == -1;    # reaped elsewhere (SIGCHLD ignored?): unknown
    return $NginxStatus;
}

# Wait status of our nginx once it has exited, or undef after $secs seconds.
sub wait_exit ($) {
    my $secs = shift;
    my $deadline = Time::HiRes::time() + $secs;
    while (1) {
        my $status = reap();
        return $status if defined $status;
        return undef if Time::HiRes::time() >= $deadline;
        Time::HiRes::sleep(0.01);
    }
}

# Stops the nginx of this block: QUIT (graceful), then TERM, then KILL of the
# whole process group.  Returns { status, early, forced } or undef when no
# nginx was running.
sub stop_nginx () {
    return undef unless defined $NginxPid;
    my %r;

    if (defined reap()) {
        $r{early} = 1;     # it was gone before we asked it to stop
    } else {
        kill 'QUIT', $NginxPid;
        if (!defined wait_exit($StopTimeout)) {
            kill 'TERM', $NginxPid;
            if (!defined wait_exit(2)) {
                kill_nginx_group();
                waitpid($NginxPid, 0);
                $NginxStatus = $?;
                $r{forced} = 1;
            }
        }
    }
    $r{status} = $NginxStatus;

    kill_nginx_group();    # any worker left behind
    undef $NginxPid;
    return \%r;
}

sub kill_nginx_group () {
    kill '-KILL', $NginxPid if defined $NginxPid && $NginxPid > 1;
}

sub cleanup () {
    stop_nginx();
    stop_tcp_server();
    $_->() for @CleanupHandlers;
    @CleanupHandlers = ();
}

END {
    local $?;    # keep the test's exit status
    stop_nginx() if defined $NginxPid;
    stop_tcp_server();
}

# ---------------------------------------------------------------------------
# The embedded TCP server (--- tcp_listen)
# ---------------------------------------------------------------------------
#
# Upstream's semantics (Test::Nginx::Util): one listening socket per block,
# opened before the requests are sent and closed after them; each
# connection is read (until tcp_query_len bytes, or for
# tcp_query_auto_timeout, or else a single read), then after
# tcp_reply_delay the reply is sent (a string; an array: its pieces one
# after the other, with no delay between them; a sub: called with what was
# read, returns one of those), then the connection is closed, unless
# tcp_no_close.  tcp_shutdown (0 read, 1 write, 2 both) shuts a part of the
# connection down as soon as it is accepted, after tcp_shutdown_delay
# seconds.  tcp_query/tcp_query_len are then checked against what was read.
#
# Differences (upstream serves one connection and then exits):
#   * any number of connections are served, at the same time, each as
#     above; tcp_query/tcp_query_len are checked for each of them (for a
#     single connection the tests and their names are upstream's);
#   * a piece of an array reply may be { value => BYTES, delay_before =>
#     SECONDS } (the packet form of upstream's --- request) to send it
#     after a pause, and { value => BYTES, reset => 1 } (value optional)
#     to reset the connection (RST) after it instead of closing it.
#     Upstream would send such a piece as "HASH(0x...)";
#   * before closing, the server shuts its write side down and reads what
#     the peer still sends until the peer closes (so the peer gets a FIN,
#     not a reset for unread data).

my $TcpServerPid;    # the server's process, a child of the .t
my $TcpQueryDir;     # where it writes what each connection received

sub start_tcp_server ($) {
    my $block = shift;
    return unless defined $block->tcp_listen;
    my $name = $block->name;

    (my $target = $block->tcp_listen) =~ s/^\s+|\s+$//g;
    $target = expand_env($target, $name);
    croak "$name - no --- tcp_reply specified but --- tcp_listen is specified"
        if !defined $block->tcp_reply && !defined $block->tcp_shutdown;
    if (defined(my $how = $block->tcp_shutdown)) {
        croak "$name - --- tcp_shutdown must be 0, 1 or 2, not '$how'"
            unless $how =~ /^\s*[012]\s*$/;
    }
    my $reply = $block->tcp_reply;
    croak "$name - --- tcp_reply must be a string, an array or a sub"
        if ref $reply && ref $reply ne 'ARRAY' && ref $reply ne 'CODE';

    my $listen;
    my $deadline = Time::HiRes::time() + 5;
    while (1) {
        if ($target =~ /^\d+$/) {
            $listen = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $target,
                                            Proto => 'tcp', Listen => 128, ReuseAddr => 1);
        } elsif ($target =~ m{\S+\.sock$}) {
            require IO::Socket::UNIX;
            unlink $target if -S $target;
            $listen = IO::Socket::UNIX->new(Local => $target, Type => Socket::SOCK_STREAM(),
                                            Listen => 128);
        } else {
            croak "$name - bad --- tcp_listen target: $target (a port or a *.sock path)";
        }
        last if $listen;
        croak "$name - cannot listen on $target for --- tcp_listen: $!"
            unless $!{EADDRINUSE} && Time::HiRes::time() < $deadline;
        Time::HiRes::sleep(0.1);
    }

    $TcpQueryDir = "$ServRoot/tcp_query";
    File::Path::make_path($TcpQueryDir);
    my $parent = $$;
    my $pid = fork // croak "$name - fork failed: $!";
    if ($pid == 0) {
        # Not the .t's handlers (they kill nginx and print), nor its END
        # blocks and Test::Builder's ending: _exit below.
        $SIG{$_} = 'DEFAULT' for qw(INT TERM HUP);
        $SIG{PIPE} = 'IGNORE';
        my $ok = eval { tcp_server_loop($block, $listen, $parent); 1 };
        print STDERR "# $name - tcp server: $@" unless $ok;
        POSIX::_exit($ok ? 0 : 1);
    }
    close $listen;
    $TcpServerPid = $pid;
}

sub stop_tcp_server () {
    return unless defined $TcpServerPid;
    kill 'KILL', $TcpServerPid;
    waitpid $TcpServerPid, 0;
    undef $TcpServerPid;
}

# What each connection received, in the order they were accepted.
sub tcp_queries () {
    my $dh;
    return () unless defined $TcpQueryDir && opendir($dh, $TcpQueryDir);
    my @ids = sort { $a <=> $b } grep { /^\d+$/ } readdir $dh;
    closedir $dh;
    return map { slurp("$TcpQueryDir/$_") // '' } @ids;
}

sub check_tcp_query ($) {
    my $block = shift;
    return unless defined $block->tcp_listen;
    return unless defined $block->tcp_query || defined $block->tcp_query_len;
    my $name = $block->name;

    my @got = tcp_queries();
    @got = ('') unless @got;    # no connection: nothing was received
    for my $i (0 .. $#got) {
        my $which = @got > 1 ? ' (connection ' . ($i + 1) . ' of ' . @got . ')' : '';
        is_str($got[$i], $block->tcp_query, "$name - tcp_query ok$which")
            if defined $block->tcp_query;
        Test::More::is(length($got[$i]), $block->tcp_query_len, "$name - TCP query length ok$which")
            if defined $block->tcp_query_len;
    }
}

# The server process: one select() loop over the listening socket and the
# connections, each a small state machine:
#   shutdown (tcp_shutdown, after tcp_shutdown_delay) -> read -> delay
#   (tcp_reply_delay) -> write (the pieces, each after its delay_before)
#   -> hold (tcp_no_close) or drain (write side shut, read until EOF) -> closed.
sub tcp_server_loop ($$$) {
    my ($block, $listen, $parent) = @_;

    my $req_len = $block->tcp_query_len;
    $req_len = length $block->tcp_query if !defined $req_len && defined $block->tcp_query;
    my $auto = $block->tcp_query_auto_timeout;
    $auto = parse_time($auto) || 0.1 if defined $auto;
    my $reply_delay = parse_time($block->tcp_reply_delay) // 0;
    my $shutdown = $block->tcp_shutdown;
    $shutdown =~ s/\s+//g if defined $shutdown;
    my $shutdown_delay = parse_time($block->tcp_shutdown_delay) // 0;
    my $no_close = defined $block->tcp_no_close;
    my $reply = $block->tcp_reply;

    $listen->blocking(0);
    my (@conns, $next_id);
    $next_id = 0;

    while (1) {
        POSIX::_exit(0) if getppid() != $parent;    # the .t is gone
        my $now = Time::HiRes::time();

        # Wait for the listening socket, the connections we read or write,
        # or the next timer.
        my $rsel = IO::Select->new($listen);
        my $wsel = IO::Select->new();
        my $wake = $now + 0.2;
        for my $c (@conns) {
            $rsel->add($c->{sock}) if $c->{state} =~ /^(read|drain|hold)$/;
            if ($c->{state} eq 'write' && @{ $c->{out} }) {
                if ($c->{out}[0]{at} <= $now) { $wsel->add($c->{sock}) }
                elsif ($c->{out}[0]{at} < $wake) { $wake = $c->{out}[0]{at} }
            }
            $wake = $c->{until} if defined $c->{until} && $c->{until} < $wake;
        }
        my $wait = $wake - $now;
        $wait = 0 if $wait < 0;
        my ($r) = IO::Select->select($rsel, $wsel, undef, $wait);
        my %readable = map { (fileno($_) => 1) } @{ $r || [] };
        $now = Time::HiRes::time();

        if ($readable{ fileno $listen }) {
            while (my $sock = $listen->accept) {
                $sock->blocking(0);
                my $c = { sock => $sock, id => $next_id++, state => 'start', buf => '',
                          out => [], until => $now + (defined $shutdown ? $shutdown_delay : 0) };
                tcp_save_query($c);    # an empty query until something comes
                push @conns, $c;
            }
        }

        for my $c (@conns) {
            my $can_read = $readable{ fileno $c->{sock} };
            my $progress = 1;
            while ($progress) {    # run the state machine as far as it goes now
                $progress = 0;
                my $st = $c->{state};

                if ($st eq 'start') {
                    last if $c->{until} > $now;
                    my ($no_read, $no_write) = (0, 0);
                    if (defined $shutdown) {
                        shutdown($c->{sock}, $shutdown);
                        $no_read = $shutdown != 1;
                        $no_write = $shutdown != 0;
                    }
                    $c->{no_write} = $no_write;
                    if ($no_read) {
                        @$c{qw(state until)} = ('delay', $now + $reply_delay);
                    } else {
                        @$c{qw(state until)} = ('read', defined $auto ? $now + $auto : undef);
                    }
                    $progress = 1;

                } elsif ($st eq 'read') {
                    my $done = 0;
                    if ($can_read) {
                        $can_read = 0;
                        my $n = sysread($c->{sock}, my $data, 65536);
                        if (!defined $n) {
                            $done = 1 unless $!{EAGAIN} || $!{EINTR};
                        } elsif ($n == 0) {
                            $done = 1;    # the peer closed (or shut down) its side
                        } else {
                            $c->{buf} .= $data;
                            tcp_save_query($c);
                            if (defined $auto) {
                                $c->{until} = $now + $auto;
                            } elsif (!$req_len || length($c->{buf}) >= $req_len) {
                                $done = 1;
                            }
                        }
                    }
                    $done = 1 if defined $auto && $c->{until} <= $now;
                    last unless $done;
                    @$c{qw(state until)} = ('delay', $now + $reply_delay);
                    $progress = 1;

                } elsif ($st eq 'delay') {
                    last if $c->{until} > $now;
                    undef $c->{until};
                    $c->{out} = $c->{no_write} ? [] : tcp_reply_pieces($reply, $c->{buf}, $now);
                    $c->{state} = 'write';
                    $progress = 1;

                } elsif ($st eq 'write') {
                    my $piece = $c->{out}[0];
                    if (!$piece) {
                        if ($no_close) {
                            $c->{state} = 'hold';
                        } else {
                            shutdown($c->{sock}, 1);
                            @$c{qw(state until)} = ('drain', $now + 10);
                        }
                        $progress = 1;
                        last;
                    }
                    last if $piece->{at} > $now;
                    if (length $piece->{value}) {
                        my $n = syswrite($c->{sock}, $piece->{value});
                        if (!defined $n) {
                            last if $!{EAGAIN} || $!{EINTR};
                            tcp_close($c);    # the peer is gone
                            last;
                        }
                        substr($piece->{value}, 0, $n) = '';
                        last if length $piece->{value};    # the rest when writable
                    }
                    shift @{ $c->{out} };
                    if ($piece->{reset}) {
                        tcp_close($c, 'reset');
                        last;
                    }
                    # The next piece's delay counts from now.
                    $c->{out}[0]{at} = $now + $c->{out}[0]{delay} if @{ $c->{out} };
                    $progress = 1;

                } elsif ($st eq 'drain' || $st eq 'hold') {
                    if ($st eq 'drain' && $c->{until} <= $now) {
                        tcp_close($c);
                        last;
                    }
                    last unless $can_read;
                    $can_read = 0;
                    my $n = sysread($c->{sock}, my $data, 65536);
                    tcp_close($c) if defined $n ? $n == 0 : !($!{EAGAIN} || $!{EINTR});
                    last;
                }
            }
        }
        @conns = grep { $_->{state} ne 'closed' } @conns;
    }
}

# The reply as [{ value, delay, at, reset }...]: "at" is the time to send
# the piece, set for the first one here and for each next one when the one
# before it has gone out ("delay" after that).
sub tcp_reply_pieces ($$$) {
    my ($reply, $query, $now) = @_;
    $reply = $reply->($query) if ref $reply eq 'CODE';
    return [] unless defined $reply;
    my @out;
    for my $p (ref $reply eq 'ARRAY' ? @$reply : ($reply)) {
        if (ref $p eq 'HASH') {
            push @out, { value => $p->{value} // '', reset => $p->{reset},
                         delay => parse_time($p->{delay_before}) // 0 };
        } else {
            push @out, { value => $p // '', delay => 0 };
        }
    }
    $out[0]{at} = $now + $out[0]{delay} if @out;
    return \@out;
}

sub tcp_save_query ($) {
    my $c = shift;
    my $file = "$TcpQueryDir/$c->{id}";
    spew("$file.tmp", $c->{buf});
    rename "$file.tmp", $file or die "cannot rename $file.tmp: $!\n";
}

sub tcp_close ($;$) {
    my ($c, $reset) = @_;
    # SO_LINGER on with a zero timeout: close() sends a RST.
    setsockopt($c->{sock}, Socket::SOL_SOCKET(), Socket::SO_LINGER(), pack('ii', 1, 0))
        if $reset;
    close $c->{sock};
    $c->{state} = 'closed';
}

# ---------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------

# [{ raw => bytes, head => bool }, ...] from --- raw_request or --- request
# (a string, or with "eval" an array of strings, each one request sent on
# its own connection; an array element may itself be an array of packets).
sub requests_from_block ($) {
    my $block = shift;
    my $name = $block->name;
    my @reqs;

    if (defined(my $raw = $block->raw_request)) {
        $raw = join_packets($raw);
        $raw = expand_env($raw, $name);
        push @reqs, { raw => $raw, head => scalar($raw =~ /^\s*HEAD\b/) };
        return \@reqs;
    }

    my $request = $block->request;
    croak "$name - no --- request or --- raw_request" unless defined $request;
    my $more = $block->more_headers // '';
    my @list = ref $request eq 'ARRAY' ? @$request : ($request);
    croak "$name - --- request must be a string or an array of requests"
        if ref $request && ref $request ne 'ARRAY';

    for my $i (0 .. $#list) {
        my $one = $list[$i];
        $one = join_packets($one);
        my $hdrs = $more;
        if (ref $more eq 'ARRAY') {
            $hdrs = $more->[$i];
            croak "$name - --- more_headers lacks data for request $i" unless defined $hdrs;
        }
        push @reqs, build_request($name, expand_env($one, $name), expand_env($hdrs, $name));
    }
    return \@reqs;
}

# A request given as packets (strings or upstream's {value => ...} hashes) is
# sent in one go: packet boundaries and delays are not reproduced.
sub join_packets ($) {
    my $r = shift;
    return $r unless ref $r eq 'ARRAY';
    return join '', map { ref $_ eq 'HASH' ? $_->{value} // '' : $_ } @$r;
}

sub build_request ($$$) {
    my ($name, $req, $more) = @_;

    # Leading blank and "#" comment lines are skipped, like upstream.
    # (\A outside the alternation: anchored, so quick on a large body too.)
    1 while $req =~ s/\A(?:\s*\#[^\n]+\s+|\s+)//;

    my ($first, $body) = split /\n/, $req, 2;
    $first = '' unless defined $first;
    $first =~ /^(\S+)(?:[ \t]+(\S+))?(?:[ \t]+(\S+))?\s*$/
        or croak "$name - bad request line '$first': should be 'METHOD [URI [PROTOCOL]]'";
    my ($method, $uri, $proto) = ($1, $2 // '/', $3 // 'HTTP/1.1');
    $body = '' unless defined $body;

    my ($headers, $chunked) = ('', 0);
    for my $line (split /\n+/, $more) {
        next if $line =~ /^\s*#/ || $line !~ /\S/;
        my ($k, $v) = split /:\s*/, $line, 2;
        $v //= '';
        $chunked = 1 if lc $k eq 'transfer-encoding' && $v eq 'chunked';
        $headers .= "$k: $v\r\n";
    }

    my $cl = '';
    if (!$chunked && $body ne '' && $headers !~ /^Content-Length:/mi) {
        $body = trim_ends($body);
        $cl = 'Content-Length: ' . length($body) . "\r\n";
    }

    my $raw = "$method $uri $proto\r\n";
    $raw .= "Host: $ServerName\r\n" unless $headers =~ /^Host:/mi;
    $raw .= "Connection: close\r\n" unless $headers =~ /^Connection/mi;
    $raw .= "$headers$cl\r\n$body";

    return { raw => $raw, head => $method eq 'HEAD' };
}

# Sends one request on a new connection and reads until the server closes it.
# Returns (bytes read, undef) or (bytes read so far, reason) where reason is
# 'timeout' or an error message.
sub send_request ($$) {
    my ($raw, $timeout) = @_;
    local $SIG{PIPE} = 'IGNORE';
    my $deadline = Time::HiRes::time() + $timeout;

    my $sock = IO::Socket::INET->new(PeerAddr => $ServerAddr, PeerPort => $ServerPort,
                                     Proto => 'tcp', Timeout => $timeout)
        or return ('', "failed to connect to $ServerAddr:$ServerPort: $@");
    $sock->blocking(0);
    my $sel = IO::Select->new($sock);

    my $off = 0;
    while ($off < length $raw) {
        my $left = $deadline - Time::HiRes::time();
        return ('', 'timeout') if $left <= 0;
        next unless $sel->can_write($left);
        my $n = syswrite($sock, $raw, length($raw) - $off, $off);
        if (!defined $n) {
            next if $!{EAGAIN} || $!{EINTR};
            last;    # the server may have answered and closed already: read it
        }
        $off += $n;
    }

    my $resp = '';
    while (1) {
        my $left = $deadline - Time::HiRes::time();
        return ($resp, 'timeout') if $left <= 0;
        next unless $sel->can_read($left);
        my $n = sysread($sock, my $buf, 65536);
        if (!defined $n) {
            next if $!{EAGAIN} || $!{EINTR};
            return ($resp, "read error: $!");
        }
        last if $n == 0;
        $resp .= $buf;
    }
    close $sock;
    return ($resp, undef);
}

# --- http2: like upstream, the request is sent by curl (--http2-prior-knowledge),
# and its "curl -i" output is the response.  The request is taken apart from the
# raw bytes build_request made: method, URI, headers (but Connection, which
# HTTP/2 has not) and body.  Returns what send_request returns.
sub send_request_by_curl ($$$) {
    my ($block, $raw, $timeout) = @_;
    my $name = $block->name;

    my ($head, $body) = split /\r\n\r\n/, $raw, 2;
    my ($first, @headers) = split /\r\n/, $head;
    my ($method, $uri) = $first =~ m{^(\S+) (\S+)}
        or croak "$name - --- http2: cannot parse the request line '$first'";

    my @cmd = ('curl', '-sS', '-i', '--http2-prior-knowledge', '--max-time', $timeout,
               '-H', 'User-Agent:', '-H', 'Accept:');
    if ($method eq 'HEAD') {
        push @cmd, '-I';
    } elsif ($method ne 'GET') {
        push @cmd, '-X', $method;
    }
    my $has_type = grep { /^Content-Type\s*:/i } @headers;
    push @cmd, map { ('-H', $_) } grep { !/^(Connection|Content-Length)\s*:/i } @headers;
    my $body_file = "$ServRoot/curl.body";
    if (defined $body && length $body) {
        spew($body_file, $body);
        push @cmd, '--data-binary', "\@$body_file";
        push @cmd, '-H', 'Content-Type:' unless $has_type;    # not curl's form type
    }
    push @cmd, "http://$ServerAddr:$ServerPort$uri";

    my $err_file = "$ServRoot/curl.stderr";
    my $pid = open(my $out, '-|') // croak "$name - fork failed: $!";
    if ($pid == 0) {
        open STDERR, '>', $err_file;
        { no warnings 'exec'; exec { $cmd[0] } @cmd; }
        print STDERR "cannot exec $cmd[0]: $!\n";
        POSIX::_exit(127);
    }
    binmode $out;
    my $resp = do { local $/; <$out> } // '';
    close $out;
    my $rc = $? >> 8;
    return ($resp, undef) if $rc == 0;
    return ($resp, 'timeout') if $rc == 28;
    my $err = slurp($err_file) // '';
    chomp $err;
    return ($resp, "curl (@cmd) failed with exit code $rc: $err");
}

# ---------------------------------------------------------------------------
# Responses
# ---------------------------------------------------------------------------

# A minimal response object: code, raw_headers (status line and headers,
# CRLF-terminated), headers ([name, value] pairs), content (decoded body,
# undef when it could not be decoded).
sub parse_response ($$$) {
    my ($name, $raw, $is_head) = @_;
    my $res = { code => '', raw_headers => '', headers => [], content => undef };
    return $res unless defined $raw && length $raw;

    my $hend = index $raw, "\r\n\r\n";
    if ($hend < 0) {
        diag("$name - incomplete response header: " . fmt_str(substr $raw, 0, 200));
        return $res;
    }
    $res->{raw_headers} = substr($raw, 0, $hend + 2);
    my $body = substr($raw, $hend + 4);

    my ($status, @lines) = split /\r\n/, substr($raw, 0, $hend);
    ($res->{code}) = $status =~ m{^HTTP/\d+(?:\.\d+)?\s+(\d{3})\b};    # HTTP/2 from curl
    $res->{code} //= '';
    for my $line (@lines) {
        if ($line =~ /^[ \t]/ && @{ $res->{headers} }) {     # obsolete folding
            (my $more = $line) =~ s/^\s+|\s+$//g;
            $res->{headers}[-1][1] .= " $more";
        } elsif ($line =~ /^([^:]+?)\s*:\s*(.*?)\s*$/) {
            push @{ $res->{headers} }, [$1, $2];
        }
    }

    my $code = $res->{code};
    if ($is_head || $code =~ /^(1\d\d|204|304)$/) {
        $res->{content} = '';
        diag("$name - unexpected bytes after a bodyless response: " . fmt_str($body))
            if length $body;
        return $res;
    }

    my $te = res_header($res, 'Transfer-Encoding');
    my $cl = res_header($res, 'Content-Length');
    if (defined $te && $te =~ /\bchunked\b/i) {
        my ($decoded, $err, $left) = dechunk($body);
        if (defined $err) {
            Test::More::fail("$name - invalid chunked response body: $err");
        } else {
            $res->{content} = $decoded;
            diag("WARNING: $name - unexpected bytes after the last chunk: " . fmt_str($left))
                if length $left;
        }
    } elsif (defined $cl && $cl =~ /^\d+$/) {
        if (length $body < $cl) {
            diag("WARNING: $name - response body truncated: $cl bytes expected, got "
                 . length $body);
            $res->{content} = $body;
        } else {
            $res->{content} = substr $body, 0, $cl;
            diag("WARNING: $name - unexpected bytes after the response body: "
                 . fmt_str(substr $body, $cl)) if length($body) > $cl;
        }
    } else {
        $res->{content} = $body;    # delimited by the end of the connection
    }
    return $res;
}

# (decoded, undef, bytes after the last chunk) or (undef, error).
sub dechunk ($) {
    my $raw = shift;
    my $out = '';
    pos($raw) = 0;
    while (1) {
        $raw =~ /\G[ \t]*([0-9A-Fa-f]+)[^\r\n]*\r\n/gc
            or return (undef, 'bad chunk size line at offset ' . pos($raw) . ': '
                              . fmt_str(substr $raw, pos($raw), 40));
        my $size = hex $1;
        if ($size == 0) {
            # optional trailer fields, then the final empty line
            1 while $raw =~ /\G[^\r\n]+\r\n/gc;
            $raw =~ /\G\r\n/gc or return (undef, 'missing CRLF after the last chunk');
            return ($out, undef, substr($raw, pos $raw));
        }
        my $at = pos $raw;
        return (undef, "chunk of $size bytes truncated") if length($raw) - $at < $size + 2;
        $out .= substr $raw, $at, $size;
        return (undef, "missing CRLF after a chunk of $size bytes")
            if substr($raw, $at + $size, 2) ne "\r\n";
        pos($raw) = $at + $size + 2;
    }
}

# Value of a response header (case-insensitive); several are joined by ", ".
sub res_header ($$) {
    my ($res, $name) = @_;
    my @v = map { $_->[1] } grep { lc $_->[0] eq lc $name } @{ $res->{headers} };
    return @v ? join(', ', @v) : undef;
}

# ---------------------------------------------------------------------------
# Checks (test names follow upstream)
# ---------------------------------------------------------------------------

# The value of a check section for request $i: with several requests the
# section must be an array (from "eval") with one element per request.
sub get_indexed_value ($$$$) {
    my ($name, $value, $i, $need_array) = @_;
    if (ref $value eq 'ARRAY') {
        croak "$name - SHOULD NOT HAPPEN: idx != 0 and don't need array"
            if !$need_array && $i != 0;
        return $value->[$i];
    }
    croak "$name - You asked for many requests, the expected results should be arrays as well."
        if $need_array;
    return $value;
}

sub check_error_code ($$$$) {
    my ($block, $res, $i, $need_array) = @_;
    my $name = $block->name;

    if (defined $block->error_code_like) {
        my $pat = get_indexed_value($name, $block->error_code_like, $i, $need_array);
        Test::More::like($res->{code}, qr/$pat/sm, "$name - status code ok");
    } elsif (defined $block->error_code) {
        my $want = get_indexed_value($name, $block->error_code, $i, $need_array);
        $want =~ s/^\s+|\s+$//g if defined $want && !ref $want;
        Test::More::is($res->{code}, $want, "$name - status code ok");
    } else {
        Test::More::is($res->{code}, 200, "$name - status code ok");
    }
}

sub check_raw_response_headers ($$$$) {
    my ($block, $res, $i, $need_array) = @_;
    my $name = $block->name;
    if (defined $block->raw_response_headers_like) {
        my $pat = get_indexed_value($name, $block->raw_response_headers_like, $i, $need_array);
        Test::More::like($res->{raw_headers}, qr/$pat/s, "$name - raw resp headers like");
    }
    if (defined $block->raw_response_headers_unlike) {
        my $pat = get_indexed_value($name, $block->raw_response_headers_unlike, $i, $need_array);
        Test::More::unlike($res->{raw_headers}, qr/$pat/s, "$name - raw resp headers unlike");
    }
}

# "Name: value" lines => [[name, value-or-undef]...] ("!Name" gives undef);
# a name given twice keeps the last value but its first position.
sub parse_expected_headers ($) {
    my $text = shift // '';
    my (@order, %val);
    for my $line (split /\n/, $text) {
        $line =~ s/^\s+|\s+$//g;
        next if $line eq '';
        my ($k, $v);
        if ($line =~ s/^!\s*//) {
            $k = $line;
        } else {
            ($k, $v) = split /\s*:\s*/, $line, 2;
            $v //= '';
        }
        push @order, $k unless exists $val{$k};
        $val{$k} = $v;
    }
    return [map { [$_, $val{$_}] } @order];
}

sub check_response_headers ($$$$) {
    my ($block, $res, $i, $need_array) = @_;
    my $name = $block->name;

    if (defined $block->response_headers) {
        my $want = get_indexed_value($name, $block->response_headers, $i, $need_array);
        for my $h (@{ parse_expected_headers($want) }) {
            my ($key, $val) = @$h;
            my $got = res_header($res, $key);
            if (!defined $val) {
                Test::More::unlike($res->{raw_headers}, qr/^\s*\Q$key\E\s*:/mi,
                                   "$name - header $key not present in the raw headers");
                next;
            }
            $val =~ s/\$ServerPort\b/$ServerPort/g;
            if ($val eq '' && !defined $got) {
                # "Name:" means present and empty; make the failure say so
                Test::More::is(undef, '', "$name - header $key ok");
                diag("header $key is absent (an empty \"$key:\" expects it present and empty)");
                next;
            }
            Test::More::is($got // '', $val, "$name - header $key ok");
        }
    } elsif (defined $block->response_headers_like) {
        my $want = get_indexed_value($name, $block->response_headers_like, $i, $need_array);
        for my $h (@{ parse_expected_headers($want) }) {
            my ($key, $val) = @$h;
            $val //= '';
            Test::More::like(res_header($res, $key) // '', qr/^$val$/,
                              "$name - header $key like ok");
        }
    }
}

sub check_response_body ($$$$$) {
    my ($block, $res, $i, $rep, $need_array) = @_;
    my $name = $block->name;
    my $content = $res->{content};

    if (defined $block->response_body) {
        my $want = get_indexed_value($name, $block->response_body, $i, $need_array);
        if (defined $want && !ref $want) {
            $want =~ s/\$ServerPort\b/$ServerPort/g;
            $want = expand_env($want, $name);
        }
        my $tname = "$name - response_body - response is expected (repeated req $rep, req $i)";
        if (ref $want eq 'Regexp') {
            Test::More::like($content, $want, "$name - response_body - like (repeated req $rep, req $i)");
        } elsif ($NoLongString) {
            is($content, $want, $tname);    # Test::Base's is() shows a diff
        } else {
            Test::LongString::is_string($content, $want, $tname);
        }
    } elsif (defined $block->response_body_like || defined $block->response_body_unlike) {
        my $type = defined $block->response_body_like ? 'like' : 'unlike';
        my $sec = "response_body_$type";
        my $pat = get_indexed_value($name, $block->$sec, $i, $need_array);
        $pat =~ s/\$ServerPort\b/$ServerPort/g;
        my $summary = $content // '';
        $summary =~ s/^\s+|\s+$//g;
        my $tname = "$name - response_body_$type - response is expected ($summary)";
        if ($type eq 'like') {
            Test::More::like($content, qr/$pat/s, $tname);
        } else {
            Test::More::unlike($content, qr/$pat/s, $tname);
        }
    }
}

# --- error_log/--- no_error_log (or access_log/no_access_log) on $lines.
# A pattern is a plain string (substring match) or a qr// (from "eval");
# a text section gives one pattern per line.
sub check_log_patterns ($$$$) {
    my ($block, $which, $lines, $rep) = @_;
    my $name = $block->name;
    my $file = $which eq 'error_log' ? 'error.log' : 'access.log';
    $lines //= [];

    if (defined(my $pats = $block->$which)) {
        for my $pat (@{ patterns($pats) }) {
            if (grep { line_matches($_, $pat) } @$lines) {
                Test::More::pass("$name - pattern \"$pat\" matches a line in $file (req $rep)");
            } else {
                Test::More::fail("$name - pattern \"$pat\" should match a line in $file (req $rep)");
            }
        }
    }

    my $neg = "no_$which";
    if (defined(my $pats = $block->$neg)) {
        for my $pat (@{ patterns($pats) }) {
            my $p = fmt_str($pat);
            my @hits = grep { line_matches($_, $pat) } @$lines;
            if (@hits) {
                Test::More::fail("$name - pattern \"$p\" should not match any line in $file but "
                    . "matches line \"" . fmt_str($hits[0]) . "\" (req $rep)");
                diag(scalar(@hits) . " matching lines in all") if @hits > 1;
            } else {
                Test::More::pass("$name - pattern \"$p\" does not match a line in $file (req $rep)");
            }
        }
    }
}

sub patterns ($) {
    my $pats = shift;
    return [$pats] if ref $pats eq 'Regexp';
    return [grep { defined } @$pats] if ref $pats eq 'ARRAY';
    chomp $pats;
    return [split /\n+/, $pats];
}

sub line_matches ($$) {
    my ($line, $pat) = @_;
    return ref $pat ? $line =~ $pat : index($line, $pat) >= 0;
}

sub value_contains {
    my ($val, $str) = @_;
    return index($val, $str) >= 0 if !ref $val || ref $val eq 'Regexp';
    return scalar grep { value_contains($_, $str) } @$val if ref $val eq 'ARRAY';
    return 0;
}

# On a failed block: the error log's lines at [warn] or worse (at most 40).
sub diag_error_log ($) {
    my $name = shift;
    my ($lines) = read_lines(err_log());
    my @w = grep { /\[(warn|error|crit|alert|emerg)\]/ || /exited on signal/ } @$lines;
    if (@w > 40) { splice @w, 0, @w - 40; unshift @w, "...\n" }
    diag_lines("$name: error.log, [warn] and worse", \@w) if @w;
}

sub diag_lines ($$) {
    my ($what, $lines) = @_;
    return unless $lines && @$lines;
    diag("---- $what:\n" . join('', map { /\n\z/ ? $_ : "$_\n" } @$lines) . "---- end");
}

# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------

# (lines from byte offset $pos, offset after them); ([], $pos) if no file.
sub read_lines ($;$) {
    my ($file, $pos) = @_;
    $pos //= 0;
    open my $in, '<', $file or return ([], $pos);
    binmode $in;
    seek $in, $pos, 0 if $pos;
    my @lines = <$in>;
    my $end = tell $in;
    close $in;
    return (\@lines, $end);
}

sub slurp ($) {
    my $file = shift;
    open my $in, '<', $file or return undef;
    binmode $in;
    local $/;
    my $data = <$in>;
    close $in;
    return $data;
}

sub spew ($$) {
    my ($file, $data) = @_;
    open my $out, '>', $file or croak "cannot write $file: $!";
    binmode $out;
    print $out $data;
    close $out or croak "cannot write $file: $!";
}

sub parse_time ($) {
    my $t = shift;
    return undef unless defined $t;
    $t =~ s/^\s+|\s+$//g;
    return $1 / 1000 if $t =~ /^([\d.]+)ms$/;
    return $1 if $t =~ /^([\d.]+)s?$/;
    croak "bad time value '$t' (expected N, Ns or Nms)";
}

# The string without white space at either end (like s/^\s+|\s+$//g, but
# without a regex scan over a large request body).
sub trim_ends ($) {
    my $s = shift;
    my ($start, $end) = (0, length $s);
    $start++ while $start < $end && substr($s, $start, 1) =~ /\s/;
    $end-- while $end > $start && substr($s, $end - 1, 1) =~ /\s/;
    return substr($s, $start, $end - $start);
}

sub fmt_str ($) {
    my $s = shift;
    chomp $s;
    $s =~ s/"/\\"/g;
    $s =~ s/\r/\\r/g;
    $s =~ s/\n/\\n/g;
    return $s;
}

# ---------------------------------------------------------------------------
# Test::Base filters: the same as Test::Base's, except that "eval" dies on a
# Perl error instead of silently using the error message as the value.
# ---------------------------------------------------------------------------

package Test::Nginx::Socket::Filter;

use strict;
use warnings;

use Test::Base::Filter ();
our @ISA = ('Test::Base::Filter');

sub eval {
    my $self = shift;
    my $code = shift;
    # Same package and strictness as Test::Base::Filter::eval, so that a
    # section that works here also works under upstream.
    my @ret = CORE::eval("package Test::Base::Filter; use strict; use warnings; $code");
    if ($@) {
        my $block = $self->current_block;
        my $name = $block ? $block->name : '(unknown block)';
        die "$name - \"eval\" of a section failed: $@";
    }
    return @ret;
}

1;
