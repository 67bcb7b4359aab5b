#!/usr/bin/env bash
# The README's test command: install and start what is missing (scripts/setup.sh), then run every
# test, the browser tests included. Extra arguments go to cargo nextest (e.g. -E 'binary(=accounts)').
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec cargo nextest run --run-ignored all "$@"
