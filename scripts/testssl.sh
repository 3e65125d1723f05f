#!/usr/bin/env bash
# Runs Debian's testssl.sh against a running Postern's STARTTLS port and
# fails if it rates anything HIGH or CRITICAL.
#   usage: scripts/testssl.sh PORT CAFILE [HOSTNAME]
# PORT is on 127.0.0.1; CAFILE is the CA that signed the server certificate
# (trusted for this run only, as a private CA is); HOSTNAME is the name in
# the certificate (default localhost). Nothing is looked up in DNS and no
# outside server is contacted.
set -euo pipefail
port=${1:?usage: testssl.sh PORT CAFILE [HOSTNAME]}
ca=${2:?usage: testssl.sh PORT CAFILE [HOSTNAME]}
host=${3:-localhost}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
testssl --quiet --color 0 --warnings off --nodns none --ip 127.0.0.1 \
    --add-ca "$ca" --starttls smtp --jsonfile "$out/result.json" \
    "$host:$port" > "$out/report.txt" 2>&1 || true
python3 - "$out/result.json" <<'PY'
import json, sys
findings = json.load(open(sys.argv[1]))
counts = {}
for f in findings:
    counts[f.get("severity", "?")] = counts.get(f.get("severity", "?"), 0) + 1
print("testssl.sh severities: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
bad = [f for f in findings if f.get("severity") in ("HIGH", "CRITICAL")]
for f in bad:
    print(f"{f['severity']}: {f['id']}: {f['finding']}")
if not findings:
    print("testssl.sh produced no findings at all")
    sys.exit(1)
sys.exit(1 if bad else 0)
PY
