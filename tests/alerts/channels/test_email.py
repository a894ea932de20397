"""The email channel against a real local SMTP server (aiosmtpd): STARTTLS, authentication, refusals."""

from __future__ import annotations

import socket

import pytest

from alerts.channels.email import EmailChannel, SmtpSettings, judge_reply
from alerts.statuses import AttemptOutcome
from cli.fakes.smtp import FakeSmtp, silent_server  # aiosmtpd, a development dependency: never skipped
from tests.alerts.channels.chat_helpers import ADDRESS, EXPLANATION, NAME, notification, send

TO = "daughter@example.com"


def channel(fake: FakeSmtp, **options: object) -> EmailChannel:
    settings = {"host": fake.host, "port": fake.port, "sender": "守望 <alerts@shouwang.example>", **options}
    return EmailChannel(TO, smtp=SmtpSettings(**settings))  # type: ignore[arg-type]


def test_a_plain_server_gets_subject_text_and_html_for_the_person() -> None:
    with FakeSmtp() as fake:
        result = send(channel(fake), notification(message_id="dl-42"))
        assert result.outcome == AttemptOutcome.DELIVERED, result.error
        [mail] = fake.wait_for(1)
    assert (mail.mail_from, mail.rcpt_tos, mail.over_tls) == ("alerts@shouwang.example", (TO,), False)
    message = mail.message
    assert message["Subject"] == "[守望]【高】长时间未用水｜王阿姨"
    assert message["Message-ID"] == "<dl-42@shouwang.example>"
    assert message["Auto-Submitted"] == "auto-generated"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert text.startswith("请电话或上门确认老人是否安好")
    assert NAME in text and ADDRESS in text and EXPLANATION in text
    assert 'href="https://sw.example/a/ack-TOKEN1"' in html


def test_starttls_is_used_when_the_server_offers_it() -> None:
    with FakeSmtp(with_tls=True) as fake:
        assert send(channel(fake, ca_file=fake.ca_file), notification()).outcome == AttemptOutcome.DELIVERED
        assert fake.wait_for(1)[0].over_tls


def test_a_login_goes_over_tls_only() -> None:
    users = {"shouwang": "mail-password-1"}
    with FakeSmtp(with_tls=True, users=users) as fake:
        settings = {"ca_file": fake.ca_file, "username": "shouwang", "password": "mail-password-1"}
        assert send(channel(fake, **settings), notification()).outcome == AttemptOutcome.DELIVERED
        assert fake.wait_for(1)[0].login == "shouwang"
        wrong = send(channel(fake, **{**settings, "password": "not-it-123"}), notification())
        assert wrong.outcome == AttemptOutcome.REJECT and "535" in (wrong.error or "")
        assert "not-it-123" not in (wrong.error or "")
    with FakeSmtp() as plain:  # no STARTTLS offered: the password is never sent
        result = send(channel(plain, username="shouwang", password="mail-password-1"), notification())
        assert result.outcome == AttemptOutcome.RETRY and "STARTTLS" in (result.error or "")
        assert plain.messages == []


def test_required_starttls_refuses_a_server_without_it() -> None:
    with FakeSmtp() as fake:
        result = send(channel(fake, security="starttls"), notification())
        assert result.outcome == AttemptOutcome.RETRY and fake.messages == []


def test_a_certificate_not_trusted_is_not_delivered() -> None:
    with FakeSmtp(with_tls=True) as fake:
        result = send(channel(fake), notification())  # the system's CAs do not know the fake's certificate
        assert result.outcome == AttemptOutcome.RETRY and fake.messages == []


@pytest.mark.parametrize(
    ("reply", "outcome"),
    [
        ("550 5.1.1 <daughter@example.com>: no such user", AttemptOutcome.REJECT),
        ("450 4.2.1 mailbox busy", AttemptOutcome.RETRY),
    ],
)
def test_a_refused_recipient(reply: str, outcome: AttemptOutcome) -> None:
    with FakeSmtp(refuse={TO: reply}) as fake:
        result = send(channel(fake), notification())
        assert result.outcome == outcome and reply[:3] in (result.error or "")
        assert fake.messages == []


def test_a_server_that_never_answers_is_retried_after_the_timeout() -> None:
    with silent_server() as (host, port):
        result = send(EmailChannel(TO, smtp=SmtpSettings(host=host, port=port)), notification(), timeout_s=0.5)
    assert result.outcome == AttemptOutcome.RETRY and result.duration_s < 3


def test_a_closed_port_is_retried() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = send(EmailChannel(TO, smtp=SmtpSettings(host="127.0.0.1", port=port)), notification(), timeout_s=2)
    assert result.outcome == AttemptOutcome.RETRY


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        (250, AttemptOutcome.DELIVERED),
        (421, AttemptOutcome.RETRY),
        (452, AttemptOutcome.RETRY),
        (535, AttemptOutcome.REJECT),
        (550, AttemptOutcome.REJECT),
        (554, AttemptOutcome.REJECT),
        (None, AttemptOutcome.RETRY),
    ],
)
def test_judge_reply_by_smtp_code(code: int | None, outcome: AttemptOutcome) -> None:
    assert judge_reply(code, "text").outcome == outcome
