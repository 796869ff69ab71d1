"""Layer contents and sizes: API functions (code + core layer) stay under 5 MB zipped, no pyarrow."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from infra import build_layers
from infra.api import FUNCTIONS_DIR
from tests.infra.cfn import Synth

FIVE_MB = 5 * 1024 * 1024


def zipped_size(folder: Path) -> int:
    """Bytes of ``folder`` deflated into a zip, as CDK ships assets (no caches)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                archive.write(path, path.relative_to(folder).as_posix())
    return len(buffer.getvalue())


def test_api_code_plus_core_layer_is_at_most_5_mb_zipped(synth: Synth) -> None:
    code, layer = zipped_size(FUNCTIONS_DIR), zipped_size(synth.layer_dirs["core"])
    print(f"functions asset {code / 1e6:.2f} MB + core layer {layer / 1e6:.2f} MB zipped")
    assert code + layer <= FIVE_MB


def test_core_layer_has_our_package_and_no_pyarrow_or_boto(synth: Synth) -> None:
    site = synth.layer_dirs["core"] / "python"
    assert (site / "datasets_core" / "__init__.py").is_file()
    assert (site / "aws_lambda_powertools").is_dir()
    assert (site / "pydantic").is_dir() and (site / "pydantic_settings").is_dir()
    for absent in ("pyarrow", "boto3", "botocore"):
        assert not (site / absent).exists(), absent
    assert not list(site.rglob("__pycache__"))


def test_core_layer_is_built_for_lambda_arm64_python_3_13(synth: Synth) -> None:
    site = synth.layer_dirs["core"] / "python"
    [extension] = (site / "pydantic_core").glob("_pydantic_core*.so")
    assert "cpython-313-aarch64-linux-gnu" in extension.name


def test_imports_layer_holds_only_pyarrow(synth: Synth) -> None:
    site = synth.layer_dirs["imports"] / "python"
    assert (site / "pyarrow").is_dir()
    assert not (site / "datasets_core").exists()
    assert not (site / "boto3").exists()


def test_docs_layer_holds_only_the_files_the_docs_page_loads(synth: Synth) -> None:
    site = synth.layer_dirs["docs"] / "python"
    files = {p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file()}
    assert files == {"swagger_ui/static/swagger-ui-bundle.js", "swagger_ui/static/swagger-ui.css"}
    assert zipped_size(synth.layer_dirs["docs"]) < 1024 * 1024


def test_docs_asset_serves_exactly_the_docs_layer_files() -> None:
    from docs_asset.handler import ASSETS

    assert set(ASSETS) == set(build_layers.DOCS_FILES)


def test_core_layer_ships_the_whole_core_package(synth: Synth) -> None:
    stamp = json.loads((build_layers.BUILD_DIR / ".core.stamp.json").read_text())
    if stamp["core_hash"] != build_layers.core_hash():
        pytest.skip("datasets_core was edited after the layer was built in this session")
    package = build_layers.CORE_PACKAGE
    shipped = synth.layer_dirs["core"] / "python" / package.name
    assert {p.relative_to(package) for p in package.rglob("*.py") if "__pycache__" not in p.parts} == {
        p.relative_to(shipped) for p in shipped.rglob("*.py")
    }


def test_requirements_exclude_runtime_provided_packages() -> None:
    reqs = build_layers.requirements()
    names = {build_layers._name(r).lower() for layer in reqs.values() for r in layer}
    assert not names & {"boto3", "botocore"}
    assert {"aws-lambda-powertools", "pydantic", "pydantic-settings"} <= names
    assert [build_layers._name(r) for r in reqs["imports"]] == ["pyarrow"]


def test_layer_is_rebuilt_only_when_requirements_or_core_package_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a build directory of its own and a pip that only records its calls,
    installs: list[list[str]] = []

    def fake_pip(target: Path, reqs: list[str]) -> None:
        installs.append(reqs)
        (target / "marker.py").write_text("")

    monkeypatch.setattr(build_layers, "BUILD_DIR", tmp_path)
    monkeypatch.setattr(build_layers, "_pip_install", fake_pip)
    monkeypatch.setattr(build_layers, "core_hash", lambda: "hash-1")

    # When building twice with the same inputs, then pip runs once and the layer is complete.
    folder = build_layers.build_layer("core", ["pydantic==2.0"])
    build_layers.build_layer("core", ["pydantic==2.0"])
    assert installs == [["pydantic==2.0"]]
    assert (folder / "python" / "marker.py").is_file()
    assert (folder / "python" / "datasets_core" / "__init__.py").is_file()
    assert not (folder / ".core.stamp.json").exists()  # the stamp is not part of the asset

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
