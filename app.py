#!/usr/bin/env python3
"""CDK app: builds the Lambda layer folders (pip, no Docker), then synthesizes DatasetsApiStack.

Works offline and without an AWS account: ``make synth`` or ``.venv/bin/python app.py``.
Environment: STACK_NAME (default DatasetsApi), CDK_DEFAULT_ACCOUNT / CDK_DEFAULT_REGION
(optional; environment-agnostic stack without them), CDK_OUTDIR, NAG=1 to run cdk-nag's
AwsSolutions checks (synthesis fails on any unacknowledged finding).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
# The route table lives with the functions (functions/routes.py), as on Lambda.
for folder in (ROOT, ROOT / "functions"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
# Node 20 still runs jsii fine; keep its end-of-life banner out of every synth.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import aws_cdk as cdk  # noqa: E402

from infra.build_layers import build_all  # noqa: E402
from infra.stack import DatasetsApiStack, cdk_context  # noqa: E402


def main() -> None:
    layer_dirs = build_all()
    app = cdk.App(context=cdk_context(), outdir=os.environ.get("CDK_OUTDIR") or None)
    account, region = os.environ.get("CDK_DEFAULT_ACCOUNT"), os.environ.get("CDK_DEFAULT_REGION")
    env = cdk.Environment(account=account, region=region) if account or region else None
    DatasetsApiStack(app, os.environ.get("STACK_NAME", "DatasetsApi"), env=env, layer_dirs=layer_dirs)
    if os.environ.get("NAG") == "1":
        from cdk_nag import AwsSolutionsChecks

        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    app.synth()


if __name__ == "__main__":
    main()
