#!/usr/bin/env bash
# Prepares a Debian/Ubuntu machine for victor_gui: Qt's system libraries, a virtualenv in .venv
# and the package installed into it. `setup.sh app` installs what the app needs; `setup.sh test`
# adds the test tools and the llama.cpp server the integration tier runs against.
set -euo pipefail
mode=${1:-app}
cd "$(dirname "$0")/.."

# Qt (offscreen and xcb) needs these shared libraries; Xvfb is for screenshots and GUI runs.
pkgs=(libgl1 libegl1 libxkbcommon0 libfontconfig1 libdbus-1-3 libglib2.0-0
      libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-render-util0
      libxcb-shape0 libxcb-xkb1 libxkbcommon-x11-0 xvfb)
# Test mode also builds the installer (nsis) and installs it silently under Wine (wine64; the
# `wine` package provides the /usr/bin/wine launcher) in the packaging tests; the Windows tier
# (tests/packaging/wine_tier.py) compiles its Wine-only stub DLLs with MinGW.
# xdotool lists the Windows app's windows on Xvfb (the tier's single-instance step).
[ "$mode" = test ] && pkgs+=(cmake g++ make nsis wine wine64 gcc-mingw-w64-x86-64-win32 xdotool)
# The Windows bundle's llama-server.exe is cross-compiled with mingw-w64 (POSIX threads).
[ "$mode" = test ] && pkgs+=(gcc-mingw-w64-x86-64-posix g++-mingw-w64-x86-64-posix)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "installing system packages: ${missing[*]}"
  # Another apt or dpkg (unattended-upgrades on a fresh machine, a package manager window) may
  # hold a lock: wait for it (up to 10 minutes) instead of failing at once. DPkg::Lock::Timeout
  # covers dpkg's lock; the lists lock of `apt-get update` is retried by apt_wait.
  apt_wait() {
    local out tries=0
    until out=$("$@" 2>&1); do
      if ! grep -qiE "could not get lock|unable to lock|is another process using it" <<<"$out" \
          || [ $((tries += 1)) -gt 60 ]; then
        printf '%s\n' "$out" >&2
        return 1
      fi
      [ $tries -eq 1 ] && echo "waiting for another apt/dpkg to finish…" >&2
      sleep 10
    done
  }
  lock=(-o DPkg::Lock::Timeout=600)
  apt_wait $sudo apt-get "${lock[@]}" update -qq
  apt_wait env DEBIAN_FRONTEND=noninteractive $sudo apt-get "${lock[@]}" install -y -qq \
    --no-install-recommends "${missing[@]}"
fi

py=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$py" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if [ "$mode" = test ]; then
  .venv/bin/python -m pip install -q -e '.[dev,packaging,mcp,documents,heic,hub]'
  if [ -f tests/support/llama_build.py ]; then
    .venv/bin/python -m tests.support.llama_build --ensure
  fi
  # The same sources cross-built for Windows (packaging tests run it under Wine); CI=true fails on error.
  if [ -f packaging/llama_windows.py ]; then
    .venv/bin/python packaging/llama_windows.py --ensure || [ -z "${CI:-}" ]
  fi
else
  .venv/bin/python -m pip install -q -e '.[mcp,documents,heic,hub]'
fi
