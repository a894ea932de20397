"""Action links' signing (alerts/action_links.py): scoped by delivery and action, keys rotate."""

from __future__ import annotations

import pytest

from alerts.action_links import ActionLinkSigner, LinkError, LinkMaker
from alerts.secret_box import new_key

DELIVERY = "msg_Ab-3_xY9kL0pQ2rS7tU1vW5z"


def test_a_link_names_its_delivery_and_action_and_nothing_else_verifies() -> None:
    signer = ActionLinkSigner([new_key()])
    token = signer.token(delivery_id=DELIVERY, action="acknowledge")
    claims = signer.verify(token)
    assert (claims.delivery_id, claims.action) == (DELIVERY, "acknowledge")
    assert token is not None and len(token) == 35, "fits a text message's template variable"
    forged = token[:24] + "r" + token[25:]
    with pytest.raises(LinkError):
        signer.verify(forged)
    with pytest.raises(LinkError):
        ActionLinkSigner([new_key()]).verify(token)


def test_links_signed_before_a_key_rotation_still_work_and_new_ones_use_the_new_key() -> None:
    old, new = new_key(), new_key()
    before = ActionLinkSigner([old]).token(delivery_id=DELIVERY, action="resolve")
    rotated = ActionLinkSigner([new, old])
    assert rotated.verify(before).action == "resolve"
    after = rotated.token(delivery_id=DELIVERY, action="resolve")
    assert ActionLinkSigner([new]).verify(after).action == "resolve"
    with pytest.raises(LinkError):
        ActionLinkSigner([old]).verify(after)


def test_each_role_gets_the_links_of_what_it_may_do() -> None:
    make = LinkMaker(ActionLinkSigner([new_key()]), "https://shouwang.example/")
    assert [link.action for link in make(delivery_id=DELIVERY, role="family")] == ["acknowledge"]
    staff = make(delivery_id=DELIVERY, role="grid_worker")
    assert [link.action for link in staff] == ["acknowledge", "resolve"]
    assert all(link.url.startswith("https://shouwang.example/a/Ab-3_xY9kL0pQ2rS7tU1vW5z") for link in staff)
    assert make(delivery_id="dig_" + DELIVERY, role="family") == ()  # a digest carries no per-alert link
    assert make(delivery_id=DELIVERY, role="device") == ()
    assert make(delivery_id=DELIVERY, role="family") == make(delivery_id=DELIVERY, role="family")  # same on a retry
