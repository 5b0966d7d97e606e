"""How run values read as text, shared by the CLI tables and the TUI (no heavy imports)."""
from __future__ import annotations

import time

STATUS_STYLE = {"queued": "yellow", "starting": "cyan", "running": "bold cyan", "completed": "green",
                "failed": "bold red", "killed": "magenta", "crashed": "bold red", "unknown": "dim", "pruned": "blue"}


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"


def elapsed(started: float | None, ended: float | None) -> str:
    """A run's running time so far (to now while it runs)."""
    if not started:
        return "-"
    return duration((ended or time.time()) - started)


def number(v: float | None) -> str:
    return "-" if v is None else f"{v:.4g}"


def group_label(sweep_id: int | None, study: str | None = None, trial: int | None = None) -> str:
    """The sweep a run belongs to ('3'), or its study and trial ('cats #4'); '' for neither."""
    if study is not None:
        return safe_text(f"{study} #{trial}")
    return str(sweep_id) if sweep_id else ""


def metric_group(key: str) -> str:
    """Curves that share a chart (the TUI's run screen, a report's figures): loss, val_loss,
    d_loss and g_loss are one 'loss' chart."""
    for prefix in ("val_", "train_", "test_", "d_", "g_", "source_", "target_", "eval/", "train/", "val/"):
        if key.startswith(prefix) and len(key) > len(prefix):
            return key[len(prefix):]
    return key


# -- user text, shown literally -------------------------------------------------------------
# Names, tags, commands, config values, log lines and file names can hold anything a user (or
# another user of a shared store) typed. They are shown as text: never parsed as markup (callers
# hand them to Rich/Textual as Text/Content, or print with markup off), and with control
# characters made visible, so an escape sequence (a colour change, an OSC 52 clipboard write, a
# cursor move) never reaches the terminal raw. C0 controls become their Unicode control pictures
# (ESC -> U+241B), DEL -> U+2421, C1 controls and other invisible format characters -> <U+XXXX>.
_PICTURES = {c: chr(0x2400 + c) for c in range(0x20)} | {0x7F: "\u2421"}


def safe_text(text: object, *, keep_newlines: bool = False) -> str:
    """`text` with every control character replaced by a visible placeholder.
    `keep_newlines` leaves line breaks (and tabs) alone: for logs and error texts shown as blocks."""
    s = str(text)
    if s.isprintable() and "\x1b" not in s:
        return s
    out = []
    for ch in s:
        o = ord(ch)
        if keep_newlines and ch in "\n\t":
            out.append(ch)
        elif o in _PICTURES:
            out.append(_PICTURES[o])
        elif 0x80 <= o < 0xA0 or (not ch.isprintable() and ch != " "):
            out.append(f"<U+{o:04X}>")
        else:
            out.append(ch)
    return "".join(out)


# -- --json ----------------------------------------------------------------------------------
def finite_or_none(value):
    """JSON has no NaN or infinity: `--json` prints them as null (a loss of inf, an empty score)."""
    import math

    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    return value


def strict_json(value, **kw) -> str:
    """Strict JSON (RFC 8259) for `--json`: non-finite numbers become null, never NaN/Infinity."""
    import json

    return json.dumps(finite_or_none(value), allow_nan=False, default=str, **kw)
