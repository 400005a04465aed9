"""Deferred operations: jobs wait for their device and run when it calls home."""

import os
import signal
import subprocess
import time

import pytest
from lxml import etree

from harness import PY, wait_until

pytestmark = pytest.mark.integration

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"


def entry(seq: int) -> str:
    return f'<log xmlns="urn:example:log"><entry><seq>{seq}</seq></entry><last>{seq}</last></log>'


def job(manager, job_id: int) -> dict:
    response = manager.api("GET", f"/v1/jobs/{job_id}")
    response.raise_for_status()
    return response.json()


def submit(manager, name: str, *args: str) -> int:
    result = manager.cli("netconf", name, *args)
    assert result.returncode == 0, result.stderr
    assert "queued" in result.stderr
    return int(result.stdout.strip())


def test_jobs_for_an_away_device_run_in_order_when_it_calls(manager, make_agent):
    agent = make_agent("dev")
    assert manager.cli("approve", agent.fingerprint, "--name", "dev1").returncode == 0
    ids = [submit(manager, "dev1", "edit-config", "--config", entry(i)) for i in range(1, 6)]
    read = submit(manager, "dev1", "get-config")
    assert all(job(manager, i)["state"] == "queued" for i in [*ids, read])

    listing = manager.cli("jobs", "--device", "dev1", "--state", "queued").stdout
    assert all(str(i) in listing for i in ids)

    agent.start()
    wait_until(lambda: job(manager, read)["state"] == "succeeded", timeout=30)
    finished = [job(manager, i) for i in ids]
    assert [j["state"] for j in finished] == ["succeeded"] * 5
    # FIFO: each ran after the one before it, and the read saw all five edits
    assert [j["updated"] for j in finished] == sorted(j["updated"] for j in finished)
    data = etree.fromstring(job(manager, read)["result"]["reply"].encode())
    seqs = [e.text for e in data.iter("{urn:example:log}seq")]
    assert seqs == ["1", "2", "3", "4", "5"]
    assert data.findtext(".//{urn:example:log}last") == "5"

    shown = manager.cli("job", str(read))
    assert shown.returncode == 0 and "<seq>5</seq>" in shown.stdout
    kinds = [e["kind"] for e in manager.events(device="dev1")]
    assert "job-queued" in kinds and "job-running" in kinds and "job-succeeded" in kinds


def test_wait_covers_an_away_device_and_an_online_one_answers_at_once(manager, make_agent):
    agent = make_agent("dev")
    assert manager.cli("approve", agent.fingerprint, "--name", "dev1").returncode == 0
    waiting = subprocess.Popen(
        [*PY, "netconf", "dev1", "--wait", "60", "get-config"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **manager.env},
    )
    try:
        wait_until(lambda: manager.cli("jobs", "--state", "queued").stdout.count("get-config"))
        agent.start()
        out, err = waiting.communicate(timeout=60)
    finally:
        waiting.kill()
    assert waiting.returncode == 0, err
    assert "<data" in out
    now = manager.cli("netconf", "dev1", "get-config")
    assert now.returncode == 0 and "<data" in now.stdout


def test_cancel_and_expiry(manager, make_agent):
    agent = make_agent("dev")
    assert manager.cli("approve", agent.fingerprint, "--name", "dev1").returncode == 0
    expiring = submit(manager, "dev1", "--expires", "1s", "edit-config", "--config", entry(1))
    cancelled = submit(manager, "dev1", "edit-config", "--config", entry(2))
    kept = submit(manager, "dev1", "edit-config", "--config", entry(3))
    assert manager.cli("cancel", str(cancelled)).returncode == 0
    again = manager.cli("cancel", str(cancelled))
    assert again.returncode == 1 and "queued" in again.stderr
    wait_until(lambda: job(manager, expiring)["state"] == "expired", timeout=10)
    agent.start()
    wait_until(lambda: job(manager, kept)["state"] == "succeeded", timeout=30)
    assert job(manager, cancelled)["state"] == "cancelled"
    got = manager.cli("netconf", "dev1", "get-config").stdout
    assert "<seq>3</seq>" in got and "<seq>1</seq>" not in got and "<seq>2</seq>" not in got
    shown = manager.cli("job", str(expiring))
    assert shown.returncode == 1 and "expired" in shown.stderr


def test_jobs_for_unknown_pending_or_refused_devices_are_refused(manager, make_agent):
    unknown = manager.cli("netconf", "nobody", "get-config")
    assert unknown.returncode == 1 and "no device named 'nobody'" in unknown.stderr
    agent = make_agent("dev").start()
    wait_until(lambda: manager.status(agent.fingerprint) == "pending")
    pending = manager.cli("netconf", agent.fingerprint, "get-config")
    assert pending.returncode == 1 and "pending" in pending.stderr
    assert manager.cli("reject", agent.fingerprint).returncode == 0
    refused = manager.cli("netconf", agent.fingerprint, "get-config")
    assert refused.returncode == 1 and "refused" in refused.stderr


def test_queue_limit_is_a_clear_error(tmp_path, make_agent):
    from harness import ManagerProc

    manager = ManagerProc(
        tmp_path / "limited", env={"CALLHOME_JOBS__MAX_QUEUED_PER_DEVICE": "2"}
    ).start()
    try:
        agent = make_agent("dev", [f"127.0.0.1:{manager.port}"])
        assert manager.cli("approve", agent.fingerprint, "--name", "dev1").returncode == 0
        submit(manager, "dev1", "get-config")
        submit(manager, "dev1", "get-config")
        full = manager.cli("netconf", "dev1", "get-config")
        assert full.returncode == 1 and "2" in full.stderr and "dev1" in full.stderr
    finally:
        manager.stop(signal.SIGTERM)


def test_killed_manager_keeps_its_queue(manager, make_agent):
    agent = make_agent("dev")
    assert manager.cli("approve", agent.fingerprint, "--name", "dev1").returncode == 0
    queued = submit(manager, "dev1", "edit-config", "--config", entry(7))
    manager.stop(signal.SIGKILL)
    manager.start()
    agent.start()
    wait_until(lambda: job(manager, queued)["state"] == "succeeded", timeout=30)
    assert time.time() - job(manager, queued)["created"] < 120
