#!/usr/bin/env bash
# Installs, from Debian/Ubuntu packages, the third-party programs the interop suite
# (npm run test:interop) drives, unless they are already on PATH:
#   openssl, curl, redis-server + redis-tools (redis-cli, redis-benchmark),
#   mariadb-server + mariadb-client (mariadbd, mariadb-install-db, mariadb), iperf3,
#   haproxy and nginx (SNI passthrough and the PROXY protocol both ways),
#   prometheus + promtool (scraping /metrics, the Grafana dashboard's queries).
# python3 (for its http.server) is expected to be there already; it is installed too if not.
# Needs root (or sudo). Safe to run again: it does nothing when everything is present.
set -euo pipefail

# command → package that provides it
declare -A needs=(
  [openssl]=openssl
  [curl]=curl
  [redis-server]=redis-server
  [redis-cli]=redis-tools
  [redis-benchmark]=redis-tools
  [mariadbd]=mariadb-server
  [mariadb-install-db]=mariadb-server
  [mariadb]=mariadb-client
  [iperf3]=iperf3
  [python3]=python3
  [haproxy]=haproxy
  [nginx]=nginx
  [prometheus]=prometheus
  [promtool]=prometheus
)

# mariadbd and friends live in /usr/sbin, which is not always on a user's PATH.
export PATH="$PATH:/usr/sbin:/sbin"

missing=()
for cmd in "${!needs[@]}"; do
  if ! command -v "$cmd" >/dev/null 2>&1; then
    pkg=${needs[$cmd]}
    [[ " ${missing[*]-} " == *" $pkg "* ]] || missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "interop: everything is installed"
  exit 0
fi

SUDO=
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "interop: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi

echo "interop: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# iperf3's package asks whether to start a daemon at boot; answer no without a prompt.
echo 'iperf3 iperf3/start_daemon boolean false' | $SUDO debconf-set-selections 2>/dev/null || true
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"

# The suite starts its own redis-server, mariadbd, iperf3 and prometheus on free ports; stop the
# system services the packages may have started (harmless where there is no init system).
for svc in redis-server mariadb iperf3 haproxy nginx prometheus; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
    $SUDO systemctl stop "$svc" || true
  fi
done

for cmd in "${!needs[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || { echo "interop: $cmd still missing after install" >&2; exit 1; }
done
echo "interop: installed ${missing[*]}"
