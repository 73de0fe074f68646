"""The IR classes: frozen, slotted, keyword-only, compared and hashed field by field."""

from __future__ import annotations

import dataclasses

import pytest
from omc.compiler import ir

SPAN = ir.SourceSpan(file="a.conf", line=1, column=1)


def _app(**changes: object) -> ir.AppResource:
    fields: dict[str, object] = {
        "rid": "app#a",
        "group": ir.Group.APP,
        "driver": "app.forking",
        "span": SPAN,
    }
    fields.update(changes)
    return ir.AppResource(**fields)  # type: ignore[arg-type]


def test_equal_fields_mean_equal_objects_and_hashes() -> None:
    """Two instances with the same fields are equal and hash the same."""
    assert _app() == _app()
    assert hash(_app()) == hash(_app())
    assert len({_app(), _app()}) == 1


@pytest.mark.parametrize(
    "other",
    [_app(rid="app#b"), _app(tags=frozenset({"x"})), _app(start=("/bin/true",))],
)
def test_a_different_field_means_not_equal(other: ir.AppResource) -> None:
    """Any differing field makes two instances unequal."""
    assert _app() != other


def test_hash_is_the_hash_of_the_field_tuple() -> None:
    """hash() is what the dataclass-generated one gave: the hash of the fields in order."""
    path = ir.ObjectPath(namespace="ns", kind=ir.Kind.VOL, name="v")
    assert hash(path) == hash(("ns", ir.Kind.VOL, "v"))
    values = tuple(getattr(SPAN, f.name) for f in dataclasses.fields(SPAN))
    assert hash(SPAN) == hash(values)


def test_instances_of_different_classes_are_never_equal() -> None:
    """A subclass instance with the same base fields is not equal to a base instance."""
    base = ir.Resource(rid="app#a", group=ir.Group.APP, driver="app.forking", span=SPAN)
    assert base != _app()
    assert base.__eq__(_app()) is NotImplemented


@pytest.mark.parametrize("obj", [SPAN, ir.ProcessGroup(), _app(), ir.Schedule(raw="@10m")])
def test_every_ir_object_is_frozen(obj: object) -> None:
    """Assigning a field raises: the IR is read-only once built."""
    name = dataclasses.fields(obj)[0].name  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(obj, name, None)


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (SPAN, "SourceSpan(file='a.conf', line=1, column=1)"),
        (
            ir.ObjectPath(name="web"),
            "ObjectPath(namespace='root', kind=<Kind.SVC: 'svc'>, name='web')",
        ),
        (ir.Requirement(rid="fs#1", states=("up",)), "Requirement(rid='fs#1', states=('up',))"),
    ],
)
def test_repr_names_the_class_and_every_field(obj: object, expected: str) -> None:
    """repr() reads as dataclass's own would: the class, then each field in order."""
    assert repr(obj) == expected


def test_repr_of_a_resource_lists_inherited_fields_first() -> None:
    """A driver class shows the Resource fields, then its own, in dataclass field order."""
    app = _app()
    shown = ", ".join(f"{f.name}={getattr(app, f.name)!r}" for f in dataclasses.fields(app))
    assert repr(app) == f"AppResource({shown})"
    assert repr(app).startswith("AppResource(rid='app#a', group=<Group.APP: 'app'>, ")
