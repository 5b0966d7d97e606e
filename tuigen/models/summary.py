"""An architecture summary of any nn.Module: one row per submodule, as a readable table.

Researchers are asked to draw their architecture; this is the text version that goes into a
run's record. Output shapes come from forward hooks during one no-grad pass on example inputs,
so they are the real shapes, whatever the model's forward does.
"""
from __future__ import annotations

import torch
from torch import nn


def _first_shape(output) -> tuple[int, ...] | None:
    """Shape of a tensor output, or of the first tensor inside a tuple/list/dict output."""
    if isinstance(output, torch.Tensor):
        return tuple(output.shape)
    if isinstance(output, dict):
        output = list(output.values())
    if isinstance(output, (tuple, list)):
        for item in output:
            shape = _first_shape(item)
            if shape is not None:
                return shape
    return None


def summarize(model: nn.Module, *example_inputs, depth: int = 2) -> list[dict]:
    """Rows of {'name', 'type', 'output_shape', 'params'} for modules up to `depth` levels of nesting,
    found with forward hooks during one no-grad forward pass on example_inputs (model mode restored).

    The first row is the whole model (name '', depth 0); then submodules in registration order,
    so children follow their parent. Each row also has 'depth' and 'trainable'. 'params' counts
    a module's parameters including its children's; 'output_shape' is a tuple of ints from the
    module's first call (a module called several times keeps its first shape), or None for
    containers that are never called (nn.ModuleList) and modules the pass did not reach.
    The pass runs in eval mode, so BatchNorm statistics and dropout are left untouched.
    """
    if depth < 0:
        raise ValueError(f"depth must be >= 0, got {depth}")
    entries = [(name, module, name.count(".") + 1 if name else 0)
               for name, module in model.named_modules() if (name.count(".") + 1 if name else 0) <= depth]
    shapes: dict[str, tuple[int, ...] | None] = {}

    def hook_for(name: str):
        def hook(module, args, output):
            if name not in shapes:  # first call only
                shapes[name] = _first_shape(output)
        return hook

    modes = {m: m.training for m in model.modules()}
    handles = [module.register_forward_hook(hook_for(name)) for name, module, _ in entries]
    try:
        model.eval()
        with torch.no_grad():
            model(*example_inputs)
    finally:
        for handle in handles:
            handle.remove()
        for m, training in modes.items():
            m.training = training

    rows = []
    for name, module, d in entries:
        # Counted after the pass, so lazy modules have materialised their parameters.
        params = list(module.parameters())
        rows.append({"name": name, "type": type(module).__name__, "output_shape": shapes.get(name),
                     "params": sum(p.numel() for p in params),
                     "trainable": sum(p.numel() for p in params if p.requires_grad), "depth": d})
    return rows


def _shape_text(shape) -> str:
    if shape is None:
        return "-"
    return "(" + ", ".join(str(s) for s in shape) + ")"


def format_summary(rows: list[dict], total_params: int | None = None) -> str:
    """A fixed-width text table (name, type, output shape, params) ending with totals (total and trainable parameters).

    Names are indented two spaces per level of nesting and show only their last component (the
    full path is implied by the indentation). A row's params include its children's. Totals come
    from `total_params` if given, else from the whole-model row, else the shallowest rows.
    """
    def depth_of(row):
        return row.get("depth", row["name"].count(".") + 1 if row["name"] else 0)

    table = [("Layer", "Type", "Output shape", "Params")]
    for row in rows:
        d = depth_of(row)
        label = row["name"].rsplit(".", 1)[-1] if row["name"] else row["type"]
        table.append(("  " * d + label, row["type"], _shape_text(row["output_shape"]), f"{row['params']:,}"))
    widths = [max(len(r[i]) for r in table) for i in range(4)]

    def line(r):
        return (f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]:>{widths[3]}}").rstrip()

    rule = "-" * (sum(widths) + 6)
    lines = [line(table[0]), rule] + [line(r) for r in table[1:]] + [rule]

    top = min((depth_of(r) for r in rows), default=0)
    shallow = [r for r in rows if depth_of(r) == top]
    total = total_params if total_params is not None else sum(r["params"] for r in shallow)
    trainable = sum(r.get("trainable", r["params"]) for r in shallow)
    lines.append(f"Total params: {total:,}")
    lines.append(f"Trainable params: {trainable:,}")
    lines.append(f"Non-trainable params: {max(total - trainable, 0):,}")
    return "\n".join(lines)
