"""Property tests of the team server's input handling: whatever bytes or JSON arrive, the
framing reader either yields bodies within the limit or raises FramingError, and a message
handed to a connection's language server gets an answer or nothing, never an exception."""

from __future__ import annotations

import asyncio
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lsp.serve.framing import FramingError, frame, read_bodies

LIMIT = 1024


def bodies_of(data: bytes) -> tuple[list[bytes], bool]:
    async def run() -> tuple[list[bytes], bool]:
        reader = asyncio.StreamReader(limit=4096)
        reader.feed_data(data)
        reader.feed_eof()
        found: list[bytes] = []
        try:
            async for body in read_bodies(reader, LIMIT):
                found.append(body)
        except FramingError:
            return found, False
        return found, True

    return asyncio.run(run())


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_never_break_the_reader(data: bytes):
    bodies, clean = bodies_of(data)
    assert all(len(body) <= LIMIT for body in bodies)
    if clean:
        assert sum(len(frame(b)) for b in bodies) <= len(data) + 64 * len(bodies)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=LIMIT), max_size=5))
def test_well_framed_bodies_come_back_whole(bodies: list[bytes]):
    found, clean = bodies_of(b"".join(frame(b) for b in bodies))
    assert clean and found == bodies


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=LIMIT + 1, max_value=2**62))
def test_oversized_content_length_is_refused_before_reading(length: int):
    found, clean = bodies_of(b"Content-Length: %d\r\n\r\n" % length + b"x" * 10)
    assert not clean and found == []


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
methods = st.sampled_from(
    [
        "initialize",
        "textDocument/didOpen",
        "textDocument/didChange",
        "textDocument/inlineCompletion",
        "textDocument/codeAction",
        "workspace/executeCommand",
        "$/cancelRequest",
        "no/such/method",
    ]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        json_values,
        st.fixed_dictionaries(
            {"jsonrpc": st.just("2.0"), "method": methods, "params": json_values},
            optional={"id": st.integers() | st.text(max_size=5)},
        ),
    )
)
def test_any_json_message_gets_an_answer_or_nothing(raw: object):
    from engine.team.tokens import TokenEntry
    from lsp.serve.daemon import TeamDaemon
    from lsp.serve.options import ServeOptions

    sent: list[bytes] = []

    class Collect:
        def write(self, data: bytes) -> None:
            sent.append(data)

        def close(self) -> None:
            pass

    async def run() -> None:
        daemon = TeamDaemon(ServeOptions(port=None, ws_port=None))
        connection = daemon.open_connection(TokenEntry("id", "fuzz", "", "", 0.0), lambda: None)
        connection.server.protocol.set_writer(Collect())
        daemon.dispatcher.dispatch(connection, body=json.dumps(raw).encode())
        await asyncio.sleep(0)
        await daemon.aclose()

    asyncio.run(run())
    for data in sent:
        body = data.split(b"\r\n\r\n", 1)[-1]
        assert isinstance(json.loads(body), dict)
