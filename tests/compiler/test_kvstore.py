"""Key stores (cfg/sec/usr ``[data]``) and the references services make to their keys."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from omc.compiler import kvstore
from omc.compiler.diagnostics import Severity
from omc.compiler.kvstore import KvError, Ref, parse_ref, read, with_key, without_key
from omc.compiler.pipeline import build

STORE = """\
[DEFAULT]
id = 0d1c7f0e-0000-4000-8000-0000000000aa

[data]
a = literal:one
b = two
  continued
c@n1 = scoped
a = literal:again
[env]
x = 1
"""


def values(text: str) -> dict[str, bytes]:
    store = read(text, filename="s.conf")
    return {k: store.value(k) for k in store.all_keys()}


@settings(max_examples=300, deadline=None)
@given(value=st.binary(max_size=64), secret=st.booleans())
def test_any_value_survives_the_config_parser(value: bytes, secret: bool) -> None:
    """Whatever the bytes, the stored form reads back identical through the INI parser."""
    text = with_key(read(STORE, filename="s.conf"), "k", kvstore.encode(value, secret=secret))
    assert values(text)["k"] == value


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30))
def test_plain_cfg_text_is_stored_literally_only_when_it_reads_back(text: str) -> None:
    """A cfg value is ``literal:`` when printable ASCII the parser keeps; else base64."""
    stored = kvstore.encode(text.encode(), secret=False)
    assert stored.startswith(("literal:", "base64:"))
    assert values(f"[data]\nk = {stored}\n")["k"] == text.encode()


def test_secrets_are_never_stored_literally() -> None:
    """sec and usr values are base64 even when plain (off a casual screen, not encrypted)."""
    assert kvstore.encode(b"hunter2", secret=True) == "base64:aHVudGVyMg=="
    assert kvstore.encode(b"hunter2", secret=False) == "literal:hunter2"


def test_reading_a_store_last_value_wins_and_scoped_keys_are_not_keys() -> None:
    """Duplicates: the last one (in its place); `key@node` entries are not keys; a value
    without prefix is its text, continuation lines joined; other sections ignored."""
    assert list(values(STORE).items()) == [("b", b"two\ncontinued"), ("a", b"again")]


def test_setting_a_key_replaces_every_line_of_it() -> None:
    """Both occurrences and the continuation line go; the new line follows the last key."""
    store = read(STORE, filename="s.conf")
    text = with_key(store, "a", "literal:new")
    assert "literal:one" not in text and "literal:again" not in text
    assert text.count("a = literal:new") == 1
    assert values(text)["a"] == b"new"
    assert "[env]\nx = 1" in text  # the rest untouched
    replaced_b = with_key(read(text, filename="s.conf"), "b", "literal:B")
    assert "continued" not in replaced_b and values(replaced_b)["b"] == b"B"


def test_a_store_without_data_section_gets_one() -> None:
    """The first key of an empty object adds `[data]` at the end."""
    text = with_key(read("[DEFAULT]\nid = x\n", filename="s.conf"), "k", "literal:v")
    assert text == "[DEFAULT]\nid = x\n\n[data]\nk = literal:v\n"


def test_removing_a_key_removes_all_its_lines() -> None:
    """Both `a` lines go, `b` and its continuation stay, and so does the rest."""
    text = without_key(read(STORE, filename="s.conf"), "a")
    assert values(text) == {"b": b"two\ncontinued"}
    assert text == STORE.replace("a = literal:one\n", "").replace("a = literal:again\n", "")


def test_a_damaged_base64_value_is_an_error_naming_the_key() -> None:
    with pytest.raises(KvError, match="the value of key 'k' is not valid base64"):
        read("[data]\nk = base64:@@@\n", filename="s.conf").value("k")


def test_encrypted_values_are_refused_clearly() -> None:
    """om3's crypt: values need the cluster key: an error naming the key, not garbage."""
    with pytest.raises(KvError, match=r"key 'p' is encrypted \(crypt:\)"):
        kvstore.decode("p", "crypt:AAAA")


@pytest.mark.parametrize("key", ["password", "foo/bar", "server.pem", "a_b-c+d", "x" * 255])
def test_valid_keys(key: str) -> None:
    assert kvstore.key_error(key) == ""


@pytest.mark.parametrize(
    "key", ["", "a b", "a=b", "a:b", "k@n1", "/abs", "a//b", "a/../b", ".", "x" * 256, "#c", "a\n"]
)
def test_invalid_keys(key: str) -> None:
    """Keys the INI format or om3's key tree cannot hold are refused."""
    assert kvstore.key_error(key).startswith("invalid key")


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("**/foo*", ["foo/foo1", "foo/foo2"]),
        ("foo/*", ["foo/bar", "foo/foo1", "foo/foo2"]),
        ("foo", ["foo/bar", "foo/foo1", "foo/foo2"]),
        ("*", ["foo/bar", "foo/foo1", "foo/foo2", "bar/bar1", "file"]),
        ("f*", ["foo/bar", "foo/foo1", "foo/foo2", "file"]),
        ("nothing*", []),
    ],
)
def test_key_globs_match_as_om3(pattern: str, expected: list[str]) -> None:
    """om3's fnmatch flags: `*` stays in a word, a directory matches what it holds."""
    keys = ["foo/bar", "foo/foo1", "foo/foo2", "bar/bar1", "file"]
    assert [k for k in keys if kvstore.match(pattern, k)] == expected


@pytest.mark.parametrize(
    ("item", "ref"),
    [
        ("PASS=s1/password", Ref(var="PASS", name="s1", key="password")),
        ("s1/TOK*", Ref(var=None, name="s1", key="TOK*")),
        ("CRT=cert1/server.pem", Ref(var="CRT", name="cert1", key="server.pem")),
    ],
)
def test_references(item: str, ref: Ref) -> None:
    assert parse_ref(item) == ref
    assert str(ref) == item


@pytest.mark.parametrize(
    ("item", "why"),
    [
        ("FOO_SEC=foo_sec", "is not VAR=<object>/<key>"),
        ("nokey/", "is not VAR=<object>/<key>"),
        ("1X=s1/k", "is not a variable name"),
        ("X=Bad/k", "invalid name 'Bad'"),
        ("X=s1/a b", "invalid key"),
    ],
)
def test_malformed_references(item: str, why: str) -> None:
    with pytest.raises(KvError, match=why):
        parse_ref(item)


APP = """\
[DEFAULT]
id = 0d1c7f0e-0000-4000-8000-0000000000ab

[app#0]
start = /bin/true
secrets_environment = PASS=s1/password s1/TOK* OOPS
configs_environment = PORT=c1/port
"""


def warnings(text: str, etc: Path | None) -> list[str]:
    result = build(text, filename="web.conf", node="n1", om="/usr/bin/om", stores=etc)
    assert result.ok
    return [
        f"{d.span.line if d.span else 0}: {d.message}"
        for d in result.diagnostics
        if d.severity is Severity.WARNING
    ]


def test_a_malformed_reference_is_a_warning_even_without_a_node() -> None:
    """om3 ignores it silently; omc says so, at the keyword."""
    assert warnings(APP, None) == [
        "6: secrets_environment in [app#0]: 'OOPS' is not VAR=<object>/<key> nor "
        "<object>/<key glob>: ignored"
    ]


def test_missing_objects_and_keys_are_warnings_at_their_keyword(tmp_path: Path) -> None:
    """Given the node's config directory, each reference that would fail the start warns."""
    (tmp_path / "sec").mkdir()
    (tmp_path / "sec" / "s1.conf").write_text("[data]\npassword = literal:x\n")
    found = warnings(APP, tmp_path)
    assert found[1:] == [
        "6: secrets_environment of [app#0]: s1/TOK*: sec/s1 has no key matching 'TOK*'",
        f"7: configs_environment of [app#0]: PORT=c1/port: object cfg/c1 does not exist "
        f"(no {tmp_path}/cfg/c1.conf)",
    ]
    (tmp_path / "sec" / "s1.conf").write_text("[data]\nTOKEN = literal:y\n")
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "c1.conf").write_text("[data]\nport = literal:80\n")
    assert warnings(APP, tmp_path)[1:] == [
        "6: secrets_environment of [app#0]: PASS=s1/password: sec/s1 has no key 'password'"
    ]


def test_an_app_taking_keys_reads_a_root_only_file_written_before_it_starts() -> None:
    """EnvironmentFile= + ExecStartPre=+om … driver env + ExecStopPost= removing it; no
    value and no reference in Environment= (systemctl show reveals that one)."""
    result = build(APP, filename="web.conf", node="n1", om="/usr/bin/om")
    unit = result.units["opensvc-svc.web-app.0.service"]
    env_file = "/run/opensvc/env/opensvc-svc.web-app.0.service.env"
    assert f"EnvironmentFile=-{env_file}\n" in unit
    assert "ExecStartPre=+/usr/bin/om web driver env --rid app#0\n" in unit
    assert f"ExecStopPost=-+rm -f {env_file}\n" in unit
    environment = [line for line in unit.splitlines() if line.startswith("Environment=")]
    assert environment and not any("s1" in line or "PASS" in line for line in environment)


def test_an_app_without_references_has_no_environment_file() -> None:
    units = build(APP.replace("secrets_environment", "#").replace("configs_environment", "#"),
                  filename="web.conf", node="n1", om="/usr/bin/om").units  # fmt: skip
    unit = units["opensvc-svc.web-app.0.service"]
    assert "EnvironmentFile" not in unit and "ExecStartPre" not in unit
