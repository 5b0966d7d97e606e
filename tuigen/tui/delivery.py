"""Handing a background worker's result to the UI thread.

A poll that finishes just after its screen was closed (the user pressed escape, or the app is
quitting) must not touch widgets that are already gone: that used to crash a closing app with
NoMatches. The result is simply dropped; the next screen polls afresh.
"""
from __future__ import annotations

from typing import Any, Callable

from textual._context import NoActiveAppError
from textual.dom import DOMNode


def deliver(node: DOMNode, fn: Callable[..., Any], *args: Any) -> None:
    """From a worker thread: call fn(*args) on the UI thread if `node` is still on screen then."""
    try:
        app = node.app
    except NoActiveAppError:  # the node has left the app altogether
        return

    def on_ui_thread() -> None:
        if node.is_attached and not node._pruning and not node._closing:  # private, but the only signal
            fn(*args)

    app.call_from_thread(on_ui_thread)
