"""``datasets-admin`` argument handling and error reporting (no AWS: nothing is reachable)."""

from __future__ import annotations

import socket

import pytest

from datasets_core import admin, auth


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """``main`` points boto3 at its target through the environment: restore it afterwards."""
    for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_PORT", str(closed_port()))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unknown_scope_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code = admin.main(["create-key", "--workspace", "w", "--scopes", "datasets:read,datasets:all"])
    err = capsys.readouterr().err
    assert code == 2
    assert "unknown scope(s): datasets:all" in err and "Traceback" not in err
    assert all(scope in err for scope in auth.SCOPES)


def test_workspace_must_be_a_plain_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert admin.main(["list-keys", "--workspace", "a/b"]) == 2
    assert "invalid workspace" in capsys.readouterr().err


def test_set_plan_needs_a_limit(capsys: pytest.CaptureFixture[str]) -> None:
    assert admin.main(["set-plan", "--workspace", "w"]) == 2
    err = capsys.readouterr().err
    assert all(flag in err for flag in ("--max-rows", "--max-datasets", "--rate-limit", "--rate-window"))
    assert admin.main(["set-plan", "--workspace", "w", "--max-rows", "-1"]) == 2
    assert admin.main(["set-plan", "--workspace", "w", "--rate-limit", "0"]) == 2
    assert admin.main(["set-plan", "--workspace", "w", "--rate-window", "3601"]) == 2


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert admin.main([]) == 2
    assert admin.main(["--help"]) == 0
    assert "create-key" in capsys.readouterr().out


def test_unreachable_local_stack_is_one_line_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    code = admin.main(["list-keys", "--workspace", "w"])
    err = capsys.readouterr().err
    assert code == 1
    assert "cannot reach the local stack" in err and "make run" in err and "Traceback" not in err


def test_key_id_accepts_what_an_operator_may_paste() -> None:
    new = auth.generate_key()
    assert admin.key_id_of(new.key_id) == new.key_id
    assert admin.key_id_of(f"dsk_{new.key_id}") == new.key_id
    assert admin.key_id_of(new.plaintext) == new.key_id
    assert admin.key_id_of("bk0123456789abcd") == "bk0123456789abcd"  # a bootstrap key's id
