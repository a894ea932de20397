"""The composition root: the ``shouwang`` command, the process supervisor of ``shouwang up`` and the
embedded Apache Kafka broker. It sits above every service package and nothing imports it."""
