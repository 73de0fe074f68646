#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian 12 machine, run as root by `make demo`,
# `make test` and `make bench`: system packages, a venv, the Python deps, and
# the `omc` import root that maps onto the working tree.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV=${VENV:-$ROOT/.venv}

# System packages. Services are never started here (policy-rc.d may forbid it;
# the lab starts what it needs inside its own nodes). python3-venv, python3-dev and gcc:
# a bare Debian 12 has neither `python3 -m venv` nor what PyGObject and pycairo (sdists
# for this Python) need to build. fuse-overlayfs is only a recommendation of podman,
# skipped by --no-install-recommends, yet podman needs it in lab nodes: their /var is
# an overlayfs, and kernel overlay cannot stack on it.
APT_PKGS=(python3-venv python3-dev gcc
          pkg-config libgirepository1.0-dev libcairo2-dev gir1.2-glib-2.0 dbus systemd
          iproute2 iputils-ping e2fsprogs util-linux etcd-server etcd-client rsync
          openssh-server openssh-client podman fuse-overlayfs openssl nftables)
missing=()
for p in "${APT_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "setup: apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Python environment: only re-run pip when pyproject.toml changed.
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
stamp="$VENV/.deps-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    "$VENV/bin/python" -m pip install -q --upgrade pip 2> >(grep -v "^WARNING: Location" >&2)
    deps=$("$VENV/bin/python" - <<'PY'
import tomllib
p = tomllib.load(open("pyproject.toml", "rb"))["project"]
print("\n".join(p["dependencies"] + p["optional-dependencies"]["dev"]))
PY
)
    mapfile -t deplist <<<"$deps"
    "$VENV/bin/python" -m pip install -q "${deplist[@]}" 2> >(grep -v "^WARNING: Location" >&2)
    rm -f "$VENV"/.deps-*
    touch "$stamp"
fi

# The `omc` import root for development: .dev/omc/<pkg> -> ../../<pkg>. The venv
# sees it through a .pth file; `om` and `omc` run the working tree.
mkdir -p .dev/omc
for pkg in grammar compiler runtime unit_templates; do
    ln -sfn "../../$pkg" ".dev/omc/$pkg"
done
site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$ROOT/.dev" > "$site/omc-dev.pth"
for cmd in om:omc.runtime.cli omc:omc.compiler.cli omc-generator:omc.compiler.cli; do
    name=${cmd%%:*}; mod=${cmd#*:}
    cat > "$VENV/bin/$name" <<SH
#!$VENV/bin/python
import sys
from $mod import main
sys.exit(main())
SH
    chmod +x "$VENV/bin/$name"
done
