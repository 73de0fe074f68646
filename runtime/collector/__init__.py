"""The collector (opensvc.md §7.2): action logs as v2 XML-RPC calls, spooled on the node
(:mod:`.spool`), posted by a sender (:mod:`.sender`); :mod:`.sink` turns records into
calls, :mod:`.cli` is ``om collector send|status``."""
