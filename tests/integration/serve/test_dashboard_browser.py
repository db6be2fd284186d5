"""The dashboard in headless Chromium (the Debian package) against the store of one real
apply: the tables are server-rendered, and the vendored uPlot draws the charts from the data
embedded next to them. The screenshot is kept as a test artifact (the test's tmp dir, named in
the output)."""

from __future__ import annotations

import html
import re
import shutil
import subprocess

import httpx
import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (Debian package `chromium`)"
)


def chromium(*args: str, tmp_path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--disable-dev-shm-usage",
            f"--user-data-dir={tmp_path / 'chromium-profile'}",
            "--virtual-time-budget=5000",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )


def attributes(dom: str, element_id: str) -> dict[str, str]:
    match = re.search(rf'<div id="{element_id}"([^>]*)>', dom)
    assert match, f"#{element_id} not in the DOM"
    return {k: html.unescape(v) for k, v in re.findall(r'([\w-]+)="([^"]*)"', match.group(1))}


def test_dashboard_draws_the_weights_chart_with_the_last_cycle_s_data(
    base_url, readonly_store, tmp_path
):
    url = f"{base_url}/dashboard/DU0000001"
    dom = chromium("--dump-dom", url, tmp_path=tmp_path).stdout
    weights = attributes(dom, "weights-chart")
    assert weights.get("data-drawn") == "true", weights
    assert weights["data-series"] == "target,before,after"
    report = readonly_store.get_cycle(1).report
    after = {r["key"]: r for r in report["drift_after"] if r["account"] == "DU0000001"}
    assert weights["data-keys"].split(",") == list(after)
    drawn_after = [float(v) for v in weights["data-after"].split(",")]
    assert drawn_after == pytest.approx([after[k]["current_weight"] for k in after])
    # uPlot put its canvas inside the chart's container.
    section = dom[dom.index('id="weights-chart"') : dom.index('id="weights-data"')]
    assert "<canvas" in section
    for chart in ("drift-chart", "costs-chart", "cash-nav-chart"):
        assert attributes(dom, chart).get("data-drawn") == "true", chart
    assert int(attributes(dom, "costs-chart")["data-points"]) == len(
        readonly_store.list_fills(account="DU0000001")
    )

    screenshot = tmp_path / "dashboard-DU0000001.png"
    shot = chromium("--window-size=1200,1600", f"--screenshot={screenshot}", url, tmp_path=tmp_path)
    assert screenshot.exists() and screenshot.stat().st_size > 10_000, shot.stderr
    print(f"dashboard screenshot: {screenshot}")


def test_dashboard_tables_are_server_rendered_without_javascript(base_url, readonly_store):
    page = httpx.get(f"{base_url}/dashboard/DU0000001", timeout=30).text
    for table in (
        "drift",
        "drift-history",
        "costs",
        "cash-nav",
        "plan-orders",
        "plan-decisions",
        "cycles",
    ):
        assert f'<table id="{table}">' in page, table
    assert "NOTIONAL_EXCEEDS_MAX_PER_ORDER" in page
    assert '<a href="/dashboard/cycles/1">1</a>' in page
    index = httpx.get(f"{base_url}/", timeout=30).text
    assert '<a href="/dashboard/DU0000002">DU0000002</a>' in index
    report = httpx.get(f"{base_url}/dashboard/cycles/1", timeout=30)
    assert report.status_code == 200
    refs = [o.order_ref for o in readonly_store.list_orders(limit=100)]
    assert all(ref in report.text for ref in refs)
    # Served from the package, never from elsewhere: no external script or stylesheet.
    assert not re.search(r'(src|href)="https?://', page)
    assert (
        httpx.get(f"{base_url}/static/vendor/uplot/uPlot.iife.min.js", timeout=30).status_code
        == 200
    )
