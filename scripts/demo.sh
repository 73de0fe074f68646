#!/usr/bin/env bash
# The main job. Until the lab and runtime land, it compiles the examples and
# shows the units they become (and, for the invalid example, the diagnostics
# that reject it), then installs one of them twice to show the change report.
set -euo pipefail
cd "$(dirname "$0")/.."
for conf in examples/*.conf; do
    echo "### omc compile --dry-run --node n1 $conf"
    rc=0
    omc compile --dry-run --node n1 "$conf" || rc=$?
    if ((rc)); then echo "### (rejected: exit $rc; nothing would be written)"; fi
done
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "### omc compile -o $out examples/svc0.conf   (twice: created, then unchanged)"
omc compile --node n1 -o "$out" examples/svc0.conf
omc compile --node n1 -o "$out" examples/svc0.conf
