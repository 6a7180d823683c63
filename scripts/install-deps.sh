#!/usr/bin/env bash
# Installs the Debian packages scimd needs to build and test, when missing.
# Usage: scripts/install-deps.sh [--test | --fuzz]
#   --test   also install what the test suite needs (PostgreSQL server, Node.js/npm, clang,
#            the openssl CLI for the TLS test's certificate).
#   --fuzz   also install what `make fuzz` needs (clang and libFuzzer, with the --test packages).
set -euo pipefail

pkgs=(build-essential cmake pkg-config libmicrohttpd-dev libjansson-dev libsqlite3-dev
      libpq-dev libssl-dev libargon2-dev)
if [ "${1:-}" = "--test" ] || [ "${1:-}" = "--fuzz" ]; then
    pkgs+=(libcmocka-dev libcurl4-openssl-dev curl sqlite3 openssl postgresql nodejs npm)
fi
if [ "${1:-}" = "--fuzz" ]; then
    pkgs+=(clang libclang-rt-14-dev)
fi

missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
# nodejs/npm may come from outside Debian's packages on some machines: a working npm is enough.
if command -v npm >/dev/null 2>&1; then
    filtered=()
    for p in "${missing[@]}"; do
        case "$p" in nodejs|npm) ;; *) filtered+=("$p") ;; esac
    done
    missing=("${filtered[@]+"${filtered[@]}"}")
fi
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
