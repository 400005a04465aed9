#!/usr/bin/env bash
# The Debian packages callhome needs, in one list for `make setup`, `make test` and `.ci/run`.
#
#   .ci/debian-packages.sh build   what building the Python environment needs
#   .ci/debian-packages.sh test    that, and the real peers the tests talk to
#
# Installs only what is missing (sudo when not root); does nothing where there is no apt-get
# (tests whose peer is missing then skip and say why).
set -euo pipefail

# PyPI's libyang (YANG validation on the device) is a source package, built against the
# system's libyang 2 when pip installs it.
build=(libyang2-dev gcc libc6-dev python3-dev)
# Real peers of the interop and integration tests: OpenSSH client and server, socat (call-home
# splices), yuma123 netconfd (its libyuma-base also ships the IETF YANG modules the agent
# serves with get-schema), tmux (drives `callhome shell`), Net-SNMP's snmpd and tools,
# dropbear's dbclient (a second SSH client stack), openssl (s_server, s_client, x509) and
# procps (pgrep), which minimal images leave out.
test=(openssh-server openssh-client socat netconfd tmux snmp snmpd dropbear-bin openssl procps)

case "${1:-test}" in
  build) wanted=("${build[@]}") ;;
  test) wanted=("${build[@]}" "${test[@]}") ;;
  *) echo "usage: $0 build|test" >&2; exit 2 ;;
esac

if ! command -v apt-get >/dev/null || ! command -v dpkg >/dev/null; then
  echo "no apt-get here: install ${wanted[*]} yourself (tests that need a missing one skip)" >&2
  exit 0
fi

missing=()
for pkg in "${wanted[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done

sudo=()
[ "$(id -u)" = 0 ] || sudo=(sudo)

if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Tests start their own daemons (sshd, snmpd -f -C -c FILE on tlstcp:127.0.0.1:PORT): keep the
  # packages' own services from being started by their install scripts.
  policy=/usr/sbin/policy-rc.d
  added=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod 755 "$policy"
    added=1
  fi
  status=0
  "${sudo[@]}" apt-get update -qq || status=$?
  if [ "$status" = 0 ]; then
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends "${missing[@]}" >/dev/null || status=$?
  fi
  if [ -n "$added" ]; then "${sudo[@]}" rm -f "$policy"; fi
  [ "$status" = 0 ] || { echo "apt-get failed ($status)" >&2; exit "$status"; }
fi

# sshd refuses to start without its privilege separation folder.
if [ "${1:-test}" = test ] && [ ! -d /run/sshd ]; then
  "${sudo[@]}" mkdir -p /run/sshd
fi
