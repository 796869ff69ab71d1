"""Build the Lambda layer folders with pip: no Docker, works offline once cached.

Three layers, each a folder ``build/layers/<name>`` holding ``python/`` as Lambda expects:

- ``core``: aws-lambda-powertools, pydantic and our ``datasets_core``
  package. Every function uses it. boto3/botocore are not bundled: the runtime has them.
- ``imports``: pyarrow, only for the import function (API functions must stay small).
- ``docs``: Swagger UI's script and stylesheet (from ``swagger-ui-py``, nothing else of it),
  only for the ``docs_asset`` function.

Wheels are fetched for the Lambda platform (Python 3.13, arm64) whatever the build machine
is. The layers ship bytecode compiled by a Python 3.13 interpreter (``LAYER_PYTHON``, else
``python3.13`` on PATH or under pyenv): Lambda's /opt is read-only, so a module without its
``.pyc`` is compiled again by every cold start that imports it (measured: +170-230 ms). The
``.pyc`` files are ``unchecked-hash`` ones: CDK zips assets with fixed file times, so
timestamp-based ``.pyc`` files would never match their sources there and would be ignored; a
layer never changes in place, so nothing needs checking. The core layer compiles
``datasets_core`` and every module the functions import (found by importing every handler,
and what handlers import on first use, in a fresh interpreter of this environment, which
has the same package versions): bytecode for all of Powertools and pydantic would take the
API functions' zipped code past SPEC §10's 5 MB. The imports layer is compiled whole.

Versions are pinned to the ones installed in the running environment when they are (so
the layer ships exactly what the tests ran against), else to the ranges in pyproject.toml.
A stamp file per layer records the requirement set and the core package's content hash;
a layer whose stamp matches is not rebuilt, so re-running is fast.

Run as ``python -m infra.build_layers`` (``make layers``); ``app.py`` calls ``build_all()``.
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD_DIR = ROOT / "build" / "layers"
CORE_PACKAGE = ROOT / "layers" / "core" / "python" / "datasets_core"

PYTHON_VERSION = "3.13"
BYTECODE_TAG = "cpython-" + PYTHON_VERSION.replace(".", "")
BYTECODE_MODE = "unchecked-hash"
# Lambda's python3.13 runtime is Amazon Linux 2023 (glibc 2.34): manylinux_2_28 wheels run
# there, and recent pyarrow ships arm64 wheels only for manylinux_2_28.
PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_28_aarch64")
# Provided by the Lambda runtime; never shipped in a layer (nor pulled in by a dependency).
# jmespath is botocore's own dependency, so the runtime that has botocore has it too.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath")
# Dead weight in a layer: headers, tests, Cython sources, console scripts, type stubs and
# markers (read by type checkers, never at run time), pip's install records (read only by
# pip uninstall), bytecode of any other Python (the layer's own is compiled after pruning).
PRUNE_DIRS = ("__pycache__", "tests", "include", "bin")
PRUNE_SUFFIXES = (".pyc", ".pyx", ".pxd", ".pxi", ".h", ".hpp", ".pyi")
PRUNE_FILES = ("py.typed", "RECORD")

# Parts of Powertools and pydantic no function loads, left out of the core layer to keep API
# functions under SPEC §10's 5 MB: Powertools' own copy of Swagger UI's assets (read only by
# ``enable_swagger(serve_locally)``; GET /v1/docs serves ours from the docs layer), utilities
# nothing imports, and pydantic's bundled copy of pydantic 1 (``pydantic.v1``) and its
# experimental APIs (a unit test imports every handler from the built layer).
CORE_PRUNE = (
    "pydantic/v1",
    "pydantic/experimental",
    "aws_lambda_powertools/event_handler/openapi/swagger_ui/swagger-ui-bundle.min.js",
    "aws_lambda_powertools/event_handler/openapi/swagger_ui/swagger-ui.min.css",
    "aws_lambda_powertools/utilities/kafka",
    "aws_lambda_powertools/utilities/data_masking",
    "aws_lambda_powertools/utilities/feature_flags",
    "aws_lambda_powertools/utilities/circuit_breaker",
    "aws_lambda_powertools/utilities/auth_alpha",
    "aws_lambda_powertools/utilities/streaming",
    "aws_lambda_powertools/utilities/parameters",
)

CORE = "core"
IMPORTS = "imports"
DOCS = "docs"
# What the docs layer keeps of the swagger-ui-py package: the files GET /v1/docs loads.
DOCS_FILES = ("swagger-ui-bundle.js", "swagger-ui.css")


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    if not match:
        raise ValueError(f"cannot parse requirement {requirement!r}")
    return match.group(0)


def _pin(requirement: str) -> str:
    """``requirement`` pinned to the installed version when there is one (extras kept)."""
    name = _name(requirement)
    extras = re.match(r"[A-Za-z0-9._-]+(\[[^\]]*\])?", requirement)
    extra = extras.group(1) if extras and extras.group(1) else ""
    try:
        return f"{name}{extra}=={metadata.version(name)}"
    except metadata.PackageNotFoundError:
        return requirement


def requirements() -> dict[str, list[str]]:
    """The pip requirements of each layer, derived from pyproject.toml."""
    project = _pyproject()["project"]
    core = [_pin(r) for r in project["dependencies"] if _name(r).lower() not in RUNTIME_PROVIDED]
    extras = project["optional-dependencies"]
    imports = [_pin(r) for r in extras["imports"]]
    docs = [_pin(r) for r in extras["docs"]]
    return {CORE: sorted(core), IMPORTS: sorted(imports), DOCS: sorted(docs)}


def _files(folder: Path) -> Iterator[Path]:
    for path in sorted(folder.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            yield path


def core_hash() -> str:
    """Content hash of the ``datasets_core`` package (paths and bytes, no caches)."""
    digest = hashlib.sha256()
    for path in _files(CORE_PACKAGE):
        digest.update(path.relative_to(CORE_PACKAGE).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


class NoRuntimePython(RuntimeError):
    pass


def runtime_python() -> str:
    """A Python ``PYTHON_VERSION`` interpreter to compile the layers' bytecode with."""
    candidates = [os.environ.get("LAYER_PYTHON", ""), shutil.which(f"python{PYTHON_VERSION}") or ""]
    pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates += sorted(glob.glob(f"{pyenv_root}/versions/{PYTHON_VERSION}*/bin/python{PYTHON_VERSION}"))
    for candidate in filter(None, candidates):
        probe = subprocess.run(
            [candidate, "-c", "import sys; print(sys.implementation.cache_tag)"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0 and probe.stdout.strip() == BYTECODE_TAG:
            return candidate
    raise NoRuntimePython(
        f"The Lambda layers ship bytecode for the functions' runtime (Python {PYTHON_VERSION}), which "
        f"needs a Python {PYTHON_VERSION} interpreter to compile it; none was found (tried LAYER_PYTHON, "
        f"python{PYTHON_VERSION} on PATH, {pyenv_root}/versions/{PYTHON_VERSION}*). Install one (e.g. "
        f"`pyenv install {PYTHON_VERSION}`, or Debian 13's python{PYTHON_VERSION}) or set LAYER_PYTHON."
    )


_COMPILE = """
import py_compile, sys
site, files = sys.argv[1], sys.argv[2:]
for name in files:
    py_compile.compile(f"{site}/{name}", dfile=f"/opt/python/{name}", doraise=True,
                       invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
"""
# Modules a handler imports on first use rather than at import time (Idempotency-Key writes).
LAZY_IMPORTS = ("datasets_core.idempotency", "aws_lambda_powertools.utilities.idempotency")
_LIST_IMPORTS = """
import importlib, json, pathlib, sys
functions = pathlib.Path(sys.argv[1])
sys.path[:0] = [str(functions)]
for handler in sorted(functions.glob("*/handler.py")):
    importlib.import_module(f"{handler.parent.name}.handler")
for name in sys.argv[2:]:
    importlib.import_module(name)
print(json.dumps(sorted({m.__file__ for m in list(sys.modules.values()) if getattr(m, "__file__", None)})))
"""


def imported_modules(site: Path) -> list[str]:
    """Files of ``site`` (relative paths) that the functions import: handlers and lazy imports."""
    return sorted(name for name, present in _imports_in(site).items() if present)


def imported_but_missing(site: Path) -> list[str]:
    """Files the functions import from packages of ``site`` that ``site`` lacks (pruned away)."""
    return sorted(name for name, present in _imports_in(site).items() if not present)


def _imports_in(site: Path) -> dict[str, bool]:
    out = subprocess.run(
        [sys.executable, "-c", _LIST_IMPORTS, str(ROOT / "functions"), *LAZY_IMPORTS],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "POWERTOOLS_METRICS_DISABLED": "true"},
    )
    tops = {p.name.removesuffix(".py") for p in site.iterdir()}
    found: dict[str, bool] = {}
    for file in json.loads(out.stdout):
        parts = Path(file).parts
        for i, part in enumerate(parts[:-1]):  # .../site-packages/<top>/... or layers/core/python/<top>/...
            inside = Path(*parts[i + 1 :])
            top = parts[i + 1].removesuffix(".py")
            if part in ("site-packages", "python") and top in tops and inside.suffix == ".py":
                # A dependency's module ships as its source or, imported, as bytecode alone.
                shipped = site / inside
                found[inside.as_posix()] = shipped.is_file() or shipped.with_suffix(".pyc").is_file()
    return found


def _compile(site: Path, files: list[str]) -> None:
    """Bytecode for the runtime's Python of ``files`` (relative to ``site``), next to each."""
    python = runtime_python()
    for start in range(0, len(files), 500):  # keep the command line short
        subprocess.run([python, "-c", _COMPILE, str(site), *files[start : start + 500]], check=True)


def _sourceless(site: Path, files: list[str]) -> None:
    """Ship the dependencies' imported modules as bytecode alone (``module.pyc`` in place of
    ``module.py``, which Python imports without its source): their sources would add 0.7 MB
    zipped, past SPEC §10's 5 MB for code + core layer. Our own package keeps its sources (and
    its tracebacks their lines); only frames inside pydantic or Powertools show no source line."""
    for name in files:
        source = site / name
        compiled = source.parent / "__pycache__" / f"{source.stem}.{BYTECODE_TAG}.pyc"
        if compiled.is_file():
            compiled.replace(source.with_suffix(".pyc"))
            source.unlink()


def _stamp(name: str, reqs: list[str]) -> dict:
    stamp: dict = {
        "requirements": reqs,
        "python": PYTHON_VERSION,
        "platforms": list(PLATFORMS),
        "bytecode": [BYTECODE_TAG, BYTECODE_MODE],
    }
    if name == CORE:
        stamp["core_hash"] = core_hash()
        stamp["pruned"] = list(CORE_PRUNE)
        stamp["sourceless"] = "dependencies' imported modules"
    return stamp


def _stamp_path(name: str) -> Path:
    # Beside the layer folder, not inside it: the stamp must not become part of the asset.
    return BUILD_DIR / f".{name}.stamp.json"


def _pip_install(target: Path, reqs: list[str], *, deps: bool = True) -> None:
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile"]
    if not deps:
        cmd.append("--no-deps")
    for platform in PLATFORMS:
        cmd += ["--platform", platform]
    cmd += ["--implementation", "cp", "--python-version", PYTHON_VERSION, "--only-binary=:all:"]
    cmd += ["--target", str(target), *reqs]
    subprocess.run(cmd, check=True)


def _prune(site: Path) -> None:
    for name in RUNTIME_PROVIDED:
        for path in [site / name, *site.glob(f"{name}-*.dist-info")]:
            shutil.rmtree(path, ignore_errors=True)
    for path in sorted(site.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_dir() and path.name in PRUNE_DIRS and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        elif path.is_file() and (path.suffix in PRUNE_SUFFIXES or path.name in PRUNE_FILES):
            path.unlink()


def _keep_docs_files(site: Path) -> None:
    """Reduce the installed swagger-ui-py to ``swagger_ui/static/<DOCS_FILES>``."""
    static = site / "swagger_ui" / "static"
    kept = {static / name for name in DOCS_FILES}
    missing = sorted(path.name for path in kept if not path.is_file())
    if missing:
        raise FileNotFoundError(f"swagger-ui-py no longer ships {missing}")
    for path in sorted(site.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_file() and path not in kept:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def _build(name: str, reqs: list[str]) -> None:
    final = BUILD_DIR / name
    staging = BUILD_DIR / f".{name}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    site = staging / "python"
    site.mkdir(parents=True)
    if name == DOCS:
        _pip_install(site, reqs, deps=False)  # its Python code and dependencies are not used
        _keep_docs_files(site)
    else:
        _pip_install(site, reqs)
        _prune(site)
    if name == CORE:
        for relative in CORE_PRUNE:
            path = site / relative
            if path.is_dir():
                shutil.rmtree(path)
            elif path.is_file():
                path.unlink()
        shutil.copytree(
            CORE_PACKAGE, site / CORE_PACKAGE.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
        ours = [p.relative_to(site).as_posix() for p in (site / CORE_PACKAGE.name).rglob("*.py")]
        imported = imported_modules(site)
        _compile(site, sorted(set(ours) | set(imported)))
        _sourceless(site, [name for name in imported if name not in ours])
    else:
        _compile(site, sorted(p.relative_to(site).as_posix() for p in site.rglob("*.py")))
    shutil.rmtree(final, ignore_errors=True)
    staging.rename(final)


@contextmanager
def _locked() -> Iterator[None]:
    """Serialize concurrent builds (e.g. pytest-xdist workers)."""
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    with (BUILD_DIR / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def build_layer(name: str, reqs: list[str], *, force: bool = False) -> Path:
    """Build one layer folder unless its stamp says it is current; return the folder."""
    folder = BUILD_DIR / name
    stamp = _stamp(name, reqs)
    stamp_path = _stamp_path(name)
    with _locked():
        current = stamp_path.exists() and json.loads(stamp_path.read_text()) == stamp
        if force or not current or not (folder / "python").is_dir():
            stamp_path.unlink(missing_ok=True)
            print(f"building layer {name}: {' '.join(reqs)}", file=sys.stderr)
            _build(name, reqs)
            stamp_path.write_text(json.dumps(stamp, indent=2) + "\n")
    return folder


def build_all(*, force: bool = False) -> dict[str, Path]:
    """Build (or reuse) every layer; returns layer name -> folder holding ``python/``."""
    return {name: build_layer(name, reqs, force=force) for name, reqs in requirements().items()}


def main() -> None:
    force = "--force" in sys.argv[1:]
    for name, folder in build_all(force=force).items():
        print(f"{name}: {folder.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
