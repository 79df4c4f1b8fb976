#!/usr/bin/env bash
# Debian's podman with runc (crun refuses these machines' hybrid cgroup layout) and mmdebstrap (the stand-in bases of
# hack/images.sh): installed with apt-get when missing (about 10 s warm, once per machine).
set -euo pipefail
log() { echo "podman: $*" >&2; }
pkgs=(podman runc mmdebstrap uidmap)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -eq 0 ]; then log "installed: $(podman --version)"; command -v podman; exit 0; fi
command -v apt-get >/dev/null || { log "needs apt-get (a Debian-based machine); install ${missing[*]} yourself"; exit 1; }
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
install() { $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2; }
if ! install; then
  log "apt-get install failed; refreshing the package lists (apt-get update) and retrying"
  $sudo apt-get update -q >&2
  install
fi
log "installed: $(podman --version)"
command -v podman
