"""``shouwang report`` on a SQLite store: a month as JSON (to standard output or a file) and as a workbook; the
demo month as a PDF printed by headless Chromium; a bad month, format or folder, or no Chromium, is one clear line
on stderr."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest
from typer.testing import CliRunner, Result

from alerts.db import Store
from alerts.pipeline import RouterConfig
from alerts.policy import parse_policy
from cli.main import app
from shouwang.settings import get_settings
from tests.alerts.conftest import T0, build_world
from tests.alerts.test_pipeline import event, route


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    values = {"SHOUWANG_DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}", "SHOUWANG_VAR_DIR": str(tmp_path)}
    get_settings.cache_clear()
    yield values
    get_settings.cache_clear()


@pytest.fixture
def store(env: dict[str, str]) -> Iterator[Store]:
    handle = Store(env["SHOUWANG_DATABASE_URL"])
    yield handle
    handle.close()


def shouwang(env: dict[str, str], *args: str) -> Result:
    get_settings.cache_clear()
    return CliRunner().invoke(app, ["report", *args], env=env)


def test_json_and_workbook_of_a_month(env: dict[str, str], store: Store, tmp_path: Path) -> None:
    build_world(store)
    config = RouterConfig(policy=parse_policy(None), repeat_interval=T0 - T0, public_url="https://shouwang.example")
    route(store, config, event("MA", kind="spike", severity="critical"), T0)  # 2 March 2026
    printed = shouwang(env, "--community", "FT-Lianhua", "--month", "2026-03")
    assert printed.exit_code == 0, printed.output
    body = json.loads(printed.stdout)
    assert body["community"] == "FT-Lianhua" and body["month"] == "2026-03"
    assert body["sections"]["alerts"]["by_kind"]["spike"] == {"value": 1, "previous": 0, "change": 1}

    out = tmp_path / "march.json"
    written = shouwang(env, "--community", "FT-Lianhua", "--month", "2026-03", "--format", "json", "--out", str(out))
    assert written.exit_code == 0 and f"wrote {out}" in written.stdout
    assert json.loads(out.read_text(encoding="utf-8"))["sections"] == body["sections"]

    book = tmp_path / "march.xlsx"
    made = shouwang(env, "--community", "FT-Lianhua", "--month", "2026-03", "--format", "xlsx", "--out", str(book))
    assert made.exit_code == 0, made.output
    sheet = openpyxl.load_workbook(book)["告警"]
    rows = {row[0]: row[1:4] for row in sheet.iter_rows(values_only=True) if row and row[0]}
    assert rows["按类型 · 用水突增"] == (1, 0, 1)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--month", "2026-13"], "shouwang: --month: month must be YYYY-MM"),
        (["--month", "2999-01"], "shouwang: --month: month 2999-01 is in the future"),
        (["--month", "2026-03", "--format", "doc"], "shouwang: --format must be json, xlsx or pdf"),
        (["--month", "2026-03", "--format", "pdf"], "shouwang: --out FILE is needed for a PDF"),
        (["--format", "json"], "shouwang: --month YYYY-MM is needed"),
        (["--demo", "--month", "2999-01"], "shouwang: --month: month 2999-01 is in the future"),
        (["--month", "2026-03", "--format", "xlsx"], "shouwang: --out FILE is needed for a workbook"),
        (["--month", "2026-03", "--out", "/no/such/folder/r.json"], "shouwang: --out: no such folder /no/such/folder"),
    ],
)
def test_mistakes_are_one_clear_line(env: dict[str, str], store: Store, args: list[str], says: str) -> None:
    result = shouwang(env, *args)
    assert result.exit_code == 1
    assert result.stderr.strip().startswith(says) and len(result.stderr.strip().splitlines()) == 1


def test_the_demo_month_as_a_pdf_of_the_report_page(env: dict[str, str], tmp_path: Path) -> None:
    """The README's one command: a made-up month seeded into a throwaway store, printed from the console's page."""
    pdf = tmp_path / "sample.pdf"
    made = shouwang(env, "--demo", "--month", "2026-10", "--format", "pdf", "--out", str(pdf))
    assert made.exit_code == 0, made.output
    assert made.stdout.strip() == f"wrote {pdf} (FT-Lianhua, 2026-10)"
    body = pdf.read_bytes()
    assert body.startswith(b"%PDF-") and len(body) > 20_000
    # The page sets its title once the script has drawn the report: Chromium keeps it as the PDF's title.
    title = re.search(rb"/Title <FEFF([0-9A-F]+)>", body)
    assert title is not None and bytes.fromhex(title.group(1).decode()).decode("utf-16-be").endswith(
        "社区月度报表 · FT-Lianhua 2026-10"
    )
    assert not (tmp_path / "store.db").exists(), "the demo never touches the configured store"


@pytest.mark.parametrize(
    ("variables", "says"),
    [
        (
            {"SHOUWANG_CHROMIUM": "/no/such/chromium"},
            "SHOUWANG_CHROMIUM=/no/such/chromium is not an executable Chromium",
        ),
        ({"PATH": "/no/such/folder"}, "--format pdf needs headless Chromium and none was found"),
    ],
)
def test_no_chromium_is_one_line(env: dict[str, str], variables: dict[str, str], says: str) -> None:
    result = shouwang({**env, **variables}, "--month", "2026-03", "--format", "pdf", "--out", "x.pdf")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"shouwang: {says}") and len(result.stderr.strip().splitlines()) == 1
