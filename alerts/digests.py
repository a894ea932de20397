"""Rate limits and digests per channel: a robot in a group chat takes about 20 messages a minute and
then refuses for minutes, so a burst (a water cut silences hundreds of meters at once) must become a
handful of readable messages, never a throttled backlog and never a dropped alert.

The way Alertmanager groups (group_wait / group_interval), decided per endpoint at each dispatcher pass
by ``plan``, a pure function of what is pending and what was sent in the last minute (read from the
store, so every router and a restarted one see the same history):
- while the endpoint has individual messages left in its minute, each notification goes alone, at once;
- past that, everything pending goes as one digest, at most once per ``digest_interval_s``;
- never more messages in a minute than the vendor's limit: the rest waits for the window to move.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from alerts.channels.types import ChannelType

WINDOW = timedelta(minutes=1)


@dataclass(frozen=True)
class RatePolicy:
    per_minute: int  # the vendor's limit per endpoint (a robot, a phone number, a mailbox)
    individual_per_minute: int  # messages a minute that may carry one notification each
    digest_interval_s: float  # at most one digest this often
    max_digest_items: int = 1000  # notifications one digest may account for


# Vendors' limits (docs/ALERTS.md): robots about 20 a minute (DingTalk then refuses for 10 minutes),
# Feishu 100 a minute and 5 a second, a phone number a few texts an hour before the providers' caps.
POLICIES: Mapping[str, RatePolicy] = {
    ChannelType.WECOM_ROBOT: RatePolicy(per_minute=18, individual_per_minute=6, digest_interval_s=30),
    ChannelType.DINGTALK_ROBOT: RatePolicy(per_minute=18, individual_per_minute=6, digest_interval_s=30),
    ChannelType.FEISHU_BOT: RatePolicy(per_minute=90, individual_per_minute=10, digest_interval_s=15),
    ChannelType.WECOM_APP: RatePolicy(per_minute=30, individual_per_minute=10, digest_interval_s=30),
    ChannelType.SMS: RatePolicy(per_minute=1, individual_per_minute=1, digest_interval_s=300),
    ChannelType.EMAIL: RatePolicy(per_minute=10, individual_per_minute=5, digest_interval_s=60),
}


@dataclass(frozen=True)
class Plan:
    alone: tuple[str, ...] = ()  # delivery ids, one message each, now
    digest: tuple[str, ...] = ()  # delivery ids, together in one message, now
    wait_until: datetime | None = None  # the rest: not before then


def plan(
    pending: Sequence[str],
    sent_at: Sequence[datetime],
    policy: RatePolicy,
    *,
    last_digest_at: datetime | None,
    now: datetime,
) -> Plan:
    """What to send now to one endpoint. ``pending``: its due deliveries, oldest first; ``sent_at``: when
    its messages of the last minute went (every router's); ``last_digest_at``: its latest digest."""
    if not pending:
        return Plan()
    recent = sorted(at for at in sent_at if at > now - WINDOW)
    room = policy.per_minute - len(recent)
    if room <= 0:
        return Plan(wait_until=recent[0] + WINDOW)  # the vendor would refuse: wait for the window to move
    alone_left = min(room, policy.individual_per_minute - len(recent))
    if len(pending) <= alone_left:
        return Plan(alone=tuple(pending))
    next_digest = last_digest_at + timedelta(seconds=policy.digest_interval_s) if last_digest_at else now
    if next_digest > now:
        return Plan(wait_until=next_digest)
    return Plan(digest=tuple(pending[: policy.max_digest_items]))
