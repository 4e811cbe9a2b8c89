#!/usr/bin/env bash
# System packages the tests need on a fresh Debian machine (CI). Safe to rerun.
#   postgresql, redis-server: real servers on loopback for the datastores external-mode tests
#   openssl, curl, iproute2: certificates, health checks and port checks of the hermetic test cluster
#   time: peak-memory figures of the tool builds
#   npm (with Node.js), unless already on PATH: the chart's readme-generator-for-helm (tools/readme-generator, npm ci)
set -euo pipefail
packages=(postgresql redis-server openssl git curl iproute2 time)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
command -v npm >/dev/null 2>&1 || missing+=(npm)
if ((${#missing[@]})); then
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  # Packaged services must not start and hold the default ports; tests start their own on loopback.
  echo exit 101 | $sudo_cmd tee /usr/sbin/policy-rc.d >/dev/null && $sudo_cmd chmod +x /usr/sbin/policy-rc.d
  $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
  $sudo_cmd rm -f /usr/sbin/policy-rc.d
fi
echo "system packages present: ${packages[*]}"
