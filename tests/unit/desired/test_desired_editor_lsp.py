"""The editor experience, for real: yaml-language-server over LSP on a user's repository.

A repository is laid out as a user's would be (the example desired state copied into
`desired_state/`, `reconcile schema --write schemas` run), then the language server that VS
Code, Neovim and Helix use is driven over stdio: the example files have no problems, a typo
is flagged where it is, `weight: 55` explains itself, completion offers the fields, and a file
with several kinds is checked per document. Skipped when the server is not installed:

    npm install --global yaml-language-server@1     (1.x runs on Node 20; 2.x needs Node 22)

or point YAML_LANGUAGE_SERVER at its executable.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from reconciler.desired.schema_bundle import write_schemas

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "desired_state"
COMBINED = "desired-state.schema.json"
SETTINGS = {
    "validate": True,
    "completion": True,
    "hover": True,
    "schemaStore": {"enable": False},  # no network: only the schemas in the repository
    # the mapping `reconcile schema --write` prints, for files without a modeline
    "schemas": {f"./schemas/{COMBINED}": "desired_state/**/*.yaml"},
}
TIMEOUT = 30.0


def server_command() -> list[str] | None:
    configured = os.environ.get("YAML_LANGUAGE_SERVER")
    found = configured or shutil.which("yaml-language-server")
    if not found or shutil.which("node") is None:
        return None
    return [found, "--stdio"]


class LanguageServer:
    """A minimal LSP client: JSON-RPC over the server's stdin/stdout."""

    def __init__(self, command: list[str], root: Path) -> None:
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=root,
        )
        self.inbox: queue.Queue[dict] = queue.Queue()
        self.next_id = 0
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        stream = self.process.stdout
        assert stream is not None
        while True:
            length = None
            while True:
                header = stream.readline()
                if not header:
                    return
                header = header.strip()
                if not header:
                    break
                name, _, value = header.decode("ascii").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            message = json.loads(stream.read(length or 0))
            if "method" in message and "id" in message:
                self._answer(message)
            else:
                self.inbox.put(message)

    def _answer(self, request: dict) -> None:
        result = None
        if request["method"] == "workspace/configuration":
            result = [
                SETTINGS if item.get("section") == "yaml" else None
                for item in request["params"]["items"]
            ]
        self._send({"jsonrpc": "2.0", "id": request["id"], "result": result})

    def _send(self, message: dict) -> None:
        body = json.dumps(message).encode("utf-8")
        with self.lock:
            assert self.process.stdin is not None
            self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
            self.process.stdin.flush()

    def notify(self, method: str, params: dict | None) -> None:
        self._send({"jsonrpc": "2.0", "method": method, "params": params})

    def request(self, method: str, params: dict | None) -> object:
        self.next_id += 1
        number = self.next_id
        self._send({"jsonrpc": "2.0", "id": number, "method": method, "params": params})
        reply = self.wait_for(lambda m: m.get("id") == number)
        assert "error" not in reply, reply
        return reply.get("result")

    def wait_for(self, accept, timeout: float = TIMEOUT) -> dict:
        """The first message `accept`s, within `timeout`; others are dropped."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no matching message from yaml-language-server")
            try:
                message = self.inbox.get(timeout=remaining)
            except queue.Empty:
                continue
            if accept(message):
                return message

    def open(self, path: Path) -> list[dict]:
        """Open a document and return the diagnostics first published for it."""
        uri = path.as_uri()
        self.notify(
            "textDocument/didOpen",
            {
                "textDocument": {
                    "uri": uri,
                    "languageId": "yaml",
                    "version": 1,
                    "text": path.read_text(encoding="utf-8"),
                }
            },
        )
        published = self.wait_for(
            lambda m: (
                m.get("method") == "textDocument/publishDiagnostics" and m["params"]["uri"] == uri
            )
        )
        return published["params"]["diagnostics"]

    def completion(self, path: Path, line: int, character: int) -> list[str]:
        result = self.request(
            "textDocument/completion",
            {
                "textDocument": {"uri": path.as_uri()},
                "position": {"line": line, "character": character},
            },
        )
        items = result["items"] if isinstance(result, dict) else result
        return [item["label"] for item in items]

    def hover(self, path: Path, line: int, character: int) -> str:
        result = self.request(
            "textDocument/hover",
            {
                "textDocument": {"uri": path.as_uri()},
                "position": {"line": line, "character": character},
            },
        )
        return result["contents"]["value"] if result else ""

    def close(self) -> None:
        try:
            self.request("shutdown", None)
            self.notify("exit", None)
            self.process.wait(timeout=10)
        except (TimeoutError, OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()


TYPO = (
    """\
# yaml-language-server: $schema=../../schemas/desired-state.schema.json
apiVersion: reconciler/v1
kind: Portfolio
metadata:
  name: typo
spec:
  account: DU0000003
  targets:
    - {symbol: VTI, weight: 55}
    - {symbol: BND, weigth: 30%}
  minTradeNotionl: 250
"""
    + "  \n"
)  # where completion is asked: indented inside spec

SEVERAL_KINDS = """\
# yaml-language-server: $schema=../schemas/desired-state.schema.json
apiVersion: reconciler/v1
kind: RiskPolicy
metadata: {name: strict}
spec:
  maxOrderNotional: 5000
---
# yaml-language-server: $schema=../schemas/desired-state.schema.json
apiVersion: reconciler/v1
kind: Schedule
metadata: {name: hourly}
spec:
  interval: 1h
  selfHeel: true
"""

NO_MODELINE = """\
apiVersion: reconciler/v1
kind: RiskPolicy
metadata: {name: mapped}
spec:
  maxOrderNotionl: 5000
"""


@pytest.fixture(scope="module")
def repository(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("user-repo")
    shutil.copytree(EXAMPLE, root / "desired_state")
    write_schemas(root / "schemas")
    (root / "desired_state" / "portfolios" / "typo.yaml").write_text(TYPO, encoding="utf-8")
    (root / "desired_state" / "several.yaml").write_text(SEVERAL_KINDS, encoding="utf-8")
    (root / "desired_state" / "mapped.yaml").write_text(NO_MODELINE, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def server(repository):
    command = server_command()
    if command is None:
        pytest.skip(
            "yaml-language-server not installed: npm install --global yaml-language-server@1 "
            "(or set YAML_LANGUAGE_SERVER)"
        )
    client = LanguageServer(command, repository)
    try:
        client.request(
            "initialize",
            {
                "processId": os.getpid(),
                "rootUri": repository.as_uri(),
                "workspaceFolders": [{"uri": repository.as_uri(), "name": "user-repo"}],
                "capabilities": {"workspace": {"configuration": True}},
            },
        )
        client.notify("initialized", {})
        client.notify("workspace/didChangeConfiguration", {"settings": {"yaml": SETTINGS}})
        yield client
    finally:
        client.close()


def by_message(diagnostics: list[dict]) -> dict[str, tuple[int, int]]:
    """message -> (1-based line, 1-based column), as the CLI counts."""
    return {
        d["message"]: (d["range"]["start"]["line"] + 1, d["range"]["start"]["character"] + 1)
        for d in diagnostics
    }


def test_every_example_file_is_clean_in_the_editor(server, repository):
    examples = [
        p
        for p in sorted((repository / "desired_state").rglob("*.yaml"))
        if p.name not in ("typo.yaml", "several.yaml", "mapped.yaml")
    ]
    assert len(examples) == 4
    for path in examples:
        assert server.open(path) == [], path


def test_hover_shows_the_schema_explanation_of_a_weight(server, repository):
    path = repository / "desired_state" / "portfolios" / "us-core.yaml"
    server.open(path)
    line = next(i for i, text in enumerate(path.read_text().splitlines()) if "weight: 50%" in text)
    column = path.read_text().splitlines()[line].index("50%")
    text = server.hover(path, line, column)
    assert "`weight: 55` would mean 5500%" in text


def test_a_typo_is_flagged_where_it_is_and_a_bare_55_explains_itself(server, repository):
    diagnostics = by_message(server.open(repository / "desired_state/portfolios/typo.yaml"))
    assert diagnostics["Property weigth is not allowed."] == (10, 21)
    assert diagnostics["Property minTradeNotionl is not allowed."] == (11, 3)
    explained = [m for m in diagnostics if "'weight: 55' would mean 5500%" in m]
    assert [diagnostics[m] for m in explained] == [(9, 29)]  # what the CLI says, not a type


def test_completion_offers_the_portfolio_fields_of_the_kind(server, repository):
    path = repository / "desired_state/portfolios/typo.yaml"
    server.open(path)
    labels = server.completion(path, 11, 2)  # the empty line inside spec
    assert {"minTradeNotional", "cashReserve", "band", "execution", "riskPolicy"} <= set(labels)
    assert "maxOrderNotional" not in labels  # a RiskPolicy field: kind selects the schema


def test_each_document_of_a_file_with_several_kinds_is_checked(server, repository):
    diagnostics = by_message(server.open(repository / "desired_state/several.yaml"))
    assert diagnostics == {"Property selfHeel is not allowed.": (14, 3)}


def test_the_printed_editor_mapping_checks_files_without_a_modeline(server, repository):
    diagnostics = by_message(server.open(repository / "desired_state/mapped.yaml"))
    assert diagnostics == {"Property maxOrderNotionl is not allowed.": (5, 3)}
