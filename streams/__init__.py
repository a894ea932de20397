"""Kafka side of Shouwang: topics, the Faust app and its thin agents, dead letters."""
