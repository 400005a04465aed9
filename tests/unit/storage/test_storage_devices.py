"""Devices: the approval flow, names bound to keys, and connection status."""

from __future__ import annotations

import pytest

from callhome.errors import Conflict, NotFound
from callhome.storage import Device, DeviceStatus, Store

FP_A = "SHA256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
FP_B = "SHA256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
FP_C = "SHA256:ccccccccccccccccccccccccccccccccccccccccccc"
ED25519 = "ssh-ed25519"
T0 = 1_700_000_000.25


async def approved(store: Store, fingerprint: str, name: str, now: float = T0) -> Device:
    await store.note_unknown(fingerprint, ED25519, "192.0.2.1:40000", now)
    return await store.approve(fingerprint, name, now)


async def test_unknown_device_is_recorded_pending(store: Store) -> None:
    device = await store.note_unknown(FP_A, ED25519, "192.0.2.1:40000", T0)

    assert device == Device(
        fingerprint=FP_A,
        key_type=ED25519,
        name=None,
        status=DeviceStatus.PENDING,
        status_since=T0,
        address="192.0.2.1:40000",
        first_seen=T0,
        last_seen=T0,
        orientation=None,
        capabilities=(),
        credential=None,
    )
    assert not device.approved
    assert await store.device_by_fingerprint(FP_A) == device
    assert await store.device_by_fingerprint(FP_B) is None


async def test_unknown_device_calling_again_keeps_first_seen(store: Store) -> None:
    await store.note_unknown(FP_A, ED25519, "192.0.2.1:40000", T0)

    again = await store.note_unknown(FP_A, ED25519, "198.51.100.7:5000", T0 + 10)
    assert (again.first_seen, again.last_seen) == (T0, T0 + 10)
    assert again.address == "198.51.100.7:5000"
    assert again.status is DeviceStatus.PENDING
    assert again.status_since == T0

    # An unknown address does not erase the last one known.
    third = await store.note_unknown(FP_A, ED25519, None, T0 + 20)
    assert (third.address, third.last_seen) == ("198.51.100.7:5000", T0 + 20)
    assert await store.list_devices() == [third]


async def test_note_unknown_leaves_an_approved_device_alone(store: Store) -> None:
    device = await approved(store, FP_A, "router1")

    assert await store.note_unknown(FP_A, ED25519, "203.0.113.9:1", T0 + 5) == device


async def test_approve_binds_the_name(store: Store) -> None:
    await store.note_unknown(FP_A, ED25519, "192.0.2.1:40000", T0)

    device = await store.approve(FP_A, "router1", T0 + 1, credential="lab")

    assert device.name == "router1"
    assert device.credential == "lab"
    assert device.status is DeviceStatus.OFFLINE
    assert device.status_since == T0 + 1
    assert device.approved
    assert device.first_seen == T0
    assert await store.device_by_name("router1") == device
    assert await store.device_by_fingerprint(FP_A) == device
    assert await store.device_by_name("router2") is None


async def test_approve_of_unknown_fingerprint_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.approve(FP_A, "router1", T0)
    # NotFound comes first, even when the name is also taken.
    await approved(store, FP_B, "router1")
    with pytest.raises(NotFound):
        await store.approve(FP_A, "router1", T0)


async def test_a_name_is_never_rebound_to_another_key(store: Store) -> None:
    first = await approved(store, FP_A, "router1")
    pending = await store.note_unknown(FP_B, ED25519, "192.0.2.2:1", T0 + 1)

    with pytest.raises(Conflict):
        await store.approve(FP_B, "router1", T0 + 2)
    with pytest.raises(Conflict):
        await store.pre_approve(FP_C, ED25519, "router1", T0 + 2)

    assert await store.device_by_name("router1") == first
    assert await store.device_by_fingerprint(FP_B) == pending
    assert await store.device_by_fingerprint(FP_C) is None


async def test_approving_again_renames_and_keeps_status(store: Store) -> None:
    await approved(store, FP_A, "router1")
    online = await store.mark_online(
        FP_A, T0 + 1, address="192.0.2.1:1", orientation="reverse-ssh", capabilities=["a"]
    )

    renamed = await store.approve(FP_A, "core1", T0 + 2, credential="ops")

    assert renamed.name == "core1"
    assert renamed.credential == "ops"
    assert (renamed.status, renamed.status_since) == (DeviceStatus.ONLINE, online.status_since)
    assert await store.device_by_name("router1") is None
    # The old name is free for another key now.
    await store.note_unknown(FP_B, ED25519, None, T0 + 3)
    assert (await store.approve(FP_B, "router1", T0 + 3)).name == "router1"


async def test_pre_approve_before_the_device_ever_called(store: Store) -> None:
    device = await store.pre_approve(FP_A, ED25519, "router1", T0, credential="lab")

    assert device == Device(
        fingerprint=FP_A,
        key_type=ED25519,
        name="router1",
        status=DeviceStatus.OFFLINE,
        status_since=T0,
        address=None,
        first_seen=T0,
        last_seen=T0,
        orientation=None,
        capabilities=(),
        credential="lab",
    )
    assert await store.device_by_name("router1") == device
    # When it calls, it is known: no pending record.
    assert await store.note_unknown(FP_A, ED25519, "192.0.2.1:1", T0 + 9) == device


async def test_pre_approve_of_a_pending_device_approves_it(store: Store) -> None:
    await store.note_unknown(FP_A, ED25519, "192.0.2.1:1", T0)

    device = await store.pre_approve(FP_A, "ssh-rsa", "router1", T0 + 1)

    assert device.key_type == ED25519  # the key type stored is kept
    assert (device.status, device.status_since, device.name) == (
        DeviceStatus.OFFLINE,
        T0 + 1,
        "router1",
    )
    assert device.first_seen == T0


async def test_reject_keeps_the_key_refused(store: Store) -> None:
    await store.note_unknown(FP_A, ED25519, "192.0.2.1:1", T0)

    refused = await store.reject(FP_A, T0 + 1)
    assert (refused.status, refused.status_since) == (DeviceStatus.REFUSED, T0 + 1)

    # Calling again does not make it pending, nor does a second rejection move its time.
    again = await store.note_unknown(FP_A, ED25519, "192.0.2.1:2", T0 + 2)
    assert (again.status, again.last_seen, again.address) == (
        DeviceStatus.REFUSED,
        T0 + 2,
        "192.0.2.1:2",
    )
    assert (await store.reject(FP_A, T0 + 3)).status_since == T0 + 1

    with pytest.raises(NotFound):
        await store.reject(FP_B, T0)


async def test_reject_of_an_approved_device_releases_its_name(store: Store) -> None:
    await store.approve(
        (await store.note_unknown(FP_A, ED25519, None, T0)).fingerprint,
        "router1",
        T0,
        credential="lab",
    )

    refused = await store.reject(FP_A, T0 + 1)

    assert (refused.name, refused.credential, refused.status) == (
        None,
        None,
        DeviceStatus.REFUSED,
    )
    assert await store.device_by_name("router1") is None
    with pytest.raises(Conflict):
        await store.mark_online(
            FP_A, T0 + 2, address=None, orientation="reverse-ssh", capabilities=()
        )
    # A new key may take the name (the key was replaced on purpose).
    assert (await store.pre_approve(FP_B, ED25519, "router1", T0 + 2)).name == "router1"


async def test_a_refused_device_may_be_approved_after_all(store: Store) -> None:
    await store.note_unknown(FP_A, ED25519, None, T0)
    await store.reject(FP_A, T0 + 1)

    device = await store.approve(FP_A, "router1", T0 + 2)

    assert (device.status, device.status_since) == (DeviceStatus.OFFLINE, T0 + 2)


async def test_forget(store: Store) -> None:
    await approved(store, FP_A, "router1")
    await approved(store, FP_B, "router2")

    await store.forget("router1")

    assert await store.device_by_name("router1") is None
    assert await store.device_by_fingerprint(FP_A) is None
    assert [d.name for d in await store.list_devices()] == ["router2"]
    with pytest.raises(NotFound):
        await store.forget("router1")
    # Forgotten means unknown: it calls again as a new, pending device.
    device = await store.note_unknown(FP_A, ED25519, None, T0 + 5)
    assert (device.status, device.first_seen) == (DeviceStatus.PENDING, T0 + 5)
    assert [d.fingerprint for d in await store.list_devices()] == [FP_B, FP_A]


async def test_mark_online_and_offline(store: Store) -> None:
    await approved(store, FP_A, "router1")

    online = await store.mark_online(
        FP_A,
        T0 + 1,
        address="198.51.100.7:4242",
        orientation="reverse-ssh",
        capabilities=["urn:ietf:params:netconf:base:1.1", "urn:x"],
    )
    assert online.status is DeviceStatus.ONLINE
    assert (online.status_since, online.last_seen) == (T0 + 1, T0 + 1)
    assert online.address == "198.51.100.7:4242"
    assert online.orientation == "reverse-ssh"
    assert online.capabilities == ("urn:ietf:params:netconf:base:1.1", "urn:x")
    assert await store.device_by_fingerprint(FP_A) == online

    # Reconnecting while online: the facts change, the status (and its time) does not.
    again = await store.mark_online(
        FP_A, T0 + 2, address=None, orientation="reverse-tls", capabilities=()
    )
    assert (again.status_since, again.last_seen) == (T0 + 1, T0 + 2)
    assert (again.address, again.orientation, again.capabilities) == (None, "reverse-tls", ())

    offline = await store.mark_offline(FP_A, T0 + 3)
    assert offline.status is DeviceStatus.OFFLINE
    assert (offline.status_since, offline.last_seen) == (T0 + 3, T0 + 3)
    assert offline.orientation == "reverse-tls"  # what it last connected with
    # Not online: unchanged.
    assert await store.mark_offline(FP_A, T0 + 4) == offline


async def test_mark_online_needs_a_known_approved_device(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.mark_online(FP_A, T0, address=None, orientation="turn", capabilities=())
    with pytest.raises(NotFound):
        await store.mark_offline(FP_A, T0)
    pending = await store.note_unknown(FP_A, ED25519, None, T0)
    with pytest.raises(Conflict):
        await store.mark_online(FP_A, T0, address=None, orientation="turn", capabilities=())
    assert await store.mark_offline(FP_A, T0 + 1) == pending


async def test_mark_all_offline(store: Store) -> None:
    for fingerprint, name in ((FP_A, "a"), (FP_B, "b"), (FP_C, "c")):
        await approved(store, fingerprint, name)
    for fingerprint in (FP_A, FP_B):
        await store.mark_online(
            fingerprint, T0 + 1, address=None, orientation="reverse-ssh", capabilities=()
        )

    assert await store.mark_all_offline(T0 + 5) == 2

    by_name = {d.name: d for d in await store.list_devices()}
    assert {d.status for d in by_name.values()} == {DeviceStatus.OFFLINE}
    assert by_name["a"].status_since == T0 + 5
    assert by_name["a"].last_seen == T0 + 1  # not seen at the restart
    assert by_name["c"].status_since == T0
    assert await store.mark_all_offline(T0 + 6) == 0


async def test_list_devices_in_the_order_they_were_made(store: Store) -> None:
    await store.note_unknown(FP_C, ED25519, None, T0)
    await store.pre_approve(FP_A, ED25519, "a", T0 + 1)
    await store.note_unknown(FP_B, "ssh-rsa", None, T0 + 2)
    await store.approve(FP_C, "c", T0 + 3)

    assert [d.fingerprint for d in await store.list_devices()] == [FP_C, FP_A, FP_B]


async def test_times_are_floats(store: Store) -> None:
    device = await store.pre_approve(FP_A, ED25519, "a", 1_700_000_000.0)
    device = await store.mark_online(
        FP_A, 1_700_000_001.0, address=None, orientation="turn", capabilities=()
    )
    for value in (device.status_since, device.first_seen, device.last_seen):
        assert type(value) is float
    await store.record_event("connected", 1_700_000_002.0, device="a")
    assert type((await store.list_events())[0].time) is float


async def test_status_changes_can_carry_their_event(store: Store) -> None:
    fp = "SHA256:" + "e" * 43
    await store.pre_approve(fp, "ssh-ed25519", "edge", 1.0)
    await store.mark_online(
        fp,
        2.0,
        address="127.0.0.1:1",
        orientation="reverse-ssh",
        capabilities=["c"],
        detail={"session_id": 7},
    )
    await store.mark_offline(fp, 3.0, detail={"reason": "gone"})
    await store.mark_offline(fp, 4.0)  # no detail: no event
    events = await store.list_events(device="edge")
    assert [(e.kind, e.time, e.fingerprint) for e in events] == [
        ("connected", 2.0, fp),
        ("disconnected", 3.0, fp),
    ]
    assert events[0].detail == {"session_id": 7} and events[1].detail == {"reason": "gone"}
