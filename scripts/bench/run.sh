#!/usr/bin/env bash
# Benchmarks Postern side by side with Postfix on this machine and prints
# one markdown table: message throughput (accepted and delivered to a
# sink), connections/s, STARTTLS handshakes/s, a burst of connections at
# once, memory per idle connection, and the disk's own fsync rate beside
# them. See scripts/bench/README.md.
#
#   scripts/bench/run.sh [--quick] [--postern-only]
#
# Each MTA runs in a directory of its own on an ext4 file system made for
# it (BENCH_QUEUE_FS=own, the default); BENCH_QUEUE_FS=shared keeps both
# in the temporary directory under /tmp, as runs before 2026-12-06 22:40
# did.
#
# --quick (or BENCH_QUICK=1): a smoke run (about 25 s) with tiny counts
# that checks every stage works and every figure is a number; it compares
# nothing. POSTERN_BIN, POSTERN_CLI and BENCH_CLIENT name binaries already
# built (posternd, postern, postern-bench-client): no cargo build then.
#
# Needs root: Postfix's master runs as root and Postern runs privilege-
# separated for real, as in production. Postfix is Debian's package,
# unpacked into a cache (BENCH_CACHE, default /usr/local/share/postern-bench)
# and run from there with its own configuration: never installed, so no
# system Postfix is started. Everything else lives in a temporary directory
# that is removed at the end, and everything started is stopped by PID.
# All traffic stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
bench="$repo/scripts/bench"
helper="$bench/clients.py"

usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "run.sh: $*" >&2; exit 1; }
say() { echo "== $*" >&2; }

quick=${BENCH_QUICK:-0}
postern_only=0
for arg in "$@"; do
    case "$arg" in
        --quick) quick=1 ;;
        --postern-only) postern_only=1 ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done

if [ "$quick" = 1 ]; then
    # 40 small messages: enough CPU time for the 10 ms clock ticks to see.
    small_count=40 large_count=20 conn_count=20 idle_count=10 fsync_seconds=0.5
    burst_count=20
else
    small_count=${BENCH_SMALL_COUNT:-2000} large_count=${BENCH_LARGE_COUNT:-500}
    conn_count=${BENCH_CONNECTIONS:-2000} idle_count=${BENCH_IDLE:-200}
    burst_count=${BENCH_BURST:-1000}
    fsync_seconds=2
fi
conn_parallel=20
queue_fs=${BENCH_QUEUE_FS:-own}
case "$queue_fs" in own | shared) ;; *) die "BENCH_QUEUE_FS is own or shared, not $queue_fs" ;; esac
# A workload whose sink count has not moved for this long has deferred
# mail: the queue is flushed (runq / postqueue -f) and the wait goes on.
stall_seconds=20
domain=bench.test

[ "$(id -u)" -eq 0 ] || die "run as root (Postfix's master and Postern's privilege separation need it)"

########################################################################
# Installing what the benchmark needs
########################################################################

# ensure_packages, fetch_postfix and pf_env: shared with the tests that
# use Postfix's own programs as peers.
# shellcheck source=scripts/peer-packages.sh
. "$repo/scripts/peer-packages.sh"

ensure_user() { # user [group]
    local user=$1 group=${2:-}
    id "$user" >/dev/null 2>&1 && return
    if [ -n "$group" ]; then
        useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin --user-group "$user"
    else
        useradd --system --no-create-home --shell /usr/sbin/nologin "$user"
    fi
}

ensure_users() {
    local u
    for u in postern posternq posternf; do ensure_user "$u"; done
    # Postfix's mail_owner and setgid_group, as its postinst makes them.
    ensure_user postfix group
    getent group postdrop >/dev/null || groupadd --system postdrop
}

build_postern() {
    if [ -n "${POSTERN_BIN:-}" ] && [ -n "${POSTERN_CLI:-}" ] && [ -n "${BENCH_CLIENT:-}" ]; then
        postern_bin=$POSTERN_BIN postern_cli=$POSTERN_CLI client_bin=$BENCH_CLIENT
        return
    fi
    say "building Postern (release)"
    cargo build --release --locked -p postern-daemon --bin posternd -p postern-cli --bin postern \
        -p postern-testkit --bin postern-bench-client >&2
    postern_bin="$repo/target/release/posternd"
    postern_cli="$repo/target/release/postern"
    client_bin="$repo/target/release/postern-bench-client"
}

########################################################################
# Clean-up: everything started is recorded here and stopped by PID
########################################################################

tmp=""
sink_pid=""
postern_pid=""
postfix_pid=""
helper_pids=()
mounts=()

cleanup() {
    set +e
    local p
    for p in "${helper_pids[@]}"; do kill "$p" 2>/dev/null; done
    [ -n "$postern_pid" ] && stop_postern
    [ -n "$postfix_pid" ] && stop_postfix
    [ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null && wait "$sink_pid" 2>/dev/null
    if [ -n "$tmp" ] && [ -z "${BENCH_KEEP:-}" ]; then
        for p in "${mounts[@]}"; do release_fs "$p"; done
        rm -rf "$tmp"
    elif [ -n "$tmp" ]; then
        echo "run.sh: kept $tmp${mounts[*]:+ (still mounted, to be unmounted by hand: ${mounts[*]})}" >&2
    fi
}
trap cleanup EXIT
# Interrupted: exit, which runs cleanup.
trap 'exit 130' INT
trap 'exit 143' TERM

# Makes the new directory `dir` the root of a file system of its own: ext4
# as Debian's mke2fs makes it (with its journal), in a sparse image file on
# the disk under /tmp, mounted through a loop device. Why: on a file system
# without a journal (as the project machine's root, which holds /tmp),
# ext4 will not reuse an inode freed in the last one to six minutes, and
# every file created steps over all of those first: after a few thousand
# messages each new queue file cost the MTA a millisecond of CPU, more
# with every run, and the MTA benchmarked second paid for the files the
# first had deleted. On its own fresh file system each MTA
# starts from the same state; a journal is what production spools have.
# Falls back to plain directories (and says so) where no loop device can
# be had.
fresh_fs() { # dir
    local dir=$1 img="$1.img"
    mkdir -p "$dir"
    [ "$queue_fs" = own ] || return 0
    # Inode tables and journal written now, not by a kernel thread during
    # the measurements.
    if truncate -s 2G "$img" &&
        mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$img" >&2 &&
        mount -o loop "$img" "$dir" >&2; then
        mounts+=("$dir")
        rmdir "$dir/lost+found"
        chmod 0755 "$dir"
    else
        notes+=("could not mount a file system of its own for $dir: it is on $tmp's")
        rm -f "$img"
    fi
}

# Unmounts `dir` (the loop device goes with it) and removes its image.
release_fs() { # dir
    umount "$1" 2>/dev/null || umount -l "$1"
    rm -f "$1.img"
}

# Ends a process tree: SIGTERM to the top, then after `grace` seconds
# SIGKILL to whatever of the tree (recorded before) is left.
stop_tree() { # pid grace
    local top=$1 grace=$2 tree i
    read -r -a tree <<<"$("$python" "$helper" tree "$top")"
    kill -TERM "$top" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do
        kill -0 "$top" 2>/dev/null || break
        sleep 0.1
    done
    kill_leftovers "${tree[@]}"
}

# SIGKILL to each PID:STARTTIME (from `clients.py tree`) still running:
# the start time tells a leftover from a process that reuses its PID.
kill_leftovers() {
    local entry pid stat fields
    for entry in "$@"; do
        pid=${entry%%:*}
        stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        read -r -a fields <<<"${stat##*) }"
        [ "${fields[19]}" = "${entry#*:}" ] && kill -KILL "$pid" 2>/dev/null
    done
    return 0
}

# A helper that has been waited for: its PID is no longer ours to kill.
forget_pid() {
    local p keep=()
    for p in "${helper_pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    helper_pids=("${keep[@]}")
}

########################################################################
# Measuring
########################################################################

now() { date +%s.%N; }
# n / (t1 - t0), one decimal
rate() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { printf "%.1f", n / (b - a) }'; }
# value of `key=` in helper output
field() { sed -n "s/.*\\<$1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }

declare -A result    # "mta|key" -> value
figures=()           # "key|label", in table order
notes=()             # lines printed under the table
failed=0

record() { # mta key label value
    local f known=0
    for f in "${figures[@]}"; do [ "${f%%|*}" = "$2" ] && known=1; done
    [ "$known" = 1 ] || figures+=("$2|$3")
    result["$1|$2"]=$4
    if [ "$4" = FAIL ]; then failed=1; fi
}

# The whole instance: its top process and every descendant.
instance_pid() { if [ "$1" = postern ]; then echo "$postern_pid"; else echo "$postfix_pid"; fi; }

queue_empty() { # mta
    local dirs
    if [ "$1" = postern ]; then
        dirs=("$tmp/postern/spool/queue" "$tmp/postern/spool/incoming")
    else
        dirs=("$tmp/postfix/queue/"{maildrop,incoming,active,deferred,hold})
    fi
    [ -z "$(find "${dirs[@]}" -type f -print -quit 2>/dev/null)" ]
}

flush_queue() { # mta
    if [ "$1" = postern ]; then
        "$postern_cli" -C "$tmp/postern/etc/postern.cf" runq >/dev/null
    else
        pf_env "$pf/usr/sbin/postqueue" -c "$tmp/postfix/etc" -f
    fi
}

wait_queue_empty() { # mta
    local i
    for ((i = 0; i < 600; i++)); do
        queue_empty "$1" && return 0
        # Still there after a while: deferred. Flush, and say so.
        if ((i > 0 && i % 100 == 0)); then
            notes+=("$1: mail left in the queue after a workload; flushed")
            flush_queue "$1"
        fi
        sleep 0.1
    done
    return 1
}

# Until the sink has counted `target` messages; sets sink_time to the
# epoch time it did. Deferred mail is flushed rather than waited for.
sink_time=""
wait_sink() { # mta target label
    local out tries
    for ((tries = 0; tries < 6; tries++)); do
        if out=$("$python" "$helper" wait-sink "$tmp/sink.out" "$2" "$stall_seconds"); then
            sink_time=$(field t "$out")
            return 0
        fi
        notes+=("$1, $3: sink stalled at $(field count "$out") of $2; queue flushed")
        flush_queue "$1"
    done
    return 1
}

smtp_source() { pf_env "$pf/usr/sbin/smtp-source" -f sender@client.test -t "rcpt@$domain" -M client.test "$@"; }

# `count` messages, each connection carrying `per_conn` of them, `sessions`
# connections at a time. smtp-source's -d keeps one connection for all of a
# session's messages, so a fixed number per connection is one smtp-source
# per connection, `sessions` loops of them side by side.
send_batches() { # port size sessions per_conn count
    local port=$1 size=$2 sessions=$3 per_conn=$4 count=$5
    local chunks=$(((count + per_conn - 1) / per_conn)) w pids=() status=0 p
    for ((w = 0; w < sessions && w < chunks; w++)); do
        (
            local c n
            for ((c = w; c < chunks; c += sessions)); do
                n=$((count - c * per_conn))
                ((n > per_conn)) && n=$per_conn
                smtp_source -d -s 1 -m "$n" -l "$size" "127.0.0.1:$port" || exit 1
            done
        ) &
        pids+=("$!")
    done
    for p in "${pids[@]}"; do wait "$p" || status=1; done
    return "$status"
}

send_mail() { # port size sessions per_conn count
    if [ "$4" -eq 1 ]; then
        smtp_source -s "$3" -m "$5" -l "$2" "127.0.0.1:$1"
    else
        send_batches "$@"
    fi
}

human_size() { if [ "$1" -ge 1024 ]; then echo "$(($1 / 1024)) KiB"; else echo "$1 B"; fi; }

# One message workload: accepted/s (until smtp-source has every 250 after
# DATA) and end-to-end/s (until the sink has every message), then waits
# for the queue to drain. The 4 KiB, 10-session, 1-per-connection run also
# samples the instance's peak PSS and its CPU time per message.
mail_workload() { # mta port size sessions per_conn count
    local mta=$1 port=$2 size=$3 sessions=$4 per_conn=$5 count=$6
    local label key before t0 t1 sampler="" cpu0="" cpu1 top
    label="$(human_size "$size"), $sessions sessions, $per_conn msg/conn"
    key="${size}_${sessions}_${per_conn}"
    say "$mta: $count messages, $label"
    top=$(instance_pid "$mta")
    if [ "$size" -eq 4096 ] && [ "$sessions" -eq 10 ] && [ "$per_conn" -eq 1 ]; then
        "$python" "$helper" pss-peak "$top" "$tmp/peak" &
        sampler=$!
        helper_pids+=("$sampler")
        cpu0=$(field cpu "$("$python" "$helper" cpu "$top")")
    fi
    before=$(field count "$("$python" "$helper" sink-count "$tmp/sink.out")")
    t0=$(now)
    if send_mail "$port" "$size" "$sessions" "$per_conn" "$count" >"$tmp/source.out" 2>&1; then
        t1=$(now)
        record "$mta" "acc_$key" "accepted msg/s: $label" "$(rate "$count" "$t0" "$t1")"
    else
        sed 's/^/    /' "$tmp/source.out" | tail -5 >&2
        record "$mta" "acc_$key" "accepted msg/s: $label" FAIL
        notes+=("$mta, $label: smtp-source failed: $(tail -1 "$tmp/source.out")")
    fi
    # Every message must arrive (when some were refused, there is no
    # count to wait for: only the queue is drained).
    if [ "${result["$mta|acc_$key"]}" = FAIL ]; then
        record "$mta" "e2e_$key" "end-to-end msg/s: $label" FAIL
    elif wait_sink "$mta" $((before + count)) "$label"; then
        record "$mta" "e2e_$key" "end-to-end msg/s: $label" "$(rate "$count" "$t0" "$sink_time")"
    else
        record "$mta" "e2e_$key" "end-to-end msg/s: $label" FAIL
    fi
    wait_queue_empty "$mta" || notes+=("$mta, $label: the queue did not drain")
    if [ -n "$sampler" ]; then
        cpu1=$(field cpu "$("$python" "$helper" cpu "$top")")
        kill "$sampler"
        wait "$sampler" || true
        forget_pid "$sampler"
        record "$mta" peak_pss "peak PSS of the instance (MB): $label" \
            "$(awk -F= '{ printf "%.1f", $2 / 1024 }' "$tmp/peak")"
        record "$mta" cpu_msg "MTA CPU ms per message: $label" \
            "$(awk -v a="$cpu0" -v b="$cpu1" -v n="$count" 'BEGIN { printf "%.2f", 1000 * (b - a) / n }')"
    fi
}

# The connection loops: the compiled client, so that it is not the
# bottleneck; its own CPU share goes into the notes.
connection_workload() { # mta port key label [--starttls]
    local mta=$1 port=$2 key=$3 label=$4 out errors
    shift 4
    say "$mta: $label ($conn_count connections, $conn_parallel at a time)"
    out=$("$client_bin" "$port" "$conn_count" "$conn_parallel" "$@" 2>"$tmp/client.err") || true
    errors=$(field errors "$out")
    if [ -z "$out" ]; then
        record "$mta" "$key" "$label" FAIL
        notes+=("$mta, $label: $(head -1 "$tmp/client.err")")
        return
    fi
    notes+=("$mta, $label: load generator used $(field client_cpu "$out")% of a core")
    if [ "$errors" -eq 0 ]; then
        record "$mta" "$key" "$label" "$(field rate "$out")"
    else
        # The rate of the sessions that worked, marked: a failed stage.
        record "$mta" "$key" "$label" "$(field rate "$out") ($errors failed)"
        failed=1
        notes+=("$mta, $label: $errors of $conn_count sessions failed, e.g. $(head -1 "$tmp/client.err")")
    fi
}

# `burst_count` connections opened at once (each greeted, then QUIT): when
# the last was greeted, and how many waited a second for a SYN retry
# because the listen queue was full.
burst_workload() { # mta port
    local mta=$1 port=$2 out
    say "$mta: a burst of $burst_count connections at once"
    out=$("$python" "$helper" burst "$port" "$burst_count") || true
    record "$mta" burst_ms "burst of $burst_count connections at once: ms until the last greeting" \
        "$(field last_greeting_ms "$out")"
    record "$mta" burst_retries "burst of $burst_count connections at once: connections that waited for a SYN retry" \
        "$(field syn_retries "$out")"
    notes+=("$mta, burst: the listener's queue (ListenQueueSize, Send-Q in \`ss -ltn\`) holds $(ss -Hltn "sport = :$port" | awk '{ print $3; exit }') connections")
    if [ "$(field greeted "$out")" != "$burst_count" ]; then
        notes+=("$mta, burst: only $(field greeted "$out") of $burst_count greeted ($(field refused "$out") refused, $(field lost "$out") without an answer)")
    fi
}

# PSS of the whole instance with `idle_count` greeted, idle sessions, less
# the same instance without them, per session. Run on a freshly started
# instance, so that neither MTA has processes left over from earlier
# workloads in its baseline (Postfix keeps idle smtpd processes for 100 s).
idle_workload() { # mta port
    local mta=$1 port=$2 top base loaded idle_pid i
    say "$mta: PSS per idle connection ($idle_count connections)"
    top=$(instance_pid "$mta")
    sleep 1
    base=$(field pss_kb "$("$python" "$helper" pss "$top")")
    rm -f "$tmp/idle.ready"
    "$python" "$helper" idle "$port" "$idle_count" "$tmp/idle.ready" &
    idle_pid=$!
    helper_pids+=("$idle_pid")
    for ((i = 0; i < 600; i++)); do
        [ -f "$tmp/idle.ready" ] && break
        sleep 0.1
    done
    if [ -f "$tmp/idle.ready" ]; then
        sleep 1 # let every session settle into its idle wait
        loaded=$(field pss_kb "$("$python" "$helper" pss "$top")")
        record "$mta" idle_pss "PSS per idle connection (MB)" \
            "$(awk -v a="$base" -v b="$loaded" -v n="$idle_count" 'BEGIN { printf "%.3f", (b - a) / 1024 / n }')"
    else
        record "$mta" idle_pss "PSS per idle connection (MB)" FAIL
    fi
    kill "$idle_pid" 2>/dev/null || true
    wait "$idle_pid" 2>/dev/null || true
    forget_pid "$idle_pid"
    sleep 1 # the MTA sees the sessions go
}

fsync_workload() { # mta queue_dir
    local out
    out=$("$python" "$helper" fsync "$2" "$fsync_seconds")
    record "$1" fsync "disk: serialized 4 KiB write+fsync+rename+dir fsync/s in the queue's file system" "$(field rate "$out")"
}

run_workloads() { # mta port queue_dir
    local mta=$1 port=$2 size sessions per_conn count
    fsync_workload "$mta" "$3"
    for size in 4096 102400; do
        count=$small_count
        [ "$size" -gt 4096 ] && count=$large_count
        for sessions in 10 50; do
            for per_conn in 1 20; do
                mail_workload "$mta" "$port" "$size" "$sessions" "$per_conn" "$count"
            done
        done
    done
    connection_workload "$mta" "$port" conn "connections/s (greeting, QUIT)"
    connection_workload "$mta" "$port" tls "STARTTLS handshakes/s (EHLO, STARTTLS, handshake, QUIT)" --starttls
    burst_workload "$mta" "$port"
    # Last, on a fresh instance: the runs above leave processes behind.
    "restart_$mta"
    idle_workload "$mta" "$port"
}

########################################################################
# The sink and the two MTAs
########################################################################

start_sink() {
    # -c: a running count of messages received, read by wait_sink.
    # Started directly, not through pf_env, so that $! is smtp-sink's PID.
    LD_LIBRARY_PATH="$pf/usr/lib/postfix" "$pf/usr/sbin/smtp-sink" -u nobody -c "127.0.0.1:$sink_port" 1024 \
        >"$tmp/sink.out" 2>"$tmp/sink.err" &
    sink_pid=$!
    wait_port "$sink_port" || die "smtp-sink did not start: $(cat "$tmp/sink.err")"
}

# Until something greets on the port (then says QUIT).
wait_port() { # port
    local i line
    for ((i = 0; i < 150; i++)); do
        # (The braces keep the 2>/dev/null from applying to the script.)
        if { exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null; then
            read -r -t 5 line <&3 || line=""
            printf 'QUIT\r\n' >&3
            exec 3>&-
            [[ "$line" == 220* ]] && return 0
        fi
        sleep 0.2
    done
    return 1
}

# As scripts/dev-start.sh configures a private instance, with the mail for
# the benchmark domain routed to the sink by mailertable. 127.0.0.1 may
# relay: RelayNetworks' default includes loopback.
start_postern() {
    local dir="$tmp/postern" certs="$tmp/certs"
    mkdir -p "$dir/etc"
    cat >"$dir/etc/postern.cf" <<CF
dnl Written by scripts/bench/run.sh
define(\`confCACERT_PATH', \`$certs')
define(\`confCACERT', \`$certs/cacert.pem')
define(\`confSERVER_CERT', \`$certs/cert.pem')
define(\`confSERVER_KEY', \`$certs/key.pem')
define(\`confCLIENT_CERT', \`$certs/cert.pem')
define(\`confCLIENT_KEY', \`$certs/key.pem')
O DaemonPortOptions=Port=$postern_port, Addr=127.0.0.1, Name=MTA
O QueueDirectory=$dir/spool
O MailboxDirectory=$dir/mail
O ControlSocket=$dir/control.sock
O LogLevel=9
Dj postern-bench.test
CF
    echo "$domain esmtp:[127.0.0.1]:$sink_port" >"$dir/etc/mailertable"
    printf 'postmaster: root\nMAILER-DAEMON: postmaster\n' >"$dir/etc/aliases"
    "$postern_bin" -C "$dir/etc/postern.cf" --log-stderr >"$dir/posternd.log" 2>&1 &
    postern_pid=$!
    wait_port "$postern_port" || { tail "$dir/posternd.log" >&2; die "Postern did not start"; }
}

restart_postern() {
    stop_postern
    start_postern
}

stop_postern() {
    stop_tree "$postern_pid" 30
    wait "$postern_pid" 2>/dev/null || true
    postern_pid=""
}

# A private Postfix: its own config_directory, queue and data directories
# under $tmp, the programs from the unpacked package. Debian's main.cf and
# master.cf defaults (fsync and all), except what a private instance must
# change: the paths, the listener (127.0.0.1, a high port), no chroot (the
# chroot would need copies of /etc files in the queue directory), the log
# file instead of syslog, and smtpd's process limit raised from 100 to 256,
# Postern's MaxDaemonChildren default, so that 200 idle sessions are all
# greeted.
start_postfix() {
    local dir="$tmp/postfix"
    mkdir -p "$dir/etc" "$dir/queue" "$dir/data"
    chown postfix: "$dir/data"
    chmod 0700 "$dir/data"
    echo "$domain smtp:[127.0.0.1]:$sink_port" >"$dir/etc/transport"
    cat >"$dir/etc/main.cf" <<CF
# Written by scripts/bench/run.sh: Debian's main.cf, for a private instance.
smtpd_banner = \$myhostname ESMTP \$mail_name (Debian/GNU)
biff = no
append_dot_mydomain = no
readme_directory = no
compatibility_level = 3.6
smtpd_tls_cert_file = $tmp/certs/cert.pem
smtpd_tls_key_file = $tmp/certs/key.pem
smtpd_tls_security_level = may
smtp_tls_CApath = $tmp/certs
smtp_tls_security_level = may
smtp_tls_session_cache_database = btree:\${data_directory}/smtp_scache
myhostname = postfix-bench.test
alias_maps =
alias_database =
mydestination = \$myhostname, localhost
relayhost =
mynetworks = 127.0.0.0/8
mailbox_size_limit = 0
recipient_delimiter = +
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
transport_maps = texthash:$dir/etc/transport
config_directory = $dir/etc
queue_directory = $dir/queue
data_directory = $dir/data
daemon_directory = $pf/usr/lib/postfix/sbin
command_directory = $pf/usr/sbin
meta_directory = $pf/etc/postfix
shlib_directory = $pf/usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
import_environment = MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C LD_LIBRARY_PATH
maillog_file = $dir/postfix.log
maillog_file_prefixes = $dir
CF
    cat >"$dir/etc/master.cf" <<CF
# Written by scripts/bench/run.sh: Debian's master.cf, chroot off.
127.0.0.1:$postfix_port inet n - n - 256 smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
CF
    # `postfix check` warns that postdrop and postqueue are not set-gid
    # postdrop: they are not (set-gid programs ignore LD_LIBRARY_PATH), and
    # only root uses them here.
    pf_env "$pf/usr/sbin/postfix" -c "$dir/etc" check ||
        { tail "$dir/postfix.log" >&2; die "postfix check failed"; }
    pf_env "$pf/usr/sbin/postfix" -c "$dir/etc" start ||
        { tail "$dir/postfix.log" >&2; die "postfix start failed"; }
    postfix_pid=$(tr -d ' ' <"$dir/queue/pid/master.pid")
    wait_port "$postfix_port" || { tail "$dir/postfix.log" >&2; die "Postfix did not start"; }
}

restart_postfix() {
    stop_postfix
    start_postfix
}

# `postfix stop` first (its own orderly way), then as any tree.
stop_postfix() {
    local tree
    read -r -a tree <<<"$("$python" "$helper" tree "$postfix_pid")"
    pf_env "$pf/usr/sbin/postfix" -c "$tmp/postfix/etc" stop >/dev/null 2>&1 || true
    stop_tree "$postfix_pid" 30
    kill_leftovers "${tree[@]}"
    postfix_pid=""
}

bench_postfix() {
    fresh_fs "$tmp/postfix"
    start_postfix
    say "Postfix $(pf_env "$pf/usr/sbin/postconf" -c "$tmp/postfix/etc" -h mail_version)"
    run_workloads postfix "$postfix_port" "$tmp/postfix/queue"
    stop_postfix
    # Not counted: postfix check's warnings that postdrop and postqueue
    # are not set-gid (see start_postfix).
    log_notes postfix "$tmp/postfix/postfix.log" "status=deferred" "status=bounced" \
        "(warning|fatal|panic):" "not set-gid|not owned by group postdrop"
}

bench_postern() {
    say "Postern $("$postern_bin" --version)"
    fresh_fs "$tmp/postern"
    start_postern
    run_workloads postern "$postern_port" "$tmp/postern/spool"
    stop_postern
    # Its log on standard error carries no priority: look for the words.
    log_notes postern "$tmp/postern/posternd.log" "stat=Deferred" "stat=(Service unavailable|User unknown)|DSN:" \
        "(warning|error|fatal|panic|lost|timeout|refused)" "^$"
}

# What the logs say went wrong, counted: deferrals, bounces, warnings (the
# five most frequent, with numbers and queue IDs masked).
log_notes() { # mta log deferred_re bounced_re warning_re ignored_re
    local mta=$1 log=$2 d b w line
    d=$(grep -cE "$3" "$log" || true)
    b=$(grep -cE "$4" "$log" || true)
    w=$(grep -iE "$5" "$log" | grep -cvE "$6" || true)
    notes+=("$mta log: $d deferred, $b bounced, $w warnings/errors")
    if [ "$w" -gt 0 ]; then
        while IFS= read -r line; do notes+=("  $mta: $line"); done < <(grep -iE "$5" "$log" | grep -vE "$6" |
            sed -E 's/^[A-Z][a-z]{2} [0-9 ]{2} [0-9:]{8} //; s/\[[0-9]+\]//; s/[0-9A-Za-z]{12,}/…/g' |
            sort | uniq -c | sort -rn | head -5)
    fi
}

########################################################################
# The report
########################################################################

machine() {
    local fs
    fs=$(df -T "$tmp" | awk 'NR == 2 { print $2 " on " $1 }')
    if [ "${#mounts[@]}" -gt 0 ]; then
        fs="a fresh ext4 with a journal for each MTA (a 2 GB image file on a loop device; the image files are on $fs, in "
    else
        fs="$fs ("
    fi
    echo "- machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), kernel $(uname -r)"
    echo "- queues on: $fs$tmp)"
    echo "- load average before the run: $load_before (other work on the machine skews every figure)"
    echo "- counts: $small_count × 4 KiB, $large_count × 100 KiB, $conn_count connections ($conn_parallel at a time), $idle_count idle connections"
}

ratio() { # postfix postern
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && a > 0) printf "%.2f", b / a; else printf "-" }'
}

print_table() {
    local f key label a b
    echo "| figure | Postfix | Postern | Postern/Postfix |"
    echo "| --- | ---: | ---: | ---: |"
    for f in "${figures[@]}"; do
        key=${f%%|*} label=${f#*|}
        a=${result["postfix|$key"]:--} b=${result["postern|$key"]:--}
        echo "| $label | $a | $b | $(ratio "$a" "$b") |"
    done
}

# --quick: every figure of every MTA run must be a positive number (the
# CPU time per message may be zero, below).
check_figures() {
    local f key mta v min bad=0 mtas=(postern)
    [ "$postern_only" = 1 ] || mtas+=(postfix)
    for f in "${figures[@]}"; do
        key=${f%%|*}
        for mta in "${mtas[@]}"; do
            v=${result["$mta|$key"]:-}
            # CPU time is sampled at the clock tick, per process: over a
            # smoke run's 40 messages an MTA of short bursts in many
            # processes (Postfix) can show none at all. Zero is a figure.
            min=0
            [ "$key" = cpu_msg ] && min=-1
            # A burst the listen queue holds needs no SYN retry.
            [ "$key" = burst_retries ] && min=-1
            if ! awk -v v="$v" -v min="$min" 'BEGIN { exit !(v ~ /^[0-9.]+$/ && v > min) }'; then
                echo "run.sh: $mta: ${f#*|}: no figure (${v:-missing})" >&2
                bad=1
            fi
        done
    done
    [ "${#figures[@]}" -gt 0 ] || bad=1
    return "$bad"
}

main() {
    local started
    started=$(date +%s)
    load_before=$(cut -d' ' -f1-3 /proc/loadavg)
    ensure_packages python3 openssl passwd iproute2
    # Debian's python3 itself: no version manager's shim (a shell script)
    # in front of each of the many short helper runs.
    python=/usr/bin/python3
    fetch_postfix
    ensure_users
    build_postern
    tmp=$(mktemp -d /tmp/postern-bench.XXXXXX)
    # The MTAs' unprivileged users must reach their directories in here.
    chmod 0755 "$tmp"
    read -r sink_port postfix_port postern_port <<<"$("$python" "$helper" ports 3)"
    "$repo/scripts/make-certs.sh" "$tmp/certs" localhost >/dev/null
    start_sink
    [ "$postern_only" = 1 ] || bench_postfix
    bench_postern

    echo "## Postern vs Postfix, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    machine
    echo
    print_table
    echo
    if [ "$large_count" -lt $((50 * 20)) ] && [ "$quick" != 1 ]; then
        notes+=("at 20 msg/conn, $large_count × 100 KiB are $(((large_count + 19) / 20)) connections: the \"50 sessions\" run has at most that many at once")
    fi
    local n
    for n in "${notes[@]}"; do echo "- $n"; done
    echo
    echo "took $(($(date +%s) - started)) s; load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
    if [ "$quick" = 1 ]; then check_figures || failed=1; fi
    return "$failed"
}

main
