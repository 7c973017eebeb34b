#!/usr/bin/env bash
# The whole test suite, from a bare Debian/Ubuntu machine: tools, Python deps, lint, tests.
# Needs root (the e2e tier debootstraps Debian roots, chroots and mounts into them).
# Extra arguments go to pytest, e.g. ./test.sh -m "not build", ./test.sh -m matrix or
# ./test.sh tests/deploys
set -euo pipefail
cd "$(dirname "$0")"

if [ "$(id -u)" = 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends \
    debootstrap openssh-client gpg gpg-agent apt-utils dpkg-dev gcc libc6-dev curl ca-certificates openssl \
    python3-venv bison git xz-utils bzip2 gpgconf procps >/dev/null
fi

python3 -m venv .venv
.venv/bin/python -m pip install -q -r requirements-dev.txt

.venv/bin/ruff check .
.venv/bin/ruff format --check .
# The default tier leaves out GPU tests and the matrix tier; a -m of your own replaces this one
# (./test.sh -m matrix runs the matrix tier).
exec .venv/bin/python -m pytest -m "not gpu and not matrix" "$@"
