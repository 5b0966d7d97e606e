"""End to end, as a person sees it: a real tiny run, the TUI in tmux, the live step counter
read from the screen advancing, then the final status."""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


def capture(session: str) -> str:
    return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout


STEPS = 3000  # several seconds even on a fast, idle CPU: the store sees a run's step once a second


def test_tui_shows_a_real_run_advancing_and_completing(tmp_path, cli):
    code, out, err = cli("run", "classifier", "--dataset", "digits", "--width", "8", "--batch_size", "32",
                         "--train_num_steps", str(STEPS), "--eval_every", "500", "--json")
    assert code == 0, err
    run_id = json.loads(out)["id"]
    session = f"tuigen-e2e-{os.getpid()}"
    env = f"TUIGEN_DB={shlex.quote(os.environ['TUIGEN_DB'])} TUIGEN_IMAGES=halfcell TERM=xterm-256color"
    cmd = f"cd {shlex.quote(str(tmp_path))} && {env} {shlex.quote(sys.executable)} -m tuigen"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "140", "-y", "30", cmd], check=True)
    try:
        pattern = re.compile(rf"^\s*{run_id}\s+classifier-{run_id}.*?(\d+)/{STEPS}", re.M)
        seen: list[int] = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            screen = capture(session)
            m = pattern.search(screen)
            if m:
                seen.append(int(m.group(1)))
            if re.search(rf"^\s*{run_id}\s+classifier-{run_id}\s+classifier\s+digits\s+completed", screen, re.M):
                break
            time.sleep(0.3)
        else:
            raise AssertionError(f"the TUI never showed run {run_id} completed; last screen:\n{screen}")
        advancing = sorted(set(s for s in seen if s < STEPS))
        assert len(advancing) >= 2, f"step counter did not advance on screen: {seen}"
        assert seen == sorted(seen), "the step counter went backwards"
        assert f"{STEPS}/{STEPS}" in screen
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
