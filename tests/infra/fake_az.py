"""A stand-in for the az CLI (a third party's command) for the azd hooks' tests."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def fake_az(tmp_path: Path, script: str) -> tuple[dict[str, str], Path]:
    """Install `script` as `az` first on PATH. Returns the environment to run a hook with
    and the state folder the script reads its answers from and records calls into."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    az = bin_dir / "az"
    az.write_text(script)
    az.chmod(az.stat().st_mode | stat.S_IEXEC)
    state = tmp_path / "state"
    state.mkdir()
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "FAKE_AZ_STATE": str(state)}, state
