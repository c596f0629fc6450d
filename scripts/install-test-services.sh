#!/usr/bin/env bash
# Installs, from Debian, the real servers the test suite starts: for now OpenSSH's sshd, the SFTP
# server of tests/sshd.py (ssh-keygen comes with it). Idempotent and quiet: does nothing when
# they are present. The package does not start a system sshd; the tests run their own.
set -euo pipefail

[[ -x /usr/sbin/sshd && -x /usr/bin/ssh-keygen ]] && exit 0

if [[ ${EUID:-$(id -u)} -ne 0 ]]; then
    echo "install-test-services: /usr/sbin/sshd is missing and installing it needs root;" >&2
    echo "  as root run: apt-get install -y --no-install-recommends openssh-server" >&2
    exit 1
fi

echo "install-test-services: installing openssh-server (for the SFTP tests)" >&2
log=$(mktemp)
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends openssh-server; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "install-test-services: could not install openssh-server (see apt-get output above)" >&2
    exit 1
fi
if [[ ! -x /usr/sbin/sshd ]]; then
    echo "install-test-services: openssh-server installed but /usr/sbin/sshd is missing" >&2
    exit 1
fi
