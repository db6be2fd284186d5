"""`reconcile serve`'s status API over real HTTP (uvicorn on an ephemeral port) against a store
filled by one real apply on the simulator, opened read-only."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest
from serve_helpers import ServedApp, settings_for

REPO = Path(__file__).resolve().parents[3]
WRITE_METHODS = {"post", "put", "patch", "delete"}


def get(base_url: str, path: str, **kwargs) -> httpx.Response:
    return httpx.get(base_url + path, timeout=30, **kwargs)


def test_health_reports_store_ledger_and_last_success_per_account(base_url, applied):
    response = get(base_url, "/health")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["healthy"] is True
    assert body["store"]["readable"] is True
    assert body["store"]["database"] == applied.db_url  # the file, not the read-only URI
    assert body["ledger"]["verified"] is True and body["ledger"]["events"] > 0
    assert body["gateway"]["checked"] is False
    ages = {a["account"]: a["age_seconds"] for a in body["accounts"]}
    assert set(ages) == {"DU0000001", "DU0000002"}
    assert all(age is not None and age >= 0 for age in ages.values())


def test_health_with_the_gateway_check_reports_the_simulator_reachable(applied, readonly_store):
    from reconciler.app.serve.api import create_app

    app = create_app(readonly_store, settings=settings_for(applied), health_gateway=True)
    with ServedApp(app) as url:
        body = get(url, "/health").json()
    assert body["gateway"]["checked"] is True
    assert body["gateway"]["reachable"] is True, body["gateway"]
    assert body["healthy"] is True


def test_status_lists_both_accounts_with_the_apply_cycle(base_url):
    body = get(base_url, "/status").json()
    accounts = {a["account"]: a for a in body["accounts"]}
    assert set(accounts) == {"DU0000001", "DU0000002"}
    cycle = accounts["DU0000001"]["last_cycle"]
    assert (cycle["id"], cycle["kind"], cycle["status"], cycle["orders"]) == (1, "apply", "ok", 7)
    assert body["halt"] is None
    # The per-order cap clipped VTI and BND: DU0000001 stays out of band.
    assert accounts["DU0000001"]["drift"].startswith("2 of 3 outside band")


def test_account_shows_targets_actual_drift_and_the_last_plan(base_url, readonly_store):
    body = get(base_url, "/accounts/DU0000001").json()
    targets = {t["key"]: t["target_weight"] for t in body["targets"]}
    assert targets["VTI"] == pytest.approx(0.5) and targets["BND"] == pytest.approx(0.3)
    actual = {p["symbol"]: p["quantity"] for p in body["actual"]}
    stored = {p.symbol: p.quantity for p in readonly_store.latest_positions("DU0000001")}
    assert actual == stored and actual["VTI"] > 0
    drift = {d["key"]: d for d in body["drift"]}
    assert drift["VTI"]["in_band"] is False and drift["SGOV"]["in_band"] is True
    plan = body["last_plan"]
    assert plan["plan_id"] == body["last_cycle"]["plan_id"]
    assert {d["code"] for d in plan["decisions"]} == {"NOTIONAL_EXCEEDS_MAX_PER_ORDER"}
    assert all(o["account"] == "DU0000001" for o in plan["orders"])


def test_unknown_account_and_cycle_are_404(base_url):
    assert get(base_url, "/accounts/DU9999999").status_code == 404
    assert get(base_url, "/cycles/999").status_code == 404
    assert get(base_url, "/plans/latest", params={"account": "DU9999999"}).status_code == 404


def test_cycles_are_paged_and_filtered(base_url):
    page = get(base_url, "/cycles", params={"limit": 1}).json()
    assert page["total"] == 1 and [c["id"] for c in page["items"]] == [1]
    assert get(base_url, "/cycles", params={"outcome": "refused"}).json()["total"] == 0
    assert get(base_url, "/cycles", params={"until": "2000-01-01T00:00:00Z"}).json()["total"] == 0
    assert get(base_url, "/cycles", params={"account": "DU0000002"}).json()["total"] == 1
    assert get(base_url, "/cycles", params={"offset": 1}).json()["items"] == []
    assert get(base_url, "/cycles", params={"limit": 0}).status_code == 422


def test_cycle_detail_carries_the_stored_report(base_url, readonly_store):
    body = get(base_url, "/cycles/1").json()
    assert body["report"] == readonly_store.get_cycle(1).report
    assert body["report"]["format"] == "ib-reconciler/cycle-report"


def test_orders_fills_denials_and_latest_plan_equal_the_store(base_url, readonly_store):
    orders = get(base_url, "/orders", params={"limit": 100}).json()
    assert [o["order_ref"] for o in orders] == [
        o.order_ref for o in readonly_store.list_orders(limit=100)
    ]
    assert len(orders) == 7 and all(o["status"] == "FILL" for o in orders)
    fills = get(base_url, "/fills", params={"account": "DU0000001"}).json()
    assert {f["exec_id"] for f in fills} == {
        f.exec_id for f in readonly_store.list_fills(account="DU0000001")
    }
    denials = get(base_url, "/denials").json()
    assert {(d["key"], d["action"], d["allowed_quantity"]) for d in denials} == {
        (d["key"], d["action"], d["allowed_quantity"]) for d in readonly_store.list_denials()
    }
    assert {d["key"] for d in denials} == {"VTI", "BND"}
    plan = get(base_url, "/plans/latest").json()["plan"]
    assert plan["plan_id"] == readonly_store.get_cycle(1).report["plan_id"]


def test_metrics_serve_the_cycle_metrics_file_and_serve_s_own(
    applied, readonly_store, tmp_path, monkeypatch
):
    from reconciler.app.serve.api import create_app

    textfile = tmp_path / "reconciler.prom"
    textfile.write_text("# TYPE reconciler_cycles_total counter\nreconciler_cycles_total 3\n")
    monkeypatch.setenv("RECONCILER_METRICS_FILE", str(textfile))
    with ServedApp(create_app(readonly_store, settings=settings_for(applied))) as url:
        get(url, "/status")
        response = get(url, "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "reconciler_cycles_total 3" in response.text
    assert 'reconciler_serve_requests_total{code="200",route="/status"} 1.0' in response.text
    assert "reconciler_serve_process_" in response.text


def test_when_a_token_is_set_requests_without_it_are_refused(applied, readonly_store):
    import secrets

    from reconciler.app.serve.api import create_app

    token = secrets.token_urlsafe(16)  # made per run: no token is committed
    app = create_app(readonly_store, settings=settings_for(applied), token=token)
    with ServedApp(app) as url:
        for path in ("/status", "/health", "/", "/openapi.json", "/static/dashboard.js"):
            assert get(url, path).status_code == 401, path
        wrong = get(url, "/status", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert wrong.headers["www-authenticate"] == "Bearer"
        right = get(url, "/status", headers={"Authorization": f"Bearer {token}"})
        assert right.status_code == 200


def test_the_served_spec_has_only_get_routes_and_equals_the_checked_in_one(base_url):
    spec = get(base_url, "/openapi.json").json()
    methods = {m for item in spec["paths"].values() for m in item}
    assert methods == {"get"}, methods
    assert not methods & WRITE_METHODS
    checked_in = json.loads((REPO / "schemas" / "openapi.json").read_text())
    assert spec == checked_in


def test_no_route_accepts_a_write_method(base_url):
    for path in ("/status", "/cycles", "/orders", "/accounts/DU0000001"):
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            assert httpx.request(method, base_url + path, timeout=30).status_code == 405


def test_schemathesis_finds_no_server_error_or_undocumented_status(base_url):
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.generation.modes import GenerationMode
    from schemathesis.specs.openapi.checks import (
        response_schema_conformance,
        status_code_conformance,
    )

    schema = schemathesis.openapi.from_url(base_url + "/openapi.json")
    failures: list[str] = []
    statuses: list[int] = []
    operations = [operation.ok() for operation in schema.get_all_operations()]

    def checker(op, mode):
        @settings(
            max_examples=10,
            deadline=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=op.as_strategy(mode))
        def check(case):
            response = case.call(base_url=base_url)
            statuses.append(response.status_code)
            case.validate_response(
                response,
                checks=[not_a_server_error, status_code_conformance, response_schema_conformance],
            )

        return check

    for op in operations:
        modes = [GenerationMode.POSITIVE]
        if schema.raw_schema["paths"][op.path]["get"].get("parameters"):
            modes.append(GenerationMode.NEGATIVE)  # invalid input must be a 4xx, never 5xx
        for mode in modes:
            try:
                checker(op, mode)()
            except Exception as exc:  # every operation is checked; all failures are reported
                failures.append(f"{op.label} ({mode}): {exc}")
    assert len(operations) >= 9
    assert not failures, "\n".join(failures[:5])
    # It did exercise the API: many requests, valid ones answered and bad ones refused.
    assert len(statuses) >= 5 * len(operations)
    assert {200, 422} <= set(statuses)
    assert not [s for s in statuses if s >= 500]


def test_serve_on_a_public_address_without_a_token_refuses_to_start(applied):
    result = applied.reconcile("serve", "--host", "0.0.0.0", "--port", "0", timeout=60)
    assert result.returncode == 1
    assert b"RECONCILER_SERVE_TOKEN" in result.stderr


def test_read_only_surfaces_import_no_ib_client_library(applied):
    script = textwrap.dedent(
        f"""
        import json, sys
        from reconciler.store import open_store_readonly
        from reconciler.app.serve.api import create_app
        from reconciler.app.mcp_server import build_server
        from reconciler.app.export import export
        from reconciler.model.settings import load_settings
        store = open_store_readonly({applied.db_url!r})
        settings = load_settings({{}}, dotenv_path=None)
        create_app(store, settings=settings)
        build_server(store, settings=settings)
        export(store, "fills", "parquet")
        print(json.dumps([m for m in ("ib_async", "ib_insync") if m in sys.modules]))
        """
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=90, cwd=REPO
    )
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout.strip().splitlines()[-1]) == []


def test_the_serve_command_answers_on_its_port_and_stops_cleanly_on_sigterm(applied):
    import signal
    import socket

    from waiting import wait_until

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "serve", "--port", str(port)],
        cwd=applied.workdir,
        env=applied.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )

    def health():
        try:
            return httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
        except httpx.TransportError:
            return None

    try:
        response = wait_until(
            health,
            timeout=60,
            what="reconcile serve to answer /health",
            abort=lambda: proc.poll() is not None and f"exited {proc.returncode}",
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert response.status_code == 200 and response.json()["healthy"] is True
    assert proc.returncode == 0, proc.stderr.read().decode()
