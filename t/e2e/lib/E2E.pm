package E2E;
# What the end-to-end tests in t/e2e/ (and scripts/bench-storage.pl) share: starting and
# stopping the processes they run, ports, files, waiting. Everything started with spawn() is stopped when the test exits, also
# when it dies half-way or is interrupted; when it failed, the last lines of every log file
# in @E2E::diag_files are printed first.

use strict;
use warnings;

use Exporter qw(import);
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Test::More ();
use Time::HiRes qw(sleep time);

our @EXPORT = qw(spawn stop stop_all kill_group capture wait_port wait_closed eventually
    workers_of free_port slurp spew tail);

our %pids;          # pid => name, everything started with spawn()
our @diag_files;    # log files to show when the test failed

my $MAIN_PID = $$;  # forked children must not run the END block

$SIG{$_} = sub { die "interrupted by SIG$_[0]\n" } for qw(INT TERM HUP);

END {
    if ($$ == $MAIN_PID) {
        my $rc = $?;
        if ($rc || !Test::More->builder->is_passing) {
            Test::More::diag("---- $_ (last 25 lines) ----\n" . tail($_, 25)) for grep { -s $_ } @diag_files;
        }
        stop_all();
        $? = $rc;
    }
}

sub stop_all {
    for my $pid (keys %pids) { kill 'TERM', $pid }
    my $deadline = time + 5;
    while (%pids && time < $deadline) {
        for my $pid (keys %pids) { delete $pids{$pid} if waitpid($pid, WNOHANG) != 0 }
        sleep 0.05 if %pids;
    }
    for my $pid (keys %pids) { kill 'KILL', -$pid; kill 'KILL', $pid; waitpid($pid, 0); delete $pids{$pid} }
}

# Stops one process: TERM, after 5 s KILL.
sub stop {
    my ($pid) = @_;
    return unless $pid && $pids{$pid};
    kill 'TERM', $pid;
    my $deadline = time + 5;
    while (time < $deadline) {
        if (waitpid($pid, WNOHANG) != 0) { delete $pids{$pid}; return }
        sleep 0.02;
    }
    kill 'KILL', $pid;
    waitpid($pid, 0);
    delete $pids{$pid};
}

# Kills a process started with spawn() and everything it started (an nginx master and its
# workers) at once, as a machine that goes away would.
sub kill_group {
    my ($pid) = @_;
    return unless $pid && $pids{$pid};
    kill 'KILL', -$pid;
    waitpid($pid, 0);
    delete $pids{$pid};
}

# The live child processes of $master (an nginx master's workers).
sub workers_of {
    my ($master) = @_;
    my @w;
    for my $stat (glob '/proc/[0-9]*/stat') {
        open my $fh, '<', $stat or next;
        my ($pid, $state, $ppid) = (<$fh> // '') =~ /^(\d+) \(.*\) (\S) (\d+)/ or next;
        push @w, $pid if $ppid == $master && $state ne 'Z';
    }
    return @w;
}

sub tail {
    my ($file, $n) = @_;
    open my $fh, '<', $file or return "($file: $!)\n";
    my @lines = <$fh>;
    return join '', @lines[($#lines - $n + 1 < 0 ? 0 : $#lines - $n + 1) .. $#lines];
}

sub slurp { my ($f) = @_; open my $fh, '<:raw', $f or die "$f: $!"; local $/; return scalar(<$fh>) // '' }
sub spew  { my ($f, $d) = @_; open my $fh, '>:raw', $f or die "$f: $!"; print $fh $d; close $fh or die "$f: $!" }

sub free_port {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Proto => 'tcp', Listen => 1)
        or die "no free port: $!";
    my $port = $s->sockport;
    close $s;
    return $port;
}

# Starts a program in the background, in a process group of its own (see kill_group), with
# stdout+stderr going to $log.
sub spawn {
    my ($name, $log, @cmd) = @_;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        POSIX::setpgid(0, 0);
        open STDIN,  '<', '/dev/null';
        open STDOUT, '>>', $log or POSIX::_exit(127);
        open STDERR, '>&', \*STDOUT;
        exec @cmd or do { print STDERR "exec $cmd[0]: $!\n"; POSIX::_exit(127) };
    }
    $pids{$pid} = $name;
    push @diag_files, $log unless grep { $_ eq $log } @diag_files;
    return $pid;
}

# Runs a command to its end; returns (exit status == 0, stdout and stderr).
sub capture {
    my (@cmd) = @_;
    my $pid = open(my $fh, '-|') // die "fork: $!";
    if ($pid == 0) {
        open STDERR, '>&', \*STDOUT;
        exec @cmd or do { print "exec $cmd[0]: $!\n"; POSIX::_exit(127) };
    }
    my $out = do { local $/; <$fh> } // '';
    close $fh;
    return ($? == 0, $out);
}

# Polls until $addr accepts connections (dies if the process exited or the deadline passed).
sub wait_port {
    my ($addr, $pid, $seconds) = @_;
    my $deadline = time + ($seconds // 10);
    while (time < $deadline) {
        if (waitpid($pid, WNOHANG) != 0) {
            my $name = delete $pids{$pid};
            die "$name exited early (status $?)\n";
        }
        return 1 if IO::Socket::INET->new(PeerAddr => $addr, Proto => 'tcp', Timeout => 1);
        sleep 0.05;
    }
    die "timeout waiting for $addr\n";
}

# True once nothing accepts connections on $addr any more (within 3 s).
sub wait_closed {
    my ($addr) = @_;
    return eventually(sub { !IO::Socket::INET->new(PeerAddr => $addr, Proto => 'tcp', Timeout => 1) });
}

# Polls $check until it returns true or $seconds passed; returns its last result.
# (nginx writes an access log entry after it has sent the response, so a client can see
# the response a moment before the entry exists.)
sub eventually {
    my ($check, $seconds) = @_;
    my $deadline = time + ($seconds // 3);
    while (1) {
        my @r = $check->();
        return wantarray ? @r : $r[0] if (@r && $r[0]) || time > $deadline;
        sleep 0.02;
    }
}

1;
