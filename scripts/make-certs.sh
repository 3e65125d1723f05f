#!/usr/bin/env bash
# Makes a private CA and a host certificate signed by it, as the sendmail
# Cookbook's recipes 8.2 and 8.3 do: DIR/cacert.pem (the CA), DIR/cert.pem
# and DIR/key.pem (the host's certificate and its unencrypted key, mode
# 0600), plus the CA's own key under DIR/private/.
#   usage: scripts/make-certs.sh DIR HOSTNAME
set -euo pipefail
dir=${1:?usage: make-certs.sh DIR HOSTNAME}
host=${2:?usage: make-certs.sh DIR HOSTNAME}
mkdir -p "$dir/private"
chmod 0700 "$dir/private"
umask 077
openssl req -x509 -newkey rsa:2048 -nodes -days 3650 \
    -subj "/CN=Postern test CA" \
    -keyout "$dir/private/cakey.pem" -out "$dir/cacert.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes \
    -subj "/CN=$host" \
    -keyout "$dir/key.pem" -out "$dir/cert.csr" 2>/dev/null
printf 'subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth,clientAuth\ncrlDistributionPoints=URI:http://%s/postern-ca.crl\n' "$host" "$host" > "$dir/cert.ext"
openssl x509 -req -in "$dir/cert.csr" -CA "$dir/cacert.pem" -CAkey "$dir/private/cakey.pem" \
    -CAcreateserial -days 825 -extfile "$dir/cert.ext" -out "$dir/cert.pem" 2>/dev/null
rm -f "$dir/cert.csr" "$dir/cert.ext"
chmod 0644 "$dir/cacert.pem" "$dir/cert.pem"
chmod 0600 "$dir/key.pem"
# CACertPath is a directory of certificates named by their hash (c_rehash).
ln -sf cacert.pem "$dir/$(openssl x509 -hash -noout -in "$dir/cacert.pem").0"
echo "$dir"
