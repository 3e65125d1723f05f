#!/usr/bin/env bash
# Builds Postern's Debian package, postern_<version>_<arch>.deb, with
# dpkg-deb alone (no debian/ source package, no debhelper): what goes where
# comes from scripts/install.sh (staged with --destdir), the package's own
# files from packaging/debian/. No root needed.
#
#   usage: scripts/package-deb.sh [--no-build] [--output DIR]
#
#   --no-build    do not run cargo; take posternd and postern from
#                 $POSTERN_BUILD_DIR, else target/release
#   --output DIR  where the .deb goes (default target/debian, under
#                 $CARGO_TARGET_DIR if set); its path is the last line
#                 printed
#
# The package, as Debian's MTA packages (postfix, exim4-daemon-light) are:
#   Provides, Conflicts and Replaces mail-transport-agent
#   /usr/sbin/posternd, /usr/bin/postern; /usr/sbin/sendmail, /usr/lib/sendmail,
#     /usr/bin/mailq, /usr/bin/newaliases, /usr/sbin/runq link to postern
#   /etc/mail/postern.cf and the example tables, conffiles
#   /lib/systemd/system/posternd.service, enabled by the postinst
#   the users postern, posternq, posternf and /var/spool/postern,
#     /var/mail/postern made by the postinst, removed on purge
set -euo pipefail
# The tree's modes are the package's: a private umask must not make
# directories 0700 for everyone who installs it.
umask 022

src=$(cd "$(dirname "$0")/.." && pwd)
pkg="$src/packaging/debian"
build=1
output="${CARGO_TARGET_DIR:-$src/target}/debian"

die() {
    echo "package-deb.sh: $*" >&2
    exit 1
}
# usage [STATUS]: the usage lines of the header; on stderr unless STATUS is 0.
usage() {
    local text
    text=$(sed -n '/^#   usage:/,/^# The package/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//')
    if [ "${1:-2}" -eq 0 ]; then
        echo "$text"
    else
        echo "$text" >&2
    fi
    exit "${1:-2}"
}
while [ $# -gt 0 ]; do
    case "$1" in
        --no-build) build=0; shift ;;
        --output) [ $# -ge 2 ] || usage; output=$2; shift 2 ;;
        --output=*) output=${1#--output=}; shift ;;
        -h | --help) usage 0 ;;
        *) echo "package-deb.sh: unknown argument: $1" >&2; usage ;;
    esac
done
for tool in dpkg-deb dpkg strip; do
    command -v "$tool" >/dev/null || die "$tool not found (apt-get install dpkg-dev)"
done

# --- binaries ---------------------------------------------------------------
if [ "$build" -eq 1 ]; then
    command -v cargo >/dev/null || die "cargo not found (build first, then run with --no-build)"
    echo "package-deb.sh: building release binaries" >&2
    (cd "$src" && cargo build --release --locked -p postern-daemon -p postern-cli)
    bindir="${CARGO_TARGET_DIR:-$src/target}/release"
else
    bindir="${POSTERN_BUILD_DIR:-$src/target/release}"
fi
for b in posternd postern; do
    [ -f "$bindir/$b" ] || die "no $b in $bindir (build it, or set POSTERN_BUILD_DIR)"
done

# The workspace's version (`version.workspace = true` in every crate). A
# native package: the version carries no Debian revision.
version=$(sed -n '/^\[workspace\.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' "$src/Cargo.toml")
[ -n "$version" ] || die "no version in [workspace.package] of Cargo.toml"
arch=$(dpkg --print-architecture)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root="$work/root"

# --- the tree: install.sh's, moved to Debian's places ----------------------
POSTERN_BUILD_DIR="$bindir" bash "$src/scripts/install.sh" \
    --destdir "$root" --prefix /usr --no-build --no-users >/dev/null
# The postinst makes the spool and the mailboxes once their users exist:
# dpkg would create them as root's and remove them (with queued mail) on
# every removal.
rm -rf "$root/var"
# A packaged unit lives in /lib; /etc/systemd/system is the administrator's.
mkdir -p "$root/lib/systemd/system"
mv "$root/etc/systemd/system/posternd.service" "$root/lib/systemd/system/"
rm -r "$root/etc/systemd"
# Where postfix and exim4 put the sendmail names: mailq and newaliases in
# /usr/bin, runq and sendmail in /usr/sbin, and /usr/lib/sendmail for old
# programs.
for name in mailq newaliases; do
    rm "$root/usr/sbin/$name"
    ln -s postern "$root/usr/bin/$name"
done
install -d -m 0755 "$root/usr/lib"
ln -s ../sbin/sendmail "$root/usr/lib/sendmail"
for b in usr/sbin/posternd usr/bin/postern; do
    # As dh_strip does; the debug builds of the tests carry megabytes of it.
    strip --strip-unneeded --remove-section=.comment --remove-section=.note "$root/$b"
done
doc="$root/usr/share/doc/postern"
install -d -m 0755 "$doc"
install -m 0644 "$pkg/copyright" "$doc/copyright"
# -n: no name or time in the gzip header, so the package is reproducible.
gzip -9n <"$pkg/changelog" >"$doc/changelog.gz"
chmod 0644 "$doc/changelog.gz"

# --- DEBIAN/ ----------------------------------------------------------------
control="$root/DEBIAN"
install -d -m 0755 "$control"
for f in postinst prerm postrm; do
    install -m 0755 "$pkg/$f" "$control/$f"
done
install -m 0644 "$pkg/conffiles" "$control/conffiles"
while read -r conffile; do
    [ -f "$root$conffile" ] || die "conffile $conffile is not in the tree"
done <"$pkg/conffiles"

# Shared-library dependencies as dpkg-shlibdeps computes them (it wants a
# debian/control to read, so it gets a minimal one of its own).
shlibs="libc6 (>= 2.34), libssl3 (>= 3.0.0), libgcc-s1 (>= 4.2)"
if command -v dpkg-shlibdeps >/dev/null; then
    mkdir -p "$work/src/debian"
    printf 'Source: postern\n\nPackage: postern\nArchitecture: any\n' >"$work/src/debian/control"
    computed=$(cd "$work/src" && dpkg-shlibdeps -O "$root/usr/sbin/posternd" "$root/usr/bin/postern" 2>/dev/null) ||
        die "dpkg-shlibdeps failed"
    shlibs=${computed#shlibs:Depends=}
else
    echo "package-deb.sh: no dpkg-shlibdeps (dpkg-dev): using $shlibs" >&2
fi

(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' |
    LC_ALL=C sort -z | xargs -0 md5sum) >"$control/md5sums"
chmod 0644 "$control/md5sums"
installed_size=$(du -s -k --apparent-size --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" \
    -e "s/@INSTALLED_SIZE@/$installed_size/" -e "s/@SHLIBS@/$shlibs/" \
    "$pkg/control.in" >"$control/control"

mkdir -p "$output"
deb="$(cd "$output" && pwd)/postern_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
