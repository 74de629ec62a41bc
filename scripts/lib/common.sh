# shellcheck shell=bash disable=SC2034  # (variables used by the scripts that source this file)
# Shared by scripts/setup, scripts/test, scripts/demo and scripts/lab (sourced, not run).
#
# Everything heavy lives outside the repository, under HOSTFLEET_CACHE:
#   venv-2.19/             ansible-core 2.19 on Python 3.11   (requirements/venv-2.19.txt)
#   venv-2.21/             ansible-core 2.21 on Python 3.13   (requirements/venv-2.21.txt)
#   venv-nox/              nox + antsibull-nox on Python 3.13 (requirements/venv-nox.txt): runs noxfile.py
#   nox/                   nox's session venvs (lint, sanity, build; reused across runs)
#   ansible-test-home/     HOME given to ansible-test: its cached sanity venvs (~/.ansible/test/venv)
#   lab/                   the lab's host image and SSH key (tests/lab/labctl.py)
#   ruff/                  ruff's cache

HF_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HF_CACHE="${HOSTFLEET_CACHE:-/var/cache/hostfleet}"
# Lab instance 0 lives in /var/tmp/hostfleet-lab, instance K in /var/tmp/hostfleet-labK (tests/lab/labctl.py).
HF_LAB_INSTANCE="${HOSTFLEET_LAB_INSTANCE:-0}"
HF_LAB_DIR="${HOSTFLEET_LAB_DIR:-/var/tmp/hostfleet-lab${HF_LAB_INSTANCE#0}}"
HF_VENV_219="$HF_CACHE/venv-2.19"
HF_VENV_221="$HF_CACHE/venv-2.21"
HF_VENV_NOX="$HF_CACHE/venv-nox"
HF_NOX_ENVDIR="$HF_CACHE/nox"
HF_ANSIBLE_TEST_HOME="$HF_CACHE/ansible-test-home"
export HOSTFLEET_CACHE="$HF_CACHE" HOSTFLEET_LAB_DIR="$HF_LAB_DIR" HOSTFLEET_LAB_INSTANCE="$HF_LAB_INSTANCE"
export RUFF_CACHE_DIR="$HF_CACHE/ruff"
export PIP_DISABLE_PIP_VERSION_CHECK=1
export ANSIBLE_FORCE_COLOR="${ANSIBLE_FORCE_COLOR:-0}"

if [[ -t 1 ]]; then
    HF_BOLD=$'\e[1m' HF_RED=$'\e[31m' HF_GREEN=$'\e[32m' HF_YELLOW=$'\e[33m' HF_RESET=$'\e[0m'
else
    HF_BOLD='' HF_RED='' HF_GREEN='' HF_YELLOW='' HF_RESET=''
fi

hf_say() { printf '%s==> %s%s\n' "$HF_BOLD" "$*" "$HF_RESET"; }
hf_warn() { printf '%swarning: %s%s\n' "$HF_YELLOW" "$*" "$HF_RESET" >&2; }
hf_die() {
    printf '%serror: %s%s\n' "$HF_RED" "$*" "$HF_RESET" >&2
    exit 1
}

# hf_in_venv VENV CMD...: run CMD with VENV's bin first on PATH.
# (Tools such as molecule and ansible-lint run `ansible-config`, `ansible-playbook`...
# through PATH: calling venv/bin/molecule without this is what made it crash.)
hf_in_venv() {
    local venv="$1"
    shift
    PATH="$venv/bin:$PATH" VIRTUAL_ENV="$venv" "$@"
}

# The lab script (another engineer's file): plain python3, as documented in tests/lab/lab.py.
hf_lab() { python3 "$HF_ROOT/tests/lab/lab.py" "$@"; }
