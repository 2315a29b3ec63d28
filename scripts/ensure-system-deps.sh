#!/usr/bin/env bash
# What the test suite needs from the system, beyond npm packages:
#  - Debian's Chromium (end-to-end tests; it also ships SwiftShader's Vulkan driver, the CPU
#    WebGPU adapter used by the Node unit tests when there is no GPU);
#  - the Vulkan loader (libvulkan1), which Dawn's Node binding opens;
#  - Mesa's lavapipe, version 24 or later (mesa-vulkan-drivers): a second CPU Vulkan driver, with
#    `shader-f16`, which SwiftShader lacks; the f16 tests (test/unit/*.f16.test.ts) run on it.
#    Debian 12's own mesa 22.3 lavapipe is refused by Dawn ("shaderUniform*ArrayDynamicIndexing
#    required"), so on Debian 12 it comes from bookworm-backports (mesa 25).
# Installs what is missing when run as root on Debian/Ubuntu; otherwise says what to install.
# Chromium and the Vulkan loader are required (exit 1 without them). A missing lavapipe only
# warns here: the suite's f16 pass then fails with its own sentence, so nothing passes silently.
# Installing lavapipe leaves SwiftShader as it was: the suite picks each driver by
# VK_ICD_FILENAMES (SwiftShader's for the unit tests, lavapipe's for the f16 pass).
set -euo pipefail

BACKPORTS_LINE='deb http://deb.debian.org/debian bookworm-backports main'
BACKPORTS_FILE=/etc/apt/sources.list.d/bookworm-backports.list

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
# ldconfig lives in /sbin, which a non-root PATH often lacks.
if ! "$(command -v ldconfig || echo /sbin/ldconfig)" -p 2>/dev/null | grep -q 'libvulkan\.so\.1'; then missing+=(libvulkan1); fi

# The installed lavapipe's Mesa version (empty when mesa-vulkan-drivers is not installed).
mesa_version() { dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true; }
lavapipe_recent() {
  local v
  v=$(mesa_version)
  [ -n "$v" ] && dpkg --compare-versions "$v" ge 24
}
codename() { (. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}") || true; }

need_lavapipe=0
if command -v dpkg-query >/dev/null && ! lavapipe_recent; then need_lavapipe=1; fi

[ ${#missing[@]} -eq 0 ] && [ $need_lavapipe -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  if [ ${#missing[@]} -gt 0 ]; then
    echo "The tests need these system packages: ${missing[*]}." >&2
    echo "Install them with: sudo apt-get install -y ${missing[*]}   (Debian/Ubuntu)" >&2
  fi
  if [ $need_lavapipe -eq 1 ]; then
    v=$(mesa_version)
    echo "The f16 tests need Mesa's lavapipe 24 or later (installed: ${v:-none}); on Debian 12:" >&2
    echo "  echo '$BACKPORTS_LINE' | sudo tee $BACKPORTS_FILE && sudo apt-get update && sudo apt-get install -y -t bookworm-backports mesa-vulkan-drivers" >&2
    echo "(elsewhere: sudo apt-get install -y mesa-vulkan-drivers, if your release has Mesa 24 or later). Without it the f16 tests fail." >&2
  fi
  if [ ${#missing[@]} -gt 0 ]; then exit 1; fi
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing system packages the tests need: ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
  echo "Installed: ${missing[*]}"
fi

if [ $need_lavapipe -eq 1 ]; then
  before=$(mesa_version)
  if [ "$(codename)" = bookworm ]; then
    if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
      echo "Adding Debian's bookworm-backports ($BACKPORTS_FILE) for Mesa's lavapipe 25"
      echo "$BACKPORTS_LINE" >"$BACKPORTS_FILE"
    fi
    echo "Installing Mesa's lavapipe from bookworm-backports (mesa-vulkan-drivers; installed: ${before:-none})"
    apt-get update -qq
    # -t bookworm-backports only for this package and what it depends on; nothing else is upgraded.
    if ! apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers >/dev/null; then
      echo "Warning: installing mesa-vulkan-drivers from bookworm-backports failed; the f16 tests will fail." >&2
    fi
  else
    echo "Installing Mesa's lavapipe (mesa-vulkan-drivers; installed: ${before:-none})"
    apt-get update -qq
    apt-get install -y -qq mesa-vulkan-drivers >/dev/null || true
  fi
  if lavapipe_recent; then
    echo "Mesa's lavapipe: $(mesa_version)"
  else
    after=$(mesa_version)
    echo "Warning: Mesa's lavapipe is ${after:-not installed} (24 or later is needed): the f16 tests will fail." >&2
  fi
fi
exit 0
