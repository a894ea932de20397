"""Shortening to a vendor's limit: whole characters, the head kept, the links at the end kept."""

from __future__ import annotations

import json

import pytest

from alerts.channels.limits import cut_utf8, fit_json, shorten, utf8_len

LINKS = "[确认收到](https://sw.example/a/ack)\n[已处理](https://sw.example/a/res)"


def test_a_text_that_fits_is_unchanged() -> None:
    assert shorten("请电话确认", 15) == "请电话确认"


@pytest.mark.parametrize("limit", [7, 8, 9, 100, 101, 102])
def test_never_half_a_character(limit: int) -> None:
    text = shorten("很长" * 200, limit)
    assert utf8_len(text) <= limit and text.endswith("…")
    assert cut_utf8("很长", 4) == "很"


def test_the_head_and_the_links_survive_the_middle_goes() -> None:
    text = "**请电话或上门确认**\n\n" + "说明。" * 2000 + "\n\n" + LINKS
    short = shorten(text, 1000)
    assert utf8_len(short) <= 1000
    assert short.startswith("**请电话或上门确认**") and short.endswith(LINKS) and "…" in short


def test_links_taking_most_of_the_room_are_cut_like_the_rest() -> None:
    short = shorten("头" * 50 + "\n" + LINKS, 60)
    assert utf8_len(short) <= 60 and short.startswith("头")


def test_fit_json_measures_the_escaped_body() -> None:
    quotes = '"\\' * 3000  # each character doubles when JSON-escaped
    body = fit_json(lambda text: {"msgtype": "text", "text": {"content": text}}, quotes, 2000)
    assert len(body) <= 2000 and json.loads(body)["text"]["content"].endswith("…")


def test_fit_json_refuses_when_even_an_empty_text_is_too_big() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        fit_json(lambda text: {"title": "x" * 100, "text": text}, "abc", 50)
