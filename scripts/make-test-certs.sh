#!/usr/bin/env bash
# Makes a throwaway certificate authority and certificates for TLS tests (nothing here is
# committed; each test run makes its own):
#
#   scripts/make-test-certs.sh DIR
#
# DIR gets ca.pem/ca.key (a test CA), server.pem/server.key (signed by it, for localhost
# and 127.0.0.1), client.pem/client.key (signed by it, CN=conductor-test-client), and
# other-ca.pem plus other-client.pem/.key (a second, untrusted CA and a client it signed),
# and misnamed.pem/.key (signed by ca, but only for other.example.com).
#
#   scripts/make-test-certs.sh --self-signed DIR NAME ADDRESS...
#
# makes DIR/NAME.pem and NAME.key, a self-signed certificate for those addresses (IP
# addresses or DNS names): what an operator may give `--bus-tls-cert` (the launch tests'
# embedded bus, reached by test hosts at the testnet's bridge address).
# EC P-256 keys: quick to make. Valid for 2 days. Needs the openssl CLI.
set -euo pipefail

command -v openssl > /dev/null || { echo "make-test-certs.sh: the openssl CLI is needed" >&2; exit 1; }

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2> /dev/null; }

if [ "${1:-}" = --self-signed ]; then
    dir="${2:?usage: $0 --self-signed DIR NAME ADDRESS...}"
    name="${3:?usage: $0 --self-signed DIR NAME ADDRESS...}"
    shift 3
    [ "$#" -gt 0 ] || { echo "make-test-certs.sh: --self-signed needs at least one address" >&2; exit 1; }
    sans=
    for address in "$@"; do
        case "$address" in
            *:*) kind=IP ;;
            *[!0-9.]*) kind=DNS ;;
            *) kind=IP ;;
        esac
        sans="${sans:+$sans,}$kind:$address"
    done
    mkdir -p "$dir"
    cd "$dir"
    key "$name.key"
    openssl req -x509 -new -key "$name.key" -out "$name.pem" -days 2 -subj "/CN=$name" \
        -addext "subjectAltName=$sans" -addext "extendedKeyUsage=serverAuth" 2> /dev/null
    chmod 600 "$name.key"
    echo "$dir/$name.pem"
    exit 0
fi

dir="${1:?usage: $0 DIR}"
mkdir -p "$dir"
cd "$dir"

# ca NAME CN
ca() {
    key "$1.key"
    openssl req -x509 -new -key "$1.key" -out "$1.pem" -days 2 -subj "/CN=$2" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2> /dev/null
}

# leaf NAME CA CN EXTENSIONS
leaf() {
    key "$1.key"
    openssl req -new -key "$1.key" -out "$1.csr" -subj "/CN=$3" 2> /dev/null
    printf '%s\n' "$4" > "$1.ext"
    openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -out "$1.pem" -days 2 \
        -extfile "$1.ext" 2> /dev/null
    rm -f "$1.csr" "$1.ext"
}

ca ca "Conductor Test CA"
ca other-ca "Some Other CA"
leaf server ca localhost "$(printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth')"
leaf client ca conductor-test-client "$(printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth')"
leaf misnamed ca other.example.com "$(printf 'subjectAltName=DNS:other.example.com\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth')"
leaf other-client other-ca intruder "$(printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth')"
chmod 600 ./*.key
echo "$dir"
