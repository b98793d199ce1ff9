"""Honest editors typing while one user (or a stranger) attacks the team daemon.

One ``iquest-lsp --serve`` process against the tiny model on vLLM's CPU build; ``--editors``
honest editors type as in ``bench.team_load`` for ``--seconds`` per phase. The first phase has
no attacker; each further phase runs one attack beside them. Per phase: the honest editors'
suggestion latency p50/p95 (and its ratio to the quiet phase), their errors, and the daemon's
resident memory at the end of the phase.

    .venv/bin/python -m bench.abuse [--editors 50] [--seconds 20] [--attacks all|KIND,...]

Attacks (each observed on an earlier main, see issue 12): ``masked-line`` (completions at the
end of a long line of credential keywords), ``change-flood`` (edits to a 1 MB file as fast as
the socket takes them), ``huge-line`` (one-byte edits to a 4 MiB one-line file), ``no-params``
(requests without params, as fast as possible), ``not-reading`` (requests whose answers are
never read), ``preauth-flood`` (unauthenticated 8 MiB messages of ``[{},{},...]`` on four
connections) and ``slowloris`` (hundreds of sockets that never say anything).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from bench.common import REPO, percentile, tiny_vllm
from bench.team_load import Rpc, editor, rss_mb
from engine.team.tokens import TokenStore
from lsp.serve.framing import frame

Attack = Callable[[int, str, float], Awaitable[None]]
# The attacker comes from its own address (honest editors from 127.0.0.1), as on a network.
ATTACKER = ("127.0.0.66", 0)


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


async def masked_line(port: int, token: str, until: float) -> None:
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


async def change_flood(port: int, token: str, until: float) -> None:
    await _edit_flood(port, token, until, ("value = compute(item)\n" * 48_000))


async def huge_line(port: int, token: str, until: float) -> None:
    await _edit_flood(port, token, until, "x" * (4 * 1024 * 1024))


async def no_params(port: int, token: str, until: float) -> None:
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


async def not_reading(port: int, token: str, until: float) -> None:
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


async def preauth_flood(port: int, token: str, until: float) -> None:
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


async def slowloris(port: int, token: str, until: float) -> None:
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


ATTACKS: dict[str, Attack] = {
    "masked-line": masked_line,
    "change-flood": change_flood,
    "huge-line": huge_line,
    "no-params": no_params,
    "not-reading": not_reading,
    "preauth-flood": preauth_flood,
    "slowloris": slowloris,
}


async def phase(
    port: int, tokens: list[str], attacker_token: str, attack: Attack | None, seconds: float
) -> tuple[list[float], list[str]]:
    until = time.monotonic() + seconds
    honest = [editor(port, token, n, until, seed=n + int(until)) for n, token in enumerate(tokens)]
    jobs: list[Awaitable[object]] = list(honest)
    if attack is not None:
        jobs.append(attack(port, attacker_token, until))
    results = await asyncio.gather(*jobs, return_exceptions=True)
    latencies: list[float] = []
    errors: list[str] = []
    for result in results[: len(tokens)]:
        if isinstance(result, BaseException):
            errors.append(f"{type(result).__name__}: {result}")
            continue
        latencies += result.latencies_ms  # type: ignore[union-attr]
        errors += result.errors  # type: ignore[union-attr]
    return latencies, errors


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--editors", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--attacks", default="all")
    parser.add_argument("--vllm-root", help="reuse a running tiny-model vLLM")
    args = parser.parse_args()
    chosen = list(ATTACKS) if args.attacks == "all" else args.attacks.split(",")
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        async with tiny_vllm(work, args.vllm_root) as (root, model):
            store = TokenStore(work / "tokens.json")
            tokens = [store.add(f"user{n}") for n in range(args.editors)]
            attacker_token = store.add("mallory")
            config = work / "server.toml"
            config.write_text(
                f'log_file = "{work / "daemon.log"}"\n'
                f'[instruct]\nbase_url = "{root}/v1"\nmodel = "{model}"\n'
                "[completion]\nmax_tokens = 16\ntemperature = 0.0\ntimeout_s = 20.0\n"
            )
            daemon = await asyncio.create_subprocess_exec(
                sys.executable,
                *("-m", "lsp", "--serve", "--port", "0", "--ws-port", "0"),
                *("--tokens", str(store.path), "--config", str(config)),
                cwd=REPO,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
            )
            assert daemon.stdout is not None
            banner = (await asyncio.wait_for(daemon.stdout.readline(), 60)).decode()
            port = int(re.search(r"tcp://[^:]+:(\d+)", banner).group(1))  # type: ignore[union-attr]
            rows = []
            try:
                quiet_p95 = None
                for name in ["none", *chosen]:
                    attack = ATTACKS.get(name)
                    latencies, errors = await phase(
                        port, tokens, attacker_token, attack, args.seconds
                    )
                    p50, p95 = percentile(latencies, 0.5), percentile(latencies, 0.95)
                    quiet_p95 = quiet_p95 or p95
                    rss = rss_mb(daemon.pid)
                    rows.append((name, len(latencies), p50, p95, p95 / quiet_p95, errors, rss))
                    print(
                        f"{name:14s} suggestions {len(latencies):5d}  p50 {p50:7.0f} ms  "
                        f"p95 {p95:7.0f} ms  ({p95 / quiet_p95:4.2f}x quiet)  "
                        f"honest errors {len(errors)}  daemon RSS {rss:5.0f} MB",
                        flush=True,
                    )
                    for error in sorted(set(errors))[:3]:
                        print(f"    error: {error[:160]}")
                    await asyncio.sleep(2)  # let the attack's leftovers drain
            finally:
                daemon.terminate()
                await daemon.wait()
    print()
    print("| attack | honest suggestions | p50 | p95 | p95 vs quiet | honest errors | RSS |")
    print("|---|---|---|---|---|---|---|")
    for name, count, p50, p95, ratio, errors, rss in rows:
        print(
            f"| {name} | {count} | {p50:.0f} ms | {p95:.0f} ms | {ratio:.2f}x | "
            f"{len(errors)} | {rss:.0f} MB |"
        )


if __name__ == "__main__":
    asyncio.run(main())
