"""The Textual TUI. Reads the store and sends signals; never trains, never imports torch
(a test checks it), so it starts fast and a frozen UI can never hurt a run."""
