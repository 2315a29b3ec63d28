#!/usr/bin/env bash
# What the test suite needs from the system, beyond npm packages:
#  - Debian's Chromium (end-to-end tests; it also ships SwiftShader's Vulkan driver, the CPU
#    WebGPU adapter used by the Node unit tests when there is no GPU);
#  - the Vulkan loader (libvulkan1), which Dawn's Node binding opens.
# Installs what is missing when run as root on Debian/Ubuntu; otherwise says what to install.
set -euo pipefail
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1'; then missing+=(libvulkan1); fi
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "Installing system packages the tests need: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  echo "Installed: ${missing[*]}"
else
  echo "The tests need these system packages: ${missing[*]}." >&2
  echo "Install them with: sudo apt-get install -y ${missing[*]}   (Debian/Ubuntu)" >&2
  exit 1
fi
