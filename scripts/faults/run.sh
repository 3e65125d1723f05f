#!/usr/bin/env bash
# Every fault script, one after the other: scripts/faults/run.sh [--short]
#
# Each prints sent / acknowledged / delivered / duplicated / lost and its
# own checks, and fails when anything acknowledged was lost or a check
# failed; this fails when any of them did. --short is CI's form (a few
# minutes in all). Run as root: disk_full.py mounts a tmpfs, and Postern
# then runs privilege-separated as it does in production.
# POSTERN_BIN and POSTERN_CLI name built binaries; without them the
# scripts build a debug Postern.
set -uo pipefail
cd "$(dirname "$0")"
mode=${1:-}
failed=()
for script in kill9 next_hop stopped_queue disk_full exhaustion slow_clients; do
    echo "== $script $mode"
    started=$(date +%s)
    if ! python3 "$script.py" $mode; then
        failed+=("$script")
    fi
    echo "($script: $(($(date +%s) - started)) s)"
done
if [ "${#failed[@]}" -gt 0 ]; then
    echo "FAILED: ${failed[*]}"
    exit 1
fi
echo "all fault scripts passed"
