"""with-defaults (RFC 6243): basic mode explicit, retrieval modes report-all and trim."""

from __future__ import annotations

import pytest
from agent_testkit import WD, Session, config, data, edit, get_config, new_service, text

from callhome.agent.datastore.core import Datastore
from callhome.agent.netconf_service import NetconfService
from callhome.errors import ConfigError, ErrorTag, ErrorType

IF = "urn:example:if"
SYS = "urn:example:sys"
DEFAULTS = {
    f"/{{{IF}}}interfaces/{{{IF}}}interface/{{{IF}}}mtu": "1500",
    f"{{{SYS}}}system/{{{SYS}}}timezone": "UTC",
    f"/{{{SYS}}}system/{{{SYS}}}clock/{{{SYS}}}source": "ntp",
    "/plain/leaf": "x",
}
KEYS = {
    f"{{{IF}}}interface": (f"{{{IF}}}name",),
    f"{{{SYS}}}system": (),
    f"{{{SYS}}}clock": (),
}
STORED = (
    f'<interfaces xmlns="{IF}">'
    "<interface><name>eth0</name><mtu>9000</mtu></interface>"
    "<interface><name>eth1</name><mtu>1500</mtu></interface>"  # set to its default
    "<interface><name>eth2</name></interface>"
    "</interfaces>"
)


@pytest.fixture
def service() -> NetconfService:
    service = new_service(list_keys=KEYS, defaults=DEFAULTS, state_providers=[lambda: []])
    Session(service).ok(edit("running", STORED))
    return service


def wd(mode: str) -> str:
    return f'<with-defaults xmlns="{WD}">{mode}</with-defaults>'


def test_explicit_is_what_was_set(service: NetconfService) -> None:
    s = Session(service)
    for extra in ("", wd("explicit")):
        assert text(s.data(get_config("running", extra))) == data(STORED)
        assert text(s.data(f"<get>{extra}</get>")) == data(STORED)


def test_report_all(service: NetconfService) -> None:
    s = Session(service)
    expected = data(
        f'<interfaces xmlns="{IF}">'
        "<interface><name>eth0</name><mtu>9000</mtu></interface>"
        "<interface><name>eth1</name><mtu>1500</mtu></interface>"
        "<interface><name>eth2</name><mtu>1500</mtu></interface>"
        "</interfaces>"
        # a declared container is there for its defaults; a list entry or an undeclared
        # element is not made up
        f'<system xmlns="{SYS}"><timezone>UTC</timezone><clock><source>ntp</source></clock>'
        "</system>"
    )
    assert text(s.data(get_config("running", wd("report-all")))) == expected
    assert text(s.data(f"<get>{wd('report-all')}</get>")) == expected


def test_trim(service: NetconfService) -> None:
    s = Session(service)
    s.ok(
        edit(
            "running",
            f'<system xmlns="{SYS}"><timezone> UTC </timezone><clock><source>ntp</source>'
            "</clock><name>n</name></system>",
        )
    )
    expected = data(
        f'<interfaces xmlns="{IF}">'
        "<interface><name>eth0</name><mtu>9000</mtu></interface>"
        "<interface><name>eth1</name></interface>"
        "<interface><name>eth2</name></interface>"
        "</interfaces>"
        f'<system xmlns="{SYS}"><name>n</name></system>'
    )
    assert text(s.data(get_config("running", wd("trim")))) == expected
    # the stored data is untouched
    assert "UTC" in text(s.data(get_config("running")))


def test_with_defaults_and_filters(service: NetconfService) -> None:
    s = Session(service)
    got = s.data(
        get_config(
            "running",
            f'<filter><system xmlns="{SYS}"><timezone/></system></filter>' + wd("report-all"),
        )
    )
    assert text(got) == data(f'<system xmlns="{SYS}"><timezone>UTC</timezone></system>')
    got = s.data(
        f'<get xmlns:i="{IF}"><filter type="xpath" select="//i:interface[i:mtu = 1500]"/>'
        + wd("report-all")
        + "</get>"
    )
    assert [e.findtext(f"{{{IF}}}name") for e in got.iter(f"{{{IF}}}interface")] == [
        "eth1",
        "eth2",
    ]


def test_candidate_and_startup_too(service: NetconfService) -> None:
    s = Session(service)
    s.ok("<copy-config><target><startup/></target><source><running/></source></copy-config>")
    for source in ("candidate", "startup"):
        got = s.data(get_config(source, wd("trim")))
        assert "1500" not in text(got)


@pytest.mark.parametrize("mode", ["report-all-tagged", "all", ""])
def test_unsupported_modes(service: NetconfService, mode: str) -> None:
    s = Session(service)
    for body in (get_config("running", wd(mode)), f"<get>{wd(mode)}</get>"):
        err = s.error(body)
        assert (err.tag, err.type) == (ErrorTag.INVALID_VALUE, ErrorType.PROTOCOL)
        assert err.info_items == {"bad-element": "with-defaults"}


def test_parameter_in_the_base_namespace_is_unknown(service: NetconfService) -> None:
    err = Session(service).error("<get><with-defaults>trim</with-defaults></get>")
    assert (err.tag, err.info_items) == (ErrorTag.UNKNOWN_ELEMENT, {"bad-element": "with-defaults"})
    err = Session(service).error(f"<lock><target><running/></target>{wd('trim')}</lock>")
    assert err.tag is ErrorTag.UNKNOWN_NAMESPACE


def test_no_defaults_declared_means_nothing_changes() -> None:
    ds = Datastore()
    ds.edit_config("running", config(STORED))
    for mode in ("report-all", "trim", "explicit"):
        assert text(ds.get_config(with_defaults=mode)) == data(STORED)


def test_a_leaf_where_a_container_is_expected_is_left_alone() -> None:
    ds = Datastore(list_keys=KEYS, defaults=DEFAULTS)
    ds.edit_config("running", config(f'<system xmlns="{SYS}">text</system><plain xmlns=""/>'))
    got = ds.get_config(with_defaults="report-all")
    assert got.findtext(f"{{{SYS}}}system") == "text"
    assert len(got.find(f"{{{SYS}}}system")) == 0
    # a step without a namespace names an element in no namespace
    assert got.findtext("plain/leaf") == "x"


@pytest.mark.parametrize("path", ["", "/", "{urn:x}", "a//b", "{urn:x}a/{b", "a/b/"])
def test_bad_default_paths(path: str) -> None:
    with pytest.raises(ConfigError):
        Datastore(defaults={path: "1"})
