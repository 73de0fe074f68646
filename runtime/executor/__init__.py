"""The node executor: a warm, forking runner of ``om`` commands (``omc-executor.service``).

``server`` imports ``om``'s modules once and forks a worker per command (the zygote
pattern); ``client`` is what every ``om`` process tries first. See docs/runtime.md,
"The node executor".
"""
