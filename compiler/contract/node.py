"""Where a node keeps object configs, how they are found, and the node's own settings.

``omc`` (its CLI and its generator mode) and ``om`` must agree on all of it: the
same config directory and layout (om3's, opensvc.md §1.1), the same node name
(``{nodename}`` and ``@node`` scopes are evaluated for it), the same ``om`` path
written into ``ExecStart=`` lines, the same ``cluster.conf`` values behind
``{clustername}`` and co. Each is read here, with one environment override each.

| fact | default | override |
| --- | --- | --- |
| config directory | ``/etc/opensvc`` | ``OMC_ETC`` |
| node name | the lowercased hostname (om3) | ``OMC_NODE`` |
| ``om`` in units | the ``om`` beside the running interpreter | ``OMC_OM`` |

Every config, whoever reads it (``omc``, its generator mode, ``om``), is read through
:func:`read_config_file`: a regular file of at most :data:`MAX_CONFIG_BYTES`, opened
without blocking, so a device, a FIFO or a runaway file is one clear error.
"""

from __future__ import annotations

import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from .paths import KINDS, Kind, ObjectPath, PathError, parse_path

ETC = Path("/etc/opensvc")
CLUSTER_CONF = "cluster.conf"
NODE_CONF = "node.conf"
# Files of the config directory that are not objects.
NOT_OBJECTS = frozenset((CLUSTER_CONF, NODE_CONF, "namespace.conf"))
# The bound of a config file (docs/omc.md): the corpus's largest is 12 KiB; a cluster
# replicates configs to every node, so a bound protects every node's memory at once.
MAX_CONFIG_BYTES = 1 << 20
_FILE_TYPES = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
)


class ConfigFileError(Exception):
    """A config file that cannot be read as one: the message names the file and why;
    ``missing`` when it does not exist (``om``: the object is not found)."""

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


@dataclass(frozen=True, slots=True)
class ConfigFile:
    """A config's text, and whether its mode hides it from other users (``private``:
    not world-readable; then the units that embed it must not be either)."""

    text: str
    private: bool


def _kind_of(mode: int) -> str:
    return next((what for test, what in _FILE_TYPES if test(mode)), "not a regular file")


def read_config_bytes(
    source: int, *, name: str, limit: int = MAX_CONFIG_BYTES, what: str = "a config file"
) -> bytes:
    """At most ``limit`` bytes from an open file (a pipe included: ``create --config -``);
    one byte more is an error. Reads in chunks: the bound holds for a file that grows."""
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = os.read(source, min(1 << 16, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > limit:
        raise ConfigFileError(
            f"cannot read {name}: larger than {_size(limit)}, the bound of {what}"
        )
    return b"".join(chunks)


def _size(limit: int) -> str:
    return f"{limit >> 20} MiB" if limit % (1 << 20) == 0 else f"{limit} bytes"


def read_regular_file(
    file: Path, *, limit: int = MAX_CONFIG_BYTES, what: str = "a config file"
) -> tuple[bytes, int]:
    """The bytes and mode of a regular file of at most ``limit`` bytes, else
    :class:`ConfigFileError`. ``O_NONBLOCK``: opening a FIFO with no writer must not
    hang; ``fstat`` of the opened file, not ``stat`` of the name, so the checked file is
    the one read."""
    try:
        fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as exc:
        missing = isinstance(exc, FileNotFoundError)
        raise ConfigFileError(f"cannot read {file}: {exc.strerror}", missing=missing) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ConfigFileError(
                f"cannot read {file}: not a regular file ({_kind_of(st.st_mode)})"
            )
        if st.st_size > limit:
            raise ConfigFileError(
                f"cannot read {file}: larger than {_size(limit)}, the bound of {what}"
            )
        return read_config_bytes(fd, name=str(file), limit=limit, what=what), st.st_mode
    except OSError as exc:
        raise ConfigFileError(f"cannot read {file}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def read_config_file(file: Path, *, errors: str = "replace") -> ConfigFile:
    """A config file's text (:func:`read_regular_file`: a regular file of at most
    :data:`MAX_CONFIG_BYTES`). ``errors="strict"`` refuses text that is not UTF-8
    (``om`` stores configs as given)."""
    data, mode = read_regular_file(file)
    try:
        text = data.decode("utf-8", errors=errors)
    except UnicodeDecodeError as exc:
        raise ConfigFileError(
            f"cannot read {file}: not UTF-8 text (byte {exc.start} is {data[exc.start]:#04x})"
        ) from None
    return ConfigFile(text=text, private=not mode & stat.S_IROTH)


def etc_dir() -> Path:
    """The config directory (``OMC_ETC`` overrides ``/etc/opensvc``)."""
    return Path(os.environ.get("OMC_ETC") or ETC)


def node_name() -> str:
    """The local node name as om3 computes it: the lowercased OS hostname.

    ``os.uname().nodename`` is what ``socket.gethostname()`` returns on Linux
    (both read uname(2)) without importing :mod:`socket`.
    """
    return os.environ.get("OMC_NODE") or os.uname().nodename.lower()


def om_path() -> str:
    """The absolute ``om`` written into units: the one beside the running interpreter
    (the venv's or the package's bin directory)."""
    return os.environ.get("OMC_OM") or str(Path(sys.executable).absolute().parent / "om")


def config_file(path: ObjectPath, etc: Path | None = None) -> Path:
    """om3 ``Path.ConfigFile()``: ``<etc>/<name>.conf`` for root svc, else by kind/namespace."""
    etc = etc_dir() if etc is None else etc
    if path.namespace == "root":
        if path.kind is Kind.SVC:
            return etc / f"{path.name}.conf"
        return etc / path.kind / f"{path.name}.conf"
    return etc / "namespaces" / path.namespace / path.kind / f"{path.name}.conf"


def path_of(file: Path, etc: Path) -> ObjectPath | None:
    """The object a file under ``etc`` holds by its location; None when it is not an
    object file (``cluster.conf``, another suffix or depth). Raises :class:`PathError`
    for an object file whose name ``om`` would refuse."""
    try:
        parts = file.relative_to(etc).with_suffix("").parts
    except ValueError:
        return None
    if file.suffix != ".conf" or file.name in NOT_OBJECTS:
        return None
    if len(parts) == 1:
        text = parts[0]
    elif len(parts) == 2 and parts[0] in KINDS:
        text = "/".join(parts)
    elif len(parts) == 4 and parts[0] == "namespaces" and parts[2] in KINDS:
        text = "/".join(parts[1:])
    else:
        return None
    return parse_path(text)


def path_from_location(file: Path) -> ObjectPath | None:
    """The path an om3 layout location implies for a file anywhere
    (``…/namespaces/<ns>/<kind>/<name>.conf``, ``…/<kind>/<name>.conf``), or None."""
    parts = file.absolute().parts
    if len(parts) >= 4 and parts[-4] == "namespaces" and parts[-2] in KINDS:
        return ObjectPath(namespace=parts[-3], kind=Kind(parts[-2]), name=file.stem)
    if len(parts) >= 2 and parts[-2] in KINDS:
        return ObjectPath(kind=Kind(parts[-2]), name=file.stem)
    return None


def discover(etc: Path | None = None) -> tuple[list[tuple[Path, ObjectPath]], list[str]]:
    """Every object config under ``etc`` with its path, in path order (om3 layout), and
    a message for each config file whose name is not a valid object name::

        <etc>/<name>.conf                         root/svc/<name>
        <etc>/<kind>/<name>.conf                  root/<kind>/<name>
        <etc>/namespaces/<ns>/<kind>/<name>.conf  <ns>/<kind>/<name>
    """
    etc = etc_dir() if etc is None else etc
    files = [*_files(etc)]
    for kind in sorted(KINDS):
        files += _files(etc / kind)
    for ns in _dirs(etc / "namespaces"):
        for kind_dir in _dirs(ns):
            files += _files(kind_dir)
    found, refused = [], []
    for file in sorted(files):
        try:
            path = path_of(file, etc)
        except PathError as exc:
            refused.append(f"{file}: {exc}")
            continue
        if path is not None:
            found.append((file, path))
    return sorted(found, key=lambda item: item[1].fqn), refused


def _files(folder: Path) -> list[Path]:
    try:
        with os.scandir(folder) as it:
            return [Path(e.path) for e in it if e.is_file() and e.name.endswith(".conf")]
    except OSError:
        return []


def _dirs(folder: Path) -> list[Path]:
    try:
        with os.scandir(folder) as it:
            return sorted(Path(e.path) for e in it if e.is_dir())
    except OSError:
        return []


def cluster_settings(etc: Path | None = None) -> dict[str, str]:
    """``{clustername}``-style reference values from ``<etc>/cluster.conf`` (om3 defaults)."""
    etc = etc_dir() if etc is None else etc
    settings = {"clustername": "default"}
    file = etc / CLUSTER_CONF
    if not file.is_file():
        return settings
    import configparser

    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    try:
        parser.read(file, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError):
        return settings
    keys = {"name": "clustername", "id": "clusterid", "nodes": "clusternodes", "dns": "dns"}
    if parser.has_section("cluster"):
        for key, ref in keys.items():
            value = parser.get("cluster", key, fallback="").strip()
            if value:
                settings[ref] = value
    return settings


def cluster_text(etc: Path | None = None) -> str:
    """The raw ``cluster.conf`` (its values change compiled units: part of their cache key)."""
    file = (etc_dir() if etc is None else etc) / CLUSTER_CONF
    try:
        return file.read_text(encoding="utf-8")
    except OSError:
        return ""
