"""The web dashboard of `reconcile serve`: server-rendered HTML pages (Jinja2 templates).

Responsible for the pages (accounts overview, one page per account, one per cycle report)
and for embedding each chart's data as JSON next to its table, so every number is readable
without JavaScript and the vendored uPlot (static/vendor/uplot, MIT) only draws the charts.
No build step and nothing fetched from elsewhere at run time. Must not write to the store,
compute what it shows (serve/data.py does) or add non-GET routes.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse

from reconciler.app.serve import data

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
ACCOUNT_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"


def _environment():
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["num"] = _num
    env.filters["pct"] = _pct
    env.filters["epoch"] = lambda t: _when(dt.datetime.fromtimestamp(t, dt.UTC))
    return env


def _when(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    return "-" if value is None else str(value)


def _num(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _pct(value: Any) -> str:
    return "-" if value is None else f"{value * 100:.2f}%"


def install(app: FastAPI, store: Any, *, settings: Any, now: Any) -> None:
    """Add the dashboard's GET pages to `app` (left out of the OpenAPI spec: they are HTML)."""
    env = _environment()

    def page(template: str, **context: Any) -> HTMLResponse:
        html = env.get_template(template).render(generated_at=now(), **context)
        return HTMLResponse(html)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> HTMLResponse:
        return page("index.html", status=data.status(store, settings))

    @app.get("/dashboard/{account}", response_class=HTMLResponse, include_in_schema=False)
    def account_page(account: str = PathParam(pattern=ACCOUNT_PATTERN)) -> HTMLResponse:
        board = data.dashboard(store, account)
        if board is None:
            raise HTTPException(404, f"account {account} is not in the store")
        return page("account.html", board=board)

    @app.get("/dashboard/cycles/{cycle_id}", response_class=HTMLResponse, include_in_schema=False)
    def cycle_page(cycle_id: int = PathParam(ge=1, le=2**62)) -> HTMLResponse:
        view = store.get_cycle(cycle_id)
        if view is None:
            raise HTTPException(404, f"cycle {cycle_id} is not in the store")
        report = data.report_of(view)
        return page(
            "cycle.html",
            cycle=data.cycle_summary(view),
            report=report,
            report_json=json.dumps(report, indent=2, sort_keys=True, default=str),
        )
