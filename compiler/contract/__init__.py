"""The contract between the compiler and the runtime: every fact both sides share, once.

The compiler writes units; the runtime (and, through it, the cluster daemon) reads them
back and acts on them. Whatever must agree on both sides is defined here and nowhere
else, and importing it costs next to nothing (``om``'s hot path imports it):

* :mod:`.paths` — object paths, kinds, driver groups in start order, resource ids;
* :mod:`.names` — unit, slice and cgroup names (OpenSVC's process-group layout);
* :mod:`.units` — the ``X-OpenSVC-*`` keys, resource flags, the JSON form of
  requirements, where units are installed and searched;
* :mod:`.node` — where configs live, how they are discovered, the node's own settings
  (node name, the ``om`` written into units, ``cluster.conf`` values).

This package imports nothing but the standard library and :mod:`omc.compiler.unitsyntax`.
"""
