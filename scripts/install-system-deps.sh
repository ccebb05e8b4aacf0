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
  qemu-utils        # qemu-img: guest disks (overlays, snapshots), image format inspector tests
  dnsmasq-base      # DHCP/DNS/router advertisements per network (network agent)
  nftables          # security groups, SNAT and floating IPs (network agent)
  busybox-static    # udhcpc and friends inside test namespaces (network dataplane tests)
)
# The noVNC web client the console proxy serves. Debian's `novnc` package drags in nodejs, numpy and
# websockify (Kumo has its own proxy), so only its static files are unpacked, like the tiny image's debs.
NOVNC_DIR=/usr/local/share/kumo/novnc

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
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
if [ "${#missing[@]}" -gt 0 ]; then
  echo "kumo: installing system packages: ${missing[*]}"
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
if [ ! -f "$NOVNC_DIR/vnc_lite.html" ] && [ ! -f /usr/share/novnc/vnc_lite.html ]; then
  echo "kumo: unpacking the noVNC web client into $NOVNC_DIR"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  if ! (cd "$work" && apt-get download -q novnc >/dev/null 2>&1); then
    $SUDO apt-get update -q && (cd "$work" && apt-get download -q novnc >/dev/null 2>&1)
  fi
  dpkg-deb -x "$work"/novnc_*.deb "$work/root"
  $SUDO mkdir -p "$NOVNC_DIR"
  $SUDO cp -a "$work/root/usr/share/novnc/." "$NOVNC_DIR/"
fi
