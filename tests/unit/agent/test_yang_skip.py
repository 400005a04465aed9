"""The YANG check is skipped when a change leaves the modeled data alone, and only then.

The check itself is counted through the datastore's ``schema`` seam (``SchemaValidator``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from callhome.agent.datastore.core import NETCONF_BASE_NS, Datastore
from callhome.agent.yang.modules import YangModules
from callhome.errors import ErrorTag, RpcError, RpcErrorInfo

EXD = "urn:example:device"
EXC = "urn:example:cross"
OTHER = "urn:example:other"
YANG_DIR = Path(__file__).parent / "yang"

# Written for these tests: references between top-level subtrees, and a mandatory top-level
# leaf, so that a change in one subtree can make the whole configuration invalid.
CROSS = """module example-cross {
  yang-version 1.1;
  namespace "urn:example:cross";
  prefix exc;

  revision 2024-06-01 {
    description "For the tests of skipped checks.";
  }

  leaf site {
    type string;
    mandatory true;
  }

  container users {
    list user {
      key "name";
      leaf name {
        type string;
      }
    }
  }

  container groups {
    list group {
      key "name";
      leaf name {
        type string;
      }
      leaf owner {
        type leafref {
          path "/exc:users/exc:user/exc:name";
        }
      }
    }
  }
}
"""


class Counting:
    """The modules, counting the whole checks they run."""

    def __init__(self, yang: YangModules) -> None:
        self.yang = yang
        self.checks = 0

    def validate(self, root: etree._Element) -> list[RpcErrorInfo]:
        self.checks += 1
        return self.yang.validate(root)

    def same_modeled(self, before: etree._Element, after: etree._Element) -> bool:
        return self.yang.same_modeled(before, after)


@pytest.fixture(scope="module")
def device_yang() -> YangModules:
    return YangModules([YANG_DIR], search_path=[YANG_DIR / "lib"])


@pytest.fixture(scope="module")
def cross_yang(tmp_path_factory: pytest.TempPathFactory) -> YangModules:
    folder = tmp_path_factory.mktemp("cross")
    (folder / "example-cross@2024-06-01.yang").write_text(CROSS)
    return YangModules([folder])


def datastore(yang: YangModules) -> tuple[Datastore, Counting]:
    counting = Counting(yang)
    return Datastore(list_keys=yang.list_keys, defaults=yang.defaults, schema=counting), counting


def config(body: str) -> etree._Element:
    return etree.fromstring(
        f'<config xmlns="{NETCONF_BASE_NS}" xmlns:nc="{NETCONF_BASE_NS}">{body}</config>'
    )


def iface(name: str, extra: str = "") -> str:
    return (
        f'<interfaces xmlns="{EXD}"><interface><name>{name}</name><type>ethernet</type>'
        f"{extra}</interface></interfaces>"
    )


def notes(text: str) -> str:
    return f'<notes xmlns="{OTHER}"><note>{text}</note></notes>'


def refused(action: object, *args: object, **kwargs: object) -> RpcErrorInfo:
    assert callable(action)
    with pytest.raises(RpcError) as info:
        action(*args, **kwargs)
    (error,) = info.value.errors
    return error


def test_an_edit_of_schemaless_data_only_is_not_checked(device_yang):
    ds, counting = datastore(device_yang)
    ds.edit_config("running", config(iface("eth0")))
    assert counting.checks == 1
    ds.edit_config("running", config(notes("one")))
    ds.edit_config("running", config(notes("two")))
    ds.edit_config("candidate", config(notes("three")))
    assert counting.checks == 1
    assert ds.read().find(f"{{{OTHER}}}notes") is not None
    # a schemaless-only change of the candidate commits without a check
    ds.commit()
    assert counting.checks == 1
    # so does an inline copy-config whose modeled data is what running holds
    again = etree.tostring(ds.read()).decode().replace("<data", "<config", 1)
    again = again.replace("</data>", "</config>")
    ds.copy_config("running", etree.fromstring(again.replace("three", "four")))
    assert counting.checks == 1


def test_an_edit_of_modeled_data_is_checked_every_time(device_yang):
    ds, counting = datastore(device_yang)
    ds.edit_config("running", config(notes("x")))
    ds.edit_config("running", config(iface("eth0")))
    ds.edit_config("running", config(iface("eth0", "<description>up</description>")))
    assert counting.checks == 2
    # schemaless data in the same edit does not hide the modeled change
    error = refused(
        ds.edit_config, "running", config(notes("y") + iface("eth0", "<vlan>5000</vlan>"))
    )
    assert error.tag is ErrorTag.INVALID_VALUE
    assert ds.read().find(f".//{{{OTHER}}}note").text == "x"


@pytest.mark.parametrize(
    "body",
    [
        # a modeled value changed
        iface("eth0", "<vlan>1</vlan>"),
        # a modeled element of an unknown namespace added deep down
        iface("eth0", '<x:extra xmlns:x="urn:example:unknown"/>'),
        # a modeled top-level element added beside schemaless data
        notes("z") + f'<system xmlns="{EXD}"><mtu>1</mtu></system>',
    ],
)
def test_an_invalid_modeled_edit_is_still_refused_after_schemaless_edits(device_yang, body):
    ds, _counting = datastore(device_yang)
    ds.edit_config("running", config(iface("eth0") + notes("a")))
    ds.edit_config("running", config(notes("b")))
    before = etree.tostring(ds.read())
    refused(ds.edit_config, "running", config(body))
    assert etree.tostring(ds.read()) == before


def test_removing_modeled_data_is_checked(cross_yang):
    ds, counting = datastore(cross_yang)
    ds.edit_config("running", config(f'<site xmlns="{EXC}">lab</site>' + notes("a")))
    checks = counting.checks
    # replacing everything with schemaless data only drops the mandatory leaf
    error = refused(ds.edit_config, "running", config(notes("b")), default_operation="replace")
    assert error.tag is ErrorTag.MISSING_ELEMENT
    assert counting.checks == checks + 1
    assert ds.read().findtext(f"{{{EXC}}}site") == "lab"


def test_a_change_in_one_subtree_is_checked_against_the_others(cross_yang):
    # Why every modeled subtree is checked, not only the changed one: the group refers to
    # the user from another top-level container.
    ds, _counting = datastore(cross_yang)
    ds.edit_config(
        "running",
        config(
            f'<site xmlns="{EXC}">lab</site>'
            f'<users xmlns="{EXC}"><user><name>ann</name></user></users>'
            f'<groups xmlns="{EXC}"><group><name>ops</name><owner>ann</owner></group></groups>'
        ),
    )
    before = etree.tostring(ds.read())
    error = refused(
        ds.edit_config,
        "running",
        config(f'<users xmlns="{EXC}"><user nc:operation="delete"><name>ann</name></user></users>'),
    )
    assert error.tag is ErrorTag.DATA_MISSING
    assert error.app_tag == "instance-required"
    assert etree.tostring(ds.read()) == before


def test_an_unchecked_candidate_is_checked_at_commit(device_yang):
    ds, _counting = datastore(device_yang)
    ds.edit_config("candidate", config(iface("eth0", "<vlan>5000</vlan>")), test_option="set")
    # a later schemaless edit of the candidate is not checked, and passes
    ds.edit_config("candidate", config(notes("n")))
    # but commit compares the candidate with running, whose modeled data differs
    error = refused(ds.commit)
    assert error.tag is ErrorTag.INVALID_VALUE
    assert ds.read().find(f"{{{EXD}}}interfaces") is None


def test_copy_config_to_a_startup_that_does_not_exist_is_checked(cross_yang):
    ds, counting = datastore(cross_yang)
    # running and the missing startup both have no modeled data; the copy is checked anyway
    error = refused(ds.copy_config, "startup", config(notes("a")))
    assert error.tag is ErrorTag.MISSING_ELEMENT
    assert counting.checks == 1
    assert not ds.startup_exists


def test_same_modeled_compares_text_order_and_namespaces_in_scope(device_yang):
    def data(body: str, extra_ns: str = "") -> etree._Element:
        return etree.fromstring(f'<data xmlns="{NETCONF_BASE_NS}"{extra_ns}>{body}</data>')

    a = data(iface("eth0") + notes("a"))
    assert device_yang.same_modeled(a, data(iface("eth0") + notes("other")))
    assert device_yang.same_modeled(a, data(notes("b") + iface("eth0")))
    assert not device_yang.same_modeled(a, data(iface("eth1") + notes("a")))
    assert not device_yang.same_modeled(a, data(notes("a")))
    assert not device_yang.same_modeled(a, data(iface("eth0") + iface("eth0")))
    system = f'<system xmlns="{EXD}"/>'
    assert not device_yang.same_modeled(data(system + iface("e")), data(iface("e") + system))
    # a prefix's namespace (an identityref value's meaning) can come from the <data> element
    assert not device_yang.same_modeled(
        data(iface("eth0"), ' xmlns:p="urn:p1"'), data(iface("eth0"), ' xmlns:p="urn:p2"')
    )
