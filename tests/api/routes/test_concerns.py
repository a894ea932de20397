"""GET /v1/concerns: incident categories ranked by reports for a community and period."""

from __future__ import annotations

from datetime import timedelta

from tests.api.conftest import T0, World, expect


def test_top_concerns_rank_by_reports_within_community_and_period(world: World) -> None:
    since = T0 - timedelta(days=400)  # a period of this test's own, far from other tests' alerts

    def incident(cell: str, category: str, reports: int, days: int, households: int | None = None) -> None:
        facts = {"category": category, "report_count": reports, **({"households": households} if households else {})}
        world.raise_alert(
            None, kind="incident", severity="medium", grid_cell=cell, since=since + timedelta(days=days), facts=facts
        )

    incident("C1", "ebike", 5, 1, households=3)
    incident("C1", "ebike", 2, 2)
    incident("C1", "clutter", 6, 3)
    incident("C1", "pets", 1, 4)
    incident("C2", "water_pipe", 50, 5)  # another community's cell
    incident("C1", "noise_dispute", 9, 40)  # outside the period
    query = f"/v1/concerns?community=CM1&since={since.isoformat()}&until={(since + timedelta(days=30)).isoformat()}"
    body = expect(world.call("operator", "GET", query.replace("+", "%2B")), 200)
    ranked = [(c["category"], c["reports"], c["households"], c["incidents"]) for c in body["concerns"]]
    assert ranked == [("ebike", 7, 5, 2), ("clutter", 6, 6, 1), ("pets", 1, 1, 1)]
    assert body["concerns"][0]["label_zh"] == "电动车停放充电" and body["concerns"][0]["rank"] == 1
    expect(world.call("supervisor", "GET", query.replace("+", "%2B").replace("CM1", "CM2")), 404)
    expect(world.call("family", "GET", "/v1/concerns"), 403)
    backwards = f"/v1/concerns?since={T0.isoformat()}&until={(T0 - timedelta(days=1)).isoformat()}".replace("+", "%2B")
    bad = expect(world.call("operator", "GET", backwards), 422)
    assert "since must be before until" in bad["error"]["message"]
