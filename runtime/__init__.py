"""``om``: OpenSVC actions on compiled units, over D-Bus, netlink and etcd."""

VERSION = "0.1.0"  # pyproject.toml's (a test keeps them equal): journald's VERSION field
