"""A small OpenAI-compatible server for what a real vLLM won't do on demand: hang, fail with 5xx,
send malformed or cut streams. It also records prompts, to see exactly what the daemon sent."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
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
    completion_requests: list[dict[str, object]] = field(default_factory=list)
    session_headers: list[str | None] = field(default_factory=list)
    user_headers: list[str | None] = field(default_factory=list)
    # The client's (host, port) per completion request: the same port means a reused connection.
    peers: list[object] = field(default_factory=list)
    # Chat: the answer's content and reasoning field, streamed in small pieces.
    chat_reply: str = "An answer."
    chat_reasoning: str = ""
    # Successive chat answers, used before chat_reply (a retry gets the next one).
    chat_replies: list[str] = field(default_factory=list)
    chat_requests: list[dict[str, object]] = field(default_factory=list)
    # Request fields answered with a 400 naming them, as vLLM does for `priority` under FCFS.
    refused_fields: set[str] = field(default_factory=set)
    # mode "hold": completions wait for this before answering (requests pile up at the server).
    release: asyncio.Event = field(default_factory=asyncio.Event)
    # mode "trickle": the reply streamed this many characters at a time, this far apart.
    trickle_chars: int = 2
    trickle_s: float = 0.05
    # /tokenize with a real tokenizer (benchmarks); default: a token per character.
    token_counter: Callable[[str], int] | None = None
    # The folder the model list says the model was loaded from (vLLM's ``root``): a daemon
    # beside the server reads its tokenizer.json and counts tokens without a round trip.
    model_root: str | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def _chunk(text: str) -> bytes:
    return _event("text_completion", {"text": text, "finish_reason": None})


def _chat_chunk(delta: dict[str, str], finish: str | None = None) -> bytes:
    return _event("chat.completion.chunk", {"delta": delta, "finish_reason": finish})


def _event(kind: str, choice: dict[str, object]) -> bytes:
    body = {
        "id": "x",
        "object": kind,
        "created": 0,
        "model": "fake-qwen-coder",
        "choices": [{"index": 0, **choice}],
    }
    return f"data: {json.dumps(body)}\n\n".encode()


@asynccontextmanager
async def fake_server() -> AsyncIterator[FakeServer]:
    state = FakeServer(port=0)

    async def models(request: web.Request) -> web.Response:
        model: dict[str, object] = {"id": "fake-qwen-coder"}
        if state.model_root is not None:
            model["root"] = state.model_root
        return web.json_response({"object": "list", "data": [model]})

    async def tokenize(request: web.Request) -> web.Response:
        body = await request.json()
        # Markers are single tokens; anything else counts a token per character.
        text = body["prompt"]
        if state.token_counter is not None:
            count = state.token_counter(text)
        else:
            count = 1 if text.startswith("<|") and text.endswith("|>") else len(text)
        return web.json_response({"tokens": list(range(count)), "count": count})

    async def completions(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        state.prompts.append(body["prompt"])
        state.completion_requests.append(body)
        state.session_headers.append(request.headers.get("X-Session-ID"))
        state.user_headers.append(request.headers.get("X-User-ID"))
        state.peers.append(
            request.transport.get_extra_info("peername") if request.transport else None
        )
        if state.mode == "hang":
            await asyncio.sleep(3600)
        if state.mode == "hold":
            await state.release.wait()
        if state.mode == "http500":
            return web.json_response({"error": {"message": "engine dead"}}, status=500)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        if state.mode == "malformed":
            await response.write(b"data: {this is not json\n\n")
        elif state.mode == "stray_choice":
            # A choice the request never asked for (n was 1): a server answering garbage.
            await response.write(
                _event("text_completion", {"text": "x", "index": 7, "finish_reason": None})
            )
            await response.write(b"data: [DONE]\n\n")
        elif state.mode == "trickle":
            # A scripted stream: the reply a few characters at a time, as a model decodes it.
            try:
                for at in range(0, len(state.reply), state.trickle_chars):
                    await response.write(_chunk(state.reply[at : at + state.trickle_chars]))
                    await asyncio.sleep(state.trickle_s)
                await response.write(b"data: [DONE]\n\n")
            except ConnectionResetError:
                return response  # the client hung up mid-stream, as the daemon does
        elif state.mode == "cut":
            await response.write(_chunk(state.reply[:3]))
            # Drop the connection mid-stream, without the terminating chunk.
            assert request.transport is not None
            request.transport.close()
            return response
        else:
            await response.write(_chunk(state.reply))
            await response.write(b"data: [DONE]\n\n")
            # The end of the body comes in a packet of its own, as from vLLM.
            await asyncio.sleep(0.02)
        await response.write_eof()
        return response

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        state.chat_requests.append(body)
        refused = sorted(state.refused_fields & set(body))
        if refused:
            message = f"{refused[0]} is not supported by this server's configuration"
            return web.json_response({"error": {"message": message}}, status=400)
        if state.mode == "hang":
            await asyncio.sleep(3600)
        if state.mode == "http500":
            return web.json_response({"error": {"message": "engine dead"}}, status=500)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        content = state.chat_replies.pop(0) if state.chat_replies else state.chat_reply
        pieces = [
            ("reasoning", state.chat_reasoning[i : i + 7])
            for i in range(0, len(state.chat_reasoning), 7)
        ]
        pieces += [("content", content[i : i + 7]) for i in range(0, len(content), 7)]
        for key, piece in pieces:
            await response.write(_chat_chunk({key: piece}))
            await asyncio.sleep(0.005)
        await response.write(_chat_chunk({}, finish="stop"))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
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
