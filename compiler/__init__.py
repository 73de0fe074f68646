"""``omc``: OpenSVC service config -> parse tree -> typed IR -> systemd units."""
