"""Import statements -> indexed files, per language.

Python modules resolve as the interpreter would: relative imports from the importer's package,
absolute ones from the repository's source roots (the folder above each top-level package, so
``src/`` layouts and monorepo sub-projects work without configuration) and from a script's own
folder; a module the repository does not hold (``json``, ``types``) resolves to nothing, never
to a same-named file deeper in the tree. JavaScript and TypeScript specifiers resolve relative
to the importer, with the ``nodenext`` spelling (``./x.js`` for ``x.ts``), ``index`` files and
the ``@/``/``~/`` aliases for ``src/``. A Go import path names a package, which is a directory:
the longest tail of the path that is a folder of the repository (the module's path, from
go.mod, is the part before it). Rust paths start at the importer's crate (``crate::``), its
module's parent (``super::``) or itself (``self::``), or at a crate of the workspace by name;
modules are ``name.rs`` or ``name/mod.rs``. Java classes are ``a/b/C.java`` under any source
root. C and C++ includes resolve next to the file, then by path tail (``<x.h>``: by path tail
only)."""

from __future__ import annotations

import posixpath
import re
import sys
from collections import defaultdict
from collections.abc import Iterable

from engine.repository.languages import C_FAMILY
from engine.repository.symbols import ImportBinding

_GO_SPEC = re.compile(r'"([^"]+)"')
_RUST_MOD = re.compile(r"^(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;")
_RUST_USE = re.compile(r"use\s+(?:crate|super|self)::([\w:]+)")
_JAVA = re.compile(r"^import\s+(?:static\s+)?([\w.]+?)(?:\.\*)?\s*;")
# `#include "x.h"` (next to the file, then by path tail) or `#include <x.h>` (by path tail
# only: a header of the repository's include path, `-Izstd`; the system's are not indexed).
_INCLUDE = re.compile(r'^#\s*include\s*(?:"([^"]+)"|<([^>]+)>)')
JS_EXTENSIONS = (".ts", ".tsx", ".js", ".jsx", ".mjs", ".cjs", ".d.ts", ".mts", ".cts")
# What a compiled-output spelling stands for in the sources (TypeScript's nodenext resolution).
JS_SOURCE_FOR = {
    ".js": (".ts", ".tsx", ".d.ts"),
    ".jsx": (".tsx",),
    ".mjs": (".mts", ".d.mts"),
    ".cjs": (".cts", ".d.cts"),
}
JS_ALIASES = ("@/", "~/", "#/")
PY_SUFFIXES = (".py", "/__init__.py", ".pyi", "/__init__.pyi")
STDLIB = frozenset(sys.stdlib_module_names)


class ImportResolver:
    def __init__(self, paths: Iterable[str], root_name: str = "") -> None:
        """``root_name``: the repository folder's name (a crate at the root is named by it)."""
        self._paths = set(paths)
        self._by_tail: dict[str, list[str]] = defaultdict(list)
        self._by_dir_tail: dict[str, list[str]] = defaultdict(list)
        for path in sorted(self._paths):
            parts = path.split("/")
            for start in range(len(parts)):
                self._by_tail["/".join(parts[start:])].append(path)
            for start in range(len(parts) - 1):
                self._by_dir_tail["/".join(parts[start:-1])].append(path)
        self._packages = {
            posixpath.dirname(p)
            for p in self._paths
            if p.endswith(("/__init__.py", "/__init__.pyi"))
        }
        # The folder above each top-level package: where `import package` starts.
        roots = {""}
        for package in self._packages:
            top = package
            while top and posixpath.dirname(top) in self._packages:
                top = posixpath.dirname(top)
            roots.add(posixpath.dirname(top))
        self._python_roots = sorted(roots, key=lambda r: (-r.count("/"), r))
        self._files_in: dict[str, list[str]] = defaultdict(list)
        for path in sorted(self._paths):
            self._files_in[posixpath.dirname(path)].append(path)
        # Rust crates: the folder above each src/lib.rs or src/main.rs, and their names as
        # code spells them (folder name, version suffix off, - as _).
        self._crates: dict[str, str] = {}
        for path in sorted(self._paths, key=len):
            if path.endswith(("src/lib.rs", "src/main.rs")):
                folder = posixpath.dirname(posixpath.dirname(path))
                name = _crate_name(posixpath.basename(folder) if folder else root_name)
                if name:
                    self._crates.setdefault(name, folder)

    def files_in(self, folder: str) -> list[str]:
        """The indexed files directly in ``folder`` (a Go or Java package)."""
        return self._files_in.get(folder, [])

    def go_package(self, import_path: str) -> str | None:
        """The folder a Go import path names: its longest tail that is a folder of Go files."""
        parts = [p for p in import_path.split("/") if p]
        for start in range(len(parts)):
            folder = "/".join(parts[start:])
            if any(p.endswith(".go") for p in self._files_in.get(folder, ())):
                return folder
        return None

    def resolve(
        self,
        importer: str,
        language: str | None,
        statements: Iterable[str],
        bindings: Iterable[ImportBinding] = (),
    ) -> list[str]:
        """The files ``importer`` imports, in import order."""
        found: list[str] = []
        if language in ("python", "javascript", "typescript", "tsx"):
            candidates = []
            for binding in bindings:
                module = self.module_path(importer, language, binding.module)
                if language == "python" and binding.imported not in (None, "*"):
                    # `from pkg import sub`: the submodule, when it is one.
                    sub = self.module_path(importer, language, submodule(binding))
                    if sub is not None:
                        candidates.append(sub)
                if module is not None:
                    candidates.append(module)
        else:
            candidates = [
                hit
                for statement in statements
                for hit in self._candidates(importer, language, statement.strip())
            ]
        for candidate in candidates:
            if candidate not in found and candidate != importer:
                found.append(candidate)
        return found

    def module_path(self, importer: str, language: str | None, module: str) -> str | None:
        """The indexed file a module name or specifier (as written) stands for, if any."""
        if language == "python":
            return self._python_module(importer, module)
        if language in ("javascript", "typescript", "tsx"):
            return next(
                iter(self._first_existing(_js_paths(posixpath.dirname(importer), module))), None
            )
        if language == "rust":
            return self._rust_module(importer, module)
        if language == "java":
            hits = self._tail(module.replace(".", "/") + ".java")
            return hits[0] if hits else None
        return None

    def _rust_module(self, importer: str, module: str) -> str | None:
        parts = [p for p in module.split("::") if p]
        if not parts:
            return None
        src, own = self._rust_place(importer)
        if parts[0] == "crate":
            base, parts = [], parts[1:]
        elif parts[0] in ("super", "self"):
            base = list(own)
            while parts and parts[0] in ("super", "self"):
                if parts.pop(0) == "super" and base:
                    base.pop()
        elif parts[0] in self._crates:
            src, base, parts = posixpath.join(self._crates[parts[0]], "src"), [], parts[1:]
        elif src is not None and self._rust_child(src, own, parts[0]):
            base = list(own)  # `use child::X` in Rust 2018: a child module of this one
        else:
            return None  # std, core or a crate from crates.io
        if src is None:
            return None
        # The longest prefix that is a module file (the rest may be items declared in it).
        for length in range(len(parts), -1, -1):
            path = [*base, *parts[:length]]
            if not path:
                candidates = [posixpath.join(src, "lib.rs"), posixpath.join(src, "main.rs")]
            else:
                stem = posixpath.join(src, *path)
                candidates = [stem + ".rs", posixpath.join(stem, "mod.rs")]
            found = self._first_existing(candidates)
            if found:
                return found[0]
        return None

    def _rust_child(self, src: str, own: tuple[str, ...], name: str) -> bool:
        stem = posixpath.join(src, *own, name)
        return stem + ".rs" in self._paths or posixpath.join(stem, "mod.rs") in self._paths

    def _rust_place(self, importer: str) -> tuple[str | None, tuple[str, ...]]:
        """The importer's crate source folder and its module path inside it."""
        parts = importer.split("/")
        for index in range(len(parts) - 1, -1, -1):
            if parts[index] != "src":
                continue
            src = "/".join(parts[: index + 1])
            inside = parts[index + 1 :]
            stem = posixpath.splitext(inside[-1])[0]
            module = inside[:-1] if stem in ("mod", "lib", "main") else [*inside[:-1], stem]
            return src, tuple(module)
        return None, ()

    def _python_module(self, importer: str, module: str) -> str | None:
        dotted = module.lstrip(".")
        dots = len(module) - len(dotted)
        folder = posixpath.dirname(importer)
        if dots:
            base = folder
            for _ in range(dots - 1):
                base = posixpath.dirname(base)
            return self._python_file(base, dotted)
        if not dotted:
            return None
        # A script outside any package imports its neighbours (its folder is on sys.path).
        roots = self._python_roots if folder in self._packages else [folder, *self._python_roots]
        for root in roots:
            hit = self._python_file(root, dotted)
            if hit is not None:
                return hit
        top = dotted.split(".")[0]
        if "." in dotted and top not in STDLIB:
            # Namespace packages (no __init__.py) and other layouts: by path tail.
            relative = dotted.replace(".", "/")
            for suffix in PY_SUFFIXES:
                hits = self._tail(relative + suffix)
                if hits:
                    return hits[0]
        return None

    def _python_file(self, base: str, dotted: str) -> str | None:
        relative = dotted.replace(".", "/")
        if not relative:
            for name in ("__init__.py", "__init__.pyi"):
                path = posixpath.join(base, name) if base else name
                if path in self._paths:
                    return path
            return None
        stem = posixpath.join(base, relative) if base else relative
        for suffix in PY_SUFFIXES:
            if stem + suffix in self._paths:
                return stem + suffix
        return None

    def _candidates(self, importer: str, language: str | None, statement: str) -> list[str]:
        folder = posixpath.dirname(importer)
        if language == "go":
            return [
                hit
                for spec in _GO_SPEC.findall(statement)
                for hit in self._by_dir_tail.get("/".join(spec.split("/")[-2:]), [])[:3]
            ]
        if language == "rust":
            return self._rust(importer, folder, statement)
        if language == "java":
            match = _JAVA.match(statement)
            return self._tail(match.group(1).replace(".", "/") + ".java") if match else []
        if language in C_FAMILY:
            match = _INCLUDE.match(statement)
            if not match:
                return []
            quoted, angled = match.groups()
            if angled is not None:
                return self._tail(angled)
            local = posixpath.normpath(posixpath.join(folder, quoted))
            return [local] if local in self._paths else self._tail(quoted)
        return []

    def _rust(self, importer: str, folder: str, statement: str) -> list[str]:
        if match := _RUST_MOD.match(statement):
            name = match.group(1)
            stem = posixpath.splitext(posixpath.basename(importer))[0]
            base = folder if stem in ("mod", "lib", "main") else posixpath.join(folder, stem)
            return self._first_existing(
                [posixpath.join(base, f"{name}.rs"), posixpath.join(base, name, "mod.rs")]
            )
        if match := _RUST_USE.search(statement):
            parts = match.group(1).split("::")
            for length in range(len(parts), 0, -1):
                module = "/".join(parts[:length])
                hits = self._tail(f"src/{module}.rs") or self._tail(f"src/{module}/mod.rs")
                if hits:
                    return hits[:1]
        return []

    def _tail(self, tail: str) -> list[str]:
        hits = self._by_tail.get(tail, [])
        return sorted(hits, key=len)[:1]

    def _first_existing(self, candidates: list[str]) -> list[str]:
        return next(([c] for c in candidates if c in self._paths), [])


def _crate_name(folder: str) -> str:
    """``serde_json-1.0.87`` (a registry's folder) or ``my-crate``: as code names it."""
    name = re.sub(r"-[0-9][0-9A-Za-z.+-]{0,40}$", "", folder)
    return name.replace("-", "_")


def submodule(binding: ImportBinding) -> str:
    """``from pkg import name`` may import the module ``pkg.name``: its dotted name."""
    module = binding.module
    return f"{module}{binding.imported}" if module.endswith(".") else f"{module}.{binding.imported}"


def _js_paths(folder: str, spec: str) -> list[str]:
    if spec.startswith(JS_ALIASES):
        bases = [posixpath.join("src", spec[2:]), spec[2:]]
    elif spec.startswith("."):
        bases = [posixpath.normpath(posixpath.join(folder, spec))]
    elif spec.startswith("src/"):
        bases = [posixpath.normpath(spec)]
    else:
        return []  # a package from node_modules
    paths: list[str] = []
    for base in bases:
        if base.startswith("../") or base == "..":
            continue
        stem, ext = posixpath.splitext(base)
        if ext in JS_SOURCE_FOR:
            paths += [stem + source for source in JS_SOURCE_FOR[ext]]
        paths += [
            base,
            *(base + ext for ext in JS_EXTENSIONS),
            *(f"{base}/index{ext}" for ext in JS_EXTENSIONS),
        ]
    return paths
