#!/usr/bin/env bash
# Installs the Debian packages Kumo needs on a bare machine. Idempotent:
# packages already present are not touched, and apt is only called when
# something is missing. Needs root (or sudo) when it has to install.
set -euo pipefail

PACKAGES=(
  python3-venv      # the project venv
  ca-certificates
  iproute2          # ip netns / bridges (network agent, tests)
  qemu-system-x86   # boots guests (compute; the tiny-image boot test)
  dosfstools        # mkfs.vfat: config drives (tiny-image boot test)
  mtools            # mmd/mcopy: fill a vfat config drive without mounting it
  qemu-utils        # qemu-img (image format inspector tests)
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# A python3 that can already make venvs (e.g. pyenv's) makes python3-venv moot.
if python3 -c 'import ensurepip, venv' 2>/dev/null; then
  filtered=()
  for pkg in "${missing[@]}"; do [ "$pkg" = python3-venv ] || filtered+=("$pkg"); done
  missing=("${filtered[@]+"${filtered[@]}"}")
fi
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
echo "kumo: installing system packages: ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
