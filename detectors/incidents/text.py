"""Text hygiene shared by the classifier, the urgency rules and the merger.

Reports arrive from phones, WeChat mini-programs and operators' copy-paste: full-width
letters and digits, emoji, stray control characters, even lone surrogates from bytes that
were decoded badly. Everything goes through :func:`clean` first.
"""

from __future__ import annotations

import re
import unicodedata

MAX_CHARS = 2000
"""Only the first 2000 characters are read (the incident event schema allows no more)."""

_WHITESPACE = re.compile(r"\s+")
_MEANINGFUL = re.compile(r"[0-9A-Za-z\u3400-\u9fff\uf900-\ufaff]")
_DIGITS = re.compile(r"[0-9]+")
_NOT_WORD = re.compile(r"[^0-9a-z\u3400-\u9fff\uf900-\ufaff]+")


def clean(text: str) -> str:
    """NFKC-normalised text without control characters or lone surrogates, whitespace collapsed.

    Raises ``ValueError`` for anything that is not a string; never raises for a string.
    """
    if not isinstance(text, str):
        raise ValueError(f"report text must be a string, not {type(text).__name__}")
    text = text[: MAX_CHARS * 2]
    # Lone surrogates (from bytes decoded with surrogateescape) cannot be encoded; drop them.
    text = text.encode("utf-8", "ignore").decode("utf-8")
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in text)
    return _WHITESPACE.sub(" ", text).strip()[:MAX_CHARS]


def has_content(text: str) -> bool:
    """Whether the text holds at least one letter, digit or Chinese character."""
    return bool(_MEANINGFUL.search(text))


def for_model(text: str) -> str:
    """What the classifier sees: cleaned, lower-case, numbers folded to ``0``."""
    return _DIGITS.sub("0", clean(text).lower())


def for_similarity(text: str) -> str:
    """What the merger compares: lower-case letters, digits and Chinese characters only."""
    return _NOT_WORD.sub("", clean(text).lower())
