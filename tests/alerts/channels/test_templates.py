"""Message templates: every event in both languages, privacy per audience, overrides and their errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerts.channel_batches import DIGEST_EVENT as OUTBOX_DIGEST_EVENT
from alerts.channels import wording
from alerts.channels.base import Audience
from alerts.channels.email import EmailChannel, SmtpSettings
from alerts.channels.robots import DingTalkRobot, FeishuBot, WeComRobot
from alerts.channels.templates import (
    ALL_EVENT_TYPES,
    CHANNEL_FAMILIES,
    DIGEST_EVENT,
    MAX_DIGEST_ITEMS,
    TemplateError,
    Templates,
    building_of,
    check_templates,
    mask_name,
    message_context,
    sample_notification,
)
from alerts.channels.wecom_app import WeComApp
from alerts.statuses import Outcome
from shouwang.events import AlertKind, Severity
from tests.alerts.channels.chat_helpers import ADDRESS, EXPLANATION, NAME, SERIES, digest, notification

GROUP_FAMILIES = [(t, f) for t, f, audience in CHANNEL_FAMILIES if audience == "group"]
PERSON_FAMILIES = [(t, f) for t, f, audience in CHANNEL_FAMILIES if audience == "person"]


def render(
    event: str = "alert.raised",
    *,
    channel: str = "dingtalk_robot",
    family: str = "markdown",
    audience: Audience = "group",
    language: str = "zh-CN",
    templates: Templates | None = None,
) -> str:
    note = digest(language=language) if event == DIGEST_EVENT else notification(event, language=language)
    rendered = (templates or Templates()).render(note, channel_type=channel, family=family, audience=audience)
    return f"{rendered.title}\n{rendered.body}\n{rendered.html or ''}"


def test_the_digest_is_the_outboxs() -> None:
    assert DIGEST_EVENT == OUTBOX_DIGEST_EVENT


def test_every_kind_severity_event_and_outcome_has_words_in_both_languages() -> None:
    for words, keys in (
        (wording.KIND_LABELS, [kind.value for kind in AlertKind]),
        (wording.ADVICE, [kind.value for kind in AlertKind]),
        (wording.SEVERITY_LABELS, [severity.value for severity in Severity]),
        (wording.EVENT_LABELS, list(ALL_EVENT_TYPES)),
        (wording.OUTCOME_LABELS, [outcome.value for outcome in Outcome]),
    ):
        for key in keys:
            zh, en = words[key]
            assert zh and en and zh != en, key


def test_the_channels_audiences_are_the_templates() -> None:
    classes = {c.type: c.audience for c in (DingTalkRobot, WeComRobot, FeishuBot, WeComApp, EmailChannel)}
    assert {(t, audience) for t, _family, audience in CHANNEL_FAMILIES} == set(classes.items())


def test_every_shipped_template_renders_for_every_channel_event_and_language() -> None:
    # both languages; with and without a household and links as staff read it, and as a family reads it
    assert check_templates(Templates()) == len(CHANNEL_FAMILIES) * len(ALL_EVENT_TYPES) * 2 * 3


@pytest.mark.parametrize("event", ALL_EVENT_TYPES)
@pytest.mark.parametrize("language", ["zh-CN", "en"])
@pytest.mark.parametrize(("channel", "family"), GROUP_FAMILIES)
def test_a_group_never_reads_the_full_name_the_address_or_the_water_use(
    event: str, language: str, channel: str, family: str
) -> None:
    text = render(event, channel=channel, family=family, language=language)
    for private in (NAME, ADDRESS, "莲花路", "501", "usage_hourly_l", str(SERIES), EXPLANATION, "07:20", "她在家"):
        assert private not in text
    # A check-in asks the resident of their own home; the monthly report is about a community, no home.
    if event not in {"endpoint.ping", "alert.check_in", "report.monthly"}:
        assert "王**" in text and "3栋" in text and "FT-12-3" in text


@pytest.mark.parametrize(("channel", "family"), PERSON_FAMILIES)
def test_a_person_reads_the_name_the_address_and_the_explanation(channel: str, family: str) -> None:
    text = render(channel=channel, family=family, audience="person")
    assert NAME in text and ADDRESS in text and EXPLANATION in text
    assert "usage_hourly_l" not in text


@pytest.mark.parametrize("language", ["zh-CN", "en"])
@pytest.mark.parametrize(("channel", "family"), PERSON_FAMILIES)
def test_a_check_in_asks_the_resident_and_offers_the_answers(channel: str, family: str, language: str) -> None:
    text = render("alert.check_in", channel=channel, family=family, language=language, audience="person")
    question = "今天还没看到用水，您还好吗？" if language == "zh-CN" else "Are you well?"
    assert question in text
    assert EXPLANATION not in text and "usage_hourly_l" not in text  # the question, not the detector's reasoning


def test_what_to_do_comes_first() -> None:
    note = notification()
    body = Templates().render(note, channel_type="wecom_robot", family="text", audience="group").body
    assert body.splitlines()[0] == "请电话或上门确认老人是否安好"
    body = (
        Templates()
        .render(notification(language="en"), channel_type="wecom_robot", family="text", audience="group")
        .body
    )
    assert body.splitlines()[0] == "Call or visit to check the resident is well"


def test_english_for_any_english_tag_chinese_otherwise() -> None:
    assert render(language="en-GB").startswith("[high] No water use for a long time")
    assert render(language="fr").startswith("【高】长时间未用水")


def test_a_group_override_cannot_reach_private_variables(tmp_path: Path) -> None:
    (tmp_path / "markdown.zh-CN.j2").write_text(
        "{% block title %}{{ name }}{% endblock %}"
        "{% block body %}{{ address }}|{{ facts }}|{{ explanation }}{% endblock %}"
    )
    text = render(templates=Templates(tmp_path))
    assert text == "王**\nNone|{}|None\n"


def test_an_override_wins_over_the_shipped_template_most_specific_first(tmp_path: Path) -> None:
    (tmp_path / "markdown.zh-CN.j2").write_text("{% block title %}家族{% endblock %}{% block body %}通用{% endblock %}")
    (tmp_path / "dingtalk_robot.alert.resolved.zh-CN.j2").write_text(
        "{% block title %}钉钉解除{% endblock %}{% block body %}{{ outcome_label }}{% endblock %}"
    )
    templates = Templates(tmp_path)
    assert render(templates=templates).startswith("家族\n通用")
    assert render("alert.resolved", templates=templates).startswith("钉钉解除\n老人平安")
    assert render("alert.resolved", channel="feishu_bot", templates=templates).startswith("家族")
    assert render(language="en", templates=templates).startswith("[high]")  # no English override: shipped


@pytest.mark.parametrize(
    ("source", "names"),
    [
        ("{% block title %}x{% endblock %}{% block body %}{% if %}{% endblock %}", ["markdown.zh-CN.j2", "line 1"]),
        ("{% block title %}x{% endblock %}{% block body %}{{ nosuch }}{% endblock %}", ["nosuch"]),
        ("{% block title %}x{% endblock %}{% block body %}{{ household.name }}{% endblock %}", ["household"]),
        ("{% block title %}x{% endblock %}{% block body %}{{ ''.__class__.__mro__ }}{% endblock %}", ["__class__"]),
        ("{% block body %}no title{% endblock %}", ["block title"]),
        ("{% block title %}{% endblock %}{% block body %}x{% endblock %}", ["empty title"]),
    ],
)
def test_a_broken_override_is_a_clear_error(tmp_path: Path, source: str, names: list[str]) -> None:
    (tmp_path / "markdown.zh-CN.j2").write_text(source)
    templates = Templates(tmp_path)
    with pytest.raises(TemplateError) as raised:
        render(templates=templates)
    for name in names:
        assert name in str(raised.value)
    with pytest.raises(TemplateError, match=r"dingtalk_robot/alert\.raised/zh-CN"):
        check_templates(templates)


def test_a_missing_override_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="does not exist"):
        Templates(tmp_path / "nowhere")


def test_email_html_escapes_what_it_shows(tmp_path: Path) -> None:
    note = notification(household={"id": "h", "name": "<b>王</b>", "address": "x & y", "timezone": "Asia/Shanghai"})
    channel = EmailChannel("a@example.com", smtp=SmtpSettings(host="127.0.0.1"))
    html = Templates().render(note, channel_type=channel.type, family="email", audience="person").html or ""
    assert "&lt;b&gt;王&lt;/b&gt;" in html and "x &amp; y" in html and "<b>王</b>" not in html


@pytest.mark.parametrize(
    ("name", "masked"), [("王阿姨", "王**"), ("欧阳娜娜", "欧**"), ("李", "李**"), ("  ", None), (None, None)]
)
def test_mask_name_keeps_the_first_character_only(name: str | None, masked: str | None) -> None:
    assert mask_name(name) == masked


@pytest.mark.parametrize(
    ("address", "building"),
    [
        ("莲花路 12 号 3 栋 501", "3栋"),
        ("莲花路12号3栋501", "3栋"),
        ("福田区某小区12号楼3单元", "12号楼"),
        ("A座 1203", "A座"),
        ("Building 7, Flat 12", "Building 7"),
        ("莲花路 12 号 501", None),  # no building in it: nothing rather than a guess
        ("3 栋 和 5 栋 之间", None),  # two candidates: not reliable
        (None, None),
    ],
)
def test_building_of_an_address(address: str | None, building: str | None) -> None:
    assert building_of(address) == building


def test_times_are_the_households_clock() -> None:
    context = message_context(notification(), audience="group")
    assert context["at"] == "3月2日 09:00"  # 01:00 UTC in Asia/Shanghai
    tz_context = message_context(
        notification(household={"id": "h", "name": "A", "address": None, "timezone": "Europe/London"}, language="en"),
        audience="group",
    )
    assert tz_context["at"] == "2 Mar 01:00"


def test_a_digest_lists_each_alert_and_counts_the_rest() -> None:
    events = ("alert.raised",) * (MAX_DIGEST_ITEMS + 5)
    note = digest(events, count=MAX_DIGEST_ITEMS + 12)
    rendered = Templates().render(note, channel_type="wecom_robot", family="text", audience="group")
    assert rendered.title == f"【汇总】{MAX_DIGEST_ITEMS + 12} 条告警"
    lines = rendered.body.splitlines()
    assert lines[0] == "以下告警请逐条处理"
    assert sum(line.startswith("- 【高】长时间未用水｜王**（3栋）") for line in lines) == MAX_DIGEST_ITEMS
    assert lines[-1] == "另有 12 条未列出"
    person = Templates().render(digest(), channel_type="wecom_app", family="text", audience="person").body
    assert f"{NAME}，{ADDRESS}" in person and "【已解除】" in person


@pytest.mark.parametrize("language", ["zh-CN", "en"])
@pytest.mark.parametrize(("channel", "family", "audience"), CHANNEL_FAMILIES)
def test_the_away_notice_says_the_home_is_empty_until_when_a_group_without_name_or_note(
    channel: str, family: str, audience: Audience, language: str
) -> None:
    note = sample_notification("household.away", language=language)  # the router's sentence holds the full name
    rendered = Templates().render(note, channel_type=channel, family=family, audience=audience)
    text = f"{rendered.title}\n{rendered.body}\n{rendered.html or ''}"
    until = "3月10日 18:00" if language == "zh-CN" else "10 Mar 18:00"
    empty = "家中无人" if language == "zh-CN" else "The home is empty"
    assert until in text and empty in text and "FT-12-3" in text
    if audience == "group":
        assert "王**" in text and "3栋" in text
        for private in (NAME, ADDRESS, "501", "去女儿家", "key_sample"):
            assert private not in text
    else:
        assert NAME in text and ADDRESS in text and "去女儿家住一周" in text
