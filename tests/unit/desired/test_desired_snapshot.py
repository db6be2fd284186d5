"""snapshot_of for deepdiff between cycles, and the content hash of the whole state."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from deepdiff import DeepDiff

from reconciler.desired import load_desired_state, snapshot_of

EXAMPLE = Path(__file__).resolve().parents[3] / "desired_state"


def copy_example(tmp_path: Path) -> Path:
    target = tmp_path / "desired_state"
    shutil.copytree(EXAMPLE, target)
    return target


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def test_snapshot_is_plain_json_with_targets_keyed_by_instrument():
    state = load_desired_state(EXAMPLE)
    portfolio = state.portfolio_for("DU0000001")
    snapshot = snapshot_of(portfolio, state.policy_for(portfolio))
    assert json.loads(json.dumps(snapshot)) == snapshot
    assert set(snapshot["portfolio"]["targets"]) == {"VTI", "BND", "SGOV"}
    assert snapshot["portfolio"]["targets"]["VTI"]["weight"] == 0.50
    assert snapshot["riskPolicy"]["restricted"] == ["GME"]
    assert "source" not in snapshot["portfolio"]


def test_deepdiff_of_two_snapshots_names_the_changed_weight(tmp_path):
    directory = copy_example(tmp_path)
    before = load_desired_state(directory)
    edit(directory / "portfolios/us-core.yaml", "weight: 50%", "weight: 45%")
    after = load_desired_state(directory)

    def snap(state):
        portfolio = state.portfolio_for("DU0000001")
        return snapshot_of(portfolio, state.policy_for(portfolio))

    diff = DeepDiff(snap(before), snap(after))
    assert list(diff["values_changed"]) == ["root['portfolio']['targets']['VTI']['weight']"]


def test_content_hash_is_stable_across_loads():
    assert load_desired_state(EXAMPLE).content_hash == load_desired_state(EXAMPLE).content_hash


def test_content_hash_ignores_comments_layout_and_equivalent_spellings(tmp_path):
    directory = copy_example(tmp_path)
    original = load_desired_state(directory).content_hash
    edit(directory / "portfolios/us-core.yaml", "weight: 50%", "weight: 0.50")
    edit(directory / "risk/default.yaml", "# USD per order", "# per order, in USD")
    (directory / "risk/default.yaml").rename(directory / "policy.yaml")
    assert load_desired_state(directory).content_hash == original


def test_content_hash_changes_with_content(tmp_path):
    directory = copy_example(tmp_path)
    hashes = {load_desired_state(directory).content_hash}
    edit(directory / "risk/default.yaml", "maxOrderNotional: 60000", "maxOrderNotional: 50000")
    hashes.add(load_desired_state(directory).content_hash)
    edit(directory / "schedule.yaml", "selfHeal: false", "selfHeal: true")
    hashes.add(load_desired_state(directory).content_hash)
    (directory / "instruments.lock.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: InstrumentLock\ninstruments:\n"
        "  VTI: {conId: 1, symbol: VTI, secType: STK, exchange: SMART, primaryExchange: ARCA,\n"
        "        currency: USD, minTick: 0.01, sizeIncrement: 1}\n",
        encoding="utf-8",
    )
    hashes.add(load_desired_state(directory).content_hash)
    assert len(hashes) == 4
    assert all(len(h) == 64 for h in hashes)
