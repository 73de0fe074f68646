"""``print status`` off a cluster stays on its fast path: it imports nothing of the
cluster layer, etcd or D-Bus (each would be paid by every call)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PROBE = """
import sys
from omc.runtime import objcli
from omc.runtime.views import render, status
assert not status._in_cluster(), "the probe expects a node outside any cluster"
heavy = ("etcd3gw", "requests", "pydbus", "gi", "omc.runtime.adapters.etcd",
         "omc.runtime.cluster.decide", "omc.runtime.cluster.monitor",
         "omc.runtime.cluster.orchestrate", "omc.runtime.views.cluster")
print(" ".join(m for m in heavy if m in sys.modules))
"""


def test_print_status_off_a_cluster_imports_no_cluster_code(tmp_path: Path) -> None:
    """With no cluster.conf, the status modules load without the cluster layer, etcd
    or D-Bus (in a fresh interpreter: this one imported them all)."""
    env = {**os.environ, "OMC_ETC": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                          env=env, check=True, timeout=60)  # fmt: skip
    assert proc.stdout.strip() == "", f"imported off a cluster: {proc.stdout}"
