#!/usr/bin/env bash
# Starts a development instance of Postern in the foreground, no root needed:
# a generated configuration and a self-signed certificate under dev/state/,
# SMTP on 127.0.0.1:2525, local mail (for localhost and postern.test, to
# users of this machine) delivered into Maildirs under dev/state/mail/.
# Ctrl-C stops it.
#
# Started as root, it runs privilege-separated for real: it creates the
# system users `postern` (RunAsUser), `posternq` (QueueOwner) and
# `posternf` (FrontUser) if needed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
# Overridable for the test that runs this script: where the state lives,
# which port, and the posternd and postern binaries already built.
state="${POSTERN_DEV_STATE:-$root/dev/state}"
port="${POSTERN_DEV_PORT:-2525}"
bin="${POSTERN_BIN:-}"
cli="${POSTERN_CLI:-}"
mkdir -p "$state/certs" "$state/mail" "$state/spool" "$state/bin"

if [ "$(id -u)" -eq 0 ]; then
    for user in postern posternq posternf; do
        id "$user" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$user"
    done
    # Mailboxes are made and written by their owners: root's directory
    # they may pass through.
    chown root: "$state/mail"
    chmod 0711 "$state/mail"
    chown posternq: "$state/spool"
    chmod 0700 "$state/spool"
    chmod 0755 "$state" "$(dirname "$state")"
fi

if [ ! -f "$state/certs/cert.pem" ]; then
    scripts/make-certs.sh "$state/certs" localhost >/dev/null
fi

cat > "$state/postern.cf" <<CF
dnl Development instance, written by scripts/dev-start.sh
define(\`confCACERT_PATH', \`$state/certs')
define(\`confCACERT', \`$state/certs/cacert.pem')
define(\`confSERVER_CERT', \`$state/certs/cert.pem')
define(\`confSERVER_KEY', \`$state/certs/key.pem')
define(\`confCLIENT_CERT', \`$state/certs/cert.pem')
define(\`confCLIENT_KEY', \`$state/certs/key.pem')
O DaemonPortOptions=Port=$port, Addr=127.0.0.1, Name=MTA
O QueueDirectory=$state/spool
O MailboxDirectory=$state/mail
O ControlSocket=$state/control.sock
O LogLevel=9
O MinQueueAge=10s
Dj localhost
CF
printf 'localhost\npostern.test\n' > "$state/local-host-names"
touch "$state/mailertable"

if [ -z "$bin" ] || [ -z "$cli" ]; then
    cargo build --quiet -p postern-daemon --bin posternd -p postern-cli --bin postern
    bin="$root/target/debug/posternd"
    cli="$root/target/debug/postern"
fi
# sendmail, mailq, runq and newaliases for this instance: the multicall
# tool under each name, pointed at this configuration.
for name in sendmail mailq runq newaliases postern; do
    cat > "$state/bin/$name" <<TOOL
#!/usr/bin/env bash
export POSTERN_CONFIG='$state/postern.cf'
exec -a $name '$cli' "\$@"
TOOL
    chmod 0755 "$state/bin/$name"
done
# Mail goes to users that exist: you.
me=$(id -un)
cat <<MSG
Postern is starting on 127.0.0.1:$port (state in $state). Send a test message with:

  python3 -c 'import smtplib; smtplib.SMTP("127.0.0.1", $port).sendmail("me@localhost", ["$me@postern.test"], "Subject: hi\r\n\r\nHello from Postern.\r\n")'

or, with swaks installed:  swaks --server 127.0.0.1:$port --to $me@postern.test
or with this instance's sendmail, and look at its queue with mailq and runq:

  export PATH="$state/bin:\$PATH"
  printf 'Subject: hi\\n\\nHello.\\n' | sendmail $me@postern.test
  mailq; runq

It arrives in $state/mail/$me/Maildir/new/. Stop with Ctrl-C.
MSG
exec "$bin" -C "$state/postern.cf" --log-stderr
