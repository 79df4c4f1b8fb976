#!/usr/bin/env bash
# Debian's Chromium for the browser test of the demo report (tests/integration/test_report_browser.py): installed with
# apt-get when /usr/bin/chromium is missing (about 20 s warm, once per machine). Prints the binary's path on stdout.
set -euo pipefail
log() { echo "chromium: $*" >&2; }
if [ -x /usr/bin/chromium ]; then
  log "installed: $(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium)"
  echo /usr/bin/chromium
  exit 0
fi
command -v apt-get >/dev/null || { log "needs apt-get (a Debian-based machine); install Chromium yourself"; exit 1; }
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
install() { $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >&2; }
if ! install; then
  log "apt-get install failed; refreshing the package lists (apt-get update) and retrying"
  $sudo apt-get update -q >&2
  install
fi
log "installed: $(/usr/bin/chromium --version 2>/dev/null)"
echo /usr/bin/chromium
