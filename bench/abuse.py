"""Honest editors typing while one user (or a stranger) attacks the team daemon.

One ``iquest-lsp --serve`` process against the tiny model on vLLM's CPU build; ``--editors``
honest editors type as in ``bench.team_load`` for ``--seconds`` per phase. The first phase has
no attacker; each further phase runs one attack beside them. Per phase: the honest editors'
suggestion latency p50/p95 (and its ratio to the quiet phase), their errors, and the daemon's
resident memory at the end of the phase.

    .venv/bin/python -m bench.abuse [--editors 50] [--seconds 20] [--attacks all|KIND,...]

Attacks (each observed on an earlier main, see issues 12 and 23): ``masked-line`` (completions at
the end of a long line of credential keywords), ``change-flood`` (edits to a 1 MB file as fast
as the socket takes them), ``huge-line`` (one-byte edits to a 4 MiB one-line file), ``no-params``
(requests without params, as fast as possible), ``not-reading`` (requests whose answers are
never read), ``preauth-flood`` (unauthenticated 8 MiB messages of ``[{},{},...]`` on four
connections), ``slowloris`` (hundreds of sockets that never say anything), ``slot-churn``
(every way a socket can start and end, from one address, thousands of times), ``hostile-file``
(0.9 MB of source-like junk rewritten in the daemon's checkout every 0.3 s) and ``log-flood``
(unknown methods with 1 MiB names). ``NAME@decoy`` runs an attack on a second daemon that no
honest editor uses: what is left of the slowdown then is the machine's (the attacker's own
CPU, vLLM's), not the daemon's. After each phase: the log written during it, the sockets
still open (0 expected) and whether a new connection from the attacker's address is served.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.common import REPO, percentile, start_team_daemon, tiny_vllm
from bench.slot_churn import Target, churn, cycles_for, open_sockets
from bench.team_load import Rpc, cpu_seconds, editor, rss_mb
from engine.team.tokens import TokenStore
from lsp.serve.framing import frame

# The attacker comes from its own address (honest editors from 127.0.0.1), as on a network.
ATTACKER = ("127.0.0.66", 0)


@dataclass(frozen=True)
class Daemon:
    """What an attack aims at: the daemon's ports, the attacker's token, a server-side
    checkout it indexes and watches, and its log file."""

    port: int
    ws_port: int
    token: str
    checkout: Path
    log_file: Path


Attack = Callable[[Daemon, float], Awaitable[None]]


async def _attacker(port: int, token: str) -> tuple[Rpc, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=ATTACKER)
    rpc = Rpc(reader, writer)
    await rpc.request(
        "initialize",
        {
            "processId": None,
            "capabilities": {},
            "initializationOptions": {"token": token},
            "workspaceFolders": [{"uri": "file:///attacker/proj", "name": "proj"}],
        },
    )
    rpc.notify("initialized", {})
    return rpc, writer


def _open(rpc: Rpc, uri: str, text: str) -> None:
    rpc.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": text}},
    )


async def masked_line(daemon: Daemon, until: float) -> None:
    port, token = daemon.port, daemon.token
    rpc, writer = await _attacker(port, token)
    line = "x = " + "token" * 480
    uri = "file:///attacker/proj/secrets_like.py"
    _open(rpc, uri, line)
    while time.monotonic() < until:
        try:
            await rpc.request(
                "textDocument/inlineCompletion",
                {
                    "textDocument": {"uri": uri},
                    "position": {"line": 0, "character": len(line)},
                    "context": {"triggerKind": 1},
                },
                timeout_s=10,
            )
        except TimeoutError:
            pass
    writer.close()


async def _edit_flood(port: int, token: str, until: float, text: str) -> None:
    rpc, writer = await _attacker(port, token)
    uri = "file:///attacker/proj/big.py"
    _open(rpc, uri, text)
    version = 1
    while time.monotonic() < until:
        version += 1
        at = {"line": 0, "character": 10}
        rpc.notify(
            "textDocument/didChange",
            {
                "textDocument": {"uri": uri, "version": version},
                "contentChanges": [{"range": {"start": at, "end": at}, "text": "y"}],
            },
        )
        try:  # as fast as the daemon reads
            await asyncio.wait_for(writer.drain(), max(0.01, until - time.monotonic()))
        except TimeoutError:
            break
    writer.transport.abort()  # what is still queued is dropped, as a vanished client's


async def change_flood(daemon: Daemon, until: float) -> None:
    port, token = daemon.port, daemon.token
    await _edit_flood(port, token, until, ("value = compute(item)\n" * 48_000))


async def huge_line(daemon: Daemon, until: float) -> None:
    port, token = daemon.port, daemon.token
    await _edit_flood(port, token, until, "x" * (4 * 1024 * 1024))


async def no_params(daemon: Daemon, until: float) -> None:
    port, token = daemon.port, daemon.token
    rpc, writer = await _attacker(port, token)
    while time.monotonic() < until:
        for _ in range(50):
            rpc.next_id += 1
            rpc.send({"jsonrpc": "2.0", "id": rpc.next_id, "method": "textDocument/hover"})
        try:
            await asyncio.wait_for(writer.drain(), max(0.01, until - time.monotonic()))
        except TimeoutError:
            break
    writer.transport.abort()


async def not_reading(daemon: Daemon, until: float) -> None:
    port, token = daemon.port, daemon.token
    # The reader is never read: past its small buffer, the socket stops taking the answers.
    _unread, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=ATTACKER)
    hello = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"capabilities": {}, "initializationOptions": {"token": token}},
    }
    writer.write(frame(json.dumps(hello).encode()))
    request_id = 1
    try:
        while time.monotonic() < until:
            for _ in range(20):
                request_id += 1
                writer.write(
                    frame(
                        json.dumps(
                            {"jsonrpc": "2.0", "id": request_id, "method": "iquest/stats"}
                        ).encode()
                    )
                )
            await asyncio.wait_for(writer.drain(), 1.0)
    except (TimeoutError, ConnectionError):
        pass  # the socket's buffers are full: the daemon stopped reading us, or closed
    finally:
        writer.close()


async def preauth_flood(daemon: Daemon, until: float) -> None:
    port = daemon.port
    body = b"[" + b"{}," * (8 * 1024 * 1024 // 3 - 1) + b"{}]"

    async def one() -> None:
        while time.monotonic() < until:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=ATTACKER)
                writer.write(b"Content-Length: %d\r\n\r\n" % len(body))
                writer.write(body)
                await asyncio.wait_for(writer.drain(), 2.0)
                writer.close()
            except (TimeoutError, ConnectionError):
                await asyncio.sleep(0.05)

    await asyncio.gather(*(one() for _ in range(4)))


async def slowloris(daemon: Daemon, until: float) -> None:
    port = daemon.port
    held: list[asyncio.StreamWriter] = []
    while time.monotonic() < until:
        while len(held) < 400:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=ATTACKER)
            except OSError:
                break
            held.append(writer)
        await asyncio.sleep(0.2)
        held = [w for w in held if not w.is_closing() and not w.transport.is_closing()]
    for writer in held:
        writer.close()


async def slot_churn(daemon: Daemon, until: float) -> None:
    """Every way a socket can start and end (bench.slot_churn), from one address, in turn,
    four at a time, as fast as the daemon takes them."""
    target = Target("127.0.0.1", daemon.port, daemon.ws_port, daemon.token, None, ATTACKER[0])
    cycles = list(cycles_for(target).values())
    done = 0
    while time.monotonic() < until:
        await churn(target, cycles[done % len(cycles)], 200)
        done += 1
    CHURNED.append(done * 200)


async def hostile_file(daemon: Daemon, until: float) -> None:
    """A 0.9 MB file of source-like junk (no NUL byte: only parsing tells) rewritten in the
    daemon's checkout every 0.3 s, different each time, as a sync tool or a user could."""
    alphabet = b"abcdefghij(){}[];:,.\n \t'\"=+-*/"
    rng = random.Random(7)
    target = daemon.checkout / "hostile_generated.py"
    while time.monotonic() < until:
        data = bytes(rng.choice(alphabet) for _ in range(900_000))
        await asyncio.to_thread(target.write_bytes, data)
        await asyncio.sleep(0.3)


async def log_flood(daemon: Daemon, until: float) -> None:
    """Notifications of unknown methods with 1 MiB names, as fast as the daemon reads (each
    was one 1 MiB log line)."""
    rpc, writer = await _attacker(daemon.port, daemon.token)
    n = 0
    while time.monotonic() < until:
        n += 1
        rpc.notify(f"x/{n}" + "y" * (1024 * 1024), {})
        try:
            await asyncio.wait_for(writer.drain(), max(0.01, until - time.monotonic()))
        except TimeoutError:
            break
    writer.transport.abort()


# Cycles the slot-churn attack ran (printed with its phase).
CHURNED: list[int] = []

ATTACKS: dict[str, Attack] = {
    "masked-line": masked_line,
    "change-flood": change_flood,
    "huge-line": huge_line,
    "no-params": no_params,
    "not-reading": not_reading,
    "preauth-flood": preauth_flood,
    "slowloris": slowloris,
    "slot-churn": slot_churn,
    "hostile-file": hostile_file,
    "log-flood": log_flood,
}


async def attacker_process(name: str, daemon: Daemon, seconds: float) -> str:
    """Runs attack ``name`` in a process of its own at nice 19: on a network the attacker is
    another machine, and here (two cores shared with vLLM and the honest editors) its own CPU
    must not count as the daemon's cost. What it prints comes back."""
    process = await asyncio.create_subprocess_exec(
        "nice",
        "-n",
        "19",
        sys.executable,
        "-m",
        "bench.abuse",
        "--attacker",
        json.dumps(
            {
                "name": name,
                "seconds": seconds,
                **asdict(daemon),
                "checkout": str(daemon.checkout),
                "log_file": str(daemon.log_file),
            }
        ),
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    return out.decode().strip()


def run_attacker(spec: str) -> None:
    """The attacker process's side of attacker_process."""
    fields = json.loads(spec)
    name, seconds = fields.pop("name"), fields.pop("seconds")
    daemon = Daemon(
        **{**fields, "checkout": Path(fields["checkout"]), "log_file": Path(fields["log_file"])}
    )
    asyncio.run(ATTACKS[name](daemon, time.monotonic() + seconds))
    if CHURNED:
        print(f"cycles {CHURNED[-1]}")


async def phase(
    daemon: Daemon,
    tokens: list[str],
    attack: str | None,
    seconds: float,
    attacked: Daemon | None = None,
) -> tuple[list[float], list[str], str]:
    """Honest editors on ``daemon`` for ``seconds``, beside ``attack`` on ``attacked`` (the
    same daemon unless told)."""
    until = time.monotonic() + seconds
    honest = [
        editor(daemon.port, token, n, until, seed=n + int(until)) for n, token in enumerate(tokens)
    ]
    jobs: list[Awaitable[object]] = list(honest)
    if attack is not None:
        jobs.append(attacker_process(attack, attacked or daemon, seconds))
    results = await asyncio.gather(*jobs, return_exceptions=True)
    latencies: list[float] = []
    errors: list[str] = []
    for result in results[: len(tokens)]:
        if isinstance(result, BaseException):
            errors.append(f"{type(result).__name__}: {result}")
            continue
        latencies += result.latencies_ms  # type: ignore[union-attr]
        errors += result.errors  # type: ignore[union-attr]
    said = results[-1] if attack is not None and isinstance(results[-1], str) else ""
    return latencies, errors, said


async def _served_from_attacker_address(port: int, token: str) -> bool:
    """After the phase: a new connection from the attacker's address is served at once."""
    try:
        rpc, writer = await asyncio.wait_for(_attacker(port, token), 5)
        answer = await rpc.request("iquest/stats", None, timeout_s=5)
        writer.close()
        return "result" in answer
    except (OSError, TimeoutError, asyncio.IncompleteReadError):
        return False


def _log_bytes(log_file: Path) -> int:
    return sum(path.stat().st_size for path in log_file.parent.glob(log_file.name + "*"))


async def _start_daemon(
    tokens: Path, config: Path, token: str, checkout: Path, log_file: Path, workers: int
) -> tuple[asyncio.subprocess.Process, Daemon]:
    process, port, ws_port = await start_team_daemon(
        *("--tokens", str(tokens), "--config", str(config)),
        *("--repo", str(checkout), "--log-file", str(log_file)),
        *("--workers", str(workers)),
    )
    return process, Daemon(port, ws_port, token, checkout, log_file)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--editors", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--attacks", default="all")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--vllm-root", help="reuse a running tiny-model vLLM")
    args = parser.parse_args()
    chosen = list(ATTACKS) if args.attacks == "all" else args.attacks.split(",")
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        checkout = work / "checkout"
        checkout.mkdir()
        (checkout / "util.py").write_text("def helper(value):\n    return value * 2\n")
        log_file = work / "daemon.log"
        async with tiny_vllm(work, args.vllm_root) as (root, model):
            store = TokenStore(work / "tokens.json")
            tokens = [store.add(f"user{n}") for n in range(args.editors)]
            attacker_token = store.add("mallory")
            config = work / "server.toml"
            config.write_text(
                f'[instruct]\nbase_url = "{root}/v1"\nmodel = "{model}"\n'
                "[completion]\nmax_tokens = 16\ntemperature = 0.0\ntimeout_s = 20.0\n"
            )
            process, daemon = await _start_daemon(
                store.path, config, attacker_token, checkout, log_file, args.workers
            )
            # The same daemon again, that no honest editor uses: an attack on it shows what
            # the attack costs the machine (the attacker's own CPU, vLLM's), not the daemon.
            decoy_folder = work / "decoy"
            decoy_folder.mkdir()
            decoy_process, decoy = await _start_daemon(
                store.path, config, attacker_token, decoy_folder, work / "decoy.log", 1
            )
            rows = []
            try:
                quiet_p95 = None
                for name in ["none", *chosen]:
                    logged, cpu = _log_bytes(log_file), cpu_seconds(process.pid)
                    attack, _, where = name.partition("@")
                    latencies, errors, said = await phase(
                        daemon,
                        tokens,
                        attack if attack in ATTACKS else None,
                        args.seconds,
                        decoy if where == "decoy" else None,
                    )
                    p50, p95 = percentile(latencies, 0.5), percentile(latencies, 0.95)
                    quiet_p95 = quiet_p95 or p95
                    rss = rss_mb(process.pid)
                    cpu_share = (cpu_seconds(process.pid) - cpu) / args.seconds
                    await asyncio.sleep(2)  # let the attack's leftovers drain
                    sockets = await open_sockets(daemon.ws_port)
                    served = await _served_from_attacker_address(daemon.port, attacker_token)
                    log_mb = (_log_bytes(log_file) - logged) / 1e6
                    rows.append(
                        (
                            name,
                            len(latencies),
                            p50,
                            p95,
                            p95 / quiet_p95,
                            errors,
                            rss,
                            log_mb,
                            sockets,
                            served,
                        )
                    )
                    extra = f"  ({said})" if said else ""
                    print(
                        f"{name:14s} suggestions {len(latencies):5d}  p50 {p50:7.0f} ms  "
                        f"p95 {p95:7.0f} ms  ({p95 / quiet_p95:4.2f}x quiet)  "
                        f"honest errors {len(errors)}  daemon RSS {rss:5.0f} MB  "
                        f"daemon CPU {cpu_share:4.0%}  "
                        f"log +{log_mb:.2f} MB  open sockets after {sockets:.0f}  "
                        f"attacker's address served after {served}{extra}",
                        flush=True,
                    )
                    for error in sorted(set(errors))[:3]:
                        print(f"    error: {error[:160]}")
            finally:
                for each in (process, decoy_process):
                    each.terminate()
                    await each.wait()
    print()
    print(
        "| attack | honest suggestions | p50 | p95 | p95 vs quiet | honest errors | RSS | "
        "daemon CPU | log written | open sockets after | its address served after |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, count, p50, p95, ratio, errors, rss, log_mb, sockets, served, cpu in rows:
        print(
            f"| {name} | {count} | {p50:.0f} ms | {p95:.0f} ms | {ratio:.2f}x | "
            f"{len(errors)} | {rss:.0f} MB | {cpu:.0%} | {log_mb:.2f} MB | {sockets:.0f} | "
            f"{'yes' if served else 'NO'} |"
        )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--attacker"]:  # attacker_process's child
        run_attacker(sys.argv[2])
    else:
        asyncio.run(main())
