#!/usr/bin/env bash
# Other MTAs as peers: Debian's postfix package, and sendmail's
# (sendmail-bin, sendmail-cf), downloaded and unpacked into a cache, never
# installed (installing either would start a system-wide daemon on port
# 25). For the benchmark (scripts/bench/run.sh, which sources this file)
# and for the tests that use their programs as clients (Postfix's
# posttls-finger, sendmail itself).
#
#   scripts/peer-packages.sh postfix     prints the unpacked Postfix tree
#   scripts/peer-packages.sh sendmail    prints the unpacked sendmail tree
#
# Needs root the first time (apt-get, and the library packages the
# programs need). BENCH_CACHE overrides the cache, default
# /usr/local/share/postern-bench.

cache=${BENCH_CACHE:-/usr/local/share/postern-bench}
pf="$cache/postfix" # the unpacked package
command -v say >/dev/null 2>&1 || say() { echo "== $*" >&2; }
command -v die >/dev/null 2>&1 || die() { echo "peer-packages.sh: $*" >&2; exit 1; }

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
    local debs="$cache/debs" deb=""
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
    ensure_libraries_of "$deb"
    if pf_env ldd "$pf/usr/lib/postfix/sbin/smtpd" "$pf/usr/sbin/smtp-source" | grep -q "not found"; then
        pf_env ldd "$pf/usr/lib/postfix/sbin/smtpd" "$pf/usr/sbin/smtp-source" | grep "not found" >&2
        die "Postfix's libraries are missing"
    fi
}

# Postfix's programs look for their own libraries in /usr/lib/postfix
# (RUNPATH): point them at the unpacked copy.
pf_env() { LD_LIBRARY_PATH="$pf/usr/lib/postfix" "$@"; }


# The library packages a downloaded .deb depends on, installed when
# missing.
ensure_libraries_of() { # deb
    local libs
    mapfile -t libs < <(dpkg-deb -f "$1" Depends | tr ',' '\n' |
        sed 's/|.*//; s/(.*)//; s/[[:space:]]//g' | grep '^lib')
    ensure_packages "${libs[@]}"
}

# sendmail 8.17 (its binary in usr/libexec/sendmail/sendmail) and its m4
# configuration kit (usr/share/sendmail/cf), unpacked into $cache/sendmail.
fetch_sendmail() {
    local debs="$cache/debs" sm="$cache/sendmail" pkg deb
    ensure_packages m4
    mkdir -p "$debs"
    if id _apt >/dev/null 2>&1; then chown _apt "$debs"; fi
    for pkg in sendmail-bin sendmail-cf; do
        deb=$(find "$debs" -maxdepth 1 -name "${pkg}_*.deb" | sort | tail -1)
        if [ -z "$deb" ]; then
            say "downloading Debian's $pkg package into $debs"
            (cd "$debs" && apt-get download -qq "$pkg" 2>/dev/null) || {
                apt-get update -qq
                (cd "$debs" && apt-get download -qq "$pkg")
            }
            deb=$(find "$debs" -maxdepth 1 -name "${pkg}_*.deb" | sort | tail -1)
            rm -rf "$sm"
        fi
        [ "$pkg" = sendmail-bin ] && ensure_libraries_of "$deb"
    done
    if [ ! -x "$sm/usr/libexec/sendmail/sendmail" ]; then
        say "unpacking sendmail into $sm"
        rm -rf "$sm" "$sm.tmp"
        for deb in "$debs"/sendmail-bin_*.deb "$debs"/sendmail-cf_*.deb; do
            dpkg-deb -x "$deb" "$sm.tmp"
        done
        mv "$sm.tmp" "$sm"
    fi
    echo "$sm"
}

# Run, not sourced: fetch what was named and say where.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    case "${1:-}" in
        postfix) fetch_postfix; echo "$pf" ;;
        sendmail) fetch_sendmail ;;
        *) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    esac
fi
