"""A device with a YANG module, as a real process: it validates edits and serves get-schema."""

from pathlib import Path

import pytest

from harness import ManagerProc, wait_until

pytestmark = pytest.mark.integration

YANG_DIR = Path(__file__).parent.parent / "unit" / "agent" / "yang"
EXD = "urn:example:device"
NCM = "urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring"


def approve(manager: ManagerProc, fingerprint: str, name: str) -> None:
    wait_until(lambda: manager.status(fingerprint) == "pending")
    result = manager.cli("approve", fingerprint, "--name", name)
    assert result.returncode == 0, result.stderr
    wait_until(lambda: manager.status(fingerprint) == "online")


def test_a_device_with_a_yang_module_validates_edits_and_serves_its_schema(manager, make_agent):
    agent = make_agent("dev")
    with (agent.directory / "agent.toml").open("a") as toml:
        toml.write(
            f'\n[yang]\nmodules = ["{YANG_DIR / "example-device@2024-05-01.yang"}"]\n'
            f'search_path = ["{YANG_DIR / "lib"}"]\n'
        )
    agent.start()
    approve(manager, agent.fingerprint, "dev1")

    bad = f'<system xmlns="{EXD}"><mtu>70000</mtu></system>'
    failed = manager.cli("netconf", "dev1", "edit-config", "--config", bad)
    assert failed.returncode == 1
    assert "rpc-error: application/invalid-value" in failed.stderr
    assert "/device:system/device:mtu" in failed.stderr and "'mtu'" in failed.stderr

    good = f'<system xmlns="{EXD}"><hostname>edge-1</hostname><mtu>9000</mtu></system>'
    done = manager.cli("netconf", "dev1", "edit-config", "--config", good)
    assert done.returncode == 0, done.stderr
    got = manager.cli("netconf", "dev1", "get-config", "--filter", f'<system xmlns="{EXD}"/>')
    assert got.returncode == 0, got.stderr
    assert "<mtu>9000</mtu>" in got.stdout and "70000" not in got.stdout

    request = f'<get-schema xmlns="{NCM}"><identifier>example-device</identifier></get-schema>'
    schema = manager.cli("netconf", "dev1", "rpc", request)
    assert schema.returncode == 0, schema.stderr
    assert "module example-device {" in schema.stdout
    assert 'range "68..9000";' in schema.stdout

    unknown = f'<get-schema xmlns="{NCM}"><identifier>nothing-here</identifier></get-schema>'
    missing = manager.cli("netconf", "dev1", "rpc", unknown)
    assert missing.returncode == 1
    assert "invalid-value" in missing.stderr
