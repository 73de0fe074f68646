#!/usr/bin/env bash
# `make demo`: boot a one-node lab, create the seed's svc0 in it, start it, print its
# status, stop it, and tear the lab down (also when a step fails).
set -euo pipefail
cd "$(dirname "$0")/.."
OM="$PWD/.venv/bin/om"
LAB="demo$$"
step() { printf '\n### %s\n' "$*"; }
node() { "$OM" lab exec --name "$LAB" n1 -- "$@"; }
cleanup() {
    step "om lab down --name $LAB"
    "$OM" lab down --name "$LAB" || "$OM" lab down --force --name "$LAB"
}

step "omc compile --dry-run --node n1 examples/svc0.conf   (the units svc0 becomes)"
"$PWD/.venv/bin/omc" compile --dry-run --node n1 examples/svc0.conf

step "om lab up --name $LAB --nodes 1 --no-etcd"
trap cleanup EXIT
"$OM" lab up --name "$LAB" --nodes 1 --no-etcd

step "n1# om svc0 create --config examples/svc0.conf"
node "$OM" svc0 create --config "$PWD/examples/svc0.conf"
step "n1# om svc0 instance start"
node "$OM" svc0 instance start
step "n1# om svc0 print status"
node "$OM" svc0 print status
step "n1# om svc0 instance stop"
node "$OM" svc0 instance stop
step "n1# om svc0 print status"
node "$OM" svc0 print status
