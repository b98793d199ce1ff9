"""Real public projects, unpacked from their registry packages (PyPI sdists, npm tarballs, and
Debian's source packages of Go modules and Rust crates: ``golang-*-dev`` and ``librust-*-dev``
ship the sources) and cached between runs: the test corpus and the benchmarks' repositories.

    IQUEST_CORPUS_DIR   where they are kept (default: the user cache directory)
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx
import platformdirs


@dataclass(frozen=True)
class Project:
    name: str
    registry: str  # "pypi", "npm" or "debian"
    package: str
    version: str
    # The language the benchmark samples cursor positions in.
    language: str

    @property
    def folder(self) -> str:
        return f"{self.name}-{self.version}"


PROJECTS = (
    Project("rich", "pypi", "rich", "15.0.0", "python"),
    Project("click", "pypi", "click", "8.5.1", "python"),
    Project("attrs", "pypi", "attrs", "26.1.0", "python"),
    Project("flask", "pypi", "flask", "3.1.3", "python"),  # an application framework
    Project("rxjs", "npm", "rxjs", "7.8.2", "typescript"),
    Project("zod", "npm", "zod", "4.6.7", "typescript"),
    Project("trpc-server", "npm", "@trpc/server", "11.25.2", "typescript"),
)

# Other languages the index resolves (issue 27): Go modules and Rust crates, as Debian ships
# them; each a repository the project never saw.
OTHER_LANGUAGES = (
    Project("cobra", "debian", "golang-github-spf13-cobra-dev", "1.6.1-1", "go"),
    Project("urfave-cli", "debian", "golang-github-urfave-cli-dev", "1.22.9-2", "go"),
    Project("testify", "debian", "golang-github-stretchr-testify-dev", "1.8.1-1", "go"),
    Project("regex-syntax", "debian", "librust-regex-syntax-dev", "0.6.27-1", "rust"),
    Project("toml-edit", "debian", "librust-toml-edit-dev", "0.14.4-2", "rust"),
    Project("serde-json", "debian", "librust-serde-json-dev", "1.0.87-1", "rust"),
    # Java and C/C++ sources that registries ship: Android platform code in npm packages, and
    # Python packages' native parts in their sdists.
    Project("cordova-android", "npm", "cordova-android", "12.0.1", "java"),
    Project("capacitor-android", "npm", "@capacitor/android", "6.2.0", "java"),
    Project("jpype", "pypi", "jpype1", "1.5.1", "java"),
    Project("ujson", "pypi", "ujson", "5.10.0", "c"),
    Project("zstandard", "pypi", "zstandard", "0.23.0", "c"),
    Project("greenlet", "pypi", "greenlet", "3.1.1", "cpp"),
)


def corpus_dir() -> Path:
    configured = os.environ.get("IQUEST_CORPUS_DIR")
    return (
        Path(configured)
        if configured
        else Path(platformdirs.user_cache_dir("iquest-lsp")) / "corpus"
    )


def project_root(project: Project, cache: Path | None = None) -> Path:
    """The unpacked project (downloaded once)."""
    cache = cache or corpus_dir()
    target = cache / project.folder
    if (target / ".complete").exists():
        return target
    if project.registry == "debian":
        return _debian_root(project, cache, target)
    url = _archive_url(project)
    with httpx.Client(timeout=120, follow_redirects=True) as client:
        response = client.get(url)
        response.raise_for_status()
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as scratch:
        with tarfile.open(fileobj=io.BytesIO(response.content), mode="r:gz") as archive:
            archive.extractall(scratch, filter="data")
        (top,) = [p for p in Path(scratch).iterdir() if p.is_dir()]
        if target.exists():
            shutil.rmtree(target)
        top.rename(target)
    (target / ".complete").write_text(url)
    return target


def _debian_root(project: Project, cache: Path, target: Path) -> Path:
    """The package's sources, from Debian's archive (``apt-get download``: no root, no
    install): a Go module's folder under /usr/share/gocode/src, a crate's under
    /usr/share/cargo/registry."""
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as scratch:
        download = ["apt-get", "download", f"{project.package}={project.version}"]
        got = subprocess.run(download, cwd=scratch, capture_output=True, timeout=300)
        if got.returncode != 0 and os.geteuid() == 0:
            # A fresh machine may have no package lists yet.
            subprocess.run(["apt-get", "update", "-q"], capture_output=True, timeout=600)
            got = subprocess.run(download, cwd=scratch, capture_output=True, timeout=300)
        if got.returncode != 0:
            raise RuntimeError(
                f"apt-get download {project.package}={project.version} failed: "
                f"{got.stderr.decode(errors='replace').strip()[-300:]}"
            )
        (deb,) = Path(scratch).glob("*.deb")
        unpacked = Path(scratch) / "unpacked"
        subprocess.run(["dpkg-deb", "-x", str(deb), str(unpacked)], check=True, timeout=300)
        top = unpacked / "usr" / "share" / "cargo" / "registry"
        if not top.is_dir():
            top = unpacked / "usr" / "share" / "gocode" / "src"
        # Down to the module or crate: the first folder holding files.
        while not any(p.is_file() for p in top.iterdir()):
            (top,) = [p for p in top.iterdir() if p.is_dir()]
        if target.exists():
            shutil.rmtree(target)
        top.rename(target)
    (target / ".complete").write_text(f"debian {project.package}={project.version}")
    return target


def _archive_url(project: Project) -> str:
    with httpx.Client(timeout=60, follow_redirects=True) as client:
        if project.registry == "pypi":
            index = f"https://pypi.org/pypi/{project.package}/json"
            data = client.get(index)
            data.raise_for_status()
            files = data.json()["releases"][project.version]
            url = next(str(f["url"]) for f in files if f["packagetype"] == "sdist")
            return str(httpx.URL(index).join(url))  # some mirrors answer relative URLs
        data = client.get(f"https://registry.npmjs.org/{project.package}/{project.version}")
        data.raise_for_status()
        return str(data.json()["dist"]["tarball"])
