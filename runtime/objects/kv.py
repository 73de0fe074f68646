"""cfg, sec and usr objects on this node: their keys, and what services take from them.

The commands are om3's (``om <path> add|change|keys|decode|remove``): the store format
is :mod:`omc.compiler.kvstore`'s, the config file this module reads and writes is
the object's own (``/etc/opensvc/<kind>/<name>.conf``, 0600 root: ``configs``).
Services take keys as environment variables (``configs_environment``,
``secrets_environment``): :func:`environment` resolves them for the app and task
drivers (their ``check``, ``info`` and ``run`` commands), the container drivers and
``om <path> driver env`` (the file a native app unit reads, docs/units.md "Secrets").
A missing object or key fails naming it: a service never starts without its secret.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path

from omc.compiler.contract.node import config_file
from omc.compiler.contract.paths import Kind, ObjectPath
from omc.compiler.kvstore import ENV_KINDS, KvError, Store, env_name_ok, parse_ref, read

from .configs import NotFoundError, StoreError, read_config, write_config

KV_KINDS = frozenset((Kind.CFG, Kind.SEC, Kind.USR))
MAX_VALUE_BYTES = 1 << 20  # om3's node.max_key_size default


class KvReferenceError(Exception):
    """A ``*_environment`` item that cannot be resolved: the message names the item and why."""


def is_store(path: ObjectPath) -> bool:
    return path.kind in KV_KINDS


def load(path: ObjectPath) -> Store:
    """The object's keys (:class:`NotFoundError` without a config)."""
    require_store(path)
    return read(read_config(path), filename=str(config_file(path)))


def require_store(path: ObjectPath) -> None:
    """Refuse (:class:`StoreError`) an object that holds no keys."""
    if not is_store(path):
        raise StoreError(f"{path} is a {path.kind}: only cfg, sec and usr objects hold keys")


def new_config() -> str:
    """The config of an empty store (``create`` without ``--config``): om3 always writes
    a ``[DEFAULT]`` ``id``."""
    import uuid

    return f"[DEFAULT]\nid = {uuid.uuid4()}\n\n[data]\n"


def set_key(path: ObjectPath, key: str, value: bytes, *, replace: bool) -> None:
    """``add`` (``replace`` False: an existing key is an error) or ``change`` a key."""
    write_config(path, key_set(load(path), path, key, value, replace=replace))


def key_set(store: Store, path: ObjectPath, key: str, value: bytes, *, replace: bool) -> str:
    """The store's text with ``key`` set (``replace`` False: an existing key is an error)."""
    from omc.compiler.kvstore import encode, key_error, with_key

    if why := key_error(key):
        raise StoreError(why)
    if len(value) > MAX_VALUE_BYTES:
        raise StoreError(f"the value of {key!r} is larger than 1 MiB, the bound of a key")
    if store.has(key) and not replace:
        raise StoreError(f"{path}: key {key!r} already exists (change it with 'change')")
    return with_key(store, key, encode(value, secret=path.kind is not Kind.CFG))


def remove_key(path: ObjectPath, key: str) -> None:
    write_config(path, key_removed(load(path), path, key))


def key_removed(store: Store, path: ObjectPath, key: str) -> str:
    """The store's text without ``key`` (which must be there)."""
    from omc.compiler.kvstore import without_key

    if not store.has(key):
        raise StoreError(f"{path}: no key {key!r}")
    return without_key(store, key)


def keys(path: ObjectPath, pattern: str | None = None) -> list[str]:
    store = load(path)
    return store.matching(pattern) if pattern else store.all_keys()


def decode(path: ObjectPath, key: str) -> bytes:
    try:
        return load(path).value(key)
    except KvError as exc:
        raise StoreError(f"{path}: {exc}") from None


# ---------------------------------------------------------------------------
# Services' environment


def environment(namespace: str, config: Mapping[str, object]) -> dict[str, str]:
    """The variables a resource's ``configs_environment`` and ``secrets_environment``
    give (configs first, secrets win), from its evaluated keywords; empty without them.
    Raises :class:`KvReferenceError` naming the first item that cannot be resolved."""
    found: dict[str, str] = {}
    for keyword, kind in ENV_KINDS.items():
        for item in _items(config.get(keyword)):
            found.update(_resolve(namespace, kind, keyword, item))
    return found


def _items(value: object) -> Iterable[str]:
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return ()


def _resolve(namespace: str, kind: Kind, keyword: str, item: str) -> dict[str, str]:
    try:
        ref = parse_ref(item)
    except KvError as exc:
        raise KvReferenceError(f"{keyword}: {exc}") from None
    path = ObjectPath(namespace=namespace, kind=kind, name=ref.name)
    try:
        store = load(path)
    except NotFoundError:
        raise KvReferenceError(f"{keyword}: {item}: object {path} does not exist") from None
    except StoreError as exc:
        raise KvReferenceError(f"{keyword}: {item}: {exc}") from None
    if ref.var is not None:
        if not store.has(ref.key):
            raise KvReferenceError(f"{keyword}: {item}: {path} has no key {ref.key!r}")
        return {ref.var: _text(store, path, ref.key, keyword)}
    matched = store.matching(ref.key)
    if not matched:
        raise KvReferenceError(f"{keyword}: {item}: {path} has no key matching {ref.key!r}")
    bad = [k for k in matched if not env_name_ok(k)]
    if bad:
        raise KvReferenceError(
            f"{keyword}: {item}: key {bad[0]!r} of {path} is not a variable name "
            "([A-Za-z_][A-Za-z0-9_]*): name the variable, VAR=<object>/<key>"
        )
    return {k: _text(store, path, k, keyword) for k in matched}


def _text(store: Store, path: ObjectPath, key: str, keyword: str) -> str:
    """A value as an environment variable: UTF-8 text without control characters but
    tab and newline (what systemd's environment files and execve carry)."""
    try:
        value = store.value(key).decode("utf-8")
    except KvError as exc:
        raise KvReferenceError(f"{keyword}: {path}: {exc}") from None
    except UnicodeDecodeError:
        value = "\0"
    if any((ord(c) < 32 and c not in "\t\n") or c == "\x7f" for c in value):
        raise KvReferenceError(
            f"{keyword}: key {key!r} of {path} is binary (not UTF-8 text without control "
            "characters): it cannot be an environment variable"
        )
    return value


# ---------------------------------------------------------------------------
# The environment file of a native unit


def env_file_text(variables: Mapping[str, str]) -> str:
    """``NAME="value"`` lines systemd's ``EnvironmentFile=`` reads back exactly: inside
    double quotes a backslash escapes ``"``, ``\\``, `` ` `` and ``$``; newlines stay."""
    lines = []
    for name, value in variables.items():
        escaped = "".join("\\" + c if c in '"\\`$' else c for c in value)
        lines.append(f'{name}="{escaped}"\n')
    return "".join(lines)


def write_env_file(file: Path, variables: Mapping[str, str]) -> None:
    """Write the file root-only (0600 in a 0700 root directory), atomically.

    The directory must be a real directory owned by root (not a symlink, not writable
    by others): a planted one is refused, never followed. The file is written by
    :func:`omc.runtime.safefs.write_file`: a new file under a temporary name, renamed
    over the target (``rename`` replaces a symlink, never writes through it).
    """
    from omc.runtime import safefs

    directory = file.parent
    refused = StoreError(
        f"refusing to write secrets into {directory}: not a directory owned by root "
        "and writable by root only"
    )
    try:
        with safefs.directory(directory, create=0o700) as dir_fd:
            st = os.lstat(directory)  # the name itself, never a link (even root's)
            if not stat.S_ISDIR(st.st_mode) or not os.path.samestat(st, os.fstat(dir_fd)):
                raise refused
            os.fchmod(dir_fd, 0o700)  # whatever it was made with
        safefs.write_file(file, env_file_text(variables), mode=0o600, dir_mode=0o700)
    except safefs.UnsafePathError:
        raise refused from None
