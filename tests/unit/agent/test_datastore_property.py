"""Random edit sequences keep the datastore equal to a plain dict model."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from callhome.agent.datastore.core import NETCONF_BASE_NS, Datastore
from callhome.errors import ErrorTag, RpcError

NC = NETCONF_BASE_NS
T = "urn:example:model"

Model = dict[str, str | None]  # item name -> value (None: the item has no <value>)


@dataclass(frozen=True)
class Op:
    kind: str  # merge, merge-bare, create, delete, remove, replace, delete-value
    name: str
    value: str | None = None

    def xml(self) -> str:
        value = "" if self.value is None else f"<value>{self.value}</value>"
        op = {
            "merge": "",
            "merge-bare": "",
            "delete-value": "",
        }.get(self.kind, f' nc:operation="{self.kind}"')
        if self.kind == "delete-value":
            value = '<value nc:operation="delete"/>'
        return f"<item{op}><name>{self.name}</name>{value}</item>"

    def apply(self, model: Model) -> ErrorTag | None:
        """Change ``model`` as the datastore should; the error expected, if any."""
        present = self.name in model
        if self.kind == "merge":
            model[self.name] = self.value
        elif self.kind == "merge-bare":
            model.setdefault(self.name, None)
        elif self.kind == "create":
            if present:
                return ErrorTag.DATA_EXISTS
            model[self.name] = self.value
        elif self.kind == "replace":
            model[self.name] = self.value
        elif self.kind == "delete":
            if not present:
                return ErrorTag.DATA_MISSING
            del model[self.name]
        elif self.kind == "remove":
            model.pop(self.name, None)
        elif self.kind == "delete-value":
            # merge creates the item even though the delete below it fails
            if model.setdefault(self.name, None) is None:
                return ErrorTag.DATA_MISSING
            model[self.name] = None
        return None


names = st.sampled_from(["a", "b", "c", "d"])
values = st.sampled_from(["1", "2", "x y"])
ops = st.one_of(
    st.builds(Op, st.sampled_from(["merge", "create", "replace"]), names, values),
    st.builds(Op, st.sampled_from(["merge-bare", "delete", "remove", "delete-value"]), names),
    st.builds(Op, st.just("replace"), names, st.none()),
)


@dataclass(frozen=True)
class Edit:
    ops: tuple[Op, ...]
    error_option: str
    test_only: bool

    def config(self) -> etree._Element:
        body = "".join(op.xml() for op in self.ops)
        return etree.fromstring(
            f'<config xmlns="{NC}" xmlns:nc="{NC}"><top xmlns="{T}">{body}</top></config>'
        )

    def expected(self, model: Model) -> list[ErrorTag]:
        """Apply to ``model`` as the datastore should; the errors it should report."""
        work = dict(model)
        errors = []
        for op in self.ops:
            error = op.apply(work)
            if error is not None:
                errors.append(error)
                if self.error_option != "continue-on-error":
                    return errors
        if not self.test_only:
            model.clear()
            model.update(work)
        return errors


edits = st.builds(
    Edit,
    st.lists(ops, min_size=1, max_size=4).map(tuple),
    st.sampled_from(["stop-on-error", "rollback-on-error", "continue-on-error"]),
    st.sampled_from([False, False, False, True]),
)


def observed(ds: Datastore) -> list[tuple[str, str | None]]:
    data = ds.get_config()
    tops = list(data)
    if not tops:
        return []
    assert len(tops) == 1
    items = []
    for item in tops[0]:
        fields = {etree.QName(c).localname: c.text for c in item}
        assert set(fields) <= {"name", "value"}
        items.append((fields["name"] or "", fields.get("value")))
    names_seen = [name for name, _ in items]
    assert len(names_seen) == len(set(names_seen))
    return items


def run(ds: Datastore, sequence: list[Edit]) -> Model:
    model: Model = {}
    for edit in sequence:
        expected = edit.expected(model)
        try:
            ds.edit_config(
                "running",
                edit.config(),
                error_option=edit.error_option,
                test_option="test-only" if edit.test_only else "test-then-set",
            )
            got: list[ErrorTag] = []
        except RpcError as exc:
            got = [e.tag for e in exc.errors]
        assert got == expected
        assert observed(ds) == list(model.items())
    return model


@settings(max_examples=150, deadline=None)
@given(st.lists(edits, min_size=1, max_size=8))
def test_random_edits_match_the_model(sequence: list[Edit]) -> None:
    run(Datastore(), sequence)


@settings(max_examples=25, deadline=None)
@given(st.lists(edits, min_size=1, max_size=5))
def test_random_edits_survive_a_reload(sequence: list[Edit]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "running.xml"
        ds = Datastore(path)
        model = run(ds, sequence)
        assert observed(Datastore(path)) == list(model.items())
