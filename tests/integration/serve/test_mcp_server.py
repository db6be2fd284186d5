"""`reconcile mcp` driven over stdio by the official SDK's client: every tool is called and its
output checked against the store of one real apply; nothing in the tool list changes state,
and every call is logged."""

from __future__ import annotations

import asyncio
import json
import sys

import pytest

EXPECTED_TOOLS = {
    "validate",
    "plan",
    "status",
    "show_orders",
    "show_fills",
    "explain_drift",
    "explain_denial",
}
STATE_CHANGING_WORDS = (
    "apply",
    "halt",
    "resume",
    "cancel",
    "unlock",
    "place",
    "submit",
    "send",
    "write",
)


async def _session_run(applied, log_path, calls):
    from mcp import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "reconciler", "mcp", "--dir", str(applied.desired_dir)],
        env=applied.env,
        cwd=str(applied.workdir),
    )
    results = {}
    with open(log_path, "w", encoding="utf-8") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            results["tools"] = (await session.list_tools()).tools
            for name, args in calls:
                results[name] = await session.call_tool(name, args)
            listed = (await session.list_resources()).resources
            results["resources"] = {
                str(r.uri): json.loads((await session.read_resource(r.uri)).contents[0].text)
                for r in listed
            }
    return results


CALLS = [
    ("validate", {}),
    ("status", {}),
    ("show_orders", {"account": "DU0000001", "limit": 10}),
    ("show_fills", {"limit": 50}),
    ("explain_drift", {"account": "DU0000001"}),
    ("explain_denial", {"code": "NOTIONAL_EXCEEDS_MAX_PER_ORDER", "account": "DU0000001"}),
    ("plan", {"accounts": ["DU0000001"]}),
]


@pytest.fixture(scope="module")
def mcp_run(applied, tmp_path_factory):
    log_path = tmp_path_factory.mktemp("mcp") / "mcp-stderr.log"
    placed_before = len(applied.sim.journal.messages("in", 3))
    results = asyncio.run(_session_run(applied, log_path, CALLS))
    placed_after = len(applied.sim.journal.messages("in", 3))
    return results, log_path.read_text(encoding="utf-8"), placed_before, placed_after


def structured(result):
    assert not result.is_error, result.content
    body = result.structured_content
    return body.get("result", body) if set(body) == {"result"} else body


def test_the_tool_list_is_exactly_the_read_only_tools(mcp_run):
    results, *_ = mcp_run
    tools = {t.name: t for t in results["tools"]}
    assert set(tools) == EXPECTED_TOOLS
    for name, tool in tools.items():
        assert not any(word in name for word in STATE_CHANGING_WORDS), name
        assert (
            tool.annotations.read_only_hint is True and tool.annotations.destructive_hint is False
        )
        assert "cannot apply, halt, resume or cancel" in tool.description, name


def test_validate_status_orders_and_fills_match_the_store(mcp_run, readonly_store):
    results, *_ = mcp_run
    validate = structured(results["validate"])
    assert validate["valid"] is True and set(validate["accounts"]) == {"DU0000001", "DU0000002"}
    status = structured(results["status"])
    assert {a["account"] for a in status["accounts"]} == {"DU0000001", "DU0000002"}
    orders = structured(results["show_orders"])
    assert [o["order_ref"] for o in orders] == [
        o.order_ref for o in readonly_store.list_orders(account="DU0000001", limit=10)
    ]
    fills = structured(results["show_fills"])
    assert len(fills) == len(readonly_store.list_fills(limit=50)) == 7


def test_explain_drift_names_the_instruments_out_of_band_and_the_binding_check(mcp_run):
    results, *_ = mcp_run
    body = structured(results["explain_drift"])
    assert {r["key"] for r in body["outside_band"]} == {"VTI", "BND"}
    assert {d["code"] for d in body["binding_risk_checks"]} == {"NOTIONAL_EXCEEDS_MAX_PER_ORDER"}
    assert "VTI: weight" in body["explanation"]


def test_explain_denial_gives_the_code_in_words_with_its_numbers(mcp_run, readonly_store):
    results, *_ = mcp_run
    body = structured(results["explain_denial"])
    latest = readonly_store.list_denials(account="DU0000001", limit=1)[0]
    assert body["known"] is True and body["recorded"] == 2
    assert "maxOrderNotional" in body["explanation"]
    assert f"The limit is {latest['detail']['max']}" in body["explanation"]


def test_plan_plans_without_sending_anything(mcp_run):
    results, _, placed_before, placed_after = mcp_run
    body = structured(results["plan"])
    assert body["plan_id"]
    # The cap clipped VTI and BND; the plan asks for more of them, and nothing was sent.
    assert {o["symbol"] for o in body["orders"]} >= {"VTI", "BND"}
    assert placed_after == placed_before


def test_resources_hold_the_latest_report_and_the_effective_limits(mcp_run, readonly_store):
    results, *_ = mcp_run
    resources = results["resources"]
    report = resources["reconciler://cycles/latest/report"]
    assert report["report"] == readonly_store.get_cycle(1).report
    limits = resources["reconciler://risk/limits"]["policies"]["default"]
    by_name = {row["limit"]: row for row in limits}
    assert by_name["max_order_notional"]["value"] == 15000.0
    assert "EXEC_RISK_MAX_ORDER_NOTIONAL" in by_name["max_order_notional"]["source"]


def test_every_call_is_logged(mcp_run):
    _, log, *_ = mcp_run
    for name, _args in CALLS:
        assert f"tool={name} " in log, name
    assert "resource=latest_cycle_report" in log and "resource=risk_limits" in log


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(port: int) -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


async def _http_tools(url: str):
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async with (
        streamable_http_client(url) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        tools = {t.name for t in (await session.list_tools()).tools}
        status = await session.call_tool("status", {})
    return tools, status


def test_streamable_http_serves_the_same_read_only_tools_on_loopback_only(applied):
    import subprocess

    from waiting import wait_until

    refused = applied.reconcile("mcp", "--transport", "http", "--host", "0.0.0.0")
    assert refused.returncode == 1 and b"127.0.0.1 only" in refused.stderr

    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "mcp", "--transport", "http", "--port", str(port)],
        cwd=applied.workdir,
        env=applied.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until(
            lambda: _answers(port),
            timeout=60,
            what="the MCP HTTP server to listen",
            abort=lambda: proc.poll() is not None and f"exited {proc.returncode}",
        )
        tools, status = asyncio.run(_http_tools(f"http://127.0.0.1:{port}/mcp"))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert proc.returncode == 0, proc.stderr.read().decode()
    assert tools == EXPECTED_TOOLS
    assert {a["account"] for a in structured(status)["accounts"]} == {"DU0000001", "DU0000002"}
