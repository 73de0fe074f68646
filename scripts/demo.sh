#!/usr/bin/env bash
# `make demo`: boot a 3-node cluster lab (systemd as PID 1 in each node, an etcd member
# and the omc daemon in each), create a service on n2, let the cluster start it, switch
# it to n2, show `om mon`, stop it, run the seed's local instance actions, and tear the
# lab down (also when a step fails).
set -euo pipefail
cd "$(dirname "$0")/.."
OM="$PWD/.venv/bin/om"
LAB="demo$$"
step() { printf '\n### %s\n' "$*"; }
on() { local node=$1; shift; "$OM" lab exec --name "$LAB" "$node" -- "$@"; }
cleanup() {
    step "om lab down --name $LAB"
    "$OM" lab down --name "$LAB" || "$OM" lab down --force --name "$LAB"
}

step "omc compile --dry-run --node n1 examples/svc1.conf   (the units svc1 becomes)"
"$PWD/.venv/bin/omc" compile --dry-run --node n1 examples/svc1.conf

step "om lab up --name $LAB --nodes 3 --cluster"
trap cleanup EXIT
"$OM" lab up --name "$LAB" --nodes 3 --cluster

step "n2# om svc1 create --config examples/svc1.conf   (stored in etcd, installed on n1 n2 n3)"
on n2 "$OM" svc1 create --config "$PWD/examples/svc1.conf"
for node in n1 n2 n3; do on "$node" ls /etc/opensvc/svc1.conf; done

step "n2# om svc1 start --wait   (the cluster picks the node: n1, first in 'nodes')"
on n2 "$OM" svc1 start --wait
step "n1# om mon"
on n1 "$OM" mon

step "n3# om svc1 switch --to n2 --wait"
on n3 "$OM" svc1 switch --to n2 --wait
step "n1# om mon   ('^': placement is not the natural one)"
on n1 "$OM" mon
step "n2# journalctl OBJ_PATH=svc1   (the daemon's action on n2, same log as a user's)"
on n2 journalctl OBJ_PATH=svc1 -o cat --no-pager

step "n1# om svc1 stop --wait   (stopped and frozen everywhere)"
on n1 "$OM" svc1 stop --wait
on n1 "$OM" mon

step "n1# om svc1 instance start   (the seed's local action, bypassing the cluster)"
on n1 "$OM" svc1 instance start
step "n1# om svc1 print status"
on n1 "$OM" svc1 print status
step "n1# om svc1 instance stop"
on n1 "$OM" svc1 instance stop
