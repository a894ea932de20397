"""The console's pages (api/console.py): static HTML with strict security headers and no data; the
data comes from the JSON API, called by the page's script with the user's key. No Kafka is needed:
the app serves reads and lifecycle changes while its producer is still connecting."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from alerts.db import Store
from alerts.pipeline import RouteContext, router_config
from alerts.stages import default_pipeline
from api.app import create_app
from cli.broker import free_port
from shouwang.events import AlertEvent, AlertKind, Explanation, Severity, alert_id_for
from shouwang.settings import Settings
from tests.api.conftest import ADMIN_TOKEN, bearer, expect, household_body

EXPLANATION_ZH = "自 21:15 起持续流水，共 186 升"


def console_settings(var_dir: Path, **overrides: object) -> Settings:
    """An API with its own SQLite store; Kafka points at a closed port (nothing here produces)."""
    values: dict[str, object] = {
        "var_dir": var_dir,
        "admin_token": ADMIN_TOKEN,
        "kafka_bootstrap": f"127.0.0.1:{free_port()}",
        "public_url": "https://shouwang.example",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def seed_alert(
    store: Store,
    settings: Settings,
    meter: str,
    *,
    kind: str = "continuous_flow",
    severity: str = "critical",
    since: datetime,
    at: datetime,
    zh: str = EXPLANATION_ZH,
    en: str = "continuous flow since 21:15, 186 litres",
    facts: dict[str, str | int] | None = None,
) -> str:
    """Raise an alert through the router's real pipeline, straight into the store."""
    event = AlertEvent(
        alert_id=alert_id_for(meter, kind, since),
        event="raised",
        meter_id=meter,
        kind=AlertKind(kind),
        severity=Severity(severity),
        since=since,
        at=at,
        explanation=Explanation(zh=zh, en=en),
        facts=facts or {},
    )
    with store.transaction() as session:
        result = (
            default_pipeline()
            .run(RouteContext(session=session, event=event, now=at, config=router_config(settings)))
            .result
        )
    assert result != "duplicate"
    return event.alert_id


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = console_settings(tmp_path_factory.mktemp("console"), api_docs=True)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def check_security_headers(headers: object) -> None:
    csp = headers["content-security-policy"]  # type: ignore[index]
    directives = {part.split()[0]: part.split()[1:] for part in csp.split(";") if part.strip()}
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"], "no inline script, no other origin"
    assert directives["frame-ancestors"] == ["'none'"]
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp and "http" not in csp
    assert headers["x-frame-options"] == "DENY"  # type: ignore[index]
    assert headers["referrer-policy"] == "no-referrer"  # type: ignore[index]
    assert headers["x-content-type-options"] == "nosniff"  # type: ignore[index]


def test_console_is_static_html_with_security_headers_and_no_data(client: TestClient) -> None:
    home = expect(
        client.post(
            "/v1/households", headers=bearer(ADMIN_TOKEN), json=household_body("王阿姨", "FT-12-3", "FT-Lianhua")
        ),
        201,
    )["id"]
    meter = "SZ-FT-CONSOLE-1"
    expect(client.post(f"/v1/households/{home}/meters", headers=bearer(ADMIN_TOKEN), json={"meter_id": meter}), 201)
    at = datetime(2026, 11, 28, 1, 0, tzinfo=UTC)
    app_store: Store = client.app.state.store  # type: ignore[attr-defined]
    alert_id = seed_alert(
        app_store,
        client.app.state.settings,
        meter,  # type: ignore[attr-defined]
        since=at - timedelta(hours=4),
        at=at,
    )

    for headers in ({}, bearer(ADMIN_TOKEN)):  # the same page with or without a key
        response = client.get("/console", headers=headers)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        check_security_headers(response.headers)
        assert response.headers["cache-control"] == "no-store"
        html = response.text
        assert '<html lang="zh-CN">' in html
        assert 'id="signin-form"' in html and 'type="password"' in html
        for data in (alert_id, home, meter, "王阿姨", EXPLANATION_ZH, "FT-12-3"):
            assert data not in html, f"the console page leaked {data!r}"
        # No inline script and nothing from another origin.
        scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, flags=re.S)
        assert scripts and all('src="/console/static/' in attrs and not body.strip() for attrs, body in scripts)
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "nothing may come from another origin"
        assert not re.search(r"\son[a-z]+=", html), "no inline event handlers"
    assert client.get("/console/", follow_redirects=False).headers["location"] == "/console"


def test_console_script_and_style_are_served(client: TestClient) -> None:
    script = client.get("/console/static/console.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    check_security_headers(script.headers)
    body = script.text
    for needle in (
        "sessionStorage",
        "Authorization",
        "/v1/alerts",
        '"ack"',
        '"resolve"',
        "/v1/households/",
        "usage_hourly_l",
        "用水曲线暂无数据",
        "no water-use series yet",
        "误报",
        "居民安好",
        "已提供帮助",
        "紧急情况",
        "localStorage",
    ):
        assert needle in body, needle
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", body), "the script fetches nothing from elsewhere"
    assert ".innerHTML" not in body, "API values go in with textContent only"
    style = client.get("/console/static/console.css")
    assert style.status_code == 200 and style.headers["content-type"].startswith("text/css")
    assert "@import" not in style.text and "url(" not in style.text


def test_the_report_page_is_static_too(client: TestClient) -> None:
    """The monthly report's page: the same rules (no data, no inline script, nothing from elsewhere); its script
    reads the report with the user's key and draws the charts itself."""
    page = client.get("/console/report?community=FT-Lianhua&month=2026-03", headers=bearer(ADMIN_TOKEN))
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    check_security_headers(page.headers)
    html = page.text
    assert '<html lang="zh-CN">' in html and "data-report" not in html, "the served page holds no report"
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, flags=re.S)
    assert scripts == [(' src="/console/static/report.js" defer', "")]
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html) and not re.search(r"\son[a-z]+=", html)
    script = client.get("/console/static/report.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    for needle in ("/v1/reports/monthly", "sessionStorage", "window.print", "社区月度报表", "monthly report"):
        assert needle in script.text, needle
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", script.text) and ".innerHTML" not in script.text
    style = client.get("/console/static/report.css")
    assert style.status_code == 200 and "@media print" in style.text and "url(" not in style.text


@pytest.mark.parametrize(
    "path",
    [
        "/console/static/../app.py",
        "/console/static/app.py",
        "/console/static/x.js",
        "/console/static/%2e%2e%2fconsole.py",
        "/console/static/index.html",
    ],
)
def test_console_serves_no_other_file(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 404


def test_console_is_not_in_the_openapi_description(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert not any(p.startswith("/console") for p in paths)
