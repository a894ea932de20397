"""Vendors' size limits: a message that is too long is shortened to fit, never refused.

A vendor refuses an oversize message outright (WeCom 40058, DingTalk 460101), and a refused alert reaches
nobody, so every channel shortens before sending. What is kept: the head (the first lines say what to do
and for whom) and the tail when it holds the one-tap links; the middle (an explanation, an operator's
long template) gives way, marked with an ellipsis.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

MARKER = "…"


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def cut_utf8(text: str, max_bytes: int) -> str:
    """The longest prefix of ``text`` that is at most ``max_bytes`` in UTF-8 (never half a character)."""
    if max_bytes <= 0:
        return ""
    return text.encode("utf-8")[:max_bytes].decode("utf-8", "ignore")


def shorten(text: str, max_bytes: int) -> str:
    """``text`` in at most ``max_bytes`` of UTF-8: unchanged when it fits, else its head and its trailing
    lines of links (when they take at most half the room) around an ellipsis."""
    if utf8_len(text) <= max_bytes:
        return text
    lines = text.split("\n")
    start = len(lines)
    while start > 0 and ("://" in lines[start - 1] or not lines[start - 1].strip()):
        start -= 1
    tail = "\n".join(lines[start:]).strip("\n")
    joint = f"{MARKER}\n\n"
    if tail and "://" in tail and utf8_len(tail) + utf8_len(joint) <= max_bytes // 2:
        room = max_bytes - utf8_len(tail) - utf8_len(joint)
        return cut_utf8("\n".join(lines[:start]), room).rstrip() + joint + tail
    return cut_utf8(text, max_bytes - utf8_len(MARKER)).rstrip() + MARKER


def dump(body: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON, as the vendors count bytes (Chinese as 3 bytes, not a 6-byte escape)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def fit_json(build: Callable[[str], Mapping[str, Any]], text: str, max_bytes: int) -> bytes:
    """The JSON body ``build(text)`` with ``text`` shortened until the whole body is at most ``max_bytes``
    (JSON escaping makes the body grow by more than the text, so it is measured, not computed)."""
    body = dump(build(text))
    while len(body) > max_bytes:
        if not text:
            raise ValueError(f"the message does not fit in {max_bytes} bytes even without its text")
        overflow = len(body) - max_bytes
        shorter = shorten(text, max(0, utf8_len(text) - overflow))
        text = shorter if utf8_len(shorter) < utf8_len(text) else ""
        body = dump(build(text))
    return body
