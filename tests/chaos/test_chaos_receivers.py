"""The fault run's webhook receivers (bench/chaos_receivers.py) on real loopback sockets: a request cut off by its
sender (a router killed mid-send) is no POST, while a whole one is recorded with its answer."""

from __future__ import annotations

import socket
import time
import urllib.request

from bench.chaos_receivers import Receivers


def test_a_request_cut_off_by_its_sender_is_not_recorded() -> None:
    receivers = Receivers(1)
    try:
        with socket.create_connection(("127.0.0.1", receivers.port(0))) as cut:
            cut.sendall(b"POST /hook/fam-1 HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b'{"type": "al')
        request = urllib.request.Request(receivers.url(0, "fam-1"), data=b'{"type": "alert.raised"}', method="POST")
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200
        time.sleep(0.2)  # the cut-off request's handler has read to the end of its connection by now
        assert [(post.recipient, post.type) for post in receivers.posts] == [("fam-1", "alert.raised")]
    finally:
        receivers.stop()
