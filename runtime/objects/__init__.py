"""The objects of this node: their configs, selection, and the units compiled from them.

``configs`` reads, writes and selects object configs (om3's layout and selector
expressions); ``install`` compiles a config through the one compile pipeline and
installs its units; ``kv`` holds the keys of cfg/sec/usr objects and the
environment services take from them; ``model`` reads the installed units back as
the runtime's view of a service. Nothing here acts on a running instance (that is ``engine``).
"""
