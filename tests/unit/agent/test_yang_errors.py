"""How libyang's problems become rpc-errors: the tag, app-tag, error-path and bad-element of
each kind of constraint, found in the element to blame."""

from __future__ import annotations

import pytest
from lxml import etree

from callhome.agent.datastore.core import NETCONF_BASE_NS
from callhome.agent.yang.modules import YangModules
from callhome.errors import ErrorTag

NS = "urn:example:constraints"

# Written for these tests: one constraint of each kind the device maps.
CONSTRAINTS = """module example-constraints {
  yang-version 1.1;
  namespace "urn:example:constraints";
  prefix exk;

  revision 2024-07-01 {
    description "For the tests of error mapping.";
  }

  leaf site {
    type string;
    mandatory true;
  }

  container box {
    list slot {
      key "id";
      unique "label";
      min-elements 1;
      max-elements 2;
      leaf id {
        type uint8;
      }
      leaf label {
        type string;
      }
      leaf size {
        type uint8;
        mandatory true;
      }
    }
    choice power {
      mandatory true;
      leaf mains {
        type empty;
      }
      leaf battery {
        type empty;
      }
    }
    leaf level {
      type uint8 {
        range "1..5" {
          error-app-tag "level-range";
          error-message "the level is 1 to 5";
        }
      }
    }
    leaf boost {
      when "../level = 5";
      type boolean;
    }
    leaf temperature {
      config false;
      type int8;
    }
    leaf-list tag {
      type string;
    }
  }
}
"""


@pytest.fixture(scope="module")
def yang(tmp_path_factory: pytest.TempPathFactory) -> YangModules:
    folder = tmp_path_factory.mktemp("constraints")
    (folder / "example-constraints@2024-07-01.yang").write_text(CONSTRAINTS)
    return YangModules([folder])


def slot(n: int, extra: str = "<size>1</size>") -> str:
    return f"<slot><id>{n}</id>{extra}</slot>"


def box(inner: str) -> str:
    return f'<site xmlns="{NS}">lab</site><box xmlns="{NS}">{inner}</box>'


def data(body: str) -> etree._Element:
    return etree.fromstring(f'<data xmlns="{NETCONF_BASE_NS}">{body}</data>')


def test_a_valid_configuration_passes(yang):
    assert yang.validate(data(box(slot(1) + "<mains/><level>5</level><boost>true</boost>"))) == []


CASES = [
    # (configuration, error-tag, error-app-tag, error-path, bad-element)
    ("", ErrorTag.MISSING_ELEMENT, None, None, "site"),
    (box("<mains/>"), ErrorTag.OPERATION_FAILED, "too-few-elements", "/constraints:box", None),
    (
        box(slot(1) + slot(2) + slot(3) + "<mains/>"),
        ErrorTag.OPERATION_FAILED,
        "too-many-elements",
        "/constraints:box/constraints:slot[constraints:id='3']",
        None,
    ),
    (
        box(slot(1, "<size>1</size><label>a</label>") + slot(2, "<size>1</size><label>a</label>")),
        ErrorTag.OPERATION_FAILED,
        "data-not-unique",
        "/constraints:box/constraints:slot[constraints:id='2']",
        None,
    ),
    (
        box(slot(1) + slot(1) + "<mains/>"),
        ErrorTag.OPERATION_FAILED,
        "data-not-unique",
        "/constraints:box/constraints:slot[constraints:id='1']",
        None,
    ),
    # the entry that lacks the mandatory leaf, not the first one
    (
        box(slot(1) + slot(2, "") + "<mains/>"),
        ErrorTag.MISSING_ELEMENT,
        None,
        "/constraints:box/constraints:slot[constraints:id='2']",
        "size",
    ),
    (box(slot(1)), ErrorTag.DATA_MISSING, "missing-choice", "/constraints:box", None),
    (
        box(slot(1) + "<mains/><battery/>"),
        ErrorTag.BAD_ELEMENT,
        None,
        "/constraints:box",
        "battery",
    ),
    (
        box(slot(1) + "<mains/><level>9</level>"),
        ErrorTag.INVALID_VALUE,
        "level-range",
        "/constraints:box/constraints:level",
        "level",
    ),
    (
        box(slot(1) + "<mains/><level>2</level><boost>true</boost>"),
        ErrorTag.BAD_ELEMENT,
        None,
        "/constraints:box/constraints:boost",
        "boost",
    ),
    (
        box(slot(1) + "<mains/><temperature>20</temperature>"),
        ErrorTag.INVALID_VALUE,
        None,
        "/constraints:box/constraints:temperature",
        "temperature",
    ),
    (
        box(slot(1) + "<mains/><tag>a</tag><tag>a</tag>"),
        ErrorTag.OPERATION_FAILED,
        None,
        "/constraints:box/constraints:tag",
        None,
    ),
    (
        f'<site xmlns="{NS}">lab</site><site xmlns="{NS}">lab</site>'
        f'<box xmlns="{NS}">{slot(1)}<mains/></box>',
        ErrorTag.OPERATION_FAILED,
        "too-many-elements",
        "/constraints:site",
        None,
    ),
    (
        f'<site xmlns="{NS}">lab</site><lid xmlns="{NS}"/>',
        ErrorTag.UNKNOWN_ELEMENT,
        None,
        "/constraints:lid",
        "lid",
    ),
]


@pytest.mark.parametrize(("body", "tag", "app_tag", "path", "bad"), CASES)
def test_each_kind_of_problem(yang, body, tag, app_tag, path, bad):
    (error,) = yang.validate(data(body))
    assert error.tag is tag, error.describe()
    assert error.app_tag == app_tag
    assert error.path == path
    assert error.info_items.get("bad-element") == bad
    assert error.message


def test_the_error_app_tag_and_message_of_a_restriction_are_kept(yang):
    (error,) = yang.validate(data(box(slot(1) + "<mains/><level>0</level>")))
    assert "the level is 1 to 5" in error.message


def test_a_large_list_with_leafrefs_is_checked(tmp_path):
    # the case that took yangson tens of seconds: each entry refers to another one
    (tmp_path / "example-ring@2024-07-01.yang").write_text(
        'module example-ring { yang-version 1.1; namespace "urn:example:ring"; prefix r;\n'
        'revision 2024-07-01 { description "Tests."; }\n'
        "list node { key name; leaf name { type string; }\n"
        '  leaf next { type leafref { path "../../node/name"; } } } }\n'
    )
    yang = YangModules([tmp_path])
    rows = "".join(
        f'<node xmlns="urn:example:ring"><name>n{i}</name><next>n{(i + 1) % 2000}</next></node>'
        for i in range(2000)
    )
    assert yang.validate(data(rows)) == []
    (error,) = yang.validate(data(rows.replace("<next>n7<", "<next>n7x<")))
    assert error.app_tag == "instance-required"
    assert error.path == "/ring:node[ring:name='n6']/ring:next"
