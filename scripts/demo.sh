#!/usr/bin/env bash
# The main job. Until the lab and runtime land, it compiles the examples and
# shows the units they become.
set -euo pipefail
cd "$(dirname "$0")/.."
for conf in examples/*.conf; do
    echo "### omc compile --dry-run $conf"
    omc compile --dry-run "$conf"
done
