"""Labs booted for one test module: named after the module's prefix and this run's pid
(several runs coexist on one host), always taken down."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from omc.runtime.lab.api import Lab


def cluster_lab(prefix: str, *, nodes: int = 3, **options: Any) -> Iterator[Lab]:
    """A cluster lab (etcd, cluster.conf and the node daemon on each node) for a
    module-scoped fixture to ``yield from``."""
    name = f"{prefix}{os.getpid()}"[:10]
    with Lab.up(name, nodes=nodes, etcd=True, cluster=True, **options) as lab:
        yield lab
