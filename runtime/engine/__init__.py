"""The action engine: every state change of an instance goes through it.

``session`` (the object lock, the ``>>> do``/``<<< done`` bracket, origin, sid, the
log sinks) wraps every action: instance actions (``instance``), syncs (``syncs``)
and the cluster daemon's own actions. Inside, one flow: ``observe`` (systemd and
the drivers' probes) → ``plan`` (pure: steps with reasons) → ``apply`` (vetoes,
triggers, jobs, narration, rollback), with ``jobs`` running systemd jobs and
``narrate`` deciding what each finished step logs.
"""
