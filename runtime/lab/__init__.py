"""`om lab`: disposable clusters of real systemd nodes on one host."""
