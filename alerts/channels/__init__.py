"""Notification channels: Standard Webhooks, chat robots (WeCom, DingTalk, Feishu), WeCom application
messages, SMS and email, each an adapter behind one interface (``alerts/channels/base.py``)."""
