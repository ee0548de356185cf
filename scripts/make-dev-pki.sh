#!/usr/bin/env bash
# Regenerates the development PKI and log key in testdata/dev/ with openssl.
# NOT FOR PRODUCTION: the private keys are checked in so anyone can make more
# test certificates. The leaves' NotAfter (2026-12-15) sits inside the
# example config's window [2026-01-01, 2027-01-01) (testdata/dev.toml),
# whatever the day this runs: `openssl ca` issues them with fixed dates,
# where `openssl x509 -days` could not reach a day already past.
set -euo pipefail
cd "$(dirname "$0")/../testdata/dev"
ca_dir=$(mktemp -d)
trap 'rm -rf "$ca_dir"' EXIT
touch "$ca_dir/index.txt"
printf '%s\n' "[ca]" "default_ca = dev" "[dev]" "database = $ca_dir/index.txt" \
  "serial = $ca_dir/serial" "new_certs_dir = $ca_dir" "default_md = sha256" "policy = any" \
  "unique_subject = no" "[any]" "commonName = supplied" >"$ca_dir/ca.cnf"

# The log key, in the format `openssl ecparam -genkey` writes (SEC1 with an
# EC PARAMETERS block), which the server must accept.
openssl ecparam -name prime256v1 -genkey -out log-key.pem

openssl ecparam -name prime256v1 -genkey -noout -out root-key.pem
openssl req -x509 -new -key root-key.pem -subj "/O=ct-log dev/CN=ct-log dev root (not for production)" \
  -days 3650 -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out roots.pem

openssl ecparam -name prime256v1 -genkey -noout -out intermediate-key.pem
openssl req -new -key intermediate-key.pem -subj "/O=ct-log dev/CN=ct-log dev intermediate" -out int.csr
openssl x509 -req -in int.csr -CA roots.pem -CAkey root-key.pem -set_serial 2 -days 3650 \
  -extfile <(printf "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\n") -out intermediate.pem

make_leaf() { # name extra-extension
  openssl ecparam -name prime256v1 -genkey -noout -out "$1-key.pem"
  openssl req -new -key "$1-key.pem" -subj "/CN=$1.dev.invalid" -out "$1.csr"
  openssl rand -hex 8 >"$ca_dir/serial"
  openssl ca -batch -notext -config "$ca_dir/ca.cnf" -cert intermediate.pem -keyfile intermediate-key.pem \
    -in "$1.csr" -startdate 20260101000000Z -enddate 20261215000000Z -out "$1.pem" \
    -extfile <(printf "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:$1.dev.invalid\n%s\n" "$2")
  rm "$1.csr" "$1-key.pem"
}
make_leaf leaf ""
make_leaf precert "1.3.6.1.4.1.11129.2.4.3=critical,DER:05:00"

b64() { openssl x509 -in "$1" -outform DER | base64 -w0; }
printf '{"chain":["%s","%s"]}\n' "$(b64 leaf.pem)" "$(b64 intermediate.pem)" > add-chain.json
printf '{"chain":["%s","%s"]}\n' "$(b64 precert.pem)" "$(b64 intermediate.pem)" > add-pre-chain.json
rm int.csr
