"""Context by declaration: what the file uses, found through imports and re-exports, within a
budget that caps every prompt."""

from __future__ import annotations

import asyncio
from pathlib import Path

import watchfiles

from engine.completion.context import ContextBuilder, TokenCounts
from engine.completion.templating.templates import template_named
from engine.completion.types import CompletionRequest
from engine.definitions import RepositoryContext
from engine.definitions.needed import needed_definitions
from engine.place import Place
from engine.repository.headers import extract_header
from engine.repository.imports import ImportResolver
from engine.repository.index import RepositoryIndex
from engine.repository.usage import name_usage
from engine.workspace import Workspace

QWEN = template_named("qwen")


def exact(text: str) -> int:
    """A stand-in tokenizer: a token per word or punctuation run, never fewer than chars/4."""
    return max(len(text.split()), len(text) // 4) + 1


def test_typescript_nodenext_js_specifiers_resolve_to_the_ts_source():
    resolver = ImportResolver(["src/errors/TimeoutError.ts", "src/core/client.ts", "src/util.tsx"])
    assert (
        resolver.module_path("src/core/client.ts", "typescript", "../errors/TimeoutError.js")
        == "src/errors/TimeoutError.ts"
    )
    assert resolver.module_path("src/core/client.ts", "typescript", "../util.jsx") == "src/util.tsx"
    assert resolver.module_path("src/core/x.ts", "typescript", "@/errors/TimeoutError") == (
        "src/errors/TimeoutError.ts"
    )


def test_standard_library_imports_never_resolve_to_repository_files():
    paths = ["pkg/__init__.py", "pkg/types.py", "pkg/abc.py", "pkg/json.py", "pkg/main.py"]
    resolver = ImportResolver(paths)
    for module in ("types", "abc", "json", "logging"):
        assert resolver.module_path("pkg/main.py", "python", module) is None, module
    assert resolver.module_path("pkg/main.py", "python", ".types") == "pkg/types.py"
    assert resolver.module_path("pkg/main.py", "python", "pkg.abc") == "pkg/abc.py"


def test_src_layouts_and_scripts_resolve_as_python_would():
    paths = ["src/lib/__init__.py", "src/lib/core.py", "scripts/run.py", "scripts/helpers.py"]
    resolver = ImportResolver(paths)
    assert resolver.module_path("tests/test_x.py", "python", "lib.core") == "src/lib/core.py"
    assert resolver.module_path("scripts/run.py", "python", "helpers") == "scripts/helpers.py"


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_declarations_are_followed_through_reexports_and_star_exports(tmp_path: Path):
    write(
        tmp_path,
        {
            "pkg/__init__.py": "from .core import Client as Client\nfrom .extra import *\n",
            "pkg/core.py": "class Client:\n    def fetch(self, url: str) -> 'Reply': ...\n",
            "pkg/extra.py": "def helper(n: int) -> int:\n    return n\n",
            "web/index.ts": (
                "export * from './client.js';\nexport { Reply as Answer } from './reply';\n"
            ),
            "web/client.ts": "export class Client {\n  get(url: string): Reply { return x }\n}\n",
            "web/reply.ts": "export interface Reply { status: number }\n",
        },
    )
    index = RepositoryIndex(tmp_path)
    index.build_blocking()
    assert [x.path for x in index.follow("pkg/__init__.py", "Client")] == ["pkg/core.py"]
    assert [x.path for x in index.follow("pkg/__init__.py", "helper")] == ["pkg/extra.py"]
    assert [x.path for x in index.follow("web/index.ts", "Client")] == ["web/client.ts"]
    found = index.follow("web/index.ts", "Answer")
    assert [x.path for x in found] == ["web/reply.ts"] and found[0].definition.name == "Reply"


async def _written_context(
    root: Path, files: dict[str, str], name: str, text: str, cursor: int | None = None
):
    """The repository ``files`` with ``text`` as ``name``, written; the context at ``cursor``
    (the end of ``text`` unless given) in ``name``."""
    files[name] = text
    write(root, files)
    return await _context(root, name, text, len(text) if cursor is None else cursor)


async def _context(
    root: Path, name: str, text: str, cursor: int, budget: int = 2048, language: str = "python"
):
    workspace = Workspace(None)
    workspace.add_folder(root, watch=False)
    await workspace.ready()
    uri = (root / name).as_uri()
    workspace.documents.opened(uri, name, language, text)
    builder = ContextBuilder(RepositoryContext(workspace), TokenCounts(None, local=exact))
    context = builder.build(
        CompletionRequest(Place(uri, path=root / name), language, text, cursor), budget
    )
    await workspace.aclose()
    assert context is not None
    return context


async def test_the_prompt_holds_what_the_file_uses_even_when_imported_late(tmp_path: Path):
    # Twelve imported modules, each with a long header: the file uses only the last one's.
    files = {
        f"app/m{i}.py": "".join(f"def f{i}_{j}(x): ...\n" for j in range(60)) for i in range(12)
    }
    files["app/__init__.py"] = ""
    files["app/target.py"] = "class Needle:\n    def sharpen(self, edge: int) -> float: ...\n"
    imports = "".join(f"from app import m{i}\n" for i in range(12))
    text = (
        imports
        + "import json\ntry:\n    from app.target import Needle\nexcept ImportError:\n    pass\n\n"
    )
    text += "def use():\n    n = Needle()\n    n."
    context = await _written_context(tmp_path, files, "app/main.py", text)
    prompt = QWEN.render(context)
    assert "class Needle:" in prompt and "def sharpen(self, edge: int) -> float" in prompt
    assert exact(prompt) <= 2048


def test_uses_are_ordered_by_first_use_with_imports_counted_from_their_use():
    text = "from a import Late, Early\nimport b\n\nx = Early()\ny = b.thing()\nz = Late()\n"
    usage = name_usage(text, _bindings(text))
    uses = list(usage.uses)
    assert uses.index("Early") < uses.index("b.thing") < uses.index("Late")


async def test_a_name_imported_and_not_used_yet_comes_right_after_the_cursors_lines(
    tmp_path: Path,
):
    """rxjs's `isEmpty.ts` imports `operate` and its one use is the line being written: with
    forty declarations the file uses further up, the imported name's came last and did not fit.
    It follows what the cursor's lines use, before the rest of the file's names."""
    files = {
        f"lib/m{i}.ts": f"export function helper{i}(x: number): number {{ … }}\n" for i in range(40)
    }
    files["lib/lift.ts"] = "export function operate<T>(init: (source: T) => void): T { … }\n"
    imports = "".join(f"import {{ helper{i} }} from './lib/m{i}';\n" for i in range(40))
    uses = "".join(f"helper{i}({i});\n" for i in range(40))
    text = imports + "import { operate } from './lib/lift';\n" + uses + "\n" * 70
    text += "export function isEmpty() {\n  return "
    usage = name_usage(text, extract_header("x.ts", "typescript", text.encode()).bindings)
    assert usage.unused_imports == ("operate",)
    files["main.ts"] = text
    write(tmp_path, files)
    context = await _context(tmp_path, "main.ts", text, len(text), language="typescript")
    paths = [e.path for e in context.repository]
    assert paths.index("lib/lift.ts") < paths.index("lib/m0.ts")


def _bindings(text: str):
    from engine.repository.headers import extract_header

    return extract_header("x.py", "python", text.encode()).bindings


async def test_a_jump_far_into_a_file_stays_within_budget_before_counts_arrive(tmp_path: Path):
    lines = [
        f"value_{i} = compute_something({i}, 'a fairly long argument string')" for i in range(3000)
    ]
    text = "\n".join(lines) + "\n"
    (tmp_path / "big.py").write_text(text)
    pending: list[asyncio.Future[int]] = []
    answering = False

    async def slow(text: str) -> int:  # the tokenizer answers only when the test says so
        if answering:
            return len(text)
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        pending.append(future)
        return await future

    workspace = Workspace(None)
    workspace.add_folder(tmp_path, watch=False)
    await workspace.ready()
    uri = (tmp_path / "big.py").as_uri()
    workspace.documents.opened(uri, "big.py", "python", text)
    builder = ContextBuilder(RepositoryContext(workspace), TokenCounts(slow))
    for line in (10, 2600, 40):
        cursor = sum(len(x) + 1 for x in lines[:line])
        context = builder.build(
            CompletionRequest(Place(uri, path=tmp_path / "big.py"), "python", text, cursor),
            2048,
        )
        assert context is not None
        # Whatever the tokenizer says later, this prompt is within budget by any count of
        # at least a token per two characters.
        assert len(QWEN.render(context)) // 2 <= 2048 * 1.05, line
    answering = True  # counts still queued answer at once: no task is left pending
    for future in pending:
        future.cancel()
    await builder.counts.settle()
    await workspace.aclose()


async def test_a_huge_one_line_document_gives_a_prompt_within_budget(tmp_path: Path):
    text = "x = '" + "a" * 5_000_000 + "'"
    context = await _context(tmp_path, "one.py", text, len(text) // 2, budget=1024)
    assert len(QWEN.render(context)) < 1024 * 2


def test_a_cold_build_parses_what_open_documents_import_first(tmp_path: Path):
    files = {f"pkg/m{i:03}.py": f"def f{i}(): ...\n" for i in range(200)}
    files["pkg/__init__.py"] = ""
    write(tmp_path, files)
    from engine.repository.parsing import InProcessParser, header_of

    order: list[str] = []

    def recording(relative: str, data: bytes):
        order.append(relative)
        return header_of(relative, data)

    index = RepositoryIndex(tmp_path, parser=InProcessParser(recording))
    index.build_blocking(lambda resolver: [resolver.module_path("main.py", "python", "pkg.m199")])
    assert order[0] == "pkg/m199.py" and len(order) == 201
    assert "pkg/m199.py" in index


def _long_flask(last_members: str) -> dict[str, str]:
    """A package whose class has thirty helpers nobody calls, then ``last_members``."""
    members = "".join(f"    def helper_{j}(self, value: int) -> int: ...\n" for j in range(30))
    head = "class Flask:\n    '''The application.'''\n"
    return {"web/__init__.py": "", "web/app.py": head + members + last_members}


async def test_a_used_method_far_down_a_class_comes_with_only_the_classs_head(tmp_path: Path):
    """`app = Flask(...)` then `app.route(...)` (issue 29): the method, far down a long class,
    is in the prompt under its class line; with it shown on its own, the class itself shows
    only its first lines instead of thirty members nobody uses."""
    files = _long_flask("    def route(self, rule: str, methods: list[str]) -> None: ...\n")
    # Three other classes declare a route too: by name alone, `route` would be anyone's.
    for other in ("Router", "Blueprint", "Site"):
        files[f"web/{other.lower()}.py"] = (
            f"class {other}:\n    def route(self, path: str) -> '{other}': ...\n"
        )
    text = "from web.app import Flask\n\napp = Flask('demo')\napp.route('/x', ['GET'])\n"
    context = await _written_context(tmp_path, files, "main.py", text)
    prompt = QWEN.render(context)
    assert "def route(self, rule: str, methods: list[str]) -> None" in prompt
    assert "class Flask:" in prompt
    head = next(e.text for e in context.repository if e.text.startswith("class Flask:"))
    # The head (a Python class's first four lines), not 30 members.
    assert "helper_1(" in head and "helper_2(" not in head and len(head.splitlines()) == 5
    member = next(e.text for e in context.repository if "def route(self, rule" in e.text)
    assert member.startswith("class Flask:")  # shown under its class line


async def test_a_method_inherited_from_a_base_class_in_another_file_is_found(tmp_path: Path):
    """`app.register_blueprint(...)` on a Flask whose `register_blueprint` is declared by the
    class it extends, imported from another module (issue 29): the base's method is in the
    prompt, under the base's class line; a method nobody declares on the chain is not guessed."""
    files = {
        "web/__init__.py": "",
        "web/scaffold.py": ("class Scaffold:\n    def route(self, rule: str) -> None: ...\n"),
        "web/sansio.py": (
            "from web.scaffold import Scaffold\n\n"
            "class App(Scaffold):\n"
            "    def register_blueprint(self, blueprint: 'Blueprint', prefix: str) -> None: ...\n"
        ),
        "web/app.py": "from web import sansio\n\nclass Flask(sansio.App):\n    debug = False\n",
    }
    # Other classes declare the same names: by name alone they would be anyone's.
    for other in ("Router", "Site", "Mux"):
        files[f"web/{other.lower()}.py"] = (
            f"class {other}:\n    def register_blueprint(self, b) -> None: ...\n"
            "    def route(self, path) -> None: ...\n"
        )
    text = (
        "from web.app import Flask\n\napp = Flask('demo')\n"
        "app.register_blueprint(bp, '/x')\n@app.route('/')\ndef index(): ...\n"
    )
    context = await _written_context(tmp_path, files, "main.py", text)
    entries = [e.text for e in context.repository]
    inherited = next(e for e in entries if "def register_blueprint(self, blueprint" in e)
    assert inherited.startswith("class App(Scaffold):")
    assert any(e.startswith("class Scaffold:") and "def route(self, rule" in e for e in entries)
    assert not any("def register_blueprint(self, b)" in e for e in entries)


def test_class_bases_are_read_from_the_declaration_head():
    from engine.repository.symbols import class_bases

    assert class_bases("@dataclass\nclass A(b.Base, Generic[T], metaclass=Meta):") == (
        "b.Base",
        "Generic",
    )
    assert class_bases(
        "export abstract class Name<T extends X> extends Base<Map<K, V>> implements I, J {"
    ) == ("Base", "I", "J")
    assert class_bases("export interface Q<T> extends A, ns.B<C> {") == ("A", "ns.B")
    assert class_bases("class X : public ns::Base, private Other {") == ("ns.Base", "Other")
    assert class_bases("pub struct Wrapper(Inner);") == ()  # a Rust tuple struct
    assert class_bases("class Plain:") == ()
    assert class_bases("class " + "(" * 5000) == ()  # unbalanced: bounded, no error


async def test_a_package_imported_whole_shows_its_exports_most_used_first(tmp_path: Path):
    """`import cli` and a line that will write `cli.` (issue 29): the package's `__init__`
    declares nothing, it re-exports; the prompt lists what it offers, one signature line each,
    the names most files of the repository mention first, decorators left out."""
    files = {
        "cli/__init__.py": (
            "from .core import Command as Command\n"
            "from .utils import echo as echo\n"
            "from .utils import rarely_used as rarely_used\n"
            "from .utils import _private as _private\n"
        ),
        "cli/core.py": "class Command:\n    def invoke(self) -> None: ...\n",
        "cli/utils.py": (
            "import typing as t\n\n"
            "@t.overload\ndef echo(message: str, err: bool = False) -> None: ...\n"
            "def rarely_used(x: int) -> int: ...\n"
            "def _private() -> None: ...\n"
        ),
    }
    # Five scripts call echo, one names Command: echo is the more used.
    for number in range(5):
        files[f"scripts/s{number}.py"] = "import cli\n\ncli.echo('hi')\n"
    files["scripts/c.py"] = "import cli\n\nclass Mine(cli.Command): ...\n"
    text = "import cli\n\n\ndef main() -> None:\n    \n"
    context = await _written_context(tmp_path, files, "main.py", text, len(text) - 1)
    exports = next(e.text for e in context.repository if e.path == "cli/__init__.py")
    lines = exports.splitlines()
    assert lines[0] == "def echo(message: str, err: bool = False) -> None: ..."
    assert lines.index("class Command:") < lines.index("def rarely_used(x: int) -> int: ...")
    assert not any("_private" in line or line.startswith("@") for line in lines)


async def test_a_files_summary_lists_its_most_used_declarations_first(tmp_path: Path):
    """A file's summary after the declarations the current file uses (issue 29): its own public
    declarations, one signature line each, those most files mention first. `popular`, declared
    last of sixty, leads; a name it imports is not its own and is left out, as are private ones."""
    helpers = (
        "from shared import Widely\n\n"
        + "".join(
            f"def helper_{j}(first_argument: int, second_argument: str) -> None:\n"
            f'    """Helper {j}."""\n'
            for j in range(60)
        )
        + "def _private() -> None: ...\ndef popular(x: int) -> int: ...\n"
    )
    files = {"shared.py": "class Widely: ...\n", "util.py": helpers}
    for number in range(5):
        files[f"s{number}.py"] = (
            "from util import popular\nfrom shared import Widely\npopular(1)\nWidely()\n"
        )
    text = "from util import helper_0\n\nhelper_0(1, 'a')\n"
    context = await _written_context(tmp_path, files, "main.py", text)
    summary = next(e.text for e in context.repository if "def popular" in e.text)
    lines = summary.splitlines()
    assert lines[0] == "def popular(x: int) -> int: ..."
    assert lines[1:3] == [
        "def helper_0(first_argument: int, second_argument: str) -> None:",
        "def helper_1(first_argument: int, second_argument: str) -> None:",
    ]
    assert not any("Widely" in line or "_private" in line or "Helper" in line for line in lines)


def test_an_overloaded_python_function_is_shown_once(tmp_path: Path):
    """click's `prompt`: two `@t.overload` stubs and the implementation, each shown in full,
    with the type variable their returns name: a tenth of the tier for one name. One of them
    is shown (the first); a TypeScript overload list stays whole, its signatures naming
    different types."""
    files = {
        "termui.py": (
            "import typing as t\n\nV = t.TypeVar('V')\n\n"
            "class Command:\n"
            "    @t.overload\n    def main(self, code: int) -> int: ...\n"
            "    @t.overload\n    def main(self, code: str) -> str: ...\n"
            "    def main(self, code: t.Any) -> t.Any: ...\n"
        ),
        "merge.ts": (
            "export function merge(a: A): Observable<A>;\n"
            "export function merge(a: A, b: Scheduler): Observable<A>;\n"
            "export function merge(...args: any[]): any { return args; }\n"
        ),
    }
    files["main.py"] = "def run(command):\n    command.main(1)\n"
    files["main.ts"] = "import { merge } from './merge';\nmerge(a, s);\n"
    write(tmp_path, files)
    index = RepositoryIndex(tmp_path)
    index.build_blocking()
    shown = {}
    for name in ("main.py", "main.ts"):
        header = index.header(name)
        assert header is not None
        usage = name_usage(files[name], header.bindings, header.language)
        found = needed_definitions(index, name, header, usage)
        shown[name] = [m for m in found if m.definition.name in ("main", "merge")]
    assert [m.definition.text.strip() for m in shown["main.py"]] == [
        "def main(self, code: int) -> int: ..."
    ]
    assert len(shown["main.ts"]) == 2  # the follow step's two places, both overloads


async def test_a_files_summary_lists_its_classs_most_used_members_under_it(tmp_path: Path):
    """A Java file's one class is all its summary had to show (`public class Logger {`), though
    the next line calls its methods (`Logger.debug(...)`): its members that other files mention
    follow its line, the most mentioned first, listed in the file's order; a member no other
    file mentions is left out."""
    methods = "".join(
        f"    public static void level{j}(String message) {{ log(message); }}\n" for j in range(30)
    )
    logger = (
        "package org.demo;\n\npublic class Logger {\n"
        '    private static final String TAG = "demo";\n'
        f"{methods}"
        "    public static void debug(String message) { log(message); }\n"
        "    public static void unused(String message) { log(message); }\n"
        "    private static void log(String message) {}\n}\n"
    )
    files = {"src/org/demo/Logger.java": logger}
    for number in range(4):
        files[f"src/org/demo/Uses{number}.java"] = (
            f"package org.demo;\n\npublic class Uses{number} {{\n"
            f'    void run() {{ Logger.debug("x"); Logger.level{number}("y"); }}\n}}\n'
        )
    text = "package org.demo;\n\npublic class Child {\n    void run() {\n        "
    files["src/org/demo/Child.java"] = text
    write(tmp_path, files)
    context = await _context(tmp_path, "src/org/demo/Child.java", text, len(text), language="java")
    summary = next(e.text for e in context.repository if e.path == "src/org/demo/Logger.java")
    lines = summary.splitlines()
    assert lines[0] == "public class Logger {"
    assert "    public static void level0(String message) { … }" in lines
    assert lines[-1] == "    public static void debug(String message) { … }"  # the file's order
    assert len(lines) == 1 + 5  # level0-3 and debug: one other file mentions each of the rest
    assert not any("unused" in line or "log(" in line or "TAG" in line for line in lines[1:])


async def test_a_go_or_java_package_shows_its_other_files_though_no_line_names_them(
    tmp_path: Path,
):
    """`public class Child ` about to write `extends Base` (issue 29): a Java or Go package's
    files use each other's names without an import, so the package's other files are in the
    tier though the file names none of them yet; another package's are not, and a Go
    package's _test.go files only for its tests (Go builds them only into those)."""
    java = {
        "src/org/demo/Base.java": (
            "package org.demo;\n\npublic abstract class Base {\n"
            "    public abstract void run(int times);\n}\n"
        ),
        "src/org/other/Elsewhere.java": "package org.other;\n\npublic class Elsewhere {}\n",
    }
    for number in range(3):
        java[f"src/org/demo/Uses{number}.java"] = (
            f"package org.demo;\n\npublic class Uses{number} extends Base {{\n"
            "    public void run(int times) {}\n}\n"
        )
    root = tmp_path / "java"
    text = "package org.demo;\n\npublic class Child "
    java["src/org/demo/Child.java"] = text
    write(root, java)
    context = await _context(root, "src/org/demo/Child.java", text, len(text), language="java")
    paths = {entry.path for entry in context.repository}
    assert "src/org/demo/Base.java" in paths and "src/org/other/Elsewhere.java" not in paths
    assert any("public abstract class Base" in entry.text for entry in context.repository)

    go = {
        "go.mod": "module example.com/demo\n",
        "util.go": "package demo\n\nfunc Popular(times int) error { return nil }\n",
        "helpers_test.go": "package demo\n\nfunc assertNoErr(err error) {}\n",
    }
    root = tmp_path / "go"
    source = "package demo\n\nfunc main() {\n\t"
    test_source = "package demo\n\nfunc TestMain() {\n\t"
    write(root, {**go, "main.go": source, "main_test.go": test_source})
    context = await _context(root, "main.go", source, len(source), language="go")
    paths = {entry.path for entry in context.repository}
    assert "util.go" in paths and "helpers_test.go" not in paths
    context = await _context(root, "main_test.go", test_source, len(test_source), language="go")
    paths = {entry.path for entry in context.repository}
    assert {"util.go", "helpers_test.go"} <= paths


async def test_a_package_file_that_declares_the_helpers_comes_before_its_lookalikes(
    tmp_path: Path,
):
    """urfave-cli's flag_string.go declares `Apply`, `String` and `GetName` as each flag_*.go
    does, and calls flag.go's helpers: the file declaring the helpers it uses (and the one the
    next line may call) is summarized before the other implementations of the same methods."""
    methods = "".join(
        f"func (f *{{kind}}Flag) {name}() string {{{{ return f.Name }}}}\n"
        for name in ("Apply", "String", "GetName", "IsSet")
    )
    files = {
        "go.mod": "module example.com/demo\n",
        "flag.go": (
            "package demo\n\nfunc lookupFlag(name string) string { return name }\n\n"
            "func eachName(longName string, fn func(string)) {}\n"
        ),
    }
    for kind in ("Int", "Bool", "Float", "Duration"):
        body = methods.format(kind=kind)
        files[f"flag_{kind.lower()}.go"] = f"package demo\n\ntype {kind}Flag struct {{}}\n\n{body}"
    source = "package demo\n\ntype StringFlag struct{}\n\n" + methods.format(kind="String")
    source += "\nfunc (f *StringFlag) Lookup() string {\n\tv := lookupFlag(f.Name)\n\t"
    write(tmp_path, {**files, "flag_string.go": source})
    context = await _context(tmp_path, "flag_string.go", source, len(source), language="go")
    paths = [entry.path for entry in context.repository]
    helpers = next(i for i, e in enumerate(context.repository) if "func eachName(" in e.text)
    assert helpers < paths.index("flag_int.go"), paths


async def test_a_folders_files_are_siblings_of_each_other_whichever_asked_first(tmp_path: Path):
    """The folder's file list is memoized per folder: the file that asked first must still be
    a sibling of the others (it once was left out of the memo, so of every sibling list)."""
    files = {
        "tools/first.py": "def shared_helper(count: int) -> int: ...\n",
        "tools/second.py": "def other(x):\n    return shared_helper(x)\n",
    }
    # Declared in other folders too: by name alone, `shared_helper` would be anyone's.
    for other in ("a", "b", "c"):
        files[f"lib/{other}.py"] = "def shared_helper() -> None: ...\n"
    write(tmp_path, files)
    workspace = Workspace(None)
    workspace.add_folder(tmp_path, watch=False)
    await workspace.ready()
    builder = ContextBuilder(RepositoryContext(workspace), TokenCounts(None, local=exact))
    contexts = []
    for name in ("tools/first.py", "tools/second.py"):
        uri = (tmp_path / name).as_uri()
        text = files[name]
        workspace.documents.opened(uri, name, "python", text)
        request = CompletionRequest(Place(uri, path=tmp_path / name), "python", text, len(text))
        contexts.append(builder.build(request, 2048))
        workspace.documents.closed(uri)  # not an open file of the next one's ranking
    await workspace.aclose()
    second = contexts[1]
    assert second is not None
    assert any("def shared_helper(count: int)" in e.text for e in second.repository)


def test_a_files_mentions_are_counted_across_the_repository_and_taken_back(tmp_path: Path):
    write(tmp_path, {"a.py": "import b\nb.echo()\n", "b.py": "def echo(): ...\n"})
    index = RepositoryIndex(tmp_path, tmp_path / "cache")
    index.build_blocking()
    assert index.mentioned("echo") == 2
    (tmp_path / "a.py").write_text("import b\n")
    index.apply_changes([(watchfiles.Change.modified, str(tmp_path / "a.py"))])
    assert index.mentioned("echo") == 1
    (tmp_path / "b.py").unlink()
    index.apply_changes([(watchfiles.Change.deleted, str(tmp_path / "b.py"))])
    assert index.mentioned("echo") == 0
    index.close()


async def test_a_pytest_fixture_comes_from_the_nearest_conftest(tmp_path: Path):
    """`def test_x(runner):` names a fixture that no import brings (issue 29): pytest finds it in
    the conftest.py of the test's folder or a parent; the nearest one wins."""
    files = {
        "tests/conftest.py": (
            "import pytest\n\n@pytest.fixture\ndef runner(request) -> 'Runner': ...\n"
            "@pytest.fixture\ndef app(tmp_path) -> 'App': ...\n"
        ),
        "tests/web/conftest.py": "import pytest\n\n@pytest.fixture\ndef app() -> 'WebApp': ...\n",
        # Declared elsewhere too: by name alone, neither would be found.
        "src/one.py": "def runner(): ...\ndef app(): ...\n",
        "src/two.py": "def runner(): ...\ndef app(): ...\n",
        "src/three.py": "def runner(): ...\ndef app(): ...\n",
    }
    text = "def test_view(app, runner):\n    result = runner.invoke(app)\n    \n"
    name = "tests/web/test_views.py"
    context = await _written_context(tmp_path, files, name, text, len(text) - 1)
    prompt = QWEN.render(context)
    assert "def runner(request) -> 'Runner'" in prompt
    nearest = prompt.find("def app() -> 'WebApp'")
    # The parent's `app` only in its file's summary, after the declarations the test uses.
    assert -1 < nearest < prompt.find("def app(tmp_path) -> 'App'")


async def test_a_fixture_without_an_annotation_brings_the_class_it_returns(tmp_path: Path):
    """flask's `app` fixture: `app = Flask(...)` ... `return app`, no annotation (issue 29).
    What it returns or yields is read from its body, so a test that calls `app.test_client()`
    gets Flask's member, which three classes declare (by name alone, no one's)."""
    files = _long_flask("    def test_client(self, use_cookies: bool = True) -> None: ...\n")
    for other in ("Router", "Blueprint", "Site"):
        files[f"web/{other.lower()}.py"] = f"class {other}:\n    def test_client(self): ...\n"
    files["tests/conftest.py"] = (
        "import pytest\nfrom web.app import Flask\n\n@pytest.fixture\ndef app():\n"
        "    app = Flask('test')\n    app.testing = True\n    yield app\n"
    )
    text = "def test_index(app):\n    app.test_client().get('/')\n    \n"
    context = await _written_context(tmp_path, files, "tests/test_index.py", text, len(text) - 1)
    prompt = QWEN.render(context)
    assert "def test_client(self, use_cookies: bool = True) -> None" in prompt
    assert "def test_client(self): ..." not in prompt
    # Asked for and no member called yet: the test holds a Flask, which lists the members
    # the repository mentions most, as a held instance's class does.
    files["tests/test_other.py"] = "def test_other(app):\n    app.test_client()\n"
    text = "def test_empty(app):\n    \n"
    context = await _written_context(tmp_path, files, "tests/test_empty.py", text, len(text) - 1)
    head = next(e.text for e in context.repository if e.text.startswith("class Flask:"))
    assert "    def test_client(self, use_cookies: bool = True) -> None: ..." in head
    assert "helper_29" not in head


async def test_a_member_shown_within_its_class_is_not_shown_again(tmp_path: Path):
    """A short class and one of its methods, both used: the method's lines are in the class's
    entry already, and a second entry for it would spend the tier's budget twice."""
    files = {
        "shapes/__init__.py": "",
        "shapes/box.py": (
            "class Box:\n"
            "    def area(self) -> float: ...\n"
            "    def grow(self, by: float) -> 'Box': ...\n"
        ),
    }
    text = "from shapes.box import Box\n\nb = Box()\nb.area()\nb.grow(2)\n"
    context = await _written_context(tmp_path, files, "main.py", text)
    entries = [e.text for e in context.repository]
    assert sum("def area(self) -> float" in e for e in entries) == 1
    assert sum("def grow(self, by: float)" in e for e in entries) == 1
    assert any(e.startswith("class Box:") and "def grow(" in e for e in entries)


async def test_a_used_class_lists_its_most_used_other_members(tmp_path: Path):
    """`app.route(...)` used, or only `app = Flask(...)` held (issue 29): the next line may call
    another of Flask's methods. Below its head, the class lists the members the repository
    mentions most, one signature line each (here `test_client`, which two other files call),
    not the thirty helpers nobody calls; a class only named (a base) shows its first lines. A
    Rust type's impl blocks are not listed under it (they took the budget of the definitions
    the next line needed)."""
    files = _long_flask(
        "    def route(self, rule: str) -> None: ...\n"
        "    def test_client(\n        self, use_cookies: bool = True\n    ) -> 'Client': ...\n"
    )
    files["tests/test_a.py"] = "def test_a(app):\n    app.test_client().get('/')\n"
    files["tests/test_b.py"] = "def test_b(app):\n    app.test_client().post('/')\n"
    calls = "from web.app import Flask\n\napp = Flask('demo')\napp.route('/x')\n"
    # An instance held and no member called yet: the next line will likely call one.
    held = "from web.app import Flask\n\napp = Flask('demo')\n"
    # Named only (a base class): its first lines, no listing.
    named = "from web.app import Flask\n\nclass Mine(Flask):\n    pass\n"
    heads = []
    for text in (calls, held, named):
        context = await _written_context(tmp_path, files, "main.py", text)
        heads.append(next(e.text for e in context.repository if e.text.startswith("class Flask:")))
    for head in heads[:2]:
        assert "    def test_client( self, use_cookies: bool = True ) -> 'Client': ..." in head
        assert "helper_29" not in head
    assert "helper_0" in heads[2] and "test_client" not in heads[2]

    rust = {
        "Cargo.toml": '[package]\nname = "doc"\n',
        "src/lib.rs": "pub mod item;\n",
        "src/item.rs": (
            "pub enum Item {\n    None,\n    Value(u8),\n}\n"
            "impl Item {\n    pub fn is_value(&self) -> bool { true }\n"
            "    pub fn as_value(&self) -> Option<u8> { None }\n}\n"
            "impl Default for Item {\n    fn default() -> Self { Item::None }\n}\n"
        ),
        "src/main.rs": "use crate::item::Item;\nfn main() {\n    let i = Item::None;\n"
        "    i.as_value();\n}\n",
    }
    root = tmp_path / "crate"
    write(root, rust)
    main = rust["src/main.rs"]
    context = await _context(root, "src/main.rs", main, len(main))
    enum = next(e.text for e in context.repository if e.text.startswith("pub enum Item"))
    assert "is_value" not in enum and "fn default" not in enum
    assert any("pub fn as_value(&self)" in e.text for e in context.repository)

    # A Go type's methods are declared beside it, in any file of its package.
    helpers = "".join(f"func (c *Command) helper{j}() {{}}\n" for j in range(20))
    go = {
        "go.mod": "module example.com/demo\n",
        "command.go": f"package demo\n\ntype Command struct {{\n\tUse string\n}}\n\n{helpers}",
        "flags.go": "package demo\n\nfunc (c *Command) MarkFlagDirname(name string) error {}\n",
        "a_test.go": 'package demo\n\nfunc a(c *Command) { c.MarkFlagDirname("d") }\n',
        "b_test.go": 'package demo\n\nfunc b(c *Command) { c.MarkFlagDirname("e") }\n',
    }
    root = tmp_path / "go"
    text = "package demo\n\nfunc build(c *Command) {\n\t"
    go["build.go"] = text
    write(root, go)
    context = await _context(root, "build.go", text, len(text), language="go")
    kind = next(e.text for e in context.repository if e.text.startswith("type Command struct"))
    assert "func (c *Command) MarkFlagDirname(name string) error { … }" in kind.splitlines()
    assert "helper19" not in kind


async def test_importing_a_submodule_binds_its_package_too(tmp_path: Path):
    """click's tests write `import click.types` and then `click.Group(...)`: Python binds
    `click`, the package, and the next line may name any of its exports."""
    files = {
        "cli/__init__.py": "from cli.core import Group\nfrom cli.types import Path\n",
        "cli/core.py": "class Group:\n    def add(self, name: str) -> None: ...\n",
        "cli/types.py": "class Path:\n    def check(self) -> bool: ...\n",
    }
    text = "import cli.types\n\np = cli.types.Path()\ng = cli."
    context = await _written_context(tmp_path, files, "main.py", text)
    assert any(e.path == "cli/__init__.py" and "class Group:" in e.text for e in context.repository)
    bindings = _bindings("import cli.types\nimport os.path as p\nimport a.b, a.c\n")
    assert [(b.local, b.module) for b in bindings] == [
        ("cli.types", "cli.types"),
        ("cli", "cli"),
        ("p", "os.path"),
        ("a.b", "a.b"),
        ("a", "a"),
        ("a.c", "a.c"),
    ]


async def test_a_submodule_named_through_its_package_is_followed(tmp_path: Path):
    """attrs' tests write `import attrs` and then `attrs.exceptions.FrozenInstanceError`, a
    module attribute of a submodule the package never imports by name (and that module
    re-exports another's names); click's `click.types.FuncParamType` likewise."""
    files = {
        "cli/__init__.py": "from cli.core import Group\n",
        "cli/core.py": "class Group:\n    def add(self, name: str) -> None: ...\n",
        "cli/types.py": "class FuncParamType:\n    def convert(self, value: str) -> int: ...\n",
        "cli/exceptions.py": "from cli._errors import *\n",
        "cli/_errors.py": "class FrozenError(Exception):\n    pass\n",
    }
    text = (
        "import cli\n\nt = cli.types.FuncParamType()\ng = cli.Group()\n"
        "e = cli.exceptions.FrozenError\n"
    )
    context = await _written_context(tmp_path, files, "main.py", text)
    texts = [e.text for e in context.repository]
    assert any(t.startswith("class FuncParamType:") for t in texts)
    assert any(t.startswith("class FrozenError(Exception):") for t in texts)


async def test_a_listing_repeats_no_line_its_class_shows(tmp_path: Path):
    """rich's Console: a held class's head shows its `__init__`, whose one long line is clipped;
    the listing below joined it otherwise and showed it again, in one of its six places. A
    used member whose line the class shows is no entry of its own either (its docstring was
    all the repeat added). An overloaded method and a property's setter are one line each."""
    params = ", ".join(f"option_{i}: int = {i}" for i in range(30))
    members = "".join(f"    def helper_{j}(self) -> int: ...\n" for j in range(30))
    files = {
        "term/__init__.py": "",
        "term/console.py": "from typing import overload\n\n\nclass Console:\n"
        f"    def __init__(\n        self, {params}\n    ) -> None: ...\n"
        "    @overload\n    def size(self, w: int) -> int: ...\n"
        "    @overload\n    def size(self, w: str) -> str: ...\n"
        "    def size(self, w): ...\n"
        '    @property\n    def file(self) -> str:\n        """The file."""\n'
        "    @file.setter\n    def file(self, new: str) -> None: ...\n"
        f"{members}"
        "    def render_str(self, text: str) -> str: ...\n",
    }
    for n in range(3):  # three other files call `__init__`'s class and `render_str`
        files[f"term/use_{n}.py"] = (
            "from term.console import Console\n\n"
            "def f():\n    c = Console()\n    c.render_str('x')\n    c.size(1)\n"
        )
    text = "from term.console import Console\n\nc = Console()\nc.file\n"
    context = await _written_context(tmp_path, files, "main.py", text)
    shown = [e.text for e in context.repository if e.text.startswith("class Console:")]
    lines = "\n".join(shown).splitlines()
    assert sum(line.lstrip().startswith("def __init__(") for line in lines) == 1
    assert sum(line.lstrip().startswith("def size(") for line in lines) == 1
    assert sum(line.lstrip().startswith("def file(") for line in lines) == 1
    assert "    def render_str(self, text: str) -> str: ..." in lines


async def test_a_c_file_sees_what_its_headers_include(tmp_path: Path):
    """python-zstandard's `c-ext/frameparams.c` includes "python-zstandard.h", which includes
    <zstd.h> (`-Izstd`): the next line calls a `ZSTD_` function no line of the file names yet,
    and the compiler sees zstd.h through the header. Its summary is in the prompt, before the
    includes that declare nothing the file uses."""
    files = {
        "c-ext/module.h": "#include <Python.h>\n#include <compat.h>\n#include <zstd.h>\n"
        "typedef struct { int level; } FrameObject;\n",
        "compat/compat.h": "".join(f"int compat_{i}(void);\n" for i in range(40)),
        "zstd/zstd.h": "typedef struct ZSTD_DCtx_s ZSTD_DCtx;\n"
        "size_t ZSTD_getFrameHeader(void *header, const void *src, size_t size);\n"
        "unsigned ZSTD_isError(size_t code);\n",
    }
    wanted = "size_t ZSTD_getFrameHeader(void *header, const void *src, size_t size);"
    # No line names a zstd declaration yet.
    text = '#include "module.h"\n\nint frame(FrameObject *f) {\n    '
    files["c-ext/frame.c"] = text
    write(tmp_path, files)
    context = await _context(tmp_path, "c-ext/frame.c", text, len(text), language="c")
    assert any(e.path == "zstd/zstd.h" and wanted in e.text for e in context.repository)

    # One line does: zstd.h comes before compat.h, which the header includes first.
    text = '#include "module.h"\n\nint frame(FrameObject *f) {\n    ZSTD_DCtx *d;\n    '
    files["c-ext/frame.c"] = text
    write(tmp_path, files)
    context = await _context(tmp_path, "c-ext/frame.c", text, len(text), language="c")
    summaries = [e.path for e in context.repository if "(" in e.text]
    assert summaries.index("zstd/zstd.h") < summaries.index("compat/compat.h")


async def test_a_header_that_includes_nothing_sees_what_its_includers_include(tmp_path: Path):
    """ujson's `test/cctest/gay-fixed.h` writes `Vector<…>` and includes nothing: it is
    compiled within `gay-fixed.cc`, which includes `double-conversion/utils.h` first."""
    files = {
        "lib/utils.h": "template <typename T> class Vector {\n public:\n  int length() const;\n};",
        "lib/other.h": "int unrelated(void);\n",
        "test/gay.cc": '#include "lib/utils.h"\n#include "gay.h"\n',
        "test/main.cc": '#include "lib/other.h"\n',
    }
    text = "struct Precomputed { int decimal_point; };\n\n"
    files["test/gay.h"] = text
    write(tmp_path, files)
    context = await _context(tmp_path, "test/gay.h", text, len(text), language="cpp")
    paths = [e.path for e in context.repository]
    assert "lib/utils.h" in paths and "lib/other.h" not in paths


async def test_a_typescript_namespace_is_a_declaration_with_its_exports_as_members(
    tmp_path: Path,
):
    """zod's `export namespace errorUtil { export type ErrMessage = ... }` (and a `.d.ts`'s
    `declare namespace`): the namespace is declared, its exports are its members, and a file
    that imports it and writes `errorUtil.ErrMessage` gets that member's line."""
    files = {
        "src/errorUtil.ts": (
            "export namespace errorUtil {\n"
            "  export type ErrMessage = string | { message?: string };\n"
            "  export const errToObj = (message?: ErrMessage) => message;\n"
            "}\n"
        ),
        "src/types.d.ts": "export declare namespace objectUtil {\n  export type flat<T> = T;\n}\n",
    }
    header = extract_header("src/types.d.ts", "typescript", files["src/types.d.ts"].encode())
    assert [(d.name, d.container) for d in header.definitions] == [
        ("objectUtil", None),
        ("flat", "objectUtil"),
    ]
    text = (
        'import { errorUtil } from "./errorUtil";\n\n'
        "export function max(message?: errorUtil.ErrMessage) {\n  return message;\n}\n"
    )
    context = await _written_context(tmp_path, files, "src/checks.ts", text)
    prompt = QWEN.render(context)
    assert "export namespace errorUtil {" in prompt
    assert "type ErrMessage = string | { message?: string };" in prompt
