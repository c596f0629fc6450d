#!/usr/bin/env bash
# Installs, from Debian, the real servers the test suite starts: OpenSSH's sshd, the SFTP server
# of tests/sshd.py (ssh-keygen comes with it), and PostgreSQL, Dagster's production storage in
# tests/postgres_server.py; and xmlsec1, the program pysaml2 runs to check SAML signatures
# (lb_pipelines/ui/saml.py); and chromium with its chromedriver, the headless browser of
# tests/test_ui_browser.py. Idempotent and quiet: does nothing when they are present, and runs
# `apt-get update` at most once. The tests start their own servers on free ports, never the
# packages' system services (which Debian may start on install where systemd runs).
set -euo pipefail

packages=()
[[ -x /usr/sbin/sshd && -x /usr/bin/ssh-keygen ]] || packages+=(openssh-server)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || packages+=(postgresql)
[[ -x /usr/bin/xmlsec1 ]] || packages+=(xmlsec1)
[[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]] || packages+=(chromium chromium-driver)
[[ ${#packages[@]} -eq 0 ]] && exit 0

if [[ ${EUID:-$(id -u)} -ne 0 ]]; then
    echo "install-test-services: ${packages[*]} missing and installing needs root;" >&2
    echo "  as root run: apt-get install -y --no-install-recommends ${packages[*]}" >&2
    exit 1
fi

echo "install-test-services: installing ${packages[*]} (for the SFTP, PostgreSQL, SAML and browser tests)" >&2
log=$(mktemp)
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${packages[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "install-test-services: could not install ${packages[*]} (see apt-get output above)" >&2
    exit 1
fi
if [[ ! -x /usr/sbin/sshd ]]; then
    echo "install-test-services: openssh-server installed but /usr/sbin/sshd is missing" >&2
    exit 1
fi
if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
    echo "install-test-services: postgresql installed but no /usr/lib/postgresql/*/bin/initdb" >&2
    exit 1
fi
if [[ ! -x /usr/bin/xmlsec1 ]]; then
    echo "install-test-services: xmlsec1 installed but /usr/bin/xmlsec1 is missing" >&2
    exit 1
fi
if [[ ! -x /usr/bin/chromium || ! -x /usr/bin/chromedriver ]]; then
    echo "install-test-services: chromium and chromium-driver installed but /usr/bin/chromium or /usr/bin/chromedriver is missing" >&2
    exit 1
fi
