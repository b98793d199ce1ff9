"""The repository index: headers per language, what is skipped, the watcher, the disk cache."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

from engine.repository.headers import extract_header
from engine.repository.index import RepositoryIndex
from engine.repository.languages import language_for
from engine.repository.symbols import declared_private

SNIPPETS = {
    "service.py": (
        "import json\nfrom pathlib import Path\n\nTIMEOUT = 30\n\n\n"
        'class Store:\n    """Keeps records on disk."""\n\n    def __init__(self, root: Path) '
        "-> None:\n        self.root = root\n\n    def load(self, key: str) -> dict:\n"
        "        return json.loads((self.root / key).read_text())\n\n\n"
        "def open_store(path: str) -> Store:\n    return Store(Path(path))\n",
        [
            "import json",
            "class Store:",
            "def load(self, key: str) -> dict",
            "TIMEOUT = 30",
            "def open_store(path: str) -> Store",
        ],
        ["json.loads", "self.root = root"],
    ),
    "client.js": (
        "import { fetchJson } from './http.js';\n\nexport class Client {\n"
        "  constructor(base) { this.base = base; }\n  async get(path) {\n"
        "    return fetchJson(this.base + path);\n  }\n}\n\n"
        "export function connect(url) { return new Client(url); }\n",
        [
            "import { fetchJson } from './http.js';",
            "export class Client {",
            "async get(path)",
            "export function connect(url)",
        ],
        ["this.base + path", "new Client(url)"],
    ),
    "types.ts": (
        "import type { Id } from './ids';\n\nexport interface User {\n  id: Id;\n"
        "  name(): string;\n}\n\nexport async function findUser(id: Id): Promise<User> {\n"
        "  return db.get(id);\n}\n",
        [
            "import type { Id } from './ids';",
            "export interface User {",
            "name(): string",
            "export async function findUser(id: Id): Promise<User>",
        ],
        ["db.get(id)"],
    ),
    "view.tsx": (
        "import React from 'react';\n\nexport function Badge(props: { label: string }) {\n"
        '  return <span className="badge">{props.label}</span>;\n}\n',
        ["import React from 'react';", "export function Badge(props: { label: string })"],
        ["className"],
    ),
    "server.go": (
        'package api\n\nimport (\n\t"net/http"\n)\n\ntype Server struct {\n\tAddr string\n}\n\n'
        "func (s *Server) Start() error {\n\treturn http.ListenAndServe(s.Addr, nil)\n}\n",
        ["package api", '"net/http"', "type Server struct", "func (s *Server) Start() error"],
        ["ListenAndServe"],
    ),
    "lib.rs": (
        "use std::collections::HashMap;\nmod cache;\n\npub struct Registry {\n"
        "    items: HashMap<String, u32>,\n}\n\nimpl Registry {\n"
        "    pub fn insert(&mut self, key: String, value: u32) {\n"
        "        self.items.insert(key, value);\n    }\n}\n",
        [
            "use std::collections::HashMap;",
            "mod cache;",
            "pub struct Registry",
            "impl Registry {",
            "pub fn insert(&mut self, key: String, value: u32)",
        ],
        ["self.items.insert"],
    ),
    "Cart.java": (
        "package shop;\n\nimport java.util.List;\n\npublic class Cart {\n"
        "    private final List<String> items;\n\n    public Cart(List<String> items) {\n"
        "        this.items = items;\n    }\n\n    public int size() {\n"
        "        return items.size();\n    }\n}\n",
        [
            "package shop;",
            "import java.util.List;",
            "public class Cart {",
            "public int size()",
            "private final List<String> items;",
        ],
        ["return items.size()"],
    ),
    "buffer.c": (
        '#include <stdlib.h>\n#include "buffer.h"\n\n#define CAPACITY 64\n\n'
        "struct buffer { char *data; size_t len; };\n\n"
        "int buffer_push(struct buffer *b, char c) {\n    b->data[b->len++] = c;\n"
        "    return 0;\n}\n",
        ['#include "buffer.h"', "#define CAPACITY 64", "int buffer_push(struct buffer *b, char c)"],
        ["b->len++"],
    ),
    "matrix.cpp": (
        "#include <vector>\n\nnamespace linalg {\nclass Matrix {\n public:\n"
        "  Matrix(int rows, int cols);\n  double at(int r, int c) const { return data_[r]; }\n"
        " private:\n  std::vector<double> data_;\n};\n}\n",
        [
            "#include <vector>",
            "namespace linalg {",
            "class Matrix",
            "double at(int r, int c) const",
        ],
        ["return data_[r]"],
    ),
}


@pytest.mark.parametrize("name", sorted(SNIPPETS))
def test_header_keeps_imports_and_signatures_and_drops_bodies(name: str):
    source, kept, dropped = SNIPPETS[name]
    header = extract_header(name, language_for(name), source.encode())
    for text in kept:
        assert text in header.text, f"{text!r} missing from:\n{header.text}"
    for text in dropped:
        assert text not in header.text, f"{text!r} leaked into:\n{header.text}"
    assert header.imports


@pytest.mark.parametrize(
    ("name", "source"),
    [
        (
            "Store.java",
            "public class Store {\n"
            '    private static final String TAG = "store";\n'
            '    @SuppressWarnings("unused") private int hits;\n'
            "    private void evict() {}\n"
            "    @Override public String toString() { return TAG; }\n"
            "    public static Store open(String path) { return new Store(); }\n}\n",
        ),
        (
            "store.ts",
            "export class Store {\n"
            "  private static readonly TAG = 'store';\n"
            "  #hits = 0;\n"
            "  private evict(): void {}\n"
            "  toString(): string { return Store.TAG; }\n"
            "  static open(path: string): Store { return new Store(); }\n}\n",
        ),
    ],
)
def test_a_class_shows_what_other_files_can_use_before_its_private_members(name: str, source: str):
    """A class's text (issue 29): its first lines are what the prompt shows within a class's
    share, and a Java class's first members are often its private fields (`private static
    final String TAG`), which no other file can name. Public members come first."""
    header = extract_header(name, language_for(name), source.encode())
    store = next(d for d in header.definitions if d.name == "Store" and d.container is None)
    lines = [line.strip() for line in store.text.splitlines()]
    to_string = next(i for i, line in enumerate(lines) if "toString()" in line)
    opened = next(i for i, line in enumerate(lines) if "open(" in line)
    private = [i for i, line in enumerate(lines) if "TAG =" in line or "evict" in line]
    assert len(private) == 2 and max(to_string, opened) < min(private), lines


@pytest.mark.parametrize(
    ("line", "private"),
    [
        ("private int x;", True),
        ("    static private final String TAG = 1;", True),
        ('@SuppressWarnings("deprecation") private NativePlugin a;', True),
        ("@Override @Nullable private String name() { … }", True),
        ("#cache = new Map();", True),
        ("public void run() { … }", False),
        ("String privateKey();", False),
        ("def private(self) -> None:", False),
        ('@Named("private") public int x;', False),
        ("@Broken(unclosed private int x;", False),
    ],
)
def test_a_member_declared_private_is_read_from_its_modifiers(line: str, private: bool):
    assert declared_private(line) is private


def test_unknown_language_falls_back_to_the_first_lines():
    header = extract_header("deploy.rb", language_for("deploy.rb"), b"require 'x'\n" * 50)
    assert header.language is None and header.text.count("\n") == 19


def make_tree(root: Path) -> None:
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_text("import os\n\ndef main():\n    pass\n")
    (root / "src" / "broken.py").write_text("def (((:\n  class\n")
    (root / "src" / "blob.py").write_bytes(b"\x00\x01binary\x00" * 100)
    (root / "src" / "big.py").write_text("x = 1\n" * 200_000)
    (root / "node_modules" / "dep").mkdir(parents=True)
    (root / "node_modules" / "dep" / "index.js").write_text("export const a = 1;\n")
    (root / "build").mkdir()
    (root / "build" / "out.py").write_text("def generated(): ...\n")
    (root / ".gitignore").write_text("ignored_dir/\n*.tmp.py\n")
    (root / "ignored_dir").mkdir()
    (root / "ignored_dir" / "x.py").write_text("def hidden(): ...\n")
    (root / "src" / "scratch.tmp.py").write_text("def scratch(): ...\n")
    (root / ".env").write_text("TOKEN=abcdefghijklmnop\n")
    (root / "src" / "server.key").write_text("-----BEGIN PRIVATE KEY-----\n")
    (root / "src" / "config.py").write_text('API_KEY = "sk-abcdefghijklmnopqrstuvwxyz"\n')


async def test_skips_ignored_vendored_big_binary_and_secret_files(tmp_path, caplog):
    make_tree(tmp_path)
    index = RepositoryIndex(tmp_path, tmp_path / ".cache-dir")
    with caplog.at_level(logging.INFO, logger="engine"):
        await index.build()
    assert sorted(index.paths()) == ["src/app.py", "src/broken.py", "src/config.py"]
    assert any("binary" in r.getMessage() and "blob.py" in r.getMessage() for r in caplog.records)
    # An unparsable file still gets a header, and no crash; credentials are masked.
    assert index.header("src/broken.py") is not None
    config = index.header("src/config.py")
    assert config is not None and "sk-abc" not in config.text and "API_KEY" in config.text
    index.close()


async def test_restart_reads_headers_from_the_disk_cache(tmp_path):
    make_tree(tmp_path)
    first = RepositoryIndex(tmp_path, tmp_path / ".cache-dir")
    cold = await first.build()
    first.close()
    second = RepositoryIndex(tmp_path, tmp_path / ".cache-dir")
    warm = await second.build()
    assert cold.parsed == 3 and warm.parsed == 0 and warm.from_cache == 3
    assert second.header("src/app.py") == first.header("src/app.py")
    # A file changed while the daemon was down is parsed again.
    (tmp_path / "src" / "app.py").write_text("import sys\n\ndef main(argv):\n    pass\n")
    second.close()
    third = RepositoryIndex(tmp_path, tmp_path / ".cache-dir")
    again = await third.build()
    assert again.parsed == 1
    assert "def main(argv)" in third.header("src/app.py").text  # type: ignore[union-attr]
    third.close()


async def _until(condition, timeout_s: float = 5.0) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout_s:
            raise AssertionError("the index never reflected the change")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def test_watcher_reflects_create_modify_delete_and_rename(tmp_path):
    make_tree(tmp_path)
    index = RepositoryIndex(tmp_path, tmp_path / ".cache-dir")
    await index.build()
    index.start_watching()
    await asyncio.sleep(0.3)  # the watcher is set up
    src = tmp_path / "src"
    try:
        (src / "new.py").write_text("def created(): ...\n")
        await _until(lambda: index.header("src/new.py") is not None)

        (src / "new.py").write_text("def modified(x): ...\n")
        await _until(lambda: "modified" in (index.header("src/new.py").text or ""))  # type: ignore[union-attr]

        (src / "new.py").rename(src / "renamed.py")
        await _until(lambda: "src/new.py" not in index and "src/renamed.py" in index)

        (src / "renamed.py").unlink()
        await _until(lambda: "src/renamed.py" not in index)

        (tmp_path / "ignored_dir" / "late.py").write_text("def hidden_too(): ...\n")
        (src / "after.py").write_text("def after(): ...\n")
        await _until(lambda: "src/after.py" in index)
        assert "ignored_dir/late.py" not in index
    finally:
        await index.stop_watching()
        index.close()


def test_a_headers_mentions_come_back_interned_from_a_pickle():
    """Headers cross a process boundary (the parser pool) and come back from the disk cache:
    their mentions must be the interpreter's one copy of each name, not a copy per file."""
    import pickle
    import sys

    source = b"import os\n\ndef render_lines(console):\n    return console.render_lines()\n"
    header = extract_header("a.py", "python", source)
    back = pickle.loads(pickle.dumps(header))
    assert back == header and "render_lines" in back.mentions
    # A name built at run time is a different object until interned; the unpickled one is it.
    assert all(sys.intern("".join(list(name))) is name for name in back.mentions)
