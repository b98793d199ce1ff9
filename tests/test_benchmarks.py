"""The GPU benchmarks run on CPU against the tiny model, small and short, so a change that
breaks them shows here and not on a lent GPU (where the device time is counted)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import VllmEndpoint
from tests.support.lsp_session import REPO


def bench(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_the_capacity_benchmark_runs_both_configurations(vllm: VllmEndpoint):
    out = bench(
        *("bench.capacity", "--vllm-root", vllm.root_url, "--editors", "2", "--seconds", "6"),
        "--editor-processes",
        "2",  # one editor in each of two processes: their logs come back as JSON
    )
    rows = [line.split() for line in out.splitlines() if re.match(r"\s+2 +(ours|plain) ", line)]
    assert len(rows) == 2, out
    for row in rows:
        assert row[-1] == "0", out  # no errors
        assert int(row[-2]) > 0, out  # keystrokes typed in the measured window
        # Tokens vLLM decoded per keystroke: the daemon's fixed lengths reached vLLM.
        assert float(row[11]) > 0, out  # the t/key column
    assert re.search(r"suggestions: \d+% single-line \(8-24 tokens\)", out), out
    assert "capacity, ours:" in out and "capacity, plain:" in out


def test_the_engines_benchmark_measures_vllm_and_transformers(
    vllm: VllmEndpoint, tiny_model_dir: Path
):
    out = bench(
        *("bench.engines", "--vllm", f"vLLM={vllm.root_url}", "--model", str(tiny_model_dir)),
        *("--hf", "--prompt", "32", "--generate", "8", "--concurrency", "1,2"),
    )
    for row in ("vLLM, cold", "vLLM, prefix cache warm", "transformers generate()"):
        found = re.search(rf"^{re.escape(row)} +(\d+) \(", out, re.M)
        assert found and int(found.group(1)) > 0, out
    assert "the guide (2 x A100, 40B" in out


def test_recall_positions_skip_prose_and_rows_split_source_from_tests():
    """bench/context_recall.py: a line a multi-line comment or string continues onto is prose
    (never a position), and files are told apart as source or test by the languages' habits."""
    from bench.context_recall import is_test_path, lines_inside_literals

    rust = (
        b"//! Crate docs\n/*\n  provide Error values\n*/\n"
        b'fn f() -> Error {\n    let s = r"a\nb";\n}\n'
    )
    assert lines_inside_literals(rust, "rust") == {2, 3, 6}
    python = b'def f():\n    """Doc.\n\n    Returns a Client.\n    """\n    return Client()\n'
    assert lines_inside_literals(python, "python") == {2, 3, 4}
    tests = ["tests/test_app.py", "pkg/x_test.go", "src/a.spec.ts", "src/test/java/ATest.java"]
    sources = ["src/app.py", "pkg/x.go", "src/a.ts", "src/main/java/A.java", "lib/testing.py"]
    assert all(is_test_path(p) for p in tests)
    assert not any(is_test_path(p) for p in sources)
    reexport = b"export {\n  A,\n  type B,\n} from './x';\nconst c = A;\n"
    assert lines_inside_literals(reexport, "typescript") == {0, 1, 2, 3}


def test_recall_counts_no_name_the_line_binds_or_a_standard_method():
    """bench/context_recall.py's sampler: a parameter, a keyword argument, a lambda's or an
    arrow function's parameters are bound by the line, not another file's declarations; a
    str/list method after a dot is the language's own."""
    from bench.context_recall import (
        BUILTINS,
        QUALIFIED_MEMBERS,
        STANDARD_MEMBERS,
        attribute_only,
        bare_only,
        bound_names,
        code_only,
        macro_only,
        parameters,
        qualified_only,
        same_family,
    )

    python = ["def f(", "    flush: bool = False,", "    title='Align',", "):", "g(lambda a, b: a)"]
    bound = bound_names(python, "python")
    assert {"flush", "title", "a", "b"} <= set(bound)
    assert parameters(".superRefine(async (val, ctx) => {", "typescript") == ["val", "ctx"] * 2
    assert parameters("  get(_obj, name) {", "typescript") == ["_obj", "name"]
    assert parameters("} catch (cause) {", "typescript") == ["cause"]
    assert parameters("if (ready(x)) {", "typescript") == []
    assert "replace" in STANDARD_MEMBERS["python"] and "len" in STANDARD_MEMBERS["rust"]
    assert "append" in STANDARD_MEMBERS["java"]  # `sb.append("A")`: a StringBuilder's
    assert attribute_only('v = version.replace(".", "-")', "replace")
    assert attribute_only('sb.append("A");', "append")
    # A TypeScript regex literal is no use of a name; a division is.
    regex = code_only("expect(() => load(p)).toThrow(/not valid [/]JSON/);", "typescript")
    assert "load" in regex and "valid" not in regex and "JSON" not in regex
    assert "total" in code_only("const share = count / total / 2;", "typescript")
    assert not attribute_only("replace(text)", "replace")
    # `new Request(url)` in TypeScript: a namespace's member `Request` is not what it names.
    assert bare_only("const request = new Request(url, init);", "Request")
    assert bare_only("isMatch: (opts: Request) => boolean;", "Request")
    assert not bare_only("const r: JSONRPC2.Request = x; Request(y)", "Request")
    assert not bare_only("crate::Item::Table(values)", "Table")
    assert "typescript" in QUALIFIED_MEMBERS and "java" not in QUALIFIED_MEMBERS
    # A Rust macro invocation is no use of a function the repository declares by that name.
    assert macro_only("parse!(newline() -> char, {", "parse")
    assert not macro_only("parse!(x); parse(y)", "parse") and not macro_only("parse != 1", "parse")
    outside = frozenset({"fmt", "errors"})  # a Go or Rust file's imports of std packages
    assert qualified_only("f: &mut fmt::Formatter<'_>", "Formatter", outside)
    assert qualified_only("e := errors.New(x)", "New", outside)
    assert not qualified_only("e := errors.New(New(x))", "New", outside)  # the second is ours
    assert qualified_only("let t = std::mem::replace(t, T::new());", "replace", frozenset({"std"}))
    assert qualified_only("os.path.join(a, b)", "join", frozenset({"os"}))
    assert not qualified_only("crate::de::ItemDeserializer::new(v)", "ItemDeserializer", outside)
    rust = ["pub mod script_extension;", "fn flush(&mut self) -> io::Result<()> {"]
    assert {"script_extension", "flush"} <= set(bound_names(rust, "rust"))
    # A path's parts are not bound by their `::` (a Rust path, a C++ namespace).
    assert not {"Span", "serde", "std"} & set(
        bound_names(["let s = Span::splat(p);", "D: serde::de::X<'de>, std::vector<int> v;"])
    )
    assert "f64" in BUILTINS["rust"] and "append" in BUILTINS["go"]
    # A name counts only where the line's language can reach it: jpype's Java calls no C++.
    assert same_family("native/common/include/jp_class.h", "src/greenlet/greenlet.cpp")
    assert same_family("src/index.js", "src/types.ts")
    assert not same_family("native/common/include/jp_class.h", "native/java/org/A.java")
    assert not same_family("jpype/_core.py", "native/java/org/A.java")
    # A Rust raw string's inner quotes do not end it: `value` below is text, `parse` code.
    assert code_only('t = r#"a = { s = "value" }"#; parse(t)', "rust") == "t =  ; parse(t)"
    assert code_only("let c = chars.next(); r(x)", "rust") == "let c = chars.next(); r(x)"
