# Helpers shared by the scripts in this directory; sourced, not run:
#
#   . "$(dirname "$0")/lib.sh"
#
# POSIX sh (scripts/bench.sh, a bash script, sources it too). Defines only functions and the
# variables they keep, all named here:
#
#   step TEXT          prints "==> TEXT" and starts the step's clock
#   took               prints the seconds since the last step, "    (1.2 s)"
#   free_port          prints a TCP port on 127.0.0.1 that no socket holds now (the kernel's
#                      choice: bind port 0, read the port back). Another process may take it
#                      before the caller binds it; callers that cannot retry run in a network
#                      namespace or accept that.
#   install_so SRC DST copies a shared object as a new file (install, not cp): an nginx that
#                      has the old one loaded keeps it mapped, where cp would rewrite it in
#                      place under that nginx and crash it.

lib_now() { date +%s.%N; }

lib_step_start=
step() {
    lib_step_start=$(lib_now)
    echo "==> $*"
}
took() {
    echo "    ($(echo "$(lib_now) $lib_step_start" | awk '{ printf "%.1f", $1 - $2 }') s)"
}

free_port() {
    perl -MIO::Socket::INET -e '
        my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1:0")
            or die "free_port: $!\n";
        print $s->sockport, "\n";'
}

install_so() {
    install -m 0755 "$1" "$2"
}
