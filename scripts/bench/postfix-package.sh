#!/usr/bin/env bash
# Debian's postfix package, downloaded and unpacked (never installed: that
# would start a system-wide Postfix on port 25) into a cache, for the
# benchmark (scripts/bench/run.sh, which sources this file) and for the
# tests that use Postfix's programs as peers (posttls-finger, smtp-source).
#
#   scripts/bench/postfix-package.sh     prints the unpacked tree's path
#
# Needs root the first time (apt-get, and the library packages Postfix's
# programs need). BENCH_CACHE overrides the cache, default
# /usr/local/share/postern-bench.

cache=${BENCH_CACHE:-/usr/local/share/postern-bench}
pf="$cache/postfix" # the unpacked package
command -v say >/dev/null 2>&1 || say() { echo "== $*" >&2; }
command -v die >/dev/null 2>&1 || die() { echo "postfix-package.sh: $*" >&2; exit 1; }

# Installs the named Debian packages that are missing.
ensure_packages() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ "${#missing[@]}" -eq 0 ] && return
    say "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# Debian's postfix package unpacked, not installed: installing it would
# start a system-wide Postfix on port 25. The package also brings the load
# generator and the sink (smtp-source, smtp-sink). Unpacked once, reused.
fetch_postfix() {
    local debs="$cache/debs" deb="" libs
    [ -d "$debs" ] && deb=$(find "$debs" -maxdepth 1 -name 'postfix_*.deb' | sort | tail -1)
    if [ -z "$deb" ]; then
        say "downloading Debian's postfix package into $debs"
        mkdir -p "$debs"
        # apt downloads as _apt where it may: let it write here.
        if id _apt >/dev/null 2>&1; then chown _apt "$debs"; fi
        (cd "$debs" && apt-get download -qq postfix 2>/dev/null) || {
            apt-get update -qq
            (cd "$debs" && apt-get download -qq postfix)
        }
        deb=$(find "$debs" -maxdepth 1 -name 'postfix_*.deb' | sort | tail -1)
        rm -rf "$pf"
    fi
    if [ ! -x "$pf/usr/sbin/smtp-source" ]; then
        say "unpacking $(basename "$deb") into $pf"
        rm -rf "$pf" "$pf.tmp"
        dpkg-deb -x "$deb" "$pf.tmp"
        mv "$pf.tmp" "$pf"
    fi
    # Its shared libraries are ordinary packages: install the ones missing.
    mapfile -t libs < <(dpkg-deb -f "$deb" Depends | tr ',' '\n' |
        sed 's/|.*//; s/(.*)//; s/[[:space:]]//g' | grep '^lib')
    ensure_packages "${libs[@]}"
    if pf_env ldd "$pf/usr/lib/postfix/sbin/smtpd" "$pf/usr/sbin/smtp-source" | grep -q "not found"; then
        pf_env ldd "$pf/usr/lib/postfix/sbin/smtpd" "$pf/usr/sbin/smtp-source" | grep "not found" >&2
        die "Postfix's libraries are missing"
    fi
}

# Postfix's programs look for their own libraries in /usr/lib/postfix
# (RUNPATH): point them at the unpacked copy.
pf_env() { LD_LIBRARY_PATH="$pf/usr/lib/postfix" "$@"; }


# Run, not sourced: fetch and say where.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    fetch_postfix
    echo "$pf"
fi
