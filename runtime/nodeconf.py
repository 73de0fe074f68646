"""``node.conf``: this node's own settings (om3's keywords), read once per process.

What the runtime reads from ``/etc/opensvc/node.conf`` (``OMC_ETC`` overrides the
directory), with om3's sections and names::

    [node]
    dbopensvc = https://collector.example   # the v2 XML-RPC collector (off when unset)
    uuid = 4f8c…                            # the collector's auth tuple (node_uuid, nodename)

    [syslog]
    facility = daemon        # om3's default
    level = info             # the lowest level sent: debug info warning error critical
    host = logs.example      # a remote syslog target (UDP), with port
    port = 514

``OMC_COLLECTOR=<url>`` overrides ``dbopensvc`` (a URL with a path is used as is, a
bare ``https://host`` gets v2's ``/feed/default/call/xmlrpc``). A node without a
``uuid`` gets one generated once and kept in ``/var/lib/opensvc/node/uuid`` (0600):
the auth tuple is never empty.

Import-light: every ``om`` reads it (the log sinks depend on it); configparser is
imported only when the file exists.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from omc.compiler.contract.node import NODE_CONF, etc_dir

COLLECTOR_ENV = "OMC_COLLECTOR"
XMLRPC_PATH = "/feed/default/call/xmlrpc"
FACILITIES = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6,
    "news": 7, "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11,
    **{f"local{i}": 16 + i for i in range(8)},
}  # fmt: skip
LEVELS = ("debug", "info", "warning", "error", "critical")


@dataclass(frozen=True, slots=True, kw_only=True)
class SyslogConf:
    """``[syslog]``: where and what to send when syslog is used."""

    facility: int = FACILITIES["daemon"]
    level: str = "info"
    host: str = ""
    port: int = 514

    @property
    def remote(self) -> bool:
        """A remote target is configured (om3: a host, or a port alone meaning localhost)."""
        return bool(self.host)


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeConf:
    dbopensvc: str = ""
    uuid: str = ""
    syslog: SyslogConf = SyslogConf()

    @property
    def collector_url(self) -> str:
        """The XML-RPC endpoint, or ``""`` when no collector is configured."""
        return xmlrpc_url(os.environ.get(COLLECTOR_ENV) or self.dbopensvc)


def xmlrpc_url(value: str) -> str:
    """v2's rule: ``https://host`` means ``https://host/feed/default/call/xmlrpc``."""
    value = value.strip()
    if not value:
        return ""
    if "://" not in value:
        value = f"https://{value}"
    from urllib.parse import urlsplit

    parts = urlsplit(value)
    if parts.path in ("", "/"):
        return value.rstrip("/") + XMLRPC_PATH
    return value


_CACHE: dict[int, NodeConf] = {}


def load() -> NodeConf:
    """This node's settings, read once per process (a command runs with one view; a
    node executor's worker is a new process: it reads the file again)."""
    pid = os.getpid()
    if pid not in _CACHE:
        _CACHE[pid] = read()
    return _CACHE[pid]


def forget() -> None:
    """Drop the cached settings (tests, a long-running daemon re-reading them)."""
    _CACHE.clear()


def read(text: str | None = None) -> NodeConf:
    """Parse ``node.conf`` (``text``, or the file); a missing file means defaults."""
    if text is None:
        try:
            with (etc_dir() / NODE_CONF).open(encoding="utf-8") as fh:
                text = fh.read()
        except (OSError, UnicodeDecodeError):
            return NodeConf()
    import configparser

    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    try:
        parser.read_string(text)
    except configparser.Error:
        return NodeConf()

    def get(section: str, key: str) -> str:
        return parser.get(section, key, fallback="").strip()

    return NodeConf(dbopensvc=get("node", "dbopensvc"), uuid=get("node", "uuid"),
                    syslog=_syslog(get))  # fmt: skip


def _syslog(get: Callable[[str, str], str]) -> SyslogConf:
    facility = (get("syslog", "facility") or "daemon").lower()
    level = (get("syslog", "level") or "info").lower()
    port_text = get("syslog", "port")
    host = get("syslog", "host")
    port = int(port_text) if port_text.isdigit() else 514
    if port_text and not host:
        host = "localhost"  # om3: "localhost if port is set"
    return SyslogConf(
        facility=FACILITIES.get(facility, FACILITIES["daemon"]),
        level=level if level in LEVELS else "info",
        host=host,
        port=port,
    )


def node_uuid() -> str:
    """``[node] uuid``, else this node's generated one (created once, 0600)."""
    conf = load()
    if conf.uuid:
        return conf.uuid
    from omc.runtime import layout, safefs
    from omc.runtime.log import new_sid

    file = layout.node_uuid_file()
    try:
        return safefs.read_text(file).strip()
    except FileNotFoundError:
        pass
    except OSError:
        return ""
    try:
        safefs.write_new(file, new_sid() + "\n", mode=0o600)  # a racing action's may win
        return safefs.read_text(file).strip()
    except OSError:
        return ""
