"""A small OpenAI-compatible server for what a real vLLM won't do on demand: hang, fail with 5xx,
send malformed or cut streams. It also records prompts, to see exactly what the daemon sent."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web

MODES = ("ok", "hang", "http500", "malformed", "cut")


@dataclass
class FakeServer:
    port: int
    mode: str = "ok"
    reply: str = "value = 42"
    prompts: list[str] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def _chunk(text: str) -> bytes:
    body = {
        "id": "x",
        "object": "text_completion",
        "created": 0,
        "model": "fake-qwen-coder",
        "choices": [{"index": 0, "text": text, "finish_reason": None}],
    }
    return f"data: {json.dumps(body)}\n\n".encode()


@asynccontextmanager
async def fake_server() -> AsyncIterator[FakeServer]:
    state = FakeServer(port=0)

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "fake-qwen-coder"}]})

    async def tokenize(request: web.Request) -> web.Response:
        body = await request.json()
        # Markers are single tokens; anything else counts a token per character.
        text = body["prompt"]
        count = 1 if text.startswith("<|") and text.endswith("|>") else len(text)
        return web.json_response({"tokens": list(range(count)), "count": count})

    async def completions(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        state.prompts.append(body["prompt"])
        if state.mode == "hang":
            await asyncio.sleep(3600)
        if state.mode == "http500":
            return web.json_response({"error": {"message": "engine dead"}}, status=500)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        if state.mode == "malformed":
            await response.write(b"data: {this is not json\n\n")
        elif state.mode == "cut":
            await response.write(_chunk(state.reply[:3]))
            # Drop the connection mid-stream, without the terminating chunk.
            assert request.transport is not None
            request.transport.close()
            return response
        else:
            await response.write(_chunk(state.reply))
            await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/v1/models", models)
    app.router.add_post("/tokenize", tokenize)
    app.router.add_post("/v1/completions", completions)
    # A hung handler must not hold the shutdown for aiohttp's default minute.
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    state.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield state
    finally:
        await runner.cleanup()
