"""One module per external system, the only importer of its library.

``systemd`` (pydbus/gi: units, jobs, states), ``netlink`` (pyroute2: addresses,
links, routes in a network namespace), ``etcd`` (etcd3gw: the cluster store).
Everything else talks to these systems through them (tests/test_quality.py).
"""
