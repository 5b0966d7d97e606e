"""tuigen: a terminal experiment manager for generative-model research.

Public logging API for your own scripts: `tuigen.init(...) -> Run`, `run.log(...)`,
`run.log_image(...)`, `run.finish()`.
"""
__version__ = "0.1.0"


def init(*args, **kwargs):
    """Start a recorded run; see tuigen.tracking.init."""
    from .tracking import init as _init

    return _init(*args, **kwargs)


__all__ = ["init", "__version__"]
