"""The channel types a recipient's endpoint can have: one home for their names."""

from __future__ import annotations

from enum import StrEnum


class ChannelType(StrEnum):
    WEBHOOK = "webhook"  # Standard Webhooks, for integrations
    WECOM_ROBOT = "wecom_robot"  # a WeCom group robot
    DINGTALK_ROBOT = "dingtalk_robot"  # a DingTalk group custom robot
    FEISHU_BOT = "feishu_bot"  # a Feishu / Lark group custom bot
    WECOM_APP = "wecom_app"  # a WeCom application message to named people
    SMS = "sms"  # a text message to one phone, through the configured provider
    EMAIL = "email"  # an email over SMTP


# Channels whose messages a whole group reads: never an elder's full name, address or water use.
GROUP_CHANNELS = frozenset({ChannelType.WECOM_ROBOT, ChannelType.DINGTALK_ROBOT, ChannelType.FEISHU_BOT})
