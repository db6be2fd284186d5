"""The status API's OpenAPI spec is checked in (schemas/openapi.json) and stays true."""

from __future__ import annotations

import json
from pathlib import Path

from reconciler.app.serve.api import openapi_spec, render_openapi

SPEC = Path(__file__).resolve().parents[3] / "schemas" / "openapi.json"


def test_the_checked_in_openapi_spec_is_what_the_app_serves():
    assert SPEC.read_text(encoding="utf-8") == render_openapi(), (
        "schemas/openapi.json drifted: regenerate it with "
        "`python -m reconciler.app.serve.api > schemas/openapi.json`"
    )


def test_the_api_has_no_route_that_writes():
    methods = {m.lower() for item in openapi_spec()["paths"].values() for m in item}
    assert methods == {"get"}
    assert set(json.loads(SPEC.read_text())["paths"]) >= {
        "/health", "/status", "/accounts/{account}", "/cycles", "/cycles/{cycle_id}",
        "/plans/latest", "/orders", "/fills", "/denials", "/metrics",
    }
