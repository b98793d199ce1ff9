#!/usr/bin/env bash
# The real VS Code host for the in-host suite: Debian's chromium (the browser that opens the
# workbench), ripgrep (code-server's search; its postinstall would download one from GitHub)
# and libkrb5-dev (code-server's kerberos module compiles), then code-server and
# playwright-core at the versions package-lock.json pins. Idempotent.
set -euo pipefail
cd "$(dirname "$0")"
packages=(chromium ripgrep libkrb5-dev)
if ! dpkg -s "${packages[@]}" > /dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get install -y -q "${packages[@]}" \
        || { $sudo apt-get update -q && $sudo apt-get install -y -q "${packages[@]}"; }
fi
# Before npm ci, not as the package's preinstall: npm 11 runs a root preinstall only after the
# dependencies' install scripts, and code-server's would already have tried GitHub and failed.
node ripgrep-cache.mjs
# node-pty's build runs `npx node-gyp`; as root npm needs these to run it unattended.
npm_config_unsafe_perm=true npm_config_yes=true npm ci --no-audit --no-fund
