"""Go, Rust and Java resolution (issue 27) on real public sources the project never saw: Debian's
source packages of the cobra Go module and the regex-syntax crate (tests/support/corpus.py).
Go: a package is its folder (every file sees the others' names), `pkg.Name` names the folder the
import path ends in, methods sit beside their type in any file. Rust: `use crate::…`,
`super::`, `self::` and workspace crates by name, `Type::new` as a member of Type, impl blocks
naming a type without counting as more declarations of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.definitions.needed import go_receiver, needed_definitions
from engine.repository.definitions import Located
from engine.repository.headers import parse
from engine.repository.imports import ImportResolver
from engine.repository.index import RepositoryIndex
from engine.repository.parsing import InProcessParser
from engine.repository.symbols import go_package_name, import_bindings
from engine.repository.usage import name_usage
from tests.support.corpus import OTHER_LANGUAGES, project_root


def _indexed(name: str) -> RepositoryIndex:
    """A corpus project, indexed in this process (no parse-time limit: a busy CI machine must
    not change what is indexed)."""
    project = next(p for p in OTHER_LANGUAGES if p.name == name)
    index = RepositoryIndex(project_root(project), parser=InProcessParser())
    index.build_blocking()
    return index


@pytest.fixture(scope="module")
def cobra() -> RepositoryIndex:
    return _indexed("cobra")


@pytest.fixture(scope="module")
def regex_syntax() -> RepositoryIndex:
    return _indexed("regex-syntax")


def _needed(index: RepositoryIndex, relative: str) -> list[Located]:
    header = index.header(relative)
    assert header is not None
    text = (index.root / relative).read_text(encoding="utf-8")
    return needed_definitions(
        index, relative, header, name_usage(text, header.bindings, header.language)
    )


def _names(found: list[Located]) -> set[tuple[str, str]]:
    return {(located.path, located.definition.name) for located in found}


def test_a_go_file_gets_its_imported_package_and_its_own_package(cobra: RepositoryIndex):
    found = _names(_needed(cobra, "doc/man_docs.go"))
    # `cobra.Command`: the module's root package (its import path is go.mod's module line).
    assert ("command.go", "Command") in found
    # Methods the file calls on it, declared beside the type in the root package.
    assert ("command.go", "CommandPath") in found
    # `hasSeeAlso(...)`: another file of the same package, no import needed.
    assert ("doc/util.go", "hasSeeAlso") in found


def test_go_import_paths_name_folders_and_packages():
    resolver = ImportResolver(["cmd/tool/main.go", "pkg/util/strings.go", "pkg/util/x_test.go"])
    assert resolver.go_package("github.com/acme/proj/pkg/util") == "pkg/util"
    assert resolver.go_package("github.com/other/util/v2") is None  # not this repository's
    assert go_package_name("gopkg.in/yaml.v3") == "yaml"
    assert go_package_name("github.com/mattn/go-isatty") == "isatty"
    assert go_package_name("github.com/acme/proj/v2") == "proj"
    assert go_receiver("func (c *Command) Name() string { … }") == "Command"
    assert go_receiver("func (s Set[T]) Has(v T) bool { … }") == "Set"
    assert go_receiver("func Name() string { … }") is None


def test_a_rust_file_gets_its_use_paths_and_type_members(regex_syntax: RepositoryIndex):
    found = _needed(regex_syntax, "src/hir/translate.rs")
    names = _names(found)
    # `use crate::ast::{self, Ast, Span}`: the enum in src/ast/mod.rs, before its impl block.
    ast = [located for located in found if located.definition.name == "Ast"]
    assert ast and ast[0].path == "src/ast/mod.rs" and not ast[0].is_impl_block
    # `Hir::literal(...)`: a member of Hir from its impl block in src/hir/mod.rs.
    assert ("src/hir/mod.rs", "literal") in names
    assert ("src/hir/mod.rs", "Hir") in names


def test_rust_use_trees_and_module_paths():
    source = b"use crate::a::{B, c::D as E};\npub use super::x::Y;\nuse std::io::*;\n"
    bindings = import_bindings(parse("rust", source).root_node, "rust", source)
    assert [(b.local, b.module, b.imported) for b in bindings] == [
        ("B", "crate::a", "B"),
        ("E", "crate::a::c", "D"),
        ("Y", "super::x", "Y"),
        ("*", "std::io", "*"),
    ]
    resolver = ImportResolver(
        [
            "crates/foo-bar/src/lib.rs",
            "crates/foo-bar/src/a.rs",
            "crates/foo-bar/src/a/b.rs",
            "crates/foo-bar/src/c/mod.rs",
            "crates/baz/src/main.rs",
        ]
    )
    importer = "crates/foo-bar/src/a/b.rs"
    assert resolver.module_path(importer, "rust", "super") == "crates/foo-bar/src/a.rs"
    assert resolver.module_path(importer, "rust", "crate::c") == "crates/foo-bar/src/c/mod.rs"
    # Another crate of the workspace by its name (the folder's, - as _).
    assert resolver.module_path("crates/baz/src/main.rs", "rust", "foo_bar::a::b") == importer
    assert resolver.module_path(importer, "rust", "std::io") is None
    # Rust 2018: `use b::Thing` in a.rs names its child module b.
    assert resolver.module_path("crates/foo-bar/src/a.rs", "rust", "b") == importer
    assert resolver.module_path("crates/foo-bar/src/a.rs", "rust", "nothing_here") is None


def test_rust_type_paths_are_one_use():
    usage = name_usage("let v = Version::new(1, 2, 3);\nlet s = a.b;\n")
    assert "Version.new" in usage.uses and "a.b" in usage.uses
    assert "new" not in usage.uses


def test_java_imports_resolve_under_any_source_root():
    source = b"import a.b.C;\nimport static a.b.D.m;\nimport x.y.*;\n"
    bindings = import_bindings(parse("java", source).root_node, "java", source)
    assert [(b.local, b.module, b.imported) for b in bindings] == [
        ("C", "a.b.C", "C"),
        ("m", "a.b.D", "m"),
        ("*", "x.y", "*"),
    ]
    resolver = ImportResolver(["src/main/java/a/b/C.java", "src/main/java/a/b/D.java"])
    assert resolver.module_path("src/main/java/z/Z.java", "java", "a.b.C") == (
        "src/main/java/a/b/C.java"
    )


def test_a_rust_module_import_reaches_its_items(regex_syntax: RepositoryIndex):
    """`use crate::hir;` then `hir::Anchor::EndText`: hir is a module with its own file."""
    header = regex_syntax.header("src/hir/print.rs")
    assert header is not None
    assert regex_syntax.module_of("src/hir/print.rs", header, "hir") == "src/hir/mod.rs"
    names = _names(_needed(regex_syntax, "src/hir/print.rs"))
    assert ("src/hir/mod.rs", "Anchor") in names


def test_a_method_call_on_an_annotated_value_finds_the_types_member(tmp_path: Path):
    """`fn show(value: &Value)` then `value.as_bool()`: Value's member, though `as_bool` is
    declared by several types (so a lookup by name alone gives nothing)."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "lib.rs").write_text("pub mod value;\npub mod other;\n")
    (tmp_path / "src" / "value.rs").write_text(
        "pub struct Value {}\nimpl Value {\n    pub fn as_bool(&self) -> bool { true }\n}\n"
    )
    (tmp_path / "src" / "other.rs").write_text(
        "pub struct A {}\nimpl A {\n    pub fn as_bool(&self) -> bool { true }\n}\n"
        "pub struct B {}\nimpl B {\n    pub fn as_bool(&self) -> bool { true }\n}\n"
    )
    (tmp_path / "src" / "show.rs").write_text(
        "use crate::value::Value;\n\nfn show(value: &Value) -> bool {\n    value.as_bool()\n}\n"
    )
    index = RepositoryIndex(tmp_path, parser=InProcessParser())
    index.build_blocking()
    found = _needed(index, "src/show.rs")
    members = [m for m in found if m.definition.name == "as_bool"]
    assert [(m.path, m.definition.container) for m in members] == [("src/value.rs", "Value")]


@pytest.fixture(scope="module")
def ujson() -> RepositoryIndex:
    return _indexed("ujson")


DOUBLE_CONVERSION = "deps/double-conversion/double-conversion"


def test_c_includes_resolve_next_to_the_file_then_by_tail_and_angled_ones_by_tail_only():
    """`#include <zstd.h>` with `-Izstd`: a header of the repository's include path. The
    system's headers are not indexed, so an angled name the repository lacks resolves to none,
    and never to a file beside the includer that only shares the name's folder."""
    resolver = ImportResolver(
        ["c-ext/module.h", "c-ext/module.c", "zstd/zstd.h", "zstd/common/mem.h", "c-ext/stdio.h"]
    )

    def includes(statement: str) -> list[str]:
        return resolver.resolve("c-ext/module.c", "c", [statement])

    assert includes('#include "module.h"') == ["c-ext/module.h"]
    assert includes("#include <zstd.h>") == ["zstd/zstd.h"]
    assert includes("#include <common/mem.h>") == ["zstd/common/mem.h"]
    assert includes("#include<Python.h>") == []
    assert includes('#include "stdio.h"') == ["c-ext/stdio.h"]  # quoted: next to the file
    assert includes("#include <module.h>") == ["c-ext/module.h"]  # angled: by tail
    assert includes("#include <unterminated.h") == []


def test_a_guarded_cpp_header_shows_its_namespaced_class(ujson: RepositoryIndex):
    """ujson's bundled double-conversion: `#ifndef …_H_` around `namespace double_conversion {
    class Bignum { … } }` in a .h file. The walk used to stop at the include guard (nothing
    from any guarded header), and the C grammar would drop the class's members."""
    header = ujson.header(f"{DOUBLE_CONVERSION}/bignum.h")
    assert header is not None and header.language == "cpp"
    names = {(d.name, d.container) for d in header.definitions}
    assert ("Bignum", None) in names and ("AssignHexString", "Bignum") in names
    assert not any(name.endswith("_H_") for name, _ in names)  # the guard is not a declaration


def test_a_name_comes_from_the_headers_a_file_includes(ujson: RepositoryIndex):
    found = _names(_needed(ujson, f"{DOUBLE_CONVERSION}/bignum-dtoa.h"))
    assert (f"{DOUBLE_CONVERSION}/utils.h", "Vector") in found  # #include "utils.h"


def test_a_rust_variant_path_still_finds_the_type_it_is_named_after(
    regex_syntax: RepositoryIndex,
):
    """`HirKind::Group(ref x)`: the variant wraps `hir::Group`; with `::` read as one path the
    type was no longer looked up by name (regex-syntax lost recall until this fallback)."""
    found = _needed(regex_syntax, "src/hir/print.rs")
    assert any(m.definition.name == "Group" and m.path == "src/hir/mod.rs" for m in found)
    # Impl blocks stay out of the list when the type itself is in it.
    assert not any(m.is_impl_block and m.definition.name == "Hir" for m in found)


def test_written_and_constructed_types_send_a_method_call_to_that_class():
    """`value.as_bool()` with `value: &Value` written, `app.route` after `app = Flask(...)`,
    `self.console.print` after `self.console = Console()` (issue 29): the member of that class.
    A comparison or a lower-case call is no type; JavaScript texts are not scanned."""
    rust = name_usage("fn show(value: &'a mut Value) {}\nlet t = Table::new();\n", language="rust")
    go = name_usage("func (c *Command) Name() string {}\n", language="go")
    python = name_usage(
        'def show(value: "Value"):\n    app = Flask(__name__)\n    same == Other(1)\n'
        "    low = make(1)\n    self.console = Console()\n",
        language="python",
    )
    typescript = name_usage("const client = new Client(url);\n", language="typescript")
    assert rust.type_of("value") == "Value" and rust.type_of("t") == "Table"
    assert go.type_of("c") == "Command"
    assert python.type_of("value") == "Value" and python.type_of("app") == "Flask"
    assert python.type_of("self.console") == "Console"
    assert python.type_of("same") is None and python.type_of("low") is None
    assert typescript.type_of("client") == "Client"
    assert name_usage("const c = new Client();\n", language="javascript").types == ()


def test_a_cpp_method_defined_outside_its_class_reaches_the_classs_fields(tmp_path: Path):
    """greenlet's `void ExceptionState::clear() { this->exc_state ... }` in a .cpp file, the
    class in a header (issue 29): `p->field` is one use, as `p.field` is, and `this` is the
    class the method is defined for, so `exc_state` is that class's field (two classes
    declare one, so a lookup by name alone gives nothing)."""
    usage = name_usage(
        "int Other::size() { return 0; }\nvoid ExceptionState::clear() {\n"
        "    this->exc_state.tb = nullptr;\n    p->next->value = 1;\n}\n",
        language="cpp",
    )
    assert {"this.exc_state", "this.exc_state.tb", "p.next", "p.next.value"} <= set(usage.uses)
    # The method `this` is first written in (a .cpp file mostly defines one class's methods).
    assert usage.type_of("this") == "ExceptionState"
    assert "p.next" not in name_usage("p->next;\n", language="python").uses

    (tmp_path / "state.hpp").write_text(
        "class ExceptionState {\npublic:\n    void clear();\n    PyObject* exc_state;\n};\n"
        "class Other {\npublic:\n    PyObject* exc_state;\n};\n"
        "class Third {\npublic:\n    PyObject* exc_state;\n};\n"
    )
    (tmp_path / "state.cpp").write_text(
        '#include "state.hpp"\n\nvoid ExceptionState::clear() {\n'
        "    this->exc_state = nullptr;\n}\n"
    )
    index = RepositoryIndex(tmp_path, parser=InProcessParser())
    index.build_blocking()
    members = [m for m in _needed(index, "state.cpp") if m.definition.name == "exc_state"]
    assert [(m.path, m.definition.container) for m in members] == [("state.hpp", "ExceptionState")]


def test_a_type_written_before_the_name_sends_a_method_call_to_that_class():
    """Java's `private Bridge bridge;` and C++'s `PyGreenlet* self` (issue 29): the type comes
    first, so `bridge.getConfig()` is Bridge's member. Only a declaration counts: a type
    followed by the name and `;`, `=`, `,` or `)`; not a call, a cast or a return."""
    java = name_usage(
        "class X {\n    private Bridge bridge;\n"
        "    void run(PluginCall call, Bridge other) {\n"
        "        Foo.bar(baz);\n        return Value;\n        new Thing(arg);\n"
        "        if (a instanceof Plugin p) {}\n    }\n}\n",
        language="java",
    )
    assert java.type_of("bridge") == "Bridge" and java.type_of("call") == "PluginCall"
    assert java.type_of("other") == "Bridge" and java.type_of("p") == "Plugin"
    assert java.type_of("baz") is None and java.type_of("arg") is None
    cpp = name_usage("PyGreenlet* self = x;\nconst ImmortalEventName& event,\n", language="cpp")
    assert cpp.type_of("self") == "PyGreenlet" and cpp.type_of("event") == "ImmortalEventName"
    # Python and TypeScript write the name first: `Value value` is no declaration there.
    assert name_usage("Value value;\n", language="typescript").type_of("value") is None
