"""MIB names for SNMP jobs: resolution both ways, sources compiled with pysmi, refusals."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from callhome.cli.main import _print_varbinds
from callhome.errors import ConfigError
from callhome.manager import snmp as snmp_jobs
from callhome.manager.mibs import MibNames

MIB_SOURCES = Path(__file__).parents[2] / "mibs"
EXAMPLE = (1, 3, 6, 1, 4, 1, 32473, 1)


@pytest.fixture(scope="module")
def builtin() -> MibNames:
    return MibNames.load()


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> MibNames:
    cache = tmp_path_factory.mktemp("mib-cache")
    return MibNames.load(["CALLHOME-EXAMPLE-MIB"], [MIB_SOURCES], cache)


@pytest.mark.parametrize(
    ("text", "oid"),
    [
        ("1.3.6.1.2.1.1.1.0", (1, 3, 6, 1, 2, 1, 1, 1, 0)),
        (".1.3.6.1.2.1.1.1.0", (1, 3, 6, 1, 2, 1, 1, 1, 0)),
        ("sysDescr.0", (1, 3, 6, 1, 2, 1, 1, 1, 0)),
        ("SNMPv2-MIB::sysName.0", (1, 3, 6, 1, 2, 1, 1, 5, 0)),
        ("system", (1, 3, 6, 1, 2, 1, 1)),
        ("sysORDescr.3", (1, 3, 6, 1, 2, 1, 1, 9, 1, 3, 3)),
        ("SNMPv2-SMI::enterprises.32473", (1, 3, 6, 1, 4, 1, 32473)),
        (" sysContact.0 ", (1, 3, 6, 1, 2, 1, 1, 4, 0)),
    ],
)
def test_names_and_numbers_resolve(builtin: MibNames, text: str, oid: tuple[int, ...]) -> None:
    assert builtin.resolve(text) == oid


@pytest.mark.parametrize(
    ("oid", "name"),
    [
        ((1, 3, 6, 1, 2, 1, 1, 1, 0), "SNMPv2-MIB::sysDescr.0"),
        ((1, 3, 6, 1, 2, 1, 1, 5, 0), "SNMPv2-MIB::sysName.0"),
        ((1, 3, 6, 1, 2, 1, 1), "SNMPv2-MIB::system"),
        ((1, 3, 6, 1, 2, 1, 1, 9, 1, 4, 12), "SNMPv2-MIB::sysORUpTime.12"),
        ((1, 3, 6, 1, 4, 1, 8072, 3), "SNMPv2-SMI::enterprises.8072.3"),
    ],
)
def test_numbers_are_named_and_the_names_resolve_back(
    builtin: MibNames, oid: tuple[int, ...], name: str
) -> None:
    assert builtin.name(oid) == name
    assert builtin.resolve(name) == oid


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sysNoSuchThing.0", "unknown MIB name 'sysNoSuchThing' in the loaded MIB modules"),
        ("SNMPv2-MIB::ifDescr.3", "unknown MIB name 'ifDescr' in SNMPv2-MIB"),
        ("IF-MIB::ifDescr.3", "MIB module IF-MIB is not loaded (loaded: SNMPv2-MIB)"),
        ("exampleGreeting.0", "loaded MIB modules (SNMPv2-MIB)"),
        ("sysDescr.zero", "not an OID"),
        ("sys Descr", "not an OID"),
        ("1.3.6.x", "not a numeric OID"),
        ("", "not an OID"),
    ],
)
def test_unknown_or_malformed_names_are_refused(builtin: MibNames, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        builtin.resolve(text)


def test_a_source_module_is_compiled_and_names_its_scalar_and_table(
    example: MibNames, tmp_path_factory: pytest.TempPathFactory
) -> None:
    assert example.modules == ("SNMPv2-MIB", "CALLHOME-EXAMPLE-MIB")
    assert example.resolve("exampleGreeting.0") == (*EXAMPLE, 1, 1, 0)
    assert example.resolve("CALLHOME-EXAMPLE-MIB::exampleName.7") == (*EXAMPLE, 1, 2, 1, 2, 7)
    assert example.resolve("exampleTable") == (*EXAMPLE, 1, 2)
    assert example.name((*EXAMPLE, 1, 2, 1, 3, 42)) == "CALLHOME-EXAMPLE-MIB::exampleValue.42"
    assert example.name((*EXAMPLE, 1, 1, 0)) == "CALLHOME-EXAMPLE-MIB::exampleGreeting.0"
    # the built-in module is still there beside it
    assert example.resolve("sysDescr.0") == (1, 3, 6, 1, 2, 1, 1, 1, 0)
    with pytest.raises(ConfigError, match="unknown MIB name 'exampleNope'"):
        example.resolve("exampleNope.1")


def test_compiled_modules_are_cached_until_the_source_changes(tmp_path: Path) -> None:
    sources, cache = tmp_path / "mibs", tmp_path / "cache"
    shutil.copytree(MIB_SOURCES, sources)
    MibNames.load(["CALLHOME-EXAMPLE-MIB"], [sources], cache)
    compiled = cache / "CALLHOME-EXAMPLE-MIB.py"
    os.utime(compiled, (1_000_000_000, 1_000_000_000))
    os.utime(sources / "CALLHOME-EXAMPLE-MIB.txt", (900_000_000, 900_000_000))
    MibNames.load(["CALLHOME-EXAMPLE-MIB"], [sources], cache)
    assert compiled.stat().st_mtime == 1_000_000_000  # not compiled again
    os.utime(sources / "CALLHOME-EXAMPLE-MIB.txt", (1_100_000_000, 1_100_000_000))
    again = MibNames.load(["CALLHOME-EXAMPLE-MIB"], [sources], cache)
    assert compiled.stat().st_mtime > 1_000_000_000
    assert again.resolve("exampleGreeting.0") == (*EXAMPLE, 1, 1, 0)


def test_a_compiled_pysnmp_module_in_a_folder_is_loaded(tmp_path: Path) -> None:
    MibNames.load(["CALLHOME-EXAMPLE-MIB"], [MIB_SOURCES], tmp_path / "cache")
    compiled = tmp_path / "compiled"
    compiled.mkdir()
    shutil.copy(tmp_path / "cache" / "CALLHOME-EXAMPLE-MIB.py", compiled)
    names = MibNames.load(["CALLHOME-EXAMPLE-MIB"], [compiled], tmp_path / "cache2")
    assert names.name((*EXAMPLE, 1, 1, 0)) == "CALLHOME-EXAMPLE-MIB::exampleGreeting.0"


def test_missing_or_broken_modules_stop_the_load_with_their_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"MIB module NOPE-MIB not loaded.*no mib_dirs"):
        MibNames.load(["NOPE-MIB"])
    with pytest.raises(ConfigError, match=r"NOPE-MIB not loaded.*no source or compiled module"):
        MibNames.load(["NOPE-MIB"], [MIB_SOURCES], tmp_path / "cache")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "BROKEN-MIB.txt").write_text("BROKEN-MIB DEFINITIONS ::= BEGIN\nthis is not SMI\n")
    with pytest.raises(ConfigError, match=r"BROKEN-MIB not loaded.*does not compile"):
        MibNames.load(["BROKEN-MIB"], [broken], tmp_path / "cache")


def test_jobs_store_numeric_oids_whatever_the_request_named(example: MibNames) -> None:
    payload = snmp_jobs.build_payload(
        "get", ["sysDescr.0", "SNMPv2-MIB::sysName.0", "1.3.6.1.2.1.1.6.0"], resolve=example.resolve
    )
    assert payload["oids"] == ["1.3.6.1.2.1.1.1.0", "1.3.6.1.2.1.1.5.0", "1.3.6.1.2.1.1.6.0"]
    payload = snmp_jobs.build_payload(
        "set",
        varbinds=[{"oid": "exampleValue.3", "type": "i", "value": "7"}],
        resolve=example.resolve,
    )
    assert payload["varbinds"] == [
        {"oid": "1.3.6.1.4.1.32473.1.1.2.1.3.3", "type": "i", "value": "7"}
    ]
    with pytest.raises(ConfigError, match="unknown MIB name 'sysNope'"):
        snmp_jobs.build_payload("walk", ["sysNope"], resolve=example.resolve)
    with pytest.raises(ConfigError, match="numeric OID"):  # without MIBs: numbers only
        snmp_jobs.build_payload("get", ["sysDescr.0"])


def test_results_get_names_beside_numbers_and_the_cli_shows_either(
    builtin: MibNames, capsys: pytest.CaptureFixture[str]
) -> None:
    result = {
        "varbinds": [
            {"oid": "1.3.6.1.2.1.1.1.0", "type": "OctetString", "value": "box", "hex": "626f78"},
            {"oid": "1.3.6.1.2.1.1.2.0", "type": "ObjectIdentifier", "value": "1.3.6.1.4.1.8072"},
            {"oid": "1.3.6.1.2.1.1.99.0", "type": "noSuchObject", "value": None},
            {"oid": "2.999", "type": "Integer32", "value": 1},
        ],
        "error_oid": "1.3.6.1.2.1.1.4.0",
    }
    named = builtin.annotate(result)
    assert [vb.get("name") for vb in named["varbinds"]] == [
        "SNMPv2-MIB::sysDescr.0",
        "SNMPv2-MIB::sysObjectID.0",
        "SNMPv2-MIB::system.99.0",
        "SNMPv2-SMI::joint-iso-itu-t.999",
    ]
    assert named["varbinds"][1]["value_name"] == "SNMPv2-SMI::enterprises.8072"
    assert named["error_name"] == "SNMPv2-MIB::sysContact.0"
    assert named["varbinds"][0] == result["varbinds"][0] | {"name": "SNMPv2-MIB::sysDescr.0"}
    assert "name" not in result["varbinds"][0]  # the stored result is left alone

    _print_varbinds(named["varbinds"])
    assert capsys.readouterr().out.splitlines() == [
        "SNMPv2-MIB::sysDescr.0 = OctetString: box",
        "SNMPv2-MIB::sysObjectID.0 = ObjectIdentifier: SNMPv2-SMI::enterprises.8072",
        "SNMPv2-MIB::system.99.0 = noSuchObject",
        "SNMPv2-SMI::joint-iso-itu-t.999 = Integer32: 1",
    ]
    _print_varbinds(named["varbinds"], numeric=True)
    assert capsys.readouterr().out.splitlines() == [
        "1.3.6.1.2.1.1.1.0 = OctetString: box",
        "1.3.6.1.2.1.1.2.0 = ObjectIdentifier: 1.3.6.1.4.1.8072",
        "1.3.6.1.2.1.1.99.0 = noSuchObject",
        "2.999 = Integer32: 1",
    ]
