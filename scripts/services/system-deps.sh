#!/usr/bin/env bash
# Debian packages the test suite starts real servers from: PostgreSQL (the shared store) and a
# single-node Slurm (the slurm executor). Installed once, when missing and we may (root + apt);
# otherwise the tests that need them skip and say why.
set -uo pipefail

packages=(postgresql slurmctld slurmd slurm-client munge)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[[ ${#missing[@]} == 0 ]] && exit 0

if [[ $(id -u) != 0 ]] || ! command -v apt-get >/dev/null; then
  echo "system-deps: not installing ${missing[*]} (needs root and apt-get); their tests will skip" >&2
  exit 0
fi
echo "system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt_install() { apt-get install -y -q --no-install-recommends "${missing[@]}" >/tmp/tuigen-apt.log 2>&1; }
# Package lists may be missing or stale on a fresh machine: refresh once and retry.
apt_install || { apt-get update -q >>/tmp/tuigen-apt.log 2>&1 && apt_install; } \
  || { echo "system-deps: apt-get failed (see /tmp/tuigen-apt.log); those tests will skip" >&2; tail -3 /tmp/tuigen-apt.log >&2; }
# Debian starts services on install where it can; tests start their own on other ports/paths.
exit 0
