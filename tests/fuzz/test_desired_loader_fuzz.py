"""Fuzzing the desired-state loader: arbitrary bytes, arbitrary YAML and structure-aware
mutations of the valid example files never produce anything but diagnostics (no uncaught
exception, no hang: each example has a deadline), and an invalid directory always says
where and what (file, code, message); `reconcile validate` exits 1 with a diagnostic and no
traceback."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from fuzz.profiles import fuzz_settings
from reconciler.desired import validate_directory

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = {
    "desired_state": REPO / "desired_state",
    "reconciler/example": REPO / "reconciler" / "example",
}
FILES = sorted(
    (name, path.relative_to(root).as_posix())
    for name, root in EXAMPLES.items()
    for path in root.rglob("*.yaml")
)

# Values a mutation may put anywhere: every YAML/JSON type, nested a little.
SCALARS = (
    st.none() | st.booleans() | st.integers(-10**20, 10**20)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20)
    | st.sampled_from(["50%", "1e3", "0x1F", "yes", "NO", "~", "2026-01-19", "12:30", "1_000",
                       "-.inf", ".nan", "DU0000001", "VTI", "reconciler/v1", "Portfolio",
                       "RiskPolicy", "Schedule", "100%", "-5%", "0%", "1m", "30s", "LMT"])
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                  max_size=4),
    max_leaves=8,
)


@pytest.fixture(scope="module")
def workspace() -> Iterator[Path]:
    """Copies of the valid examples; each example rewrites one file and puts it back. A
    directory of its own, not pytest's basetemp: other pytest sessions on the machine prune
    old basetemps, which pulled the files from under a long (fuzz-long) run."""
    with tempfile.TemporaryDirectory(prefix="fuzz-desired-") as tmp:
        root = Path(tmp)
        for name, source in EXAMPLES.items():
            shutil.copytree(source, root / name)
        for name in EXAMPLES:
            state, diagnostics = validate_directory(root / name, base=root)
            assert state is not None, [d.render() for d in diagnostics]
        yield root


def only_diagnostics(directory: Path, base: Path) -> None:
    """The loader's contract: a state and no errors, or no state and at least one error,
    each naming its file, a stable code and a message."""
    state, diagnostics = validate_directory(directory, base=base)
    errors = [d for d in diagnostics if d.severity == "error"]
    if state is None:
        assert errors, "no state, yet no error diagnostic says why"
    else:
        assert not errors, [d.render() for d in errors]
    for d in diagnostics:
        assert d.file and d.code[:2] in ("E_", "W_") and d.message, d
        assert d.line is None or d.line >= 1, d
        d.render()


def with_file(workspace: Path, name: str, relative: str, content: bytes) -> None:
    target = workspace / name / relative
    original = (EXAMPLES[name] / relative).read_bytes()
    target.write_bytes(content)
    try:
        only_diagnostics(workspace / name, workspace)
    finally:
        target.write_bytes(original)


# ------------------------------------------------------------------ arbitrary input


@fuzz_settings()
@given(file=st.sampled_from(FILES), content=st.binary(max_size=400))
@example(file=FILES[0], content=b"\xff\xfe\x00")
@example(file=FILES[0], content=b"[" * 5000)
@example(file=FILES[0], content=b"a: &x [*x]\n")
@example(file=FILES[0], content=b"--- !!python/object:os.system\n")
def test_loader_when_given_arbitrary_bytes_then_only_diagnostics(workspace, file, content):
    with_file(workspace, *file, content)


# Documents that get past dispatch (a known apiVersion and kind) reach the schema and the
# semantic checks with arbitrary specs; the rest are any value at all.
DOCUMENTS = st.fixed_dictionaries(
    {"apiVersion": st.just("reconciler/v1"),
     "kind": st.sampled_from(["Portfolio", "RiskPolicy", "Schedule"]),
     "metadata": st.fixed_dictionaries({"name": st.text(max_size=10)}),
     "spec": st.dictionaries(st.sampled_from([
         "account", "targets", "band", "execution", "riskPolicy", "cashReserve", "capital",
         "maxOrderNotional", "maxOrdersPerCycle", "interval", "timezone", "window",
         "selfHeal", "tradingState", "unmanaged", "minTradeNotional"]), VALUES, max_size=5)}
) | VALUES


@fuzz_settings(scale=0.5)
@given(file=st.sampled_from(FILES), documents=st.lists(DOCUMENTS, min_size=1, max_size=3))
def test_loader_when_given_arbitrary_yaml_documents_then_only_diagnostics(
    workspace, file, documents
):
    text = yaml.safe_dump_all(documents, allow_unicode=True, sort_keys=False)
    with_file(workspace, *file, text.encode("utf-8"))


# ------------------------------------------------------------------ structure-aware mutations


def _paths(value, prefix=()):
    """Every path (keys and indexes) into a parsed document, the root included."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


@st.composite
def mutated_documents(draw):
    name, relative = draw(st.sampled_from(FILES))
    documents = list(yaml.safe_load_all((EXAMPLES[name] / relative).read_text("utf-8")))
    index = draw(st.integers(0, len(documents) - 1))
    paths = list(_paths(documents[index]))
    path = draw(st.sampled_from(paths))
    mutation = draw(st.sampled_from(["replace", "delete", "add", "wrap", "stringify",
                                     "duplicate_document", "drop_document"]))
    if mutation == "duplicate_document":
        documents.insert(index, documents[index])
    elif mutation == "drop_document":
        del documents[index]
    elif not path:
        documents[index] = draw(VALUES)
    else:
        parent = documents[index]
        for step in path[:-1]:
            parent = parent[step]
        key = path[-1]
        if mutation == "replace":
            parent[key] = draw(VALUES)
        elif mutation == "delete":
            del parent[key]
        elif mutation == "add" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=12))] = draw(VALUES)
        elif mutation == "add":
            parent.insert(key, draw(VALUES))
        elif mutation == "wrap":
            parent[key] = [parent[key]]
        else:
            parent[key] = str(parent[key])
    text = yaml.safe_dump_all(documents, allow_unicode=True, sort_keys=False)
    return (name, relative), text.encode("utf-8")


@fuzz_settings()
@given(case=mutated_documents())
def test_loader_when_a_valid_file_is_mutated_structurally_then_only_diagnostics(
    workspace, case
):
    file, content = case
    with_file(workspace, *file, content)


@st.composite
def mutated_bytes(draw):
    name, relative = draw(st.sampled_from(FILES))
    data = bytearray((EXAMPLES[name] / relative).read_bytes())
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["truncate", "insert", "delete", "replace", "indent",
                                     "duplicate_line"]))
        if kind == "truncate":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8)
                               | st.sampled_from([b"\t", b":", b"- ", b"{", b"]", b"&a ",
                                                  b"*a", b"!!str ", b"\n  ", b"'", b'"', b"#"]))
        elif kind == "delete":
            del data[at:at + draw(st.integers(1, 20))]
        elif kind == "replace" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif kind == "indent":
            line_start = data.rfind(b"\n", 0, at) + 1
            data[line_start:line_start] = b" " * draw(st.integers(1, 3))
        else:
            start = data.rfind(b"\n", 0, at) + 1
            end = data.find(b"\n", at)
            end = len(data) if end < 0 else end + 1
            data[end:end] = data[start:end]
    return (name, relative), bytes(data)


@fuzz_settings()
@given(case=mutated_bytes())
def test_loader_when_a_valid_file_is_mutated_bytewise_then_only_diagnostics(workspace, case):
    file, content = case
    with_file(workspace, *file, content)


# ------------------------------------------------------------------ through the CLI


@pytest.mark.parametrize(
    "content",
    [b"apiVersion: reconciler/v1\nkind: Portfolio\nspec: [\x00\n", b"{{{{" * 100],
    ids=["control-character", "unbalanced-flow"],
)
def test_validate_command_when_a_file_is_garbage_then_exit_1_with_a_diagnostic_and_no_traceback(
    tmp_path, content
):
    directory = tmp_path / "desired"
    shutil.copytree(EXAMPLES["desired_state"], directory)
    (directory / "portfolios" / "us-core.yaml").write_bytes(content)
    done = subprocess.run(
        [sys.executable, "-m", "reconciler", "validate", str(directory)],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 1, done
    assert "us-core.yaml" in done.stdout + done.stderr and " E_" in done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
