"""One declaration per experiment config.

Each experiment kind declares a plain dataclass whose fields are made with `knob(...)`.
From that single declaration come the CLI flags (`tuigen run KIND --help`), validation
with messages that name the flag, the JSON stored with a run, and (later) the TUI form
and the leaderboard's hyperparameter columns.

This module must stay light: the CLI and the TUI import it, and neither may pull torch.
"""
from __future__ import annotations

import dataclasses
import json
import math
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence


from .errors import InputError


class ConfigError(InputError):
    """A config value is invalid; the message names the flag and what was expected."""


MAX_INT = 2 ** 31 - 1  # the largest integer the store's columns hold (32-bit on PostgreSQL): steps, sizes


def whole_number(value: Any) -> int | None:
    """`value` as an int when it is a whole, finite number within +-MAX_INT, else None
    (a step of nan or 1e19 in a script's output is skipped, not stored)."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(f) or f != int(f) or not -MAX_INT <= f <= MAX_INT:
        return None
    return int(f)


def knob(
    default: Any,
    help: str,
    *,
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | None = None,
    choices: Sequence[Any] | None = None,
    check: Callable[[Any], str | None] | None = None,
    group: str = "",
) -> Any:
    """A config field with its help text and the rule a valid value follows.

    `check(value)` may return an error sentence for rules that bounds cannot say.
    """
    meta = dict(help=help, gt=gt, ge=ge, lt=lt, le=le, choices=choices, check=check, group=group)
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Knob:
    """Everything known about one config field, read from the dataclass."""

    name: str
    type: type
    default: Any
    help: str
    gt: float | None
    ge: float | None
    lt: float | None
    le: float | None
    choices: tuple | None
    check: Callable[[Any], str | None] | None
    group: str

    @property
    def flag(self) -> str:
        return "--" + self.name

    def bounds_text(self) -> str:
        parts = []
        for op, v in (("> ", self.gt), (">= ", self.ge), ("< ", self.lt), ("<= ", self.le)):
            if v is not None:
                parts.append(op + _fmt(v))
        if self.choices:
            parts.append("one of " + ", ".join(_fmt(c) for c in self.choices))
        return ", ".join(parts)


def knobs(cls: type) -> list[Knob]:
    """The fields of a config dataclass, in declaration order."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        m = f.metadata
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        choices = tuple(m["choices"]) if m.get("choices") else None
        out.append(Knob(f.name, hints[f.name], default, m.get("help", ""), m.get("gt"), m.get("ge"),
                        m.get("lt"), m.get("le"), choices, m.get("check"), m.get("group", "")))
    return out


def ordered_knobs(cls: type) -> list[Knob]:
    """Knobs as people see them (flags, forms): the kind's own first, runtime ones last."""
    return sorted(knobs(cls), key=lambda k: k.group == "runtime")


def _fmt(v: Any) -> str:
    if isinstance(v, tuple):
        return "(" + ",".join(str(x) for x in v) + ")"
    if isinstance(v, float) and v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5):
        return f"{v:g}"
    return str(v)


def format_value(v: Any) -> str:
    """How a value is shown to people (CLI defaults, tables)."""
    return _fmt(v)


def _base(tp: Any) -> Any:
    """Strip Optional[...] to its inner type."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, getattr(__import__("types"), "UnionType", ())) and type(None) in args:
        return next(a for a in args if a is not type(None))
    return tp


def parse_value(k: Knob, raw: Any) -> Any:
    """Turn a string (from the CLI or a form) or a JSON value into the knob's type."""
    tp = _base(k.type)
    origin = typing.get_origin(tp)
    try:
        if raw is None:
            return None
        if tp is bool:
            if isinstance(raw, bool):
                return raw
            s = str(raw).strip().lower()
            if s in ("1", "true", "yes", "on"):
                return True
            if s in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if tp is int:
            if isinstance(raw, bool):
                raise ValueError
            if isinstance(raw, float) and raw.is_integer():
                return int(raw)
            if isinstance(raw, str) and "e" in raw.lower():  # allow 1e4 for step counts
                f = float(raw)
                if not f.is_integer():
                    raise ValueError
                return int(f)
            return int(raw)
        if tp is float:
            if isinstance(raw, bool):
                raise ValueError
            return float(raw)
        if tp is str:
            return str(raw)
        if origin is tuple:
            inner = typing.get_args(tp)[0]
            if isinstance(raw, str):
                items = [x for x in raw.strip("()[] ").replace(" ", "").split(",") if x]
            else:
                items = list(raw)
            return tuple(inner(x) for x in items)
    except (TypeError, ValueError):
        pass
    raise ConfigError(f"{k.flag} expects {_type_name(tp)}, got {raw!r}")


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is tuple:
        return f"a comma-separated list of {typing.get_args(tp)[0].__name__} like 1,2,4"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(tp, str(tp))


def check_value(k: Knob, v: Any) -> None:
    """Raise ConfigError naming the flag when v breaks the knob's rule."""
    if v is None:
        return
    values = v if isinstance(v, tuple) else (v,)
    for x in values:
        if isinstance(x, int) and not isinstance(x, bool) and abs(x) > MAX_INT:
            raise ConfigError(f"{k.flag} must be <= {MAX_INT} (what the store can hold), got {_fmt(v)}")
        if isinstance(x, float) and not math.isfinite(x):
            raise ConfigError(f"{k.flag} must be a finite number, got {_fmt(v)}")
        for op, bound, ok in (("> ", k.gt, lambda a, b: a > b), (">= ", k.ge, lambda a, b: a >= b),
                              ("< ", k.lt, lambda a, b: a < b), ("<= ", k.le, lambda a, b: a <= b)):
            if bound is not None and not ok(x, bound):
                raise ConfigError(f"{k.flag} must be {op}{_fmt(bound)}, got {_fmt(v)}")
    if k.choices and v not in k.choices:
        raise ConfigError(f"{k.flag} must be one of {', '.join(_fmt(c) for c in k.choices)}; got {_fmt(v)}")
    if k.check:
        msg = k.check(v)
        if msg:
            raise ConfigError(f"{k.flag}: {msg}")


def build(cls: type, values: dict[str, Any] | None = None, base: Any = None) -> Any:
    """Make a validated config of `cls` from raw values (strings or JSON), over `base` or defaults.

    Unknown names are an error that lists the valid ones.
    """
    values = dict(values or {})
    ks = {k.name: k for k in knobs(cls)}
    unknown = sorted(set(values) - set(ks))
    if unknown:
        raise ConfigError(f"unknown option --{unknown[0]} for {cls.__name__}; "
                          f"valid options: {', '.join('--' + n for n in ks)}")
    current = dataclasses.asdict(base) if base is not None else {k.name: k.default for k in ks.values()}
    for name, raw in values.items():
        current[name] = parse_value(ks[name], raw)
    for name, k in ks.items():
        if isinstance(current.get(name), list):  # JSON round-trips tuples as lists
            current[name] = tuple(current[name])
        check_value(k, current[name])
    cfg = cls(**current)
    validate = getattr(cfg, "validate", None)
    if validate:  # rules that involve several fields
        msg = validate()
        if msg:
            raise ConfigError(msg)
    return cfg


def to_json(cfg: Any) -> str:
    return json.dumps(dataclasses.asdict(cfg), sort_keys=False)


def from_json(cls: type, text: str | dict) -> Any:
    """Load a stored config; fields added since it was stored take their defaults."""
    data = json.loads(text) if isinstance(text, str) else dict(text)
    names = {f.name for f in dataclasses.fields(cls)}
    return build(cls, {k: v for k, v in data.items() if k in names})


def add_arguments(parser: Any, cls: type) -> None:
    """Add one `--name` flag per knob to an argparse parser (values stay raw strings;
    `build` parses and validates them so errors read the same from the CLI and the TUI)."""
    groups: dict[str, Any] = {}
    for k in ordered_knobs(cls):
        g = groups.get(k.group)
        if g is None:
            g = groups[k.group] = parser.add_argument_group(f"{k.group} options" if k.group else f"{cls.__name__} options")
        rule = k.bounds_text()
        help_text = f"{k.help} (default: {_fmt(k.default)}{'; ' + rule if rule else ''})"
        g.add_argument(k.flag, dest=f"cfg__{k.name}", default=None, metavar=_metavar(k),
                       help=help_text.replace("%", "%%"))


def _metavar(k: Knob) -> str:
    tp = _base(k.type)
    if k.choices:
        return "{" + ",".join(_fmt(c) for c in k.choices) + "}"
    if typing.get_origin(tp) is tuple:
        return "A,B,.."
    return {int: "INT", float: "X", bool: "BOOL", str: "TEXT"}.get(tp, "VALUE")


def values_from_args(ns: Any) -> dict[str, str]:
    """The knob values a user actually typed on the command line."""
    return {k[len("cfg__"):]: v for k, v in vars(ns).items() if k.startswith("cfg__") and v is not None}
