"""The README's "Try it" works as written: ``ordinaut up`` in one terminal (what ``make up``
runs), the second block's lines pasted into another, in the same directory."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.support import REPO, Cluster, free_port

pytestmark = pytest.mark.e2e


def try_it_blocks() -> list[str]:
    readme = (REPO / "README.md").read_text()
    section = readme.split("### Try it", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, re.S)


def test_the_try_it_lines_work_in_a_second_terminal(fresh_db: str, tmp_path: Path) -> None:
    first, second = try_it_blocks()
    assert first.split()[:2] == ["make", "up"]
    port = free_port()
    (tmp_path / ".venv").symlink_to(REPO / ".venv")
    env = {k: v for k, v in Cluster(fresh_db, tmp_path).env().items() if k != "ORDINAUT_HOME"}
    env.pop("ORDINAUT_BOOTSTRAP_ADMIN_TOKEN")  # as `make up`: the token of ./.ordinaut
    log = tmp_path / "up.log"
    with log.open("w") as handle:
        up = subprocess.Popen(
            [str(REPO / ".venv/bin/ordinaut"), "up", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while "Ordinaut is up." not in log.read_text():
            assert up.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        terminal = {k: v for k, v in env.items() if not k.startswith(("ORDINAUT_", "DATABASE"))}
        pasted = subprocess.run(
            ["bash", "-e", "-s"],
            input=second.replace("127.0.0.1:8080", f"127.0.0.1:{port}"),
            cwd=tmp_path,
            env=terminal,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(timeout=40)
    assert pasted.returncode == 0, pasted.stdout + pasted.stderr
    out = pasted.stdout
    assert "status:     succeeded" in out and '{"value": 42}' in out
    runs = [line for line in out.splitlines() if "succeeded" in line and " hello " in line]
    assert any(" manual " in line for line in runs), out
    assert (tmp_path / ".ordinaut" / "admin-token").exists()
