"""End to end, as a person sees it: a real tiny run, the TUI in tmux, the live step counter
read from the screen advancing, then the final status."""
from __future__ import annotations

import json
import re
import shutil
import time

import pytest

from tmux_screen import TmuxTUI

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


STEPS = 3000  # several seconds even on a fast, idle CPU: the store sees a run's step once a second


def test_tui_shows_a_real_run_advancing_and_completing(tmp_path, cli):
    code, out, err = cli("run", "classifier", "--dataset", "digits", "--width", "8", "--batch_size", "32",
                         "--train_num_steps", str(STEPS), "--eval_every", "500", "--json")
    assert code == 0, err
    run_id = json.loads(out)["id"]
    tui = TmuxTUI(tmp_path, 140, 30)
    try:
        pattern = re.compile(rf"^\s*{run_id}\s+classifier-{run_id}.*?(\d+)/{STEPS}", re.M)
        seen: list[int] = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            screen = tui.text()
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
        tui.close()
