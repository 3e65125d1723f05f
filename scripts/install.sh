#!/usr/bin/env bash
# Installs Postern: binaries, system users, directories, the default
# configuration and the systemd unit. Run as root. Idempotent: a second run
# changes nothing and says so; the administrator's files are never
# overwritten.
#
#   usage: scripts/install.sh [--prefix DIR] [--destdir DIR] [--no-build] [--no-users]
#
#   --prefix DIR   where the programs go (default /usr/local): posternd in
#                  DIR/sbin, postern in DIR/bin, and the sendmail, mailq,
#                  runq, newaliases links to it in DIR/sbin
#   --destdir DIR  install everything under DIR (staging, packaging, tests);
#                  the unit is not loaded into the running systemd then
#   --no-build     do not run cargo; take the binaries from
#                  $POSTERN_BUILD_DIR, else target/release
#   --no-users     do not create the users postern, posternq and posternf (without
#                  root, --destdir and --no-users make a staging install
#                  whose ownership is left to the packager)
#
# What goes where (under --destdir if given):
#   PREFIX/sbin/posternd, PREFIX/bin/postern (+ links in PREFIX/sbin)
#   /etc/mail/{postern.cf,access,aliases,local-host-names,mailertable,
#     relay-domains}, 0644, only if absent: an existing file that differs
#     from the shipped one is kept, and the shipped one is written beside it
#     as <file>.postern-new
#   /etc/mail (0755), /etc/mail/certs (0755; put cert.pem and key.pem 0600
#     there, e.g. with scripts/make-certs.sh /etc/mail/certs $(hostname -f))
#   /var/spool/postern (posternq, 0700), /var/mail/postern (root, 0711: each
#     mailbox in it is made by root and written by its owner)
#   /etc/systemd/system/posternd.service, ExecStart pointing at PREFIX
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
prefix=/usr/local
destdir=
build=1
users=1
run_user=postern
queue_user=posternq
front_user=posternf

die() {
    echo "install.sh: $*" >&2
    exit 1
}
# usage [STATUS]: the usage lines of the header; on stderr unless STATUS is 0.
usage() {
    local text
    text=$(sed -n '/^#   usage:/,/^# What goes where/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//')
    if [ "${1:-2}" -eq 0 ]; then
        echo "$text"
    else
        echo "$text" >&2
    fi
    exit "${1:-2}"
}

while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) [ $# -ge 2 ] || usage; prefix=$2; shift 2 ;;
        --prefix=*) prefix=${1#--prefix=}; shift ;;
        --destdir) [ $# -ge 2 ] || usage; destdir=$2; shift 2 ;;
        --destdir=*) destdir=${1#--destdir=}; shift ;;
        --no-build) build=0; shift ;;
        --no-users) users=0; shift ;;
        -h | --help) usage 0 ;;
        *) echo "install.sh: unknown argument: $1" >&2; usage ;;
    esac
done
case "$prefix" in /*) ;; *) die "--prefix must be an absolute path: $prefix" ;; esac
prefix=${prefix%/}
if [ -n "$destdir" ]; then
    mkdir -p "$destdir"
    destdir=$(cd "$destdir" && pwd)
fi

is_root=0
[ "$(id -u)" -eq 0 ] && is_root=1
if [ "$is_root" -eq 0 ]; then
    [ -n "$destdir" ] || die "run as root (or stage with --destdir DIR --no-users)"
    [ "$users" -eq 0 ] || die "creating the users $run_user, $queue_user and $front_user needs root (or --no-users)"
fi

changes=0
did() {
    echo "install.sh: $*"
    changes=$((changes + 1))
}
note() {
    echo "install.sh: $*"
}
warn() {
    echo "install.sh: warning: $*" >&2
}

# --- binaries -------------------------------------------------------------
if [ "$build" -eq 1 ]; then
    command -v cargo >/dev/null || die "cargo not found (build as your user, then run with --no-build)"
    note "building release binaries (cargo build --release)"
    (cd "$src" && cargo build --release --locked --workspace --bins)
    bindir="${CARGO_TARGET_DIR:-$src/target}/release"
else
    bindir="${POSTERN_BUILD_DIR:-$src/target/release}"
fi
[ -d "$bindir" ] || die "no build directory $bindir (build first, or set POSTERN_BUILD_DIR)"

# --- users ----------------------------------------------------------------
user_exists() {
    id -u "$1" >/dev/null 2>&1
}
if [ "$users" -eq 1 ]; then
    for u in "$run_user" "$queue_user" "$front_user"; do
        if ! user_exists "$u"; then
            # Someone else may create it meanwhile (useradd exits 9).
            useradd --system --no-create-home --shell /usr/sbin/nologin "$u" ||
                user_exists "$u" || die "useradd $u failed"
            did "created system user $u"
        fi
    done
fi

# --- helpers ----------------------------------------------------------------
mode_of() {
    stat -c %a "$1"
}
owner_of() {
    stat -c %U "$1"
}

# ensure_dir DIR MODE [OWNER]: creates DIR, and gives it MODE and (as root,
# when the user exists) OWNER.
ensure_dir() {
    local dir=$1 mode=$2 owner=${3:-}
    if [ ! -d "$dir" ]; then
        mkdir -p "$dir"
        chmod "0$mode" "$dir"
        did "created $dir (mode $mode)"
    elif [ "$(mode_of "$dir")" != "${mode#0}" ]; then
        chmod "0$mode" "$dir"
        did "set mode $mode on $dir"
    fi
    [ -n "$owner" ] || return 0
    if [ "$is_root" -eq 0 ]; then
        note "not root: $dir stays owned by $(id -un); it must belong to $owner"
        return 0
    fi
    if ! user_exists "$owner"; then
        warn "user $owner does not exist: $dir left owned by $(owner_of "$dir")"
        return 0
    fi
    if [ "$(owner_of "$dir")" != "$owner" ]; then
        chown "$owner:" "$dir"
        did "gave $dir to $owner"
    fi
}

# install_file SRC DEST MODE: copies SRC to DEST unless it is already there
# with the same contents and mode; the copy is renamed into place, so a
# running binary is replaced, never written into.
install_file() {
    local from=$1 to=$2 mode=$3
    if [ -f "$to" ] && cmp -s "$from" "$to"; then
        if [ "$(mode_of "$to")" != "${mode#0}" ]; then
            chmod "$mode" "$to"
            did "set mode $mode on $to"
        fi
        return 0
    fi
    local verb=installed
    [ -e "$to" ] && verb=updated
    mkdir -p "$(dirname "$to")"
    cp "$from" "$to.postern-tmp"
    chmod "$mode" "$to.postern-tmp"
    mv -f "$to.postern-tmp" "$to"
    did "$verb $to"
}

# install_config SRC DEST: the administrator's file always wins. Absent: the
# shipped one is installed. Present and different: the shipped one goes
# beside it as DEST.postern-new, to compare by hand.
install_config() {
    local from=$1 to=$2
    if [ ! -e "$to" ]; then
        install_file "$from" "$to" 0644
    elif cmp -s "$from" "$to"; then
        :
    elif [ -e "$to.postern-new" ] && cmp -s "$from" "$to.postern-new"; then
        :
    else
        install_file "$from" "$to.postern-new" 0644
        note "kept your $to; the shipped version is $to.postern-new"
    fi
}

# link NAME TARGET: NAME -> TARGET, unless NAME is something else already
# (another MTA's program is never replaced).
link() {
    local name=$1 target=$2
    if [ -L "$name" ] && [ "$(readlink "$name")" = "$target" ]; then
        return 0
    fi
    if [ -e "$name" ] || [ -L "$name" ]; then
        warn "$name exists and is not a link to $target: left alone"
        return 0
    fi
    mkdir -p "$(dirname "$name")"
    ln -s "$target" "$name"
    did "linked $name -> $target"
}

# --- directories ------------------------------------------------------------
etc="$destdir/etc/mail"
ensure_dir "$etc" 0755
ensure_dir "$etc/certs" 0755
ensure_dir "$destdir/var/spool/postern" 0700 "$queue_user"
ensure_dir "$destdir/var/mail/postern" 0711 root

# --- programs ---------------------------------------------------------------
sbin="$destdir$prefix/sbin"
bin="$destdir$prefix/bin"
if [ -f "$bindir/posternd" ]; then
    install_file "$bindir/posternd" "$sbin/posternd" 0755
else
    warn "no posternd in $bindir: daemon not installed"
fi
if [ -f "$bindir/postern" ]; then
    install_file "$bindir/postern" "$bin/postern" 0755
    # The command-line tool acts by the name it is called with, as sendmail
    # does; relative links keep a --destdir tree relocatable.
    for name in sendmail mailq runq newaliases; do
        link "$sbin/$name" "../bin/postern"
    done
else
    warn "no postern (the command-line tool) in $bindir: postern, sendmail, mailq, runq and newaliases not installed"
fi

# --- configuration ----------------------------------------------------------
for f in postern.cf access aliases local-host-names mailertable relay-domains; do
    install_config "$src/etc/mail/$f" "$etc/$f"
done

# --- systemd unit -----------------------------------------------------------
unit="$destdir/etc/systemd/system/posternd.service"
unit_tmp=$(mktemp)
trap 'rm -f "$unit_tmp"' EXIT
prefix_sed=$(printf '%s' "$prefix" | sed 's/[#&\\]/\\&/g')
sed "s#^ExecStart=/usr/local/sbin/posternd #ExecStart=$prefix_sed/sbin/posternd #" \
    "$src/systemd/posternd.service" >"$unit_tmp"
grep -qF "ExecStart=$prefix/sbin/posternd -C " "$unit_tmp" ||
    die "could not point ExecStart= of systemd/posternd.service at $prefix/sbin/posternd"
before=$changes
install_file "$unit_tmp" "$unit" 0644
if [ "$changes" -ne "$before" ]; then
    if [ -z "$destdir" ] && [ -d /run/systemd/system ]; then
        systemctl daemon-reload
        note "systemctl daemon-reload done"
    fi
fi

# --- hints ------------------------------------------------------------------
# Programs that send mail call /usr/sbin/sendmail. It is never replaced here.
if [ "$prefix/sbin" != /usr/sbin ] && [ -f "$bindir/postern" ]; then
    if [ "$(readlink -f "$destdir/usr/sbin/sendmail" 2>/dev/null)" = "$(readlink -f "$bin/postern")" ]; then
        :
    elif [ -e "$destdir/usr/sbin/sendmail" ] || [ -L "$destdir/usr/sbin/sendmail" ]; then
        note "hint: /usr/sbin/sendmail exists and was left alone; to make Postern the system's sendmail: ln -sf $prefix/sbin/sendmail /usr/sbin/sendmail"
    else
        note "hint: programs expect /usr/sbin/sendmail; to provide it: ln -s $prefix/sbin/sendmail /usr/sbin/sendmail"
    fi
fi
if [ "$changes" -eq 0 ]; then
    note "no changes: already installed"
else
    note "$changes change(s) made"
    if [ -z "$destdir" ]; then
        note "next: edit /etc/mail/postern.cf, then: systemctl enable --now posternd"
    fi
fi
