#!/usr/bin/env bash
# Installs what the test suite needs and runs it: formatting, lints, and
# every unit and end-to-end test of the workspace.
#
# The engine and the CSV connector need no server. The SQL connector's
# end-to-end tests start their own PostgreSQL (Debian's `postgresql`
# package: initdb and postgres under /usr/lib/postgresql/*/bin) on
# 127.0.0.1; connectors that test against other real servers (Samba AD,
# OpenLDAP) add their Debian packages to install_packages below.
set -euo pipefail
cd "$(dirname "$0")/.."

install_packages() {
    local packages=()
    # PostgreSQL's server, for the SQL connector's tests (they start it themselves).
    if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
        packages+=(postgresql)
    fi
    if [ ${#packages[@]} -gt 0 ]; then
        if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${packages[@]}"
    fi
}

install_packages
rustup component add rustfmt clippy >/dev/null 2>&1 || true

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
