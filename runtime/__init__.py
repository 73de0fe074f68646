"""``om``: OpenSVC actions on compiled units, over D-Bus, netlink and etcd."""
