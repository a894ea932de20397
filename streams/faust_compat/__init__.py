"""Everything that reaches into Faust's internals lives in this folder, written for one exact
faust-streaming version (``FAUST_VERSION``, pinned in pyproject.toml). On any other version the worker
refuses to start (``check_version``) rather than run with fixes that silently do nothing."""

from __future__ import annotations

import faust

FAUST_VERSION = "0.15.3"


class FaustVersionError(RuntimeError):
    """The installed faust-streaming is not the version these fixes were written for."""


def check_version(installed: str | None = None) -> None:
    """Raise ``FaustVersionError`` (one line, for the user) unless Faust is ``FAUST_VERSION``."""
    installed = faust.__version__ if installed is None else installed
    if installed != FAUST_VERSION:
        raise FaustVersionError(
            f"faust-streaming {installed} is installed, but the worker's fixes to Faust's internals are "
            f"written for {FAUST_VERSION} exactly (streams/faust_compat/); install faust-streaming=={FAUST_VERSION}"
        )


def apply_fixes() -> None:
    """Check the version, then install the fixes (idempotent)."""
    from streams.faust_compat import fetch_loop

    check_version()
    fetch_loop.apply()
