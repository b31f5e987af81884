#!/usr/bin/env bash
# Benchmarks ngx_http_next_upstream_status_module against stock nginx.
#
#   scripts/bench.sh [options]     full run (the report ends with how long it took)
#   scripts/bench.sh --quick       smoke run for `make test`: tiny durations,
#                                  one round, every check of the full run
#
# Everything runs on 127.0.0.1, on free ports: one backend nginx (fixed answers: 200
# with a 3-byte body; 404 and 410 with empty bodies) and one front nginx per configuration
# (one worker each, keepalive to the backends, access_log off, error_log at "error"). The
# two fronts of a comparison differ only in what is compared. Three parts:
#
#   1. wall clock: wrk against the two fronts of each scenario in alternating runs
#      A B A B ...: req/s, p50/p99 latency, the front worker's CPU time per request, and
#      the module/reference ratios (min/median/max over the pairs of runs);
#   2. instructions per request of the front under callgrind (stable where the wall clock
#      is noisy): two request counts over one keep-alive connection, the difference divided
#      by the difference in requests; and where the module's instructions go;
#   3. memory: what the request pool holds at the end of a request (from the debug nginx's
#      own pool log), and worker RSS over a million requests.
#
# Exits non-zero if anything is off: a front answering other than 200 "ok" before timing,
# wrk seeing non-2xx responses or socket errors, the callgrind client getting a wrong
# answer, nginx failing to start or to stop.
#
# Options:
#   --quick               1 s runs, 1 round, small callgrind and RSS request counts
#   --duration S          seconds per wrk run (default 3)
#   --rounds N            pairs of runs per scenario (default 5)
#   --connections C       wrk connections (default 16)
#   --scenarios "a b..."  a subset of: a a2 b c d e z (default: all; e: e4 e8, z: z z2)
#   --no-wall, --no-callgrind, --no-memory    skip a part
#   --pin | --no-pin      front on CPU 1, wrk and backends on CPU 0 (default: --pin when
#                         there are 2 or more CPUs)
#   --nginx PATH          nginx binary (default build/nginx/sbin/nginx; needs --with-debug
#                         for the pool figures)
#   --module PATH         module (default build/modules/ngx_http_next_upstream_status_module.so)
#   --keep                keep the working directory (configurations, logs, callgrind files)
#   --out FILE            also write the report (markdown) to FILE
# Environment: CALLGRIND_OPTIONS, more valgrind options for the callgrind runs (with --keep:
#   "--dump-instr=yes" gives counts per instruction, for a look at the machine code).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

root=$(cd "$(dirname "$0")/.." && pwd)
command_line="scripts/bench.sh${*:+ $*}"
here=$root/scripts/bench
nginx_src=$root/build/nginx/sbin/nginx
module_src=$root/build/modules/ngx_http_next_upstream_status_module.so

quick=0
duration=3
rounds=5
conns=16
scenarios="a a2 b c d e z"
do_wall=1
do_callgrind=1
do_memory=1
pin=auto
keep=0
out=""
warmup=1        # seconds of wrk before a scenario's timed runs (0: none)
cg_counts="200 1200"
rss_total=1000000
rss_step=250000
rss_run=5       # seconds per wrk run in the RSS part

die() { echo "bench: $*" >&2; exit 1; }
note() { echo "bench: [${SECONDS}s] $*" >&2; }

while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1 ;;
        --duration) duration=$2; shift ;;
        --rounds) rounds=$2; shift ;;
        --connections) conns=$2; shift ;;
        --scenarios) scenarios=$2; shift ;;
        --no-wall) do_wall=0 ;;
        --no-callgrind) do_callgrind=0 ;;
        --no-memory) do_memory=0 ;;
        --pin) pin=yes ;;
        --no-pin) pin=no ;;
        --nginx) nginx_src=$2; shift ;;
        --module) module_src=$2; shift ;;
        --keep) keep=1 ;;
        --out) out=$2; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (try --help)" ;;
    esac
    shift
done
if [ "$quick" = 1 ]; then
    duration=1
    rounds=1
    warmup=0
    cg_counts="20 120"
    rss_total=20000
    rss_step=10000
    rss_run=1
fi

for tool in wrk valgrind callgrind_annotate curl perl taskset pgrep; do
    command -v "$tool" >/dev/null || die "$tool not found (scripts/install-deps.sh bench)"
done
[ -x "$nginx_src" ] || die "no nginx at $nginx_src (make build)"
[ -f "$module_src" ] || die "no module at $module_src (make build)"
"$nginx_src" -V 2>&1 | grep -q -- --with-debug || die "$nginx_src lacks --with-debug"

ncpu=$(nproc)
if [ "$pin" = auto ]; then
    if [ "$ncpu" -ge 2 ]; then pin=yes; else pin=no; fi
fi
if [ "$pin" = yes ]; then
    front_cpu=(taskset -c 1)
    load_cpu=(taskset -c 0)
else
    front_cpu=()
    load_cpu=()
fi

# A private copy of the binaries: others may rebuild build/ while this runs, and a .so
# rewritten in place under a running nginx crashes it.
work=$(mktemp -d "${TMPDIR:-/tmp}/nginx-bench.XXXXXX")
mkdir -p "$work/bin"
install_so "$nginx_src" "$work/bin/nginx"
install_so "$module_src" "$work/bin/module.so"
nginx=$work/bin/nginx
module=$work/bin/module.so

started=()   # pid files of the nginx masters this script started
fg_pid=""    # an nginx this script runs in the foreground (master_process off)
cleanup() {
    local f
    for f in "${started[@]}"; do
        [ -f "$f" ] && kill -QUIT "$(cat "$f")" 2>/dev/null || true
    done
    if [ -n "$fg_pid" ]; then kill -QUIT "$fg_pid" 2>/dev/null || true; fi
    if [ "$keep" = 1 ]; then
        note "kept $work"
    else
        sleep 0.3
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- ports --------------------------------------------------------------------------------

# Each listener gets a port the kernel says is free now (scripts/lib.sh's free_port), never
# one this run handed out before (a stopped front's port may still be in TIME_WAIT), and a
# listener that still fails to bind (another process took the port meanwhile) is retried on
# another.
used_ports=" "
new_port() {    # new_port VAR
    local _np _try
    for _try in $(seq 50); do
        _np=$(free_port)
        case "$used_ports" in *" $_np "*) continue ;; esac
        used_ports="$used_ports$_np "
        printf -v "$1" %s "$_np"
        return
    done
    die "no new free port after 50 tries"
}

accepts() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# --- configurations -----------------------------------------------------------------------

P_OK=""         # answers 200 "ok\n"
P_404=()        # 7 servers answering 404 with an empty body
P_410=""        # answers 410 with an empty body

write_backend_conf() {
    local dir=$1 p
    mkdir -p "$dir/logs"
    {
        cat <<EOF
worker_processes 1;
error_log logs/error.log error;
pid logs/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    default_type text/plain;
    server { listen 127.0.0.1:$P_OK; location / { return 200 "ok\n"; } }
EOF
        # "return 404 \$empty" sends Content-Length: 0 (a literal "" would send nginx's HTML
        # error page). With an empty body nginx keeps the connection to a failing server
        # alive when it passes a request on; with a body it closes it, on both sides alike.
        for p in "${P_404[@]}"; do
            echo "    server { listen 127.0.0.1:$p; set \$empty \"\"; location / { return 404 \$empty; } }"
        done
        echo "    server { listen 127.0.0.1:$P_410; set \$empty \"\"; location / { return 410 \$empty; } }"
        echo "}"
    } >"$dir/nginx.conf"
}

# The servers of a front's upstream "up": "ok"; "404xN" (N servers answering 404, then the
# 200 one as backup, so that every request tries them in order); "410" (the same with one
# server answering 410); "first404" (one server answering 404, nothing else).
upstream_servers() {
    local i
    case "$1" in
        ok) echo "server 127.0.0.1:$P_OK;" ;;
        404x*)
            for i in $(seq 0 $((${1#404x} - 1))); do echo "server 127.0.0.1:${P_404[$i]};"; done
            echo "server 127.0.0.1:$P_OK backup;" ;;
        410) echo "server 127.0.0.1:$P_410;"; echo "server 127.0.0.1:$P_OK backup;" ;;
        first404) echo "server 127.0.0.1:${P_404[0]};" ;;
    esac
}

# Idle connections each front keeps to the backends, per upstream block: enough for every
# wrk connection to every server of the largest block (8). With fewer (say 16 for 2 servers
# and 16 clients) the cache overflows and nginx closes and reopens upstream connections all
# the time, and a block of 2 servers would be compared with 2 blocks of 1 on unequal terms.
upstream_keepalive=$((conns * 8))

# front_conf DIR PORT KIND MODE
#   KIND: stock_200 mod_200 modother_200 stock_404xN mod_404xN work_404 mod_410,
#         modnokeep_404x1 (mod_404x1 with keep_answer=off), and
#         modzone_200 modzone_404x1: as mod_*, with next_upstream_status_zone (counters)
#   MODE: "daemon" (master + 1 worker), "single" (master_process off, daemon off: for
#         valgrind), "debug" (single, error_log at debug: for the pool figures)
# Every front has the same locations and upstream blocks; only the module's load_module
# and directives, and stock's proxy_next_upstream / intercept_errors differ.
front_conf() {
    local dir=$1 port=$2 kind=$3 mode=$4 up directive="" other="" load="" single="" level=error
    local zone=""
    case "$kind" in modzone_*) zone="next_upstream_status_zone bench 1m;"; kind=mod_${kind#modzone_} ;; esac
    case "$kind" in
        stock_200) up=ok ;;
        modunused_200) up=ok ;;
        mod_200) up=ok; directive="proxy_next_upstream_status 404;" ;;
        modother_200) up=ok; other="proxy_next_upstream_status 404;" ;;
        stock_404x*) up=${kind#stock_}; directive="proxy_next_upstream error timeout http_404;" ;;
        mod_404x*) up=${kind#mod_}; directive="proxy_next_upstream_status 404;" ;;
        modnokeep_404x1) up=404x1; directive="proxy_next_upstream_status 404 keep_answer=off;" ;;
        mod_410) up=410; directive="proxy_next_upstream_status 410;" ;;
        work_404) up=first404
            directive="proxy_intercept_errors on; error_page 404 = @other_site;" ;;
        *) die "unknown front kind $kind" ;;
    esac
    case "$kind" in mod*) load="load_module $module;" ;; esac
    [ "$mode" = daemon ] || single="master_process off; daemon off;"
    [ "$mode" = debug ] && level=debug
    mkdir -p "$dir/logs"
    cat >"$dir/nginx.conf" <<EOF
$load
$single
worker_processes 1;
error_log logs/error.log $level;
pid logs/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    $zone
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    proxy_http_version 1.1;
    proxy_set_header Connection "";

    upstream up {
        $(upstream_servers "$up" | tr '\n' ' ')
        keepalive $upstream_keepalive;
        keepalive_requests 10000000;
    }
    upstream ok {
        server 127.0.0.1:$P_OK;
        keepalive $upstream_keepalive;
        keepalive_requests 10000000;
    }
    server {
        listen 127.0.0.1:$port;
        location / {
            proxy_pass http://up;
            $directive
        }
        location = /other {
            proxy_pass http://ok;
            $other
        }
        location @other_site {
            proxy_pass http://ok;
        }
    }
}
EOF
}

# launch DIR PORT MODE CPU [valgrind args...]: starts nginx on DIR/nginx.conf and waits until
# it listens on PORT. MODE "daemon" runs it as a daemon (pid file recorded for cleanup), else
# in the background of this shell (fg_pid), under the given valgrind command if any. CPU:
# "front" or "load", the CPU set it runs on. Returns 1 if PORT could not be bound (the
# caller tries another), dies on other failures.
launch() {
    local dir=$1 port=$2 mode=$3 cpu i
    if [ "$4" = front ]; then cpu=("${front_cpu[@]}"); else cpu=("${load_cpu[@]}"); fi
    shift 4
    local cmd=("$nginx" -p "$dir/" -c "$dir/nginx.conf" -e "$dir/logs/error.log")
    if [ "$mode" = daemon ]; then
        if ! "${cpu[@]}" "${cmd[@]}" 2>"$dir/logs/start.log"; then
            grep -q "Address already in use" "$dir/logs/start.log" && return 1
            die "nginx did not start in $dir: $(tail -3 "$dir/logs/start.log")"
        fi
        started+=("$dir/logs/nginx.pid")
        for i in $(seq 1 200); do
            # The master binds before it forks away and writes its pid file.
            [ -s "$dir/logs/nginx.pid" ] && accepts "$port" && return 0
            sleep 0.05
        done
        die "nginx in $dir does not accept on $port"
    fi
    "${cpu[@]}" "$@" "${cmd[@]}" >"$dir/logs/start.log" 2>&1 &
    fg_pid=$!
    for i in $(seq 1 1200); do
        accepts "$port" && return 0
        if ! kill -0 "$fg_pid" 2>/dev/null; then
            wait "$fg_pid" || true
            fg_pid=""
            grep -q "Address already in use" "$dir/logs/start.log" && return 1
            die "nginx did not start in $dir: $(tail -3 "$dir/logs/start.log")"
        fi
        sleep 0.05
    done
    die "nginx in $dir does not accept on $port"
}

# start_front DIR KIND MODE [valgrind args...]: writes the configuration and starts it on a
# fresh port, which it leaves in $front_at.
front_at=""
start_front() {
    local dir=$1 kind=$2 mode=$3 attempt
    shift 3
    for attempt in 1 2 3; do
        new_port front_at
        front_conf "$dir" "$front_at" "$kind" "$mode"
        launch "$dir" "$front_at" "$mode" front "$@" && return 0
        note "port $front_at was taken, trying another"
    done
    die "could not bind a port for $dir"
}

stop_fg() {       # stops the foreground nginx cleanly (QUIT), so that valgrind writes out
    kill -QUIT "$fg_pid"
    local rc=0
    wait "$fg_pid" || rc=$?
    fg_pid=""
    return $rc
}

stop_daemon() {   # stop_daemon DIR
    local pidf=$1/logs/nginx.pid pid i
    [ -f "$pidf" ] || return 0
    pid=$(cat "$pidf")
    kill -QUIT "$pid" 2>/dev/null || return 0
    for i in $(seq 1 200); do
        # Gone, or a zombie that init has not reaped yet (the master daemonized).
        case "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" in ""|Z|X) return 0 ;; esac
        sleep 0.05
    done
    die "nginx $pid ($1) did not stop"
}

worker_of() {     # worker_of DIR: the pid of the only worker of a daemon front
    local w i
    for i in $(seq 1 100); do
        w=$(pgrep -P "$(cat "$1/logs/nginx.pid")" | head -1) || true
        [ -n "$w" ] && { echo "$w"; return; }
        sleep 0.05
    done
    die "no worker process in $1"
}

cpu_ns() { cut -d' ' -f1 "/proc/$1/schedstat"; }   # CPU time of a process so far, ns

# check_front PORT PATH: one request by curl before any timing: 200 and the 200 server's body.
check_front() {
    local body code
    body=$(curl -sS -o - -w '\n%{http_code}' "http://127.0.0.1:$1$2") || die "curl :$1$2 failed"
    code=${body##*$'\n'}
    [ "$code" = 200 ] || die "front :$1$2 answered $code, expected 200"
    [ "${body%$'\n'*}" = $'ok\n' ] || die "front :$1$2 answered an unexpected body: ${body%$'\n'*}"
}

# run_wrk PORT PATH SECONDS WORKER: prints "REQ/S P50_US P99_US REQUESTS FRONT_CPU_NS";
# dies on non-2xx responses or socket errors.
run_wrk() {
    local port=$1 path=$2 secs=$3 worker=$4 out c0 c1 parsed
    c0=$(cpu_ns "$worker")
    out=$("${load_cpu[@]}" wrk -t1 -c"$conns" -d"${secs}s" --timeout 10s --latency \
        "http://127.0.0.1:$port$path" 2>&1) \
        || die "wrk failed against :$port$path: $out"
    c1=$(cpu_ns "$worker")
    echo "$out" >>"$work/wrk.log"
    parsed=$(echo "$out" | perl "$here/wrk-parse.pl") \
        || die "wrk against :$port$path: $(echo "$out" | grep -E 'Non-2xx|Socket errors|requests in' | tr '\n' ' ')"
    echo "$parsed $((c1 - c0))"
}

# --- the machine --------------------------------------------------------------------------

cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
nginx_version=$("$nginx" -v 2>&1 | sed 's/^nginx version: //')
wrk_version=$( { wrk -v 2>&1 || true; } | awk 'NR == 1 {print $2}')
machine="$ncpu CPUs ($cpu_model), $(uname -sr), $nginx_version, wrk $wrk_version, $(valgrind --version)"
module_id="$module_src, $(stat -c %y "$module_src" | cut -d. -f1), sha256 $(sha256sum "$module" | cut -c1-12)"
if git -C "$root" rev-parse --git-dir >/dev/null 2>&1; then
    module_id="$module_id; work tree now at $(git -C "$root" rev-parse --short HEAD)"
    [ -z "$(git -C "$root" status --porcelain -- src Cargo.toml Cargo.lock build.rs)" ] \
        || module_id="$module_id with uncommitted changes in src/"
    [ -z "$(find "$root/src" -name '*.rs' -newer "$module_src" | head -1)" ] \
        || module_id="$module_id (src/ changed after this build)"
fi

report=$work/report.md
: >"$report"
say() { echo "$@" | tee -a "$report"; }

say "# ngx_http_next_upstream_status_module benchmark"
say ""
say "- machine: $machine"
say "- module: $module_id"
say "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
say "- pinning: $( [ "$pin" = yes ] && echo "front on CPU 1, wrk and backends on CPU 0" || echo none)"
say "- command: \`$command_line\` (wrk runs of ${duration} s, $rounds rounds, $conns connections)"
say ""

# --- backends -----------------------------------------------------------------------------

for attempt in 1 2 3; do
    new_port P_OK
    P_404=()
    for i in 1 2 3 4 5 6 7; do new_port p; P_404+=("$p"); done
    new_port P_410
    write_backend_conf "$work/backend"
    launch "$work/backend" "$P_OK" daemon load && break
    [ "$attempt" = 3 ] && die "could not bind the backends' ports"
done
for p in "${P_404[@]}" "$P_410"; do accepts "$p" || die "backend does not accept on $p"; done

# --- part 1: wall clock -------------------------------------------------------------------

# id|title|reference front|module front|path
scenario_table() {
    cat <<'EOF'
a|200 responses; directive on in the location vs no module|stock_200|mod_200|/
a2|200 responses; module loaded, directive only in another location vs no module|stock_200|modother_200|/
b|404 then 200; `proxy_next_upstream_status 404` vs stock `proxy_next_upstream error timeout http_404`|stock_404x1|mod_404x1|/
c|404 then 200; module vs `proxy_intercept_errors on; error_page 404 = @other_site`|work_404|mod_404x1|/
d|410 then 200 through the module vs 404 then 200 through stock (b's reference)|stock_404x1|mod_410|/
e4|4 tries (3 servers answer 404, the 4th 200); module vs stock `http_404`|stock_404x3|mod_404x3|/
e8|8 tries (7 servers answer 404, the 8th 200); module vs stock `http_404`|stock_404x7|mod_404x7|/
z|200 responses; module with `next_upstream_status_zone` vs without|mod_200|modzone_200|/
z2|404 then 200; module with `next_upstream_status_zone` vs without|mod_404x1|modzone_404x1|/
EOF
}

selected() {    # selected ID: was the scenario asked for?
    local s
    for s in $scenarios; do
        [ "$s" = "$1" ] && return 0
        [ "$s" = e ] && [[ "$1" == e* ]] && return 0
        [ "$s" = z ] && [[ "$1" == z* ]] && return 0
    done
    return 1
}

declare -A wall_port=() wall_worker=()
wall_kinds=()

if [ "$do_wall" = 1 ]; then
    # Start every front needed (idle ones cost nothing) and check that each answers right.
    while IFS='|' read -r id title ref mod path; do
        selected "$id" || continue
        for kind in "$ref" "$mod"; do
            [ -n "${wall_port[$kind]:-}" ] && continue
            start_front "$work/front-$kind" "$kind" daemon
            wall_port[$kind]=$front_at
            wall_worker[$kind]=$(worker_of "$work/front-$kind")
            wall_kinds+=("$kind")
            check_front "$front_at" "$path"
        done
    done < <(scenario_table)

    results=$work/wall.tsv
    : >"$results"
    n_scen=0
    for id in $(scenario_table | cut -d'|' -f1); do
        if selected "$id"; then n_scen=$((n_scen + 1)); fi
    done
    note "wall clock: $((n_scen * rounds * 2)) wrk runs of ${duration}s, $conns connections"
    while IFS='|' read -r id title ref mod path; do
        selected "$id" || continue
        rp=${wall_port[$ref]}
        mp=${wall_port[$mod]}
        # Warm-up: fill the upstream keepalive caches, fault in the workers' memory.
        if [ "$warmup" -gt 0 ]; then
            run_wrk "$rp" "$path" "$warmup" "${wall_worker[$ref]}" >/dev/null
            run_wrk "$mp" "$path" "$warmup" "${wall_worker[$mod]}" >/dev/null
        fi
        for r in $(seq 1 "$rounds"); do
            # (run_wrk dies in a subshell: the assignment carries its status to set -e)
            res=$(run_wrk "$rp" "$path" "$duration" "${wall_worker[$ref]}")
            echo "$id ref $r $res" >>"$results"
            res=$(run_wrk "$mp" "$path" "$duration" "${wall_worker[$mod]}")
            echo "$id mod $r $res" >>"$results"
        done
        note "scenario $id done"
    done < <(scenario_table)
    for kind in "${wall_kinds[@]}"; do stop_daemon "$work/front-$kind"; done

    say "## Wall clock"
    say ""
    say "\`wrk -t1 -c$conns --latency\`, $rounds alternating runs of ${duration} s per side (A B A B ...)."
    say "req/s, p50, p99 and the front worker's CPU time per request (from /proc/PID/schedstat)"
    say "are medians over the runs; B/A = module side / reference side for each pair of runs,"
    say "min / median / max (req/s: above 1 = module faster; CPU per request: above 1 = module"
    say "costs more)."
    say ""
    scenario_table | perl "$here/wall-report.pl" "$results" | tee -a "$report"
    say ""
fi

# --- part 2: instructions per request under callgrind ------------------------------------

# callgrind_run KIND COUNT: the front under callgrind for COUNT requests over one keep-alive
# connection; leaves the total instructions (Ir) in $cg_ir (not printed: run in a $(...)
# subshell, a failure would leave the valgrind'd nginx behind, out of the cleanup's sight).
# The output file stays for the breakdown.
cg_ir=""
callgrind_run() {
    local kind=$1 count=$2 dir outf ir
    dir=$work/cg-$kind-$count
    outf=$work/callgrind.$kind.$count.out
    start_front "$dir" "$kind" single valgrind --tool=callgrind ${CALLGRIND_OPTIONS:-} --callgrind-out-file="$outf"
    if ! "${load_cpu[@]}" perl "$here/client.pl" "127.0.0.1:$front_at" / "$count" 200 >&2; then
        stop_fg || true
        die "client failed against $kind under callgrind (see $dir/logs)"
    fi
    stop_fg || die "nginx under callgrind exited with an error ($kind): $(tail -5 "$dir/logs/start.log")"
    ir=$(sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$outf" | head -1)
    [ -n "$ir" ] || die "no instruction total in $outf"
    cg_ir=$ir
}

# The fronts measured for instructions and memory, as kind|label (memory skips the
# workaround: its pool says nothing about the module).
measured_fronts='stock_200|a: 200, no module
modunused_200|200, module loaded, directive nowhere
modother_200|a2: 200, module, directive only in another location
mod_200|a: 200, module, directive on
modzone_200|a: 200, module, directive on, counters zone
stock_404x1|b: 404 then 200, stock http_404
mod_404x1|b: 404 then 200, module
modnokeep_404x1|b: 404 then 200, module, keep_answer=off
modzone_404x1|b: 404 then 200, module, counters zone
work_404|c: 404 then 200, intercept_errors + error_page
mod_410|d: 410 then 200, module'

if [ "$do_callgrind" = 1 ]; then
    read -r n1 n2 <<<"$cg_counts"
    note "callgrind: $n1 and $n2 requests per front"
    cg=$work/callgrind.tsv
    : >"$cg"
    while IFS='|' read -r kind label; do
        callgrind_run "$kind" "$n1"
        i1=$cg_ir
        callgrind_run "$kind" "$n2"
        i2=$cg_ir
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$kind" "$label" "$n1" "$i1" "$n2" "$i2" >>"$cg"
    done <<<"$measured_fronts"

    say "## Instructions per request (callgrind)"
    say ""
    say "The front under \`valgrind --tool=callgrind\` (master_process off, stopped with QUIT),"
    say "one keep-alive client connection, one request at a time (scripts/bench/client.pl);"
    say "instructions per request = (Ir after $n2 requests - Ir after $n1) / $((n2 - n1))."
    say ""
    perl "$here/callgrind-report.pl" "$cg" "$work" "$(basename "$module")" | tee -a "$report"
    say ""
fi

# --- part 3: memory -----------------------------------------------------------------------

if [ "$do_memory" = 1 ]; then
    note "memory: request pool, RSS"
    say "## Memory"
    say ""
    say "What the request pool holds when a request ends, from the debug nginx's own log of its"
    say "pools (\`error_log ... debug\`: sizes from the \"posix_memalign:\"/\"malloc:\" lines, matched"
    say "to the \"free:\" lines of the pool destroyed after \"http close request\"). Bytes used in"
    say "the pool's blocks (block size - unused, block headers included) and large allocations;"
    say "requests 3 to 12 of one keep-alive connection, which all take exactly the same."
    say ""
    say "| front | pool blocks | bytes used in blocks | large allocations | total | module's share |"
    say "|---|---:|---:|---:|---:|---:|"
    base_200=""
    base_404=""
    while IFS='|' read -r kind label; do
        dir=$work/mem-$kind
        start_front "$dir" "$kind" debug
        perl "$here/client.pl" "127.0.0.1:$front_at" / 12 200 || { stop_fg || true; die "client failed against $kind (debug)"; }
        stop_fg || die "nginx (debug) exited with an error ($kind)"
        stats=$(perl "$here/pool-usage.pl" 3 12 <"$dir/logs/error.log") || die "no pool figures for $kind"
        read -r blocks used large total <<<"$stats"
        case "$kind" in
            stock_200) base_200=$total; base=$total ;;
            stock_404x1) base_404=$total; base=$total ;;
            *_200) base=$base_200 ;;
            *) base=$base_404 ;;
        esac
        case "$kind" in
            stock*) share="(reference)" ;;
            *) share=$(printf '%+d' $((total - base))) ;;
        esac
        say "| $label | $blocks | $used | $large | $total | $share |"
    done < <(grep -v '^work_' <<<"$measured_fronts")
    say ""

    say "Worker RSS (VmRSS, kB) of the module front of b (404 then 200: every allocation the"
    say "module makes, on every request) under wrk as above; \"start\" is after a 1 s warm-up,"
    say "then after at least every $rss_step requests (exact counts in brackets):"
    say ""
    for spec in "mod_404x1|b: 404 then 200, module"; do
        kind=${spec%%|*}
        label=${spec#*|}
        dir=$work/rss-$kind
        start_front "$dir" "$kind" daemon
        check_front "$front_at" /
        worker=$(worker_of "$dir")
        run_wrk "$front_at" / 1 "$worker" >/dev/null   # warm-up
        line="$label: start $(awk '/^VmRSS/ {print $2}' "/proc/$worker/status")"
        done_req=0
        next=$rss_step
        while [ "$next" -le "$rss_total" ]; do
            while [ "$done_req" -lt "$next" ]; do
                res=$(run_wrk "$front_at" / "$rss_run" "$worker")
                read -r _ _ _ n _ <<<"$res"
                done_req=$((done_req + n))
            done
            line="$line, $(awk '/^VmRSS/ {print $2}' "/proc/$worker/status") [$done_req]"
            next=$((next + rss_step))
        done
        say "- $line"
        stop_daemon "$dir"
    done
    say ""
fi

stop_daemon "$work/backend"
say "- load average at the end: $(cut -d' ' -f1-3 /proc/loadavg); took $((SECONDS / 60)) min $((SECONDS % 60)) s"
if [ -n "$out" ]; then cp "$report" "$out"; fi
note "all checks passed"
