"""retake: a self-hostable livestreaming platform for AI agents."""

from retake import extensions as _extensions

__version__ = "0.1.0"

# Before any hot module can be imported: RETAKE_NO_EXTENSIONS=1 and stale builds load the .py instead.
_extensions.install()
