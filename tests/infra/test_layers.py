"""Layer contents: exactly the runtime dependencies, bytecode for the runtime's Python, and API
functions (code + core layer, as shipped) under 5 MB zipped with no pyarrow."""

from __future__ import annotations

import io
import json
import re
import subprocess
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from infra import build_layers
from infra.api import FUNCTIONS_DIR
from tests.infra.cfn import Synth

FIVE_MB = 5 * 1024 * 1024
# The Lambda environment the layer's dependency markers are evaluated for (python3.13, arm64).
LAMBDA_MARKERS = {
    "python_version": build_layers.PYTHON_VERSION,
    "python_full_version": build_layers.PYTHON_VERSION + ".0",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "aarch64",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
}


def zipped_size(folder: Path, *, with_bytecode: bool) -> int:
    """Bytes of ``folder`` deflated into a zip, as CDK ships it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and (with_bytecode or "__pycache__" not in path.parts):
                archive.write(path, path.relative_to(folder).as_posix())
    return len(buffer.getvalue())


@pytest.fixture(scope="module")
def core_site(synth: Synth) -> Path:
    """The core layer as built from the current sources (rebuilt if they changed since the synth)."""
    folder = build_layers.build_layer(build_layers.CORE, build_layers.requirements()[build_layers.CORE])
    assert folder == synth.layer_dirs["core"]
    return folder / "python"


def test_api_code_plus_core_layer_is_at_most_5_mb_zipped(synth: Synth, core_site: Path) -> None:
    # The functions asset leaves out __pycache__ (infra/api.py shared_code); the layer ships its bytecode.
    code = zipped_size(FUNCTIONS_DIR, with_bytecode=False)
    layer = zipped_size(core_site.parent, with_bytecode=True)
    print(f"functions asset {code / 1e6:.2f} MB + core layer {layer / 1e6:.2f} MB zipped")
    assert code + layer <= FIVE_MB


def _runtime_closure() -> set[str]:
    """Distributions the project needs at run time on Lambda, minus what the runtime provides."""
    provided = {canonicalize_name(n) for n in build_layers.RUNTIME_PROVIDED}
    project = build_layers._pyproject()["project"]
    pending = [Requirement(r) for r in project["dependencies"]]
    found: set[str] = set()
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        if name in provided or name in found:
            continue
        found.add(name)
        for text in metadata.requires(name) or []:
            needed = Requirement(text)
            markers = [{**LAMBDA_MARKERS, "extra": extra} for extra in requirement.extras or {""}]
            if needed.marker is None or any(Marker(str(needed.marker)).evaluate(m) for m in markers):
                pending.append(needed)
    return found


def test_core_layer_holds_exactly_the_runtime_dependencies(core_site: Path) -> None:
    # Given the distributions shipped in the layer,
    shipped = {
        canonicalize_name(re.sub(r"-[^-]+\.dist-info$", "", p.name)) for p in core_site.glob("*.dist-info")
    }
    # then they are the dependency closure of pyproject's runtime dependencies on Lambda,
    # without boto3/botocore/s3transfer (the runtime has them) nor anything only they need.
    assert shipped == _runtime_closure()
    assert (core_site / "datasets_core" / "__init__.py").is_file()
    for absent in ("pyarrow", "boto3", "botocore", "s3transfer"):
        assert not (core_site / absent).exists(), absent


def test_no_dependency_is_declared_that_nothing_imports() -> None:
    # pydantic-settings was shipped without any import of it; every declared runtime
    # dependency must be imported by the code that ships.
    sources = "\n".join(p.read_text() for p in build_layers.CORE_PACKAGE.rglob("*.py"))
    sources += "\n".join(p.read_text() for p in FUNCTIONS_DIR.rglob("*.py"))
    modules = {
        "aws-lambda-powertools": "aws_lambda_powertools",
        "pydantic": "pydantic",
        "boto3": "boto3",
        "simplejson": "simplejson",
        "google-re2": "re2",
        "msgspec": "msgspec",
    }
    for text in build_layers._pyproject()["project"]["dependencies"]:
        name = canonicalize_name(Requirement(text).name)
        assert name in modules, f"{name}: say which module it provides"
        assert re.search(rf"^\s*(from|import) {modules[name]}\b", sources, re.M), name


def test_nothing_a_function_imports_was_pruned_from_the_core_layer(core_site: Path) -> None:
    # The core layer leaves out parts of Powertools no function loads (build_layers.CORE_PRUNE);
    # every module any handler (or its lazy imports) loads must still be there.
    assert build_layers.imported_but_missing(core_site) == []
    assert not (core_site / "aws_lambda_powertools" / "utilities" / "kafka").exists()


def test_core_layer_is_built_for_lambda_arm64(core_site: Path) -> None:
    [extension] = (core_site / "pydantic_core").glob("_pydantic_core*.so")
    assert f"cpython-{build_layers.PYTHON_VERSION.replace('.', '')}-aarch64-linux-gnu" in extension.name


def _runtime_tag(synth: Synth) -> str:
    runtimes = {synth.function(name)["Properties"]["Runtime"] for name in synth.stack.functions}
    [runtime] = runtimes
    match = re.fullmatch(r"python(\d)\.(\d+)", runtime)
    assert match, runtime
    return f"cpython-{match.group(1)}{match.group(2)}"


def test_core_layer_ships_bytecode_for_the_runtime_python(synth: Synth, core_site: Path) -> None:
    # Given the runtime the template declares, and that interpreter's bytecode magic number,
    tag = _runtime_tag(synth)
    python = build_layers.runtime_python()
    magic = subprocess.run(
        [python, "-c", "import importlib.util; print(importlib.util.MAGIC_NUMBER.hex())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # then every module of ours and every module the functions import has its .pyc,
    ours = {p.relative_to(core_site).as_posix() for p in (core_site / "datasets_core").rglob("*.py")}
    imported = set(build_layers.imported_modules(core_site))
    assert len(imported) > 100 and "aws_lambda_powertools/event_handler/api_gateway.py" in imported
    missing = []
    for name in sorted(ours | imported):
        source = core_site / name
        # Ours beside its source (__pycache__); a dependency's module as bytecode alone.
        pyc = source.parent / "__pycache__" / f"{source.stem}.{tag}.pyc"
        if name not in ours:
            pyc = source.with_suffix(".pyc")
            assert not source.exists(), f"{name}: shipped as bytecode, its source is left out"
        if not pyc.is_file():
            missing.append(name)
            continue
        header = pyc.read_bytes()[:8]
        # for that Python, hash-based and unchecked (CDK zips assets with fixed file times).
        assert header[:4].hex() == magic, name
        assert int.from_bytes(header[4:8], "little") == 0b01, name
    assert not missing, missing
    # and no bytecode of another Python is shipped.
    assert {p.name.split(".")[-2] for p in core_site.rglob("__pycache__/*.pyc")} == {tag}
    for sourceless in core_site.rglob("*.pyc"):
        if "__pycache__" not in sourceless.parts:
            assert sourceless.read_bytes()[:4].hex() == magic, sourceless


def test_imports_layer_holds_only_pyarrow_compiled(synth: Synth) -> None:
    site = synth.layer_dirs["imports"] / "python"
    assert (site / "pyarrow").is_dir()
    assert not (site / "datasets_core").exists()
    assert not (site / "boto3").exists()
    assert (site / "pyarrow" / "__pycache__" / f"__init__.{_runtime_tag(synth)}.pyc").is_file()


def test_docs_layer_holds_only_the_files_the_docs_page_loads(synth: Synth) -> None:
    site = synth.layer_dirs["docs"] / "python"
    files = {p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file()}
    assert files == {"swagger_ui/static/swagger-ui-bundle.js", "swagger_ui/static/swagger-ui.css"}
    assert zipped_size(synth.layer_dirs["docs"], with_bytecode=True) < 1024 * 1024


def test_docs_asset_serves_exactly_the_docs_layer_files() -> None:
    from docs_asset.handler import ASSETS

    assert set(ASSETS) == set(build_layers.DOCS_FILES)


def test_core_layer_ships_the_whole_core_package(core_site: Path) -> None:
    stamp = json.loads((build_layers.BUILD_DIR / ".core.stamp.json").read_text())
    assert stamp["core_hash"] == build_layers.core_hash()
    package = build_layers.CORE_PACKAGE
    shipped = core_site / package.name
    assert {p.relative_to(package) for p in package.rglob("*.py") if "__pycache__" not in p.parts} == {
        p.relative_to(shipped) for p in shipped.rglob("*.py")
    }


def test_requirements_exclude_runtime_provided_packages() -> None:
    reqs = build_layers.requirements()
    names = {build_layers._name(r).lower() for layer in reqs.values() for r in layer}
    assert not names & {"boto3", "botocore"}
    assert names == {
        "aws-lambda-powertools",
        "pydantic",
        "simplejson",
        "google-re2",
        "msgspec",
        "pyarrow",
        "swagger-ui-py",
    }
    assert [build_layers._name(r) for r in reqs["imports"]] == ["pyarrow"]


def test_layer_is_rebuilt_only_when_requirements_or_core_package_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a build directory of its own and a pip and compiler that only record their calls,
    installs: list[list[str]] = []
    compiled: list[list[str]] = []

    def fake_pip(target: Path, reqs: list[str]) -> None:
        installs.append(reqs)
        (target / "marker.py").write_text("")

    monkeypatch.setattr(build_layers, "BUILD_DIR", tmp_path)
    monkeypatch.setattr(build_layers, "_pip_install", fake_pip)
    monkeypatch.setattr(build_layers, "_compile", lambda _site, files: compiled.append(files))
    monkeypatch.setattr(build_layers, "imported_modules", lambda _site: ["marker.py"])
    monkeypatch.setattr(build_layers, "core_hash", lambda: "hash-1")

    # When building twice with the same inputs, then pip runs once and the layer is complete.
    folder = build_layers.build_layer("core", ["pydantic==2.0"])
    build_layers.build_layer("core", ["pydantic==2.0"])
    assert installs == [["pydantic==2.0"]]
    assert (folder / "python" / "marker.py").is_file()
    assert (folder / "python" / "datasets_core" / "__init__.py").is_file()
    assert not (folder / ".core.stamp.json").exists()  # the stamp is not part of the asset
    # and the bytecode covers our package and the imported modules.
    assert "marker.py" in compiled[0] and "datasets_core/__init__.py" in compiled[0]

    # When the requirements change, or the core package does, then it rebuilds.
    build_layers.build_layer("core", ["pydantic==2.1"])
    monkeypatch.setattr(build_layers, "core_hash", lambda: "hash-2")
    build_layers.build_layer("core", ["pydantic==2.1"])
    assert len(installs) == 3

    # An imports layer does not depend on the core package.
    build_layers.build_layer("imports", ["pyarrow==1"])
    monkeypatch.setattr(build_layers, "core_hash", lambda: "hash-3")
    build_layers.build_layer("imports", ["pyarrow==1"])
    assert installs[3:] == [["pyarrow==1"]]
    assert not (tmp_path / "imports" / "python" / "datasets_core").exists()
