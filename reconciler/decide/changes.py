"""What changed in the desired state, in the words of its YAML files (pure).

Responsible for turning two snapshots of desired-state documents (`{kind: {name: fields}}`,
built by `reconciler.desired.snapshot.documents_of`) into one readable line per change, named
the way an operator wrote them: `Portfolio us-core: targets VTI weight 55% → 50%`,
`RiskPolicy default: maxOrderNotional 60,000 → 10,000`, `Portfolio us-core: targets GLD
added (weight 10%)`. deepdiff finds the differences; this module names them (camelCase YAML
fields, not the model's snake_case) and shows values as they are written (percentages,
durations, thousands separators). Must not read files, git or a store.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ARROW = "→"

# Model field -> YAML field, where they differ by more than snake_case -> camelCase.
_YAML_NAMES = {
    "ttl_seconds": "ttl",
    "interval_seconds": "interval",
    "max_price_age_seconds": "maxPriceAge",
    "sec_type": "secType",
    "con_id": "conId",
}
_PERCENT = {"weight", "cashReserve", "absolute", "relative", "maxCycleTurnover", "maxSpread"}
_DURATION = {"ttl", "interval", "maxPriceAge"}
# Lists whose items are plain values: a change reads "restricted GME added".
_VALUE_LISTS = {"restricted", "accounts"}


def yaml_name(field: str) -> str:
    """`max_order_notional` -> `maxOrderNotional` (and the few renamed fields)."""
    if field in _YAML_NAMES:
        return _YAML_NAMES[field]
    head, *rest = field.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def format_value(field: str, value: Any) -> str:
    """A value as it would be written in the YAML file."""
    from deepdiff.helper import NotPresent

    if value is None or isinstance(value, NotPresent):
        return "(unset)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        if field in _PERCENT:
            return f"{round(value * 100, 6):g}%"
        if field in _DURATION:
            return _duration(float(value))
        if float(value).is_integer():
            return f"{int(value):,}"
        return f"{value:,}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(format_value(field, v) for v in value) + "]"
    if isinstance(value, Mapping):
        return _target_summary(value) or ", ".join(
            f"{yaml_name(k)} {format_value(yaml_name(k), v)}"
            for k, v in sorted(value.items())
            if v is not None
        )
    return str(value)


def _duration(seconds: float) -> str:
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _target_summary(target: Mapping[str, Any]) -> str | None:
    """A target added or removed is shown by its amount (`weight 10%`, `quantity 100`)."""
    if "instrument" not in target:
        return None
    if target.get("weight") is not None:
        return f"weight {format_value('weight', target['weight'])}"
    if target.get("quantity") is not None:
        return f"quantity {format_value('quantity', target['quantity'])}"
    return None


def _words(path: list[Any]) -> list[str]:
    """deepdiff's path below `kind, name` as YAML words (`targets VTI weight`)."""
    words: list[str] = []
    after_targets = False
    for part in path:
        text = str(part)
        words.append(text if after_targets else yaml_name(text))
        after_targets = text == "targets"
    return words


def document_changes(
    before: Mapping[str, Mapping[str, Any]], after: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    """One line per change between two `{kind: {name: fields}}` snapshots, in kind, name
    and field order; `[]` when nothing a plan depends on changed."""
    from deepdiff import DeepDiff  # imported here: it costs ~0.3 s and only this needs it

    tree = DeepDiff(
        _plain(before),
        _plain(after),
        ignore_order=True,
        view="tree",
        threshold_to_diff_deeper=0,  # always name the target that changed, never the whole map
    )
    lines: list[tuple[tuple[str, ...], str]] = []
    for report_type, levels in tree.items():
        for level in levels:
            path = level.path(output_format="list")
            if len(path) < 2:
                continue
            kind, name, rest = str(path[0]), str(path[1]), path[2:]
            prefix = f"{kind} {name}"
            words = _words(rest)
            if report_type in ("iterable_item_added", "iterable_item_removed"):
                added = report_type.endswith("added")
                value = level.t2 if added else level.t1
                field = words[-2] if len(words) >= 2 else "value"
                text = " ".join(words[:-1])
                line = f"{prefix}: {text} {format_value(field, value)} " + (
                    "added" if added else "removed"
                )
            elif report_type in ("dictionary_item_added", "dictionary_item_removed"):
                added = report_type.endswith("added")
                value = level.t2 if added else level.t1
                if not words:
                    line = f"{prefix}: {'added' if added else 'removed'}"
                else:
                    summary = format_value(words[-1], value)
                    state = "added" if added else "removed"
                    line = f"{prefix}: {' '.join(words)} {state}" + (
                        f" ({summary})" if summary and summary != "(unset)" else ""
                    )
            else:
                field = words[-1] if words else name
                line = (
                    f"{prefix}: {' '.join(words)} {format_value(field, level.t1)} {ARROW} "
                    f"{format_value(field, level.t2)}"
                )
            lines.append(((kind, name, *words), line))
    return [line for _, line in sorted(lines)]


def _plain(value: Any) -> Any:
    """Tuples as lists (a snapshot from JSON and one from the model compare equal); `source`
    (file and line) is not what a document says and is dropped."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items() if k != "source"}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def account_documents(snapshot: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """The `{kind: {name: fields}}` form of one account's recorded desired snapshot
    (`{"portfolio": ..., "riskPolicy": ...}`, see `desired.snapshot.snapshot_of`)."""
    documents: dict[str, dict[str, Any]] = {}
    if not snapshot:
        return documents
    portfolio = snapshot.get("portfolio")
    if isinstance(portfolio, Mapping):
        documents.setdefault("Portfolio", {})[str(portfolio.get("name"))] = _unnamed(portfolio)
    policy = snapshot.get("riskPolicy")
    if isinstance(policy, Mapping):
        documents.setdefault("RiskPolicy", {})[str(policy.get("name"))] = _unnamed(policy)
    return documents


def _unnamed(document: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k != "name"}


def merge_documents(*parts: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    merged: dict[str, dict[str, Any]] = {}
    for part in parts:
        for kind, named in part.items():
            merged.setdefault(kind, {}).update(named)
    return merged
