"""Shouwang (守望): the shared core every service uses — settings, event schemas, topic names, dead
letters, logging. It imports none of the service packages; ``cli`` composes them."""

__version__ = "0.1.0"
