"""What ``om`` prints about objects: the status tree and the resource listings (pure text)."""
