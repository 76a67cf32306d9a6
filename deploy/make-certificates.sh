#!/usr/bin/env bash
# Makes the TLS certificates of a site: a certificate authority of the site's own (the meters and
# the browsers' devices are given its ca.crt, or use a public certificate for the web instead,
# see deploy/README.md) and one server certificate for the broker's meter listener and the pages.
# Never commit what it writes (keys are readable by their owner only).
#
#   deploy/make-certificates.sh OUT_DIR NAME [NAME...]     e.g. hub.pdch.example 192.0.2.10
#
# Each NAME becomes a subjectAltName (an IP address or a DNS name). Re-running keeps the authority
# (so the meters keep trusting it) and makes a new server certificate.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 OUT_DIR NAME [NAME...]" >&2; exit 2; }
out=$1; shift
mkdir -p "$out"
umask 077
san=""
for name in "$@"; do
  if [[ $name =~ ^[0-9.]+$ || $name == *:* ]]; then san+="IP:$name,"; else san+="DNS:$name,"; fi
done
san=${san%,}
if [ ! -f "$out/ca.key" ]; then
  openssl req -x509 -newkey rsa:3072 -sha256 -days 3650 -nodes -keyout "$out/ca.key" -out "$out/ca.crt" \
    -subj "/O=Community hub/CN=Community hub certificate authority" 2>/dev/null
fi
openssl req -newkey rsa:2048 -sha256 -nodes -keyout "$out/server.key" -out "$out/server.csr" -subj "/O=Community hub/CN=$1" 2>/dev/null
printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' "$san" > "$out/server.ext"
openssl x509 -req -in "$out/server.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" -CAcreateserial -days 825 -sha256 \
  -extfile "$out/server.ext" -out "$out/server.crt" 2>/dev/null
rm -f "$out/server.csr" "$out/server.ext"
chmod 644 "$out/ca.crt" "$out/server.crt"
echo "certificates in $out: ca.crt (give it to the meters), server.crt and server.key (broker and web), for $san"
