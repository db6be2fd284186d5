"""The read-only status API and dashboard of `reconcile serve` (FastAPI).

Responsible for the routes (GET only: /health, /status, /accounts/{id}, /cycles,
/cycles/{id}, /plans/latest, /orders, /fills, /denials, /metrics and the dashboard pages),
the optional bearer token (every route, when set), input bounds that turn bad input into
422/404 rather than a server error, and serve's own Prometheus metrics. Must not place,
modify or cancel anything, write to the store (it is opened read-only) or import an IB
client library (the optional gateway check of /health goes through app/health, lazily).
`python -m reconciler.app.serve.api` prints the OpenAPI spec (schemas/openapi.json).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles

from reconciler import __version__
from reconciler.app.serve import data
from reconciler.app.serve.models import (
    AccountResponse,
    CycleDetail,
    CyclesPage,
    DenialOut,
    ErrorBody,
    FillOut,
    HealthResponse,
    OrderOut,
    PlanResponse,
    StatusResponse,
)

UTC = dt.UTC
METRICS_FILE_ENV = "RECONCILER_METRICS_FILE"
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# A client id of its own, so the health handshake never collides with a running apply (17)
# or the operator's halt --cancel-open (90).
HEALTH_CLIENT_ID = 91
HEALTH_GATEWAY_TIMEOUT = 15.0
STATIC_DIR = Path(__file__).resolve().parent / "static"

ACCOUNT_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
STATUS_PATTERN = r"^[a-z-]{1,32}$"
MAX_ID = 2**62
Account = Annotated[
    str, PathParam(pattern=ACCOUNT_PATTERN, description="Account id, e.g. DU0000001.")
]
AccountFilter = Annotated[
    str | None, Query(pattern=ACCOUNT_PATTERN, description="Only this account.")
]
Limit = Annotated[int, Query(ge=1, le=500, description="Rows at most.")]

NOT_FOUND = {404: {"model": ErrorBody, "description": "Not recorded in the store."}}
COMMON_RESPONSES = {
    401: {"model": ErrorBody, "description": "Bearer token missing or wrong."},
    503: {"model": ErrorBody, "description": "The store cannot be read right now."},
}


def _utc(name: str, value: dt.datetime | None) -> dt.datetime | None:
    """Aware UTC from a query datetime (naive means UTC); 422 for one that cannot be."""
    if value is None:
        return None
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise HTTPException(422, f"{name}: {value!r} is out of range") from None


class _ServeMetrics:
    """serve's own metrics (requests, latency, process), in a registry of its own."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector

        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(namespace="reconciler_serve", registry=self.registry)
        self.requests = Counter(
            "reconciler_serve_requests",
            "HTTP requests served, by route template and status code.",
            ["route", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "reconciler_serve_request_seconds",
            "Time to answer an HTTP request, by route template.",
            ["route"],
            registry=self.registry,
        )

    def render(self) -> str:
        from prometheus_client import generate_latest

        return generate_latest(self.registry).decode("utf-8")


def _cycle_metrics_text(settings: Any) -> str:
    """The cycles' node_exporter textfile (RECONCILER_METRICS_FILE), when set and readable."""
    path = (getattr(settings, "metrics_file", None) or os.environ.get(METRICS_FILE_ENV, "")).strip()
    if not path:
        return ""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""
    return text if text.endswith("\n") or not text else text + "\n"


async def _gateway_check(settings: Any) -> dict[str, Any]:
    import asyncio

    from reconciler.app.health import run_health

    try:
        result = await asyncio.wait_for(
            run_health(settings.with_overrides(client_id=HEALTH_CLIENT_ID)),
            HEALTH_GATEWAY_TIMEOUT,
        )
    except Exception as exc:  # any failure to reach it is the answer, not a server error
        return {"checked": True, "reachable": False, "detail": f"{type(exc).__name__}: {exc}"}
    reachable = "error" not in result
    lines = result.get("lines") or []
    return {
        "checked": True,
        "reachable": reachable,
        "detail": lines[0] if lines else ("reachable" if reachable else "unreachable"),
    }


def create_app(
    store: Any,
    *,
    settings: Any,
    token: str | None = None,
    health_gateway: bool = False,
    clock: Any = None,
) -> FastAPI:
    """The ASGI app over an (already read-only) store. With `token`, every request must send
    `Authorization: Bearer <token>`."""
    from reconciler.app.serve import dashboard

    now = clock.now if clock is not None else (lambda: dt.datetime.now(UTC))
    metrics = _ServeMetrics()
    app = FastAPI(
        title="ib-reconciler status API",
        version=__version__,
        description="Read-only windows onto the reconciler's store: changes go through git "
        "(and the out-of-band `reconcile halt`), never through this API. Every route is GET.",
        responses=COMMON_RESPONSES,
    )

    from reconciler.store import StoreUnavailable

    @app.exception_handler(StoreUnavailable)
    async def store_unavailable(_request: Request, exc: StoreUnavailable) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    @app.middleware("http")
    async def guard(request: Request, call_next):
        started = time.perf_counter()
        if token is not None:
            header = request.headers.get("authorization", "")
            scheme, _, given = header.partition(" ")
            if scheme.lower() != "bearer" or not secrets.compare_digest(
                given.strip().encode(), token.encode()
            ):
                response: Response = JSONResponse(
                    {"detail": "bearer token missing or wrong"},
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
                metrics.requests.labels("unauthorized", "401").inc()
                return response
        response = await call_next(request)
        route = request.scope.get("route")
        label = getattr(route, "path", "unmatched")
        metrics.requests.labels(label, str(response.status_code)).inc()
        metrics.latency.labels(label).observe(time.perf_counter() - started)
        return response

    @app.get(
        "/health",
        response_model=HealthResponse,
        responses={503: {"model": HealthResponse, "description": "Not healthy (same body)."}},
    )
    async def health() -> JSONResponse:
        """Store readable, ledger hash chain verified, age of the last successful cycle per
        account and, with `serve --health-gateway`, the gateway reachable (read-only
        handshake). 200 healthy, 503 not."""
        if health_gateway:
            gateway = await _gateway_check(settings)
        else:
            gateway = {
                "checked": False,
                "reachable": None,
                "detail": "not checked (serve --health-gateway)",
            }
        body = HealthResponse.model_validate(data.health(store, now(), gateway))
        return JSONResponse(
            json.loads(body.model_dump_json()), status_code=200 if body.healthy else 503
        )

    @app.get("/status", response_model=StatusResponse)
    def status() -> Any:
        """Per account: last cycle and its drift, lock holder, unresolved intents; the halt."""
        return data.status(store, settings)

    @app.get("/accounts/{account}", response_model=AccountResponse, responses=NOT_FOUND)
    def account(account: Account) -> Any:
        """Targets, actual positions, drift after the last cycle and the last plan."""
        detail = data.account_detail(store, account)
        if detail is None:
            raise HTTPException(404, f"account {account} is not in the store")
        return detail

    @app.get("/cycles", response_model=CyclesPage)
    def cycles(
        account: AccountFilter = None,
        outcome: Annotated[
            str | None,
            Query(pattern=STATUS_PATTERN, description="Cycle status, e.g. ok, refused, blocked."),
        ] = None,
        since: Annotated[
            dt.datetime | None, Query(description="Started at or after (UTC).")
        ] = None,
        until: Annotated[dt.datetime | None, Query(description="Started before (UTC).")] = None,
        limit: Limit = 50,
        offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    ) -> Any:
        """Cycles newest first, paged, filtered by account, outcome and start time."""
        items, total = store.page_cycles(
            account=account,
            status=outcome,
            since=_utc("since", since),
            until=_utc("until", until),
            limit=limit,
            offset=offset,
        )
        return {
            "total": total,
            "limit": limit,
            "offset": offset,
            "items": [data.cycle_summary(c) for c in items],
        }

    @app.get("/cycles/{cycle_id}", response_model=CycleDetail, responses=NOT_FOUND)
    def cycle(cycle_id: Annotated[int, PathParam(ge=1, le=MAX_ID)]) -> Any:
        """One cycle and its full report."""
        view = store.get_cycle(cycle_id)
        if view is None:
            raise HTTPException(404, f"cycle {cycle_id} is not in the store")
        return {"cycle": data.cycle_summary(view), "report": data.report_of(view) or None}

    @app.get("/plans/latest", response_model=PlanResponse, responses=NOT_FOUND)
    def latest_plan(account: AccountFilter = None) -> Any:
        """The newest recorded plan (covering `account`, when given)."""
        body = data.latest_plan(store, account)
        if body is None:
            raise HTTPException(404, "no plan recorded" + (f" for {account}" if account else ""))
        return {"plan": body}

    @app.get("/orders", response_model=list[OrderOut])
    def orders(account: AccountFilter = None, limit: Limit = 50) -> Any:
        """Planned and sent orders with their latest ledger outcome, newest first."""
        return [o.as_dict() for o in store.list_orders(account=account, limit=limit)]

    @app.get("/fills", response_model=list[FillOut])
    def fills(account: AccountFilter = None, limit: Limit = 50) -> Any:
        """Fills (one per execId), newest first."""
        return [f.as_dict() for f in store.list_fills(account=account, limit=limit)]

    @app.get("/denials", response_model=list[DenialOut])
    def denials(
        account: AccountFilter = None,
        cycle_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
        limit: Limit = 50,
    ) -> Any:
        """Risk denials and clips, newest first."""
        return store.list_denials(cycle_id=cycle_id, account=account, limit=limit)

    @app.get(
        "/metrics",
        response_class=PlainTextResponse,
        responses={
            200: {"content": {"text/plain": {}}, "description": "Prometheus text format 0.0.4."}
        },
    )
    def prometheus() -> PlainTextResponse:
        """The cycles' metrics file (RECONCILER_METRICS_FILE, when set and readable) followed by
        serve's own reconciler_serve_* metrics, in the Prometheus text format."""
        return PlainTextResponse(
            _cycle_metrics_text(settings) + metrics.render(), media_type=METRICS_CONTENT_TYPE
        )

    dashboard.install(app, store, settings=settings, now=now)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def openapi_spec() -> dict[str, Any]:
    """The API's OpenAPI document, independent of any store or settings."""
    app = create_app(None, settings=None)
    return app.openapi()


def render_openapi() -> str:
    return json.dumps(openapi_spec(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    # Regenerate with: python -m reconciler.app.serve.api > schemas/openapi.json
    sys.stdout.write(render_openapi())
