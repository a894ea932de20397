"""The monthly report as a PDF: the console's report page (api/templates/console/report.html, its script and its
print style sheet) written with the report inside it to a folder of its own, then printed by headless Chromium
(``--print-to-pdf``). The page draws its charts in the browser as it does on screen, so the PDF is that page on A4
paper; no server is needed and nothing is fetched from elsewhere."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
TIMEOUT_S = 90.0


class PdfError(RuntimeError):
    """Chromium is missing, or did not print; the message is one line for the person at the shell."""


def find_chromium(configured: str | None) -> str:
    """The browser to print with: SHOUWANG_CHROMIUM when set, else the first of ``CANDIDATES`` on PATH."""
    if configured:
        found = shutil.which(configured)
        if found is None:
            raise PdfError(f"SHOUWANG_CHROMIUM={configured} is not an executable Chromium")
        return found
    for name in CANDIDATES:
        found = shutil.which(name)
        if found is not None:
            return found
    raise PdfError(
        "--format pdf needs headless Chromium and none was found "
        "(install chromium, e.g. scripts/ensure-chromium.sh, or set SHOUWANG_CHROMIUM)"
    )


def write_pdf(report: dict[str, Any], out: Path, *, chromium: str, lang: str = "zh") -> None:
    """Print ``report`` to ``out`` (replaced only once the PDF is whole)."""
    from api.console import REPORT_FILES, STATIC, report_html

    with tempfile.TemporaryDirectory(prefix="shouwang-report-") as folder:
        here = Path(folder)
        for name in REPORT_FILES:
            shutil.copyfile(STATIC / name, here / name)
        page = here / "report.html"
        page.write_text(report_html(report, lang=lang, static="."), encoding="utf-8")
        printed = here / "report.pdf"
        command = [
            chromium,
            "--headless=new",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={here / 'profile'}",
            "--no-pdf-header-footer",
            f"--print-to-pdf={printed}",
            page.as_uri(),
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            command.insert(1, "--no-sandbox")  # Chromium will not start as root with its sandbox
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired as exc:
            raise PdfError(f"Chromium did not print the report within {TIMEOUT_S:.0f} s") from exc
        except OSError as exc:
            raise PdfError(f"cannot run {chromium}: {exc.strerror or exc}") from exc
        if done.returncode != 0 or not printed.is_file() or printed.stat().st_size == 0:
            last = (done.stderr or "").strip().splitlines()[-1:] or ["no message"]
            raise PdfError(f"Chromium did not print the report (exit {done.returncode}: {last[0][:200]})")
        shutil.move(printed, out)
