#!/usr/bin/env bash
# Install the Debian packages the project needs, only those missing, so a fresh machine sets
# itself up and a prepared one pays nothing. Needs root (or sudo) for apt-get.
set -euo pipefail
packages=(redis-server slapd ldap-utils chromium libnss3-tools postgresql shellcheck prometheus)
# The devstack's real node (opt-in): container runtime, CNI plugins, nftables for kube-proxy and
# the devstack's guard table, iptables for the kubelet's and portmap's chains, and the image tools.
if [ "${IMM_DEVSTACK_REAL_NODE:-0}" = 1 ]; then
  packages+=(containerd runc containernetworking-plugins nftables iptables debootstrap umoci)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "[deps] installing Debian packages: ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The packaged services must not hold the machine's default ports; the devstack runs its own.
for svc in redis-server slapd postgresql containerd prometheus; do
  $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || $SUDO service "$svc" stop >/dev/null 2>&1 || true
done
echo "[deps] done" >&2
