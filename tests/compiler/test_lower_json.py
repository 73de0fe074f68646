"""The IR's JSON form: lossless round trip over the whole corpus, clear errors on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omc.compiler import ir
from omc.compiler.ir_json import IrDecodeError, from_dict, to_dict
from omc.compiler.pipeline import compile_file

from .test_lower_corpus import CORPUS

SERVICES = [
    (f, r.service)
    for f in CORPUS
    if (r := compile_file(f, node="n1", cluster={"clustername": "c"})).service is not None
]


def test_most_of_the_corpus_has_a_service() -> None:
    """The round trip below covers the accepted corpus files (at least 40 of them)."""
    assert len(SERVICES) >= 40


@pytest.mark.parametrize(("file", "service"), SERVICES, ids=[f.stem for f, _ in SERVICES])
def test_json_round_trip(file: Path, service: ir.Service) -> None:
    """from_dict(json(to_dict(service))) gives the same IR, resource classes included."""
    text = json.dumps(to_dict(service), sort_keys=True)
    back = from_dict(json.loads(text))
    assert back == service
    assert [type(r) for r in back.resources] == [type(r) for r in service.resources]


def test_json_form_is_tagged_and_plain() -> None:
    """Dataclasses carry __type__; enums are values; frozensets sorted lists."""
    res = ir.FsResource(
        rid="fs#1",
        group=ir.Group.FS,
        driver="fs.flag",
        span=ir.SourceSpan(file="f", line=1, column=1),
        fs_type="flag",
        tags=frozenset({"b", "a"}),
    )
    data = to_dict(res)
    assert (data["__type__"], data["group"], data["tags"]) == ("FsResource", "fs", ["a", "b"])
    assert data["pg"]["__type__"] == "ProcessGroup"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"__type__": "Nope"}, "unexpected type"),
        ({"name": "x"}, "no '__type__' tag"),
        ({"__type__": "ObjectPath", "name": "x", "kind": "box"}, "$.kind: 'box' is not a Kind"),
        ({"__type__": "ObjectPath", "name": 3}, "$.name: expected str"),
        ({"__type__": "ObjectPath"}, "$: "),
        ({"__type__": "Schedule", "raw": "", "rules": "x"}, "$.rules: expected a list"),
    ],
)
def test_bad_documents_raise_decode_errors(data: dict[str, object], message: str) -> None:
    """Malformed input names the field; no bare TypeError escapes."""
    with pytest.raises(IrDecodeError, match=message.replace("$", r"\$").replace(".", r"\.")):
        from_dict(data)
