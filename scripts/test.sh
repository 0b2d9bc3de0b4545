#!/usr/bin/env bash
# Installs what the test suite needs and runs it: formatting, lints, and
# every unit and end-to-end test of the workspace.
#
# The engine and the CSV connector need no server. The SQL connector's
# end-to-end tests start their own PostgreSQL (Debian's `postgresql`
# package: initdb and postgres under /usr/lib/postgresql/*/bin) on
# 127.0.0.1; the LDAP connector's start their own Samba AD domain
# controller and OpenLDAP slapd there; the console's browser test drives
# Debian's Chromium through chromedriver.
set -euo pipefail
cd "$(dirname "$0")/.."

install_packages() {
    local packages=()
    # PostgreSQL's server, for the SQL connector's tests (they start it themselves).
    if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
        packages+=(postgresql)
    fi
    # A Samba AD domain controller and OpenLDAP's slapd, for the LDAP
    # connector's tests (they provision and start their own on 127.0.0.1),
    # the OpenLDAP client tools they drive them with, and openssl for the
    # test CA.
    for tool in samba samba-tool slapd ldapadd openssl; do
        if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$tool" ]; then
            packages+=(samba samba-ad-dc samba-ad-provision winbind slapd ldap-utils openssl)
            break
        fi
    done
    if [ ! -d /usr/share/samba/setup ]; then
        packages+=(samba-ad-provision)
    fi
    # Chromium and its WebDriver, for the console's browser test (started
    # headless by the test on 127.0.0.1).
    if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
        packages+=(chromium chromium-driver)
    fi
    if [ ${#packages[@]} -gt 0 ]; then
        if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}"
        # The packages' own services must not hold the ports the tests'
        # servers use (Samba's are fixed: 389, 636).
        for service in slapd samba-ad-dc smbd nmbd winbind; do
            $sudo service "$service" stop >/dev/null 2>&1 || true
        done
        # Where there is no service manager, a server the packages started
        # is stopped by name (no test has started yet).
        $sudo pkill -x slapd >/dev/null 2>&1 || true
        $sudo pkill -x samba >/dev/null 2>&1 || true
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
