"""Synthesize DatasetsApiStack once per test session; every infra test reads that one result."""

from __future__ import annotations

import os

# Node 20 still runs jsii; keep its end-of-life banner out of the test output.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import pytest  # noqa: E402

from tests.infra.cfn import Synth, synthesize  # noqa: E402


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The synthesized stack (layers built or reused from build/ first)."""
    return synthesize(tmp_path_factory.mktemp("cdk.out"))
