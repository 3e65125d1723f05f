#!/usr/bin/env bash
# Builds Postern's fuzz targets (fuzz/fuzz_targets/, one per parser or
# state machine) with libFuzzer on the stable toolchain, and runs each for
# a given time, one after the other, on one core.
#
#   scripts/fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]
#
# SECONDS_PER_TARGET defaults to 60; no TARGET means every target. Prints,
# per target, the executions, their rate, the corpus size and whether a
# crash was found; exits 1 if any target crashed (the input is kept in
# fuzz/artifacts/<target>/, and libFuzzer's report in
# fuzz/artifacts/<target>/log). See docs/fuzzing.md for why libFuzzer and
# not cargo-fuzz or AFL, and for what each target asserts.
#
# Corpora: fuzz/seeds/<target>/ holds the few hand-made inputs kept in git
# (read only); fuzz/corpus/<target>/ (ignored by git) is where libFuzzer
# keeps what it finds, so a later run starts from there.
#
# On a fresh Debian 12 machine, run as root: libfuzzer-sys compiles
# libFuzzer's C++ sources, so g++ is installed if no C++ compiler is there.
# FUZZ_TARGET_DIR (default target/fuzz) is the build directory: apart from
# the workspace's, since these builds carry instrumentation flags.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)

seconds=${1:-60}
shift || true
if ! [[ $seconds =~ ^[0-9]+$ ]] || [ "$seconds" -eq 0 ]; then
    echo "usage: scripts/fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]" >&2
    exit 2
fi

if ! command -v c++ >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "run.sh: no C++ compiler (libfuzzer-sys builds libFuzzer with one): install g++, or run as root" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++
fi

# libFuzzer's coverage instrumentation, with flags stable rustc takes (the
# ones cargo-fuzz passes, minus the sanitizer, which needs nightly):
# inline 8-bit counters and the PC table drive libFuzzer's coverage,
# trace-compares lets it solve comparisons, `--cfg fuzzing` is what
# libfuzzer-sys expects; debug assertions and overflow checks stay on.
# --target names the host explicitly so that these flags reach the
# targets but not build scripts and proc macros (which cannot link
# libFuzzer's hooks).
export RUSTFLAGS="-Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares \
--cfg fuzzing -Cdebug-assertions -Coverflow-checks"
export CARGO_TARGET_DIR=${FUZZ_TARGET_DIR:-$root/target/fuzz}
host=$(rustc -vV | sed -n 's/^host: //p')
cargo build --manifest-path fuzz/Cargo.toml --release --locked --target "$host" --bins
bin_dir=$CARGO_TARGET_DIR/$host/release

if [ "$#" -eq 0 ]; then
    mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^postern-fuzz$')
else
    targets=("$@")
fi

printf '%-20s %12s %10s %8s  %s\n' target executions exec/s corpus result
failed=0
for t in "${targets[@]}"; do
    if [ ! -x "$bin_dir/$t" ]; then
        echo "run.sh: no fuzz target named $t" >&2
        exit 2
    fi
    corpus=fuzz/corpus/$t
    artifacts=fuzz/artifacts/$t
    mkdir -p "$corpus" "$artifacts" "fuzz/seeds/$t"
    log=$artifacts/log
    # One process, one core; -max_total_time includes loading the corpus.
    # A crash stops the run at once (exit non-zero) with the input saved.
    status=0
    "$bin_dir/$t" -max_total_time="$seconds" -print_final_stats=1 \
        -artifact_prefix="$artifacts/" -timeout=10 -rss_limit_mb=2048 \
        "$corpus" "fuzz/seeds/$t" >"$log" 2>&1 || status=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    size=$(find "$corpus" -type f | wc -l)
    if [ "$status" -eq 0 ]; then
        result=ok
    else
        result="CRASH (exit $status): $(ls -t "$artifacts" | grep -v '^log$' | head -n 1), see $log"
        failed=1
    fi
    printf '%-20s %12s %10s %8s  %s\n' "$t" "${execs:-?}" "${rate:-?}" "$size" "$result"
done
exit "$failed"
