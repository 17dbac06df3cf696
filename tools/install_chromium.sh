#!/usr/bin/env bash
# Chromium for the browser tests (tests/browser), from Debian's packages: never a browser download.
# Installs with apt-get when this runs as root (CI) or with password-less sudo; elsewhere it says how and the browser
# tests skip. An install that is attempted and fails is an error, so CI never skips those tests silently.
set -euo pipefail

if [ -n "${SPECDEC_LAB_CHROMIUM:-}" ] || command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install_chromium: no apt-get on this machine; the browser tests will skip." \
       "Install Chromium and set SPECDEC_LAB_CHROMIUM=/path/to/chromium to run them." >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo"
  else
    echo "install_chromium: not root; run 'sudo apt-get install -y chromium' to run the browser tests (they skip now)." >&2
    exit 0
  fi
fi
echo "install_chromium: apt-get install chromium (Debian's package, for the browser tests)"
for attempt in 1 2 3; do
  if $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null; then
    exit 0
  fi
  echo "install_chromium: attempt $attempt failed; retrying" >&2
  sleep 10
done
echo "install_chromium: could not install chromium with apt-get" >&2
exit 1
