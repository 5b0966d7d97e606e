"""Sampling and analysis from trained runs: sample sets, class grids, denoising strips,
eta grids, noise interpolation and image fusion. Imports torch; used by the CLI verbs
`tuigen sample / grid / strip / eta-grid / interp / fuse`, never by the TUI process."""
