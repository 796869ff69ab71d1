"""An API function's deployed size: its zipped code asset plus the zipped core layer.

The layer is built as ``cdk synth`` builds it (``python -m infra.build_layers``, Lambda's
platform wheels); the code asset is the whole ``functions`` folder, as ``infra/api.py``
ships it to every function. Both are zipped in memory, as CDK zips a folder asset.
"""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

from . import report
from .report import Figure
from .stack import ROOT

TARGET_BYTES = 5 * 1024 * 1024
FUNCTIONS = ROOT / "functions"
CORE_LAYER = ROOT / "build" / "layers" / "core"


def _files(folder: Path, *, with_bytecode: bool) -> Iterator[Path]:
    # infra/api.py leaves caches out of the code asset; the layer ships its compiled bytecode.
    for path in sorted(folder.rglob("*")):
        if path.is_file() and (with_bytecode or "__pycache__" not in path.parts):
            yield path


def zipped_size(folder: Path, *, with_bytecode: bool = False) -> int:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in _files(folder, with_bytecode=with_bytecode):
            archive.write(path, path.relative_to(folder).as_posix())
    return len(buffer.getvalue())


def figures() -> list[Figure]:
    subprocess.run([sys.executable, "-m", "infra.build_layers"], cwd=ROOT, check=True, capture_output=True)
    code, layer = zipped_size(FUNCTIONS), zipped_size(CORE_LAYER, with_bytecode=True)
    if layer < 100_000:
        raise RuntimeError(f"the core layer zips to {layer} bytes: {CORE_LAYER} looks incomplete")
    if (CORE_LAYER / "python" / "pyarrow").exists():
        raise RuntimeError("pyarrow is in the core layer; it belongs to the import function's layer only")
    mib = 1024 * 1024
    return [
        report.at_most(
            "an API function's zipped code + core layer",
            round((code + layer) / mib, 2),
            TARGET_BYTES / mib,
            unit="MiB",
            note=f"code (functions/) {code / 1024:.0f} KiB + core layer {layer / mib:.2f} MiB "
            "with its bytecode; no pyarrow",
        )
    ]
