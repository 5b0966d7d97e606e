"""Report tables computed from the store (torch-free, for the CLI and the TUI)."""
from __future__ import annotations

from .dann_table import ROWS, Cell, dann_table, dann_table_dict, format_dann_table

__all__ = ["ROWS", "Cell", "dann_table", "dann_table_dict", "format_dann_table"]
