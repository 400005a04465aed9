"""NETCONF access control (RFC 8341): rule matching, defaults, and the service's hooks."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from lxml import etree

from callhome.agent.access.managers import ManagerDirectory
from callhome.agent.access.nacm import NACM_NS, Nacm, NacmError, parse_path, parse_policy
from callhome.agent.datastore.core import Datastore
from callhome.agent.netconf_service import NetconfService
from callhome.config import ManagerEntry
from callhome.errors import ConfigError, ErrorTag, ErrorType, RpcError
from callhome.net.netconf import Principal

BASE = "urn:ietf:params:xml:ns:netconf:base:1.0"
IF = "urn:example:interfaces"
SYS = "urn:example:system"
ADMIN_FP = "SHA256:admin"
RO_FP = "SHA256:readonly"

RULES = f"""
<nacm xmlns="{NACM_NS}" xmlns:if="{IF}">
  <write-default>permit</write-default>
  <groups><group><name>ops</name><user-name>carol</user-name></group></groups>
  <rule-list>
    <name>admin</name><group>admin</group>
    <rule><name>all</name><module-name>*</module-name><access-operations>*</access-operations>
      <action>permit</action></rule>
  </rule-list>
  <rule-list>
    <name>readonly</name><group>viewer</group><group>ops</group>
    <rule><name>no-secret</name><path>/if:interfaces/if:interface[if:name='secret']</path>
      <access-operations>read</access-operations><action>deny</action></rule>
    <rule><name>no-keys</name><path>/sys:system/*/key</path>
      <access-operations>*</access-operations><action>deny</action></rule>
    <rule><name>no-kill</name><rpc-name>edit-config</rpc-name><action>deny</action></rule>
    <rule><name>no-alarm</name><notification-name>alarm</notification-name>
      <action>deny</action></rule>
    <rule><name>no-writes</name><module-name>if</module-name>
      <access-operations>create update delete</access-operations><action>deny</action></rule>
  </rule-list>
</nacm>
"""

DATA = f"""
<interfaces xmlns="{IF}">
  <interface><name>eth0</name><mtu>1500</mtu></interface>
  <interface><name>secret</name><mtu>9000</mtu></interface>
</interfaces>
<system xmlns="{SYS}"><ssh><port>22</port><key>AAAA</key></ssh><hostname>dev</hostname></system>
"""

ADMIN = Principal(ADMIN_FP, "callhome", transport="reverse-ssh")
RO = Principal(RO_FP, "callhome", transport="reverse-ssh")


def directory() -> ManagerDirectory:
    return ManagerDirectory(
        [
            ManagerEntry(key=ADMIN_FP, user="root", groups=["admin"]),
            ManagerEntry(key=RO_FP, user="noc", groups=["viewer"]),
        ]
    )


def make_nacm(**kwargs: object) -> Nacm:
    return Nacm(
        modules={IF: "if", SYS: "sys"},
        directory=directory(),
        **kwargs,  # type: ignore[arg-type]
    )


def xml(text: str) -> etree._Element:
    return etree.fromstring(text)


def data(body: str) -> etree._Element:
    return xml(f'<data xmlns="{BASE}">{body}</data>')


@pytest.fixture
def service() -> NetconfService:
    store = Datastore()
    store.copy_config("running", xml(f'<config xmlns="{BASE}">{RULES}{DATA}</config>'))
    return NetconfService(store, nacm=make_nacm())


def rpc(service: NetconfService, session: int, body: str) -> etree._Element | None:
    return service.handle(session, xml(body))


def get_config(service: NetconfService, session: int) -> etree._Element:
    reply = rpc(
        service, session, f'<get-config xmlns="{BASE}"><source><running/></source></get-config>'
    )
    assert reply is not None
    return reply


def edit(service: NetconfService, session: int, body: str) -> None:
    rpc(
        service,
        session,
        f'<edit-config xmlns="{BASE}"><target><running/></target>'
        f'<config xmlns="{BASE}">{body}</config></edit-config>',
    )


# -- parsing ---------------------------------------------------------------------------------


def test_parse_path_with_prefixes_keys_and_wildcards() -> None:
    steps = parse_path("/if:interfaces/if:interface[if:name='eth0']/*", {"if": IF})
    assert [(s.namespace, s.name) for s in steps] == [
        (IF, "interfaces"),
        (IF, "interface"),
        (None, "*"),
    ]
    assert steps[1].keys == ((IF, "name", "eth0"),)
    assert parse_path("/") == ()
    # a module name works as a prefix; unprefixed steps take their parent's namespace
    steps = parse_path('/interfaces:interfaces/interface[name="x"]', {}, {"interfaces": IF})
    assert steps[1].namespace == IF and steps[1].keys == ((IF, "name", "x"),)


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("interfaces", "must start with '/'"),
        ("/if:interfaces[", "bad key predicate"),
        ("/nope:interfaces", "unknown prefix 'nope'"),
        ("/if:interfaces//x", "expected a node name"),
        ("/*[name='x']", "'*' cannot have keys"),
    ],
)
def test_bad_paths_are_refused_naming_the_problem(path: str, problem: str) -> None:
    with pytest.raises(NacmError, match=problem):
        parse_path(path, {"if": IF})


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("<enable-nacm>maybe</enable-nacm>", "enable-nacm must be"),
        ("<rule-list><name>x</name><group>ghosts</group></rule-list>", "unknown group 'ghosts'"),
        ("<rule-list><name>x</name><rule><name>r</name></rule></rule-list>", "needs an action"),
        (
            "<rule-list><name>x</name><rule><name>r</name><access-operations>write</access-operations>"
            "<action>permit</action></rule></rule-list>",
            "access-operations 'write'",
        ),
        ("<bogus/>", "unexpected element"),
    ],
)
def test_malformed_rules_are_refused(body: str, problem: str) -> None:
    with pytest.raises(NacmError, match=problem):
        parse_policy(xml(f'<nacm xmlns="{NACM_NS}">{body}</nacm>'))


def test_policy_defaults_are_the_rfcs() -> None:
    policy = parse_policy(xml(f'<nacm xmlns="{NACM_NS}"/>'))
    assert policy.enabled and policy.read_default and not policy.write_default
    assert policy.exec_default and policy.external_groups


# -- deciding --------------------------------------------------------------------------------


def loaded() -> Nacm:
    nacm = make_nacm()
    nacm.load(data(RULES))
    return nacm


def test_rpc_rules_and_the_standard_defaults() -> None:
    nacm = loaded()
    ro = directory().resolve(RO)
    admin = directory().resolve(ADMIN)
    assert not nacm.rpc_allowed(ro, BASE, "edit-config")
    assert nacm.rpc_allowed(ro, BASE, "get-config")  # exec-default permit
    assert nacm.rpc_allowed(ro, BASE, "close-session")  # always
    assert not nacm.rpc_allowed(ro, BASE, "kill-session")  # default-deny-all
    assert not nacm.rpc_allowed(ro, BASE, "delete-config")
    assert nacm.rpc_allowed(admin, BASE, "kill-session")  # an explicit permit wins
    assert nacm.rpc_allowed(None, BASE, "kill-session")  # the device's own code


def test_data_rules_match_keys_wildcards_and_modules() -> None:
    nacm = loaded()
    ro = directory().resolve(RO)
    tree = data(DATA)
    interfaces = tree[0]
    eth0, secret = interfaces[0], interfaces[1]
    assert nacm.data_allowed(ro, [interfaces, eth0], "read")
    assert not nacm.data_allowed(ro, [interfaces, secret], "read")
    assert not nacm.data_allowed(ro, [interfaces, secret, secret[1]], "read")  # below it too
    system = tree[1]
    ssh = system[0]
    assert not nacm.data_allowed(ro, [system, ssh, ssh[1]], "read")  # /sys:system/*/key
    assert nacm.data_allowed(ro, [system, ssh, ssh[0]], "read")
    assert not nacm.data_allowed(ro, [interfaces, eth0], "update")  # module-name rule
    assert nacm.data_allowed(ro, [system, system[1]], "update")  # write-default permit


def test_notifications() -> None:
    nacm = loaded()
    ro = directory().resolve(RO)
    assert not nacm.may_receive_notification(ro, "alarm")
    assert nacm.may_receive_notification(ro, "netconf-config-change")
    assert nacm.may_receive_notification(ro, "replayComplete")
    assert nacm.denied_notifications == 1


def test_group_from_nacm_groups_by_user_name() -> None:
    nacm = loaded()
    carol = Principal("SHA256:other", "carol")
    assert not nacm.rpc_allowed(carol, BASE, "edit-config")
    nobody = Principal("SHA256:other", "dave")
    assert nacm.rpc_allowed(nobody, BASE, "edit-config")


def test_disabled_or_absent_rules_allow_everything() -> None:
    nacm = make_nacm()
    nacm.load(data(DATA))
    assert nacm.policy is None
    assert nacm.rpc_allowed(RO, BASE, "kill-session")
    nacm.load(data(f'<nacm xmlns="{NACM_NS}"><enable-nacm>false</enable-nacm></nacm>'))
    assert nacm.rpc_allowed(RO, BASE, "kill-session")


# -- through the NETCONF service -------------------------------------------------------------


def test_read_only_manager_sees_less_and_cannot_edit(
    service: NetconfService, caplog: pytest.LogCaptureFixture
) -> None:
    ro = service.open_session(lambda: None, RO)
    out = etree.tostring(get_config(service, ro)).decode()
    assert "eth0" in out and "secret" not in out and "AAAA" not in out
    assert "<port>22</port>" in out
    assert "nacm" not in out  # the rules are default-deny-all
    with (
        caplog.at_level(logging.WARNING, logger="callhome.agent.access.nacm"),
        pytest.raises(RpcError) as caught,
    ):
        edit(service, ro, f'<system xmlns="{SYS}"><hostname>x</hostname></system>')
    error = caught.value.first
    assert error.tag is ErrorTag.ACCESS_DENIED and error.type is ErrorType.PROTOCOL
    assert RO_FP in caplog.text and "'noc'" in caplog.text and "edit-config" in caplog.text


def test_denied_data_write_is_application_access_denied(service: NetconfService) -> None:
    user = Principal("SHA256:other", "carol")  # in ops: edit-config denied too
    # the device's own code lifts the edit-config ban (running changed: in force at once)
    service.datastore.edit_config(
        "running",
        xml(
            f'<config xmlns="{BASE}"><nacm xmlns="{NACM_NS}"><rule-list><name>readonly</name>'
            f'<rule xmlns:nc="{BASE}" nc:operation="delete"><name>no-kill</name></rule>'
            "</rule-list></nacm></config>"
        ),
    )
    s = service.open_session(lambda: None, user)
    with pytest.raises(RpcError) as caught:
        edit(
            service,
            s,
            f'<interfaces xmlns="{IF}"><interface><name>eth0</name><mtu>1</mtu></interface>'
            "</interfaces>",
        )
    error = caught.value.first
    assert error.tag is ErrorTag.ACCESS_DENIED and error.type is ErrorType.APPLICATION
    assert error.path is not None and "mtu" in error.path
    # a node of another module is writable (write-default permit) and a no-op merge is free
    edit(service, s, f'<system xmlns="{SYS}"><hostname>new</hostname></system>')
    edit(
        service,
        s,
        f'<interfaces xmlns="{IF}"><interface><name>eth0</name><mtu>1500</mtu></interface>'
        "</interfaces>",
    )


def test_admin_edits_rules_live_and_lockout_is_refused(service: NetconfService) -> None:
    admin = service.open_session(lambda: None, ADMIN)
    ro = service.open_session(lambda: None, RO)
    out = etree.tostring(get_config(service, admin)).decode()
    assert "secret" in out and "rule-list" in out
    # lift the read-only group's edit-config ban: in force at once
    rpc(
        service,
        admin,
        f'<edit-config xmlns="{BASE}"><target><running/></target><config>'
        f'<nacm xmlns="{NACM_NS}"><rule-list><name>readonly</name>'
        f'<rule xmlns:nc="{BASE}" nc:operation="delete"><name>no-kill</name></rule>'
        "</rule-list></nacm></config></edit-config>",
    )
    edit(service, ro, f'<system xmlns="{SYS}"><hostname>x</hostname></system>')
    # removing the admin rule-list would leave nobody able to change the rules
    with pytest.raises(RpcError) as caught:
        rpc(
            service,
            admin,
            f'<edit-config xmlns="{BASE}"><target><running/></target><config>'
            f'<nacm xmlns="{NACM_NS}"><rule-list xmlns:nc="{BASE}" nc:operation="delete">'
            "<name>admin</name></rule-list></nacm></config></edit-config>",
        )
    assert caught.value.first.tag is ErrorTag.ACCESS_DENIED
    assert "no manager could change the NACM rules" in (caught.value.first.message or "")
    assert "admin" in etree.tostring(get_config(service, admin)).decode()


def test_malformed_rule_edit_is_refused_and_old_rules_stay(service: NetconfService) -> None:
    admin = service.open_session(lambda: None, ADMIN)
    ro = service.open_session(lambda: None, RO)
    for bad, problem in [
        ("<rule-list><name>x</name><group>ghosts</group></rule-list>", "unknown group"),
        (
            "<rule-list><name>x</name><group>viewer</group><rule><name>r</name>"
            "<path>/nope:x</path><action>deny</action></rule></rule-list>",
            "unknown prefix",
        ),
    ]:
        with pytest.raises(RpcError) as caught:
            edit(service, admin, f'<nacm xmlns="{NACM_NS}">{bad}</nacm>')
        assert caught.value.first.tag is ErrorTag.INVALID_VALUE
        assert problem in (caught.value.first.message or "")
    with pytest.raises(RpcError):
        edit(service, ro, f'<system xmlns="{SYS}"><hostname>x</hostname></system>')


def test_lockout_allowed_when_forced() -> None:
    store = Datastore()
    store.copy_config("running", xml(f'<config xmlns="{BASE}">{RULES}</config>'))
    service = NetconfService(store, nacm=make_nacm(allow_lockout=True))
    admin = service.open_session(lambda: None, ADMIN)
    rpc(
        service,
        admin,
        f'<edit-config xmlns="{BASE}"><target><running/></target><config>'
        f'<nacm xmlns="{NACM_NS}"><rule-list xmlns:nc="{BASE}" nc:operation="delete">'
        "<name>admin</name></rule-list></nacm></config></edit-config>",
    )


def test_startup_refuses_a_manager_allowed_nothing() -> None:
    nacm = make_nacm()
    nacm.load(
        data(
            f'<nacm xmlns="{NACM_NS}"><exec-default>deny</exec-default>'
            "<rule-list><name>a</name><group>admin</group><rule><name>all</name>"
            "<action>permit</action></rule></rule-list></nacm>"
        )
    )
    with pytest.raises(ConfigError, match=RO_FP):
        nacm.check_startup(["manager-b"])
    forced = make_nacm(allow_lockout=True)
    forced.load(data(f'<nacm xmlns="{NACM_NS}"><exec-default>deny</exec-default></nacm>'))
    forced.check_startup(["manager-b"])


def test_kill_session_denied_by_default_and_close_session_always_allowed(
    service: NetconfService,
) -> None:
    ro = service.open_session(lambda: None, RO)
    other = service.open_session(lambda: None, RO)
    with pytest.raises(RpcError) as caught:
        rpc(
            service,
            ro,
            f'<kill-session xmlns="{BASE}"><session-id>{other}</session-id></kill-session>',
        )
    assert caught.value.first.tag is ErrorTag.ACCESS_DENIED
    assert rpc(service, ro, f'<close-session xmlns="{BASE}"/>') is None


def test_recovery_session_bypasses(service: NetconfService) -> None:
    s = service.open_session(lambda: None)
    assert "secret" in etree.tostring(get_config(service, s)).decode()
    edit(
        service,
        s,
        f'<interfaces xmlns="{IF}"><interface><name>eth9</name></interface></interfaces>',
    )


def test_commit_is_checked_on_what_it_changes(service: NetconfService) -> None:
    user = Principal("SHA256:other", "carol")
    nacm = service.nacm
    assert nacm is not None
    s = service.open_session(lambda: None, user)
    # carol's group may not edit-config, so the device's own code fills the candidate
    service.datastore.edit_config(
        "candidate",
        xml(
            f'<config xmlns="{BASE}"><interfaces xmlns="{IF}"><interface><name>eth0</name>'
            "<mtu>1</mtu></interface></interfaces></config>"
        ),
    )
    with pytest.raises(RpcError) as caught:
        rpc(service, s, f'<commit xmlns="{BASE}"/>')
    assert caught.value.first.tag is ErrorTag.ACCESS_DENIED


def test_denied_notifications_are_not_sent() -> None:
    from callhome.agent.notifications import EventLog, NotificationCenter

    store = Datastore()
    store.copy_config("running", xml(f'<config xmlns="{BASE}">{RULES}{DATA}</config>'))
    center = NotificationCenter(EventLog(None))
    service = NetconfService(store, nacm=make_nacm(), notifications=center)
    got: dict[int, list[str]] = {}
    sessions = {}
    for principal in (ADMIN, RO):
        sid = service.open_session(lambda: None, principal)
        sessions[principal.identity] = sid
        got[sid] = []
        service.attach_session(
            sid,
            lambda _t, content, sid=sid: got[sid].extend(etree.QName(c).localname for c in content),
        )
        rpc(
            service,
            sid,
            '<create-subscription xmlns="urn:ietf:params:xml:ns:netconf:notification:1.0"/>',
        )
    center.notify(etree.Element("{urn:example:alarms}alarm"))
    center.notify(etree.Element("{urn:example:alarms}heartbeat"))
    mine = {"alarm", "heartbeat"}
    assert [n for n in got[sessions[ADMIN_FP]] if n in mine] == ["alarm", "heartbeat"]
    assert [n for n in got[sessions[RO_FP]] if n in mine] == ["heartbeat"]


# -- identities of every orientation --------------------------------------------------------


@pytest.fixture(scope="module")
def identities(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A manager's SSH user key, its turn host key and its client certificate (a file)."""
    import asyncssh

    from callhome.net.keys import identity_of
    from callhome.net.pki import init_ca, issue

    out = tmp_path_factory.mktemp("ids")
    user_key = asyncssh.generate_private_key("ssh-ed25519")
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    cert = issue(init_ca(out / "ca", "CA"), "manager", "ops-console", out=out / "issued")
    other = issue(init_ca(out / "ca2", "CA2"), "manager", "someone", out=out / "issued2")
    return {
        "user_key": user_key.export_public_key().decode(),
        "user_fp": identity_of(user_key).fingerprint,
        "host_key": host_key.export_public_key().decode(),
        "host_fp": identity_of(host_key).fingerprint,
        "cert_dir": str(cert.cert_file.parent),
        "cert_file": cert.cert_file.name,
        "cert_fp": cert.fingerprint,
        "other_fp": other.fingerprint,
    }


def by_orientation(ids: dict[str, str]) -> ManagerDirectory:
    openssl_form = "sha256 Fingerprint=" + ids["cert_fp"].removeprefix("SHA256:").lower()
    return ManagerDirectory(
        [
            ManagerEntry(key=ids["user_key"], user="alice", groups=["admin"]),
            ManagerEntry(certificate=openssl_form, user="noc", groups=["viewer"]),
            ManagerEntry(host_key=ids["host_fp"], groups=["admin"]),
        ],
        certificates=[ids["other_fp"]],
        turn_user="device-7",
        base_dir=Path(ids["cert_dir"]),
    )


def test_directory_resolves_each_identity_by_its_transport(identities: dict[str, str]) -> None:
    ids, directory = identities, by_orientation(identities)
    ssh = directory.resolve(Principal(ids["user_fp"], "callhome", transport="reverse-ssh"))
    assert (ssh.user, ssh.groups) == ("alice", ("admin",))
    tls = directory.resolve(Principal(ids["cert_fp"], "ops-console", transport="reverse-tls"))
    assert (tls.user, tls.groups, tls.transport) == ("noc", ("viewer",), "reverse-tls")
    turn = directory.resolve(Principal(ids["host_fp"], "device-7", transport="turn"))
    assert (turn.user, turn.groups) == ("device-7", ("admin",))
    # an identity counts only for its own transport: a host key is no user key
    stranger = Principal(ids["host_fp"], "callhome", transport="reverse-ssh")
    assert directory.resolve(stranger) == stranger
    # a pinned certificate with no entry: its CN, no group
    pinned = Principal(ids["other_fp"], "someone", transport="reverse-tls")
    assert directory.resolve(pinned) == pinned
    known = {(m.transport, m.fingerprint): m for m in directory.managers}
    assert known["reverse-tls", ids["other_fp"]].groups == ()
    assert known["turn", ids["host_fp"]].user == "device-7"
    assert directory.groups_of(ids["user_fp"]) == ("admin",)
    assert directory.groups_of(ids["host_fp"]) == ()


def test_certificate_entry_from_a_file_defaults_to_its_cn(identities: dict[str, str]) -> None:
    directory = ManagerDirectory(
        [ManagerEntry(certificate=identities["cert_file"], groups=["viewer"])],
        base_dir=Path(identities["cert_dir"]),
    )
    (known,) = directory.managers
    assert (known.fingerprint, known.user) == (identities["cert_fp"], "ops-console")
    with pytest.raises(ConfigError, match="no fingerprint"):
        ManagerDirectory([ManagerEntry(certificate="missing.pem")], base_dir=Path("/nonexistent"))


def test_manager_entry_names_exactly_one_identity() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="exactly one"):
        ManagerEntry(key="SHA256:x", host_key="SHA256:y")
    with pytest.raises(ValidationError, match="exactly one"):
        ManagerEntry(user="nobody")


def test_read_only_tls_manager_and_admin_turn_manager(identities: dict[str, str]) -> None:
    ids = identities
    store = Datastore()
    store.copy_config("running", xml(f'<config xmlns="{BASE}">{RULES}{DATA}</config>'))
    nacm = Nacm(modules={IF: "if", SYS: "sys"}, directory=by_orientation(ids))
    service = NetconfService(store, nacm=nacm)
    tls = service.open_session(
        lambda: None, Principal(ids["cert_fp"], "ops-console", transport="reverse-tls")
    )
    turn = service.open_session(
        lambda: None, Principal(ids["host_fp"], "device-7", transport="turn")
    )
    seen_by_tls = etree.tostring(get_config(service, tls)).decode()
    seen_by_turn = etree.tostring(get_config(service, turn)).decode()
    assert "eth0" in seen_by_tls and "secret" not in seen_by_tls and "nacm" not in seen_by_tls
    assert "secret" in seen_by_turn and "rule-list" in seen_by_turn
    with pytest.raises(RpcError) as caught:
        edit(service, tls, f'<system xmlns="{SYS}"><hostname>x</hostname></system>')
    assert caught.value.first.tag is ErrorTag.ACCESS_DENIED
    edit(service, turn, f'<system xmlns="{SYS}"><hostname>x</hostname></system>')
    assert "<hostname>x</hostname>" in etree.tostring(get_config(service, turn)).decode()


def test_startup_and_lockout_checks_count_tls_and_turn_managers(
    identities: dict[str, str],
) -> None:
    ids = identities
    nacm = Nacm(modules={IF: "if", SYS: "sys"}, directory=by_orientation(ids))
    admins_only = data(
        f'<nacm xmlns="{NACM_NS}"><exec-default>deny</exec-default>'
        "<rule-list><name>a</name><group>admin</group><rule><name>all</name>"
        "<action>permit</action></rule></rule-list></nacm>"
    )
    nacm.load(admins_only)
    with pytest.raises(ConfigError, match="over reverse-tls") as caught:
        nacm.check_startup(["manager-b"])
    assert ids["cert_fp"] in str(caught.value) and "<its certificate's CN>" in str(caught.value)
    # only the turn manager may change the rules: no lock-out
    turn_only = Nacm(
        modules={IF: "if", SYS: "sys"},
        directory=ManagerDirectory(
            [
                ManagerEntry(host_key=ids["host_key"], user="root", groups=["admin"]),
                ManagerEntry(certificate=ids["cert_fp"], groups=["viewer"]),
            ]
        ),
    )
    assert turn_only.lockout(turn_only.parse(admins_only)) is None
    viewers_only = data(
        f'<nacm xmlns="{NACM_NS}"><rule-list><name>v</name><group>viewer</group>'
        "<rule><name>all</name><action>permit</action><access-operations>read</access-operations>"
        "</rule></rule-list><rule-list><name>a</name><group>admin</group></rule-list></nacm>"
    )
    assert turn_only.lockout(turn_only.parse(viewers_only)) is not None
