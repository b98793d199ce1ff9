"""A pass-through proxy in front of vLLM that fixes each completion's length.

Random weights stop (or break a line) at random, so a capacity benchmark would measure the
dice. This proxy rewrites each ``/v1/completions`` request: ``max_tokens`` drawn from a fixed
distribution (single-line 8-24 tokens, multi-line 40-128), ``ignore_eos`` and no stop strings;
and in the streamed answer, a single-line suggestion's line breaks become spaces and a
multi-line one's lines are indented deeper than any block, so the daemon's own cutter lets
every token through. Which kind the daemon asked for is read from its ``max_tokens``
(``completion.max_tokens_single_line``, set apart by the benchmark), so the proportions are
the daemon's own rule on real files. The same for every configuration benchmarked; all else
(chat, /metrics, headers) passes through untouched."""

from __future__ import annotations

import asyncio
import json
import random
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field

import aiohttp
from aiohttp import web

SINGLE_LINE = (8, 24)
MULTI_LINE = (40, 128)
_HOP_HEADERS = {"host", "content-length", "transfer-encoding", "connection"}


@dataclass
class LengthCounts:
    single_line: int = 0
    multi_line: int = 0
    lengths: list[int] = field(default_factory=list)


def _rewritten(line: bytes, newline: str) -> bytes:
    """One SSE line with each choice's text's line breaks replaced."""
    if not line.startswith(b"data: {"):
        return line
    event = json.loads(line[6:])
    for choice in event.get("choices") or []:
        if isinstance(choice.get("text"), str):
            choice["text"] = choice["text"].replace("\n", newline)
    return b"data: " + json.dumps(event).encode() + b"\n"


@asynccontextmanager
async def length_proxy(
    upstream: str, single_line_max_tokens: int, seed: int = 7
) -> AsyncIterator[tuple[str, LengthCounts]]:
    """(root URL of the proxy, what it chose) for a vLLM at ``upstream`` (its root URL);
    a request for at most ``single_line_max_tokens`` is a single-line one."""
    rng = random.Random(seed)
    counts = LengthCounts()
    session = aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=None, sock_read=600),
        connector=aiohttp.TCPConnector(limit=0),
    )

    async def forward(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        rewrite: str | None = None
        if request.path == "/v1/completions" and body:
            fields = json.loads(body)
            single = int(fields.get("max_tokens", 0)) <= single_line_max_tokens
            rewrite = " " if single else "\n" + " " * 40
            low, high = SINGLE_LINE if single else MULTI_LINE
            length = rng.randint(low, high)
            counts.lengths.append(length)
            if single:
                counts.single_line += 1
            else:
                counts.multi_line += 1
            fields.update(max_tokens=length, ignore_eos=True, stop=None, min_tokens=length)
            body = json.dumps(fields).encode()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        async with session.request(
            request.method, upstream + request.path_qs, data=body or None, headers=headers
        ) as upstream_response:
            response = web.StreamResponse(
                status=upstream_response.status,
                headers={
                    k: v
                    for k, v in upstream_response.headers.items()
                    if k.lower() not in _HOP_HEADERS and k.lower() != "content-encoding"
                },
            )
            try:
                await response.prepare(request)
                if rewrite is None:
                    async for piece in upstream_response.content.iter_any():
                        await response.write(piece)
                else:
                    async for line in upstream_response.content:
                        await response.write(_rewritten(line, rewrite))
                await response.write_eof()
            except ConnectionResetError:  # aiohttp's ClientConnectionResetError is one
                # The daemon closed the stream (a superseded keystroke): leaving the block
                # closes the upstream one too, so vLLM aborts the request as it would.
                upstream_response.close()
            return response

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", forward)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}", counts
    finally:
        await runner.cleanup()
        await session.close()


async def serve(upstream: str, single_line_max_tokens: int) -> None:
    """As its own process (``python -m bench.length_proxy``): its stream rewriting then uses
    its own core, not the benchmark's. Prints its URL, and its counts when stopped."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with length_proxy(upstream, single_line_max_tokens) as (url, counts):
        print(url, flush=True)
        await stop.wait()
    sys.stdout.write(json.dumps(asdict(counts)) + "\n")


@asynccontextmanager
async def proxy_process(
    upstream: str, single_line_max_tokens: int
) -> AsyncIterator[tuple[str, LengthCounts]]:
    """The proxy in a child process; the counts are filled in when it stops."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.length_proxy",
        upstream,
        str(single_line_max_tokens),
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    url = (await asyncio.wait_for(process.stdout.readline(), 60)).decode().strip()
    counts = LengthCounts()
    try:
        yield url, counts
    finally:
        process.send_signal(signal.SIGINT)
        out, _ = await asyncio.wait_for(process.communicate(), 30)
        if out.strip():
            filled = json.loads(out.decode().strip().splitlines()[-1])
            counts.single_line = filled["single_line"]
            counts.multi_line = filled["multi_line"]
            counts.lengths = filled["lengths"]


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1], int(sys.argv[2])))
