#!/usr/bin/env bash
# The whole test suite: what the README tells you to run, and what CI runs.
# Installs the Debian packages the tests need (when run as root on a fresh
# machine), then checks formatting and lints and runs every test, and last
# runs every fuzz target for a few seconds (scripts/fuzz/run.sh, which
# installs g++ for libFuzzer itself; see docs/fuzzing.md).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the build and the tests need: libssl-dev for the openssl
# crate; the real peers of the tests: python3 (smtplib), swaks (with
# libnet-ssleay-perl for --tls), openssl (s_client, and the certificates of
# scripts/make-certs.sh), testssl.sh; passwd gives useradd for the test
# users postern/posternq/posternf, util-linux gives runuser, systemd gives
# systemd-analyze (the unit is verified; nothing is started by systemd),
# iproute2 gives `ip netns` (the relay tests' outside client lives in a
# network namespace of its own) and `ss` (the limits tests read a
# listener's queue size). The Debian package's test
# (tests/package.rs): dpkg-dev gives dpkg-shlibdeps (the package's
# Depends) and strip, lintian checks the package, adduser is what its
# postinst makes the users with (the package depends on it, so dpkg -i in
# the test's throwaway root needs it installed). nsd is the DNS server the
# MX tests start on a loopback port with their own zones (tests/mx.rs).
# dovecot-core and dovecot-lmtpd are the LMTP server the LMTP tests start
# with their own configuration under a temporary directory (tests/lmtp.rs;
# doveadm reads the delivered messages back); the SMTP AUTH tests
# (crates/auth) start an authentication-only Dovecot the same way and
# check hashes made by `doveadm pw`. The benchmark's smoke run
# (tests/bench.rs runs scripts/bench/run.sh --quick) starts a private
# Postfix from Debian's postfix package, unpacked rather than installed
# (the script fetches it): libdb5.3, libicu72, libnsl2 and libsasl2-2 are
# the shared libraries its programs need (libssl3 comes with libssl-dev).
packages=(pkg-config libssl-dev python3 swaks libnet-ssleay-perl openssl testssl.sh systemd passwd util-linux iproute2 dpkg-dev lintian adduser nsd dovecot-core dovecot-lmtpd libdb5.3 libicu72 libnsl2 libsasl2-2)

# Installs those of the named packages that are missing (apt-get options
# after `--`); prints the list it installed, for the callers that stop a
# package's system-wide service.
install_missing() {
    local wanted=() options=() seen_dashes=0 p
    for p in "$@"; do
        if [ "$p" = "--" ]; then seen_dashes=1
        elif [ "$seen_dashes" -eq 1 ]; then options+=("$p")
        else wanted+=("$p"); fi
    done
    local missing=()
    for p in "${wanted[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "test.sh: missing Debian packages: ${missing[*]} (run as root, or install them)" >&2
        exit 1
    fi
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${options[@]}" "${missing[@]}" >&2
    echo "${missing[*]}"
}

installed=$(install_missing "${packages[@]}")
# nsd's package starts a system-wide server on port 53; the tests
# start their own, and a test machine needs no DNS server of its own.
if [[ " $installed " == *" nsd "* ]] && [ -d /run/systemd/system ]; then
    systemctl disable --now nsd.service >/dev/null 2>&1 || true
fi
# Likewise dovecot-core's system-wide Dovecot (IMAP/POP3 on the usual
# ports): the tests start their own.
if [[ " $installed " == *" dovecot-core "* ]] && [ -d /run/systemd/system ]; then
    systemctl disable --now dovecot.service dovecot.socket >/dev/null 2>&1 || true
fi

# The mail filters the milter tests start with their own configuration
# (tests/milter.rs, tests/dkim.rs, tests/rspamd.rs): python3-milter
# (pymilter, on libmilter) runs the test filter that takes every action
# (crates/milter/tests/filters/every_action.py, with Debian's
# /usr/bin/python3); opendkim signs and verifies, opendkim-tools makes its
# key; rspamd's milter proxy. Without their recommendations (rspamd's
# would bring a Redis server the test does not use), and their
# system-wide services stopped: the tests start their own.
filter_packages=(python3-milter opendkim opendkim-tools rspamd)
installed=$(install_missing "${filter_packages[@]}" -- --no-install-recommends)
if [ -n "$installed" ] && [ -d /run/systemd/system ]; then
    systemctl disable --now opendkim.service rspamd.service >/dev/null 2>&1 || true
fi

# logwatch's sendmail service reads our syslog lines in a test. Its package
# depends on an MTA (exim4 by default), which has no place on a machine
# that tests one: unpack the package's files instead of installing it.
logwatch_root=/usr/local/share/postern-test/logwatch
if [ ! -f /usr/share/logwatch/scripts/services/sendmail ] &&
    [ ! -f "$logwatch_root/usr/share/logwatch/scripts/services/sendmail" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "test.sh: logwatch's files are missing (run as root once to unpack them)" >&2
        exit 1
    fi
    apt-get update -qq
    tmp=$(mktemp -d)
    (cd "$tmp" && apt-get download -qq logwatch)
    mkdir -p "$logwatch_root"
    dpkg-deb -x "$tmp"/logwatch_*.deb "$logwatch_root"
    rm -rf "$tmp"
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The end-to-end suite (tests/) runs the built binaries: build them first.
cargo build --workspace --locked
cargo test --workspace --locked
# Every fuzz target for 10 seconds, from the seeds in fuzz/seeds/: about
# 4 minutes on 2 cores, the build included.
scripts/fuzz/run.sh 10
