"""Throughput and CPU per MB of each SSH cipher + MAC pairing, asyncssh to asyncssh.

Run ``python bench/bench_ssh_ciphers.py`` (32 MB per sample, 5 rounds) or ``--quick``
(8 MB, 2 rounds). One process holds both ends of one loopback connection per pairing: the
client writes the payload into a session channel, the server counts it and answers with
the count once it has all of it. Only that transfer is timed, not the handshake; the CPU
figure is this process's CPU time for it (encryption, MAC and decryption, MAC check, and
asyncssh's packet code, both ends) per MB carried.

Rounds visit every pairing in turn, so that a change in the machine's load touches all of
them alike; the table shows medians over rounds, the spread (min .. max), and each
median against the baseline measured in the same run: ``aes128-gcm@openssh.com``, the
first cipher of callhome's defaults before ``[algorithms]`` grew CTR modes and MACs.
Prints figures; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import time
from dataclasses import dataclass, field

import asyncssh
import cryptography
from asyncssh.encryption import get_encryption, get_encryption_params

from callhome.config import SshAlgorithms

BASELINE = ("aes128-gcm@openssh.com", "")
AEAD = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com")
CTR = ("aes128-ctr", "aes192-ctr", "aes256-ctr")
MACS = (
    "hmac-sha2-256-etm@openssh.com",
    "hmac-sha2-512-etm@openssh.com",
    "hmac-sha2-256",
    "hmac-sha2-512",
    "umac-64-etm@openssh.com",
    "umac-128-etm@openssh.com",
)
CHUNK = 256 * 1024


def pairings() -> list[tuple[str, str]]:
    """(cipher, mac) pairs to measure; an AEAD cipher carries its own MAC ("")."""
    supported = {m.decode() for m in asyncssh.mac.get_mac_algs()}
    pairs = [(cipher, "") for cipher in AEAD]
    pairs += [(cipher, mac) for cipher in CTR for mac in MACS if mac in supported]
    return pairs


class _Sink(asyncssh.SSHServerSession[bytes]):
    """Counts what arrives; answers with the count at end of input."""

    def __init__(self) -> None:
        self._chan: asyncssh.SSHServerChannel[bytes] | None = None
        self._count = 0

    def connection_made(self, chan: asyncssh.SSHServerChannel[bytes]) -> None:  # type: ignore[override]
        self._chan = chan

    def shell_requested(self) -> bool:
        return True

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        self._count += len(data)

    def eof_received(self) -> bool:
        assert self._chan is not None
        self._chan.write(str(self._count).encode())
        self._chan.exit(0)
        return False


class _Server(asyncssh.SSHServer):
    def begin_auth(self, username: str) -> bool:
        return False  # no authentication: this measures the transport only

    def session_requested(self) -> asyncssh.SSHServerSession[bytes]:
        return _Sink()


class _Reply(asyncssh.SSHClientSession[bytes]):
    """The client's end: flow control for the writer, the server's answer."""

    def __init__(self) -> None:
        self.data = b""
        self.done: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.writable = asyncio.Event()
        self.writable.set()

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        self.data += data

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(self.data)


@dataclass
class Figures:
    mb_per_s: list[float] = field(default_factory=list)
    cpu_us_per_mb: list[float] = field(default_factory=list)
    crypto_us_per_mb: list[float] = field(default_factory=list)


async def one_sample(port: int, cipher: str, mac: str, megabytes: int) -> tuple[float, float]:
    """(MB/s, CPU µs per MB) of one transfer of ``megabytes`` over a fresh connection."""
    conn = await asyncssh.connect(
        "127.0.0.1",
        port,
        known_hosts=None,
        username="bench",
        client_keys=None,
        agent_path=None,
        config=None,
        encryption_algs=[cipher],
        mac_algs=[mac] if mac else ["hmac-sha2-256-etm@openssh.com"],  # unused with AEAD
        compression_algs=None,
    )
    try:
        negotiated = conn.get_extra_info("send_cipher"), conn.get_extra_info("send_mac")
        assert negotiated[0] == cipher, negotiated
        reply = _Reply()
        chan, _ = await conn.create_session(lambda: reply, encoding=None)
        payload = b"\x5a" * CHUNK
        total = megabytes * 1024 * 1024
        wall0, cpu0 = time.perf_counter(), time.process_time()
        for _ in range(total // CHUNK):
            await reply.writable.wait()
            chan.write(payload)
        chan.write_eof()
        count = int(await reply.done)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        assert count == total, (count, total)
        return megabytes / wall, cpu * 1e6 / megabytes
    finally:
        conn.close()
        await conn.wait_closed()


def crypto_sample(cipher: str, mac: str, megabytes: int) -> float:
    """CPU µs per MB of asyncssh's own packet encryption and decryption (with MAC and its
    check) of full 32 KB channel packets, the way a connection calls them; no I/O."""
    alg, mac_alg = cipher.encode(), mac.encode()
    key_size, iv_size, block_size, mac_key_size, _, etm = get_encryption_params(alg, mac_alg)
    keys = bytes(range(key_size)), bytes(iv_size), b"\x01" * mac_key_size
    sender = get_encryption(alg, keys[0], keys[1], mac_alg, keys[2], etm)
    receiver = get_encryption(alg, keys[0], keys[1], mac_alg, keys[2], etm)
    payload = b"\x5e" + bytes(8) + b"\x5a" * 32768  # CHANNEL_DATA, channel, length, data
    pad = -((1 if etm else 5) + len(payload)) % block_size
    pad += block_size if pad < 4 else 0
    body = bytes([pad]) + payload + bytes(pad)
    header = len(body).to_bytes(4, "big")
    first_size = max(8, block_size)
    packets = megabytes * 1024 * 1024 // 32768
    cpu0 = time.process_time()
    for seq in range(packets):
        wire, tag = sender.encrypt_packet(seq, header, body)
        first, length = receiver.decrypt_header(seq, wire[:first_size], 4)
        rest = wire[first_size : 4 + int.from_bytes(length, "big")]
        assert receiver.decrypt_packet(seq, first, rest, 4, tag) is not None
    return (time.process_time() - cpu0) * 1e6 / megabytes


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


async def run(megabytes: int, rounds: int) -> dict[tuple[str, str], Figures]:
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    everything = pairings()
    server = await asyncssh.listen(
        "127.0.0.1",
        0,
        server_host_keys=[host_key],
        server_factory=_Server,
        encoding=None,
        config=None,
        encryption_algs=sorted({c for c, _ in everything}),
        mac_algs=sorted({m for _, m in everything if m} | {"hmac-sha2-256-etm@openssh.com"}),
        compression_algs=None,
    )
    port = int(server.get_port())
    results = {pair: Figures() for pair in everything}
    try:
        await one_sample(port, *BASELINE, 2)  # warm-up: imports and first allocations
        crypto_sample(*BASELINE, 2)
        for _ in range(rounds):
            for pair in everything:
                rate, cpu = await one_sample(port, *pair, megabytes)
                results[pair].mb_per_s.append(rate)
                results[pair].cpu_us_per_mb.append(cpu)
                results[pair].crypto_us_per_mb.append(crypto_sample(*pair, megabytes))
    finally:
        server.close()
        await server.wait_closed()
    return results


def _spread(values: list[float]) -> str:
    return f"{min(values):.0f} .. {max(values):.0f}"


def _table(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    for row in [head, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def report(results: dict[tuple[str, str], Figures], megabytes: int, rounds: int) -> None:
    base = results[BASELINE]
    print(
        f"asyncssh {asyncssh.__version__}, cryptography {cryptography.__version__}, "
        f"Python {platform.python_version()}, {platform.machine()}; "
        f"{megabytes} MB per sample, {rounds} rounds; medians (min .. max)"
    )
    print(f"baseline: {BASELINE[0]} (callhome's first cipher before CTR modes and MACs)\n")

    print("packet crypto: asyncssh's encrypt + MAC, decrypt + check of 32 KB packets, no I/O")
    base_crypto = _median(base.crypto_us_per_mb)
    by_crypto = sorted(results.items(), key=lambda kv: _median(kv[1].crypto_us_per_mb))
    _table(
        ("cipher", "mac", "CPU us/MB", "min .. max", "vs baseline"),
        [
            (
                cipher,
                mac or "(aead)",
                f"{_median(f.crypto_us_per_mb):.0f}",
                _spread(f.crypto_us_per_mb),
                f"{_median(f.crypto_us_per_mb) / base_crypto:.2f}x",
            )
            for (cipher, mac), f in by_crypto
        ],
    )

    print("\nend to end: one asyncssh connection over loopback, both ends in this process")
    base_cpu = _median(base.cpu_us_per_mb)
    by_cpu = sorted(results.items(), key=lambda kv: _median(kv[1].cpu_us_per_mb))
    _table(
        ("cipher", "mac", "MB/s", "min .. max", "CPU us/MB", "min .. max", "vs baseline"),
        [
            (
                cipher,
                mac or "(aead)",
                f"{_median(f.mb_per_s):.0f}",
                _spread(f.mb_per_s),
                f"{_median(f.cpu_us_per_mb):.0f}",
                _spread(f.cpu_us_per_mb),
                f"{_median(f.cpu_us_per_mb) / base_cpu:.2f}x",
            )
            for (cipher, mac), f in by_cpu
        ],
    )
    defaults = SshAlgorithms()
    print(f"\ncallhome defaults: ciphers {', '.join(defaults.ciphers)}")
    print(f"                   macs {', '.join(defaults.macs)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="8 MB per sample, 2 rounds")
    parser.add_argument("--megabytes", type=int, help="MB carried per sample (default 32)")
    parser.add_argument("--rounds", type=int, help="rounds over every pairing (default 5)")
    args = parser.parse_args()
    megabytes = args.megabytes or (8 if args.quick else 32)
    rounds = args.rounds or (2 if args.quick else 5)
    report(asyncio.run(run(megabytes, rounds)), megabytes, rounds)


if __name__ == "__main__":
    main()
