"""Strict YAML reading: plain Python values with the line and column of every field.

Responsible for turning the bytes of one file into documents of plain values (dict, list,
str, int, float, bool, None) plus a map from JSON pointer to source position, and for
refusing the YAML traps that make a file mean something other than what it looks like:
duplicate keys, YAML 1.1 booleans (`NO`, `on`, `yes`, `y`), exponent numbers that YAML 1.1
reads as text (`1e3`), octal-looking `012`, sexagesimal `12:30`, hex/binary/underscore
numbers, infinities, tabs, bytes that are not UTF-8, empty files, non-standard tags
(`!!python/...`, `!custom`), and anchors/aliases.

Anchors and aliases are refused on purpose: desired state is reviewed as diffs, and every
value should be visible where it applies (an alias also hides which line a value came from).

Plain scalars are resolved here, not by PyYAML's YAML 1.1 resolver: the composer tags every
plain scalar `PLAIN_TAG` and `_resolve_plain` applies YAML 1.2 core-schema rules, flagging
every spelling where 1.1 and 1.2 (or a human) disagree. Must not know about kinds, schemas
or the model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

PLAIN_TAG = "!reconciler/plain"
ALIAS_TAG = "!reconciler/alias"
_STD = "tag:yaml.org,2002:"
_SAFE_SCALAR_TAGS = {_STD + t for t in ("str", "int", "float", "bool", "null")}

MAX_EXACT_NUMBER = 2**53  # beyond this a float cannot hold every integer exactly
MAX_DEPTH = 32  # desired state nests a handful of levels; deeper is a mistake or an attack

_NULLS = {"", "~", "null", "Null", "NULL"}
_TRUE = {"true", "True", "TRUE"}
_FALSE = {"false", "False", "FALSE"}
_YAML11_BOOLEANS = {
    spelled
    for word in ("yes", "no", "on", "off", "y", "n")
    for spelled in (word, word.capitalize(), word.upper())
}
_INT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)")
_FLOAT = re.compile(r"[-+]?(?:(?:0|[1-9][0-9]*)\.[0-9]*|\.[0-9]+)")
_NON_FINITE = re.compile(r"[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)")
_EXPONENT = re.compile(r"[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+")
_OCTAL = re.compile(r"[-+]?(?:0[0-9_]+(?:\.[0-9_]*)?|0o[0-7_]+)")
_SEXAGESIMAL = re.compile(r"[-+]?[0-9][0-9_]*(?::[0-9]{1,2})+(?:\.[0-9_]*)?")
_OTHER_NUMBER = re.compile(r"[-+]?(?:0x[0-9a-fA-F_]+|0b[01_]+|[0-9][0-9_]*_[0-9_]*(?:\.[0-9_]*)?)")


@dataclass(frozen=True)
class Position:
    """1-based line and column in the source file."""

    line: int
    column: int


@dataclass(frozen=True)
class YamlProblem:
    """A problem found while reading YAML; the loader turns it into a Diagnostic."""

    code: str
    message: str
    line: int | None
    column: int | None
    pointer: str = ""


@dataclass
class ParsedDocument:
    """One `---` document: its value, where it starts and where each field sits."""

    value: Any
    index: int
    start: Position
    positions: dict[str, Position] = field(default_factory=dict)  # pointer -> value node
    key_positions: dict[str, Position] = field(default_factory=dict)  # pointer -> its key
    problems: list[YamlProblem] = field(default_factory=list)
    containers: set[str] = field(default_factory=set)  # pointers of mappings and lists

    def position_of(self, pointer: str, *, key: bool = False) -> Position:
        """The position of `pointer`, else of its nearest ancestor.

        A mapping or list is reported at its key (`spec:`), not at its first entry, and so
        is any field when `key` is asked for (an unknown field is its key's fault).
        """
        if (key or pointer in self.containers) and pointer in self.key_positions:
            return self.key_positions[pointer]
        while True:
            if pointer in self.positions:
                return self.positions[pointer]
            if not pointer:
                return self.start
            pointer = pointer.rsplit("/", 1)[0]


@dataclass
class ParsedFile:
    documents: list[ParsedDocument]
    problems: list[YamlProblem]  # file-level: encoding, tabs, syntax, empty


def escape_pointer_token(token: object) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def _pos(mark: Any) -> Position:
    return Position(mark.line + 1, mark.column + 1)


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader whose composer leaves plain scalars unresolved and never shares nodes."""

    def resolve(self, kind, value, implicit):  # type: ignore[override]
        if kind is ScalarNode and implicit[0]:
            return PLAIN_TAG
        return super().resolve(kind, value, implicit)

    def compose_node(self, parent, index):  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            event = self.get_event()
            return ScalarNode(ALIAS_TAG, event.anchor, event.start_mark, event.end_mark)
        event = self.peek_event()
        anchor = getattr(event, "anchor", None)
        node = super().compose_node(parent, index)
        if anchor is not None:
            node.reconciler_anchor = anchor  # type: ignore[attr-defined]
        return node


_SAFE_CONSTRUCTOR = yaml.constructor.SafeConstructor()


class _Builder:
    """Turns one composed document into plain values, recording positions and traps."""

    def __init__(self, document: ParsedDocument) -> None:
        self.doc = document

    def problem(self, code: str, message: str, node: Node, pointer: str) -> None:
        at = _pos(node.start_mark)
        self.doc.problems.append(YamlProblem(code, message, at.line, at.column, pointer))

    def build(self, node: Node, pointer: str, depth: int = 0) -> Any:
        self.doc.positions[pointer] = _pos(node.start_mark)
        if depth > MAX_DEPTH:
            self.problem(
                "E_YAML_TOO_DEEP", f"nested more than {MAX_DEPTH} levels deep", node, pointer
            )
            return None
        anchor = getattr(node, "reconciler_anchor", None)
        if anchor is not None:
            self.problem(
                "E_YAML_ANCHOR",
                f"anchor &{anchor} is not allowed: write each value out where it applies, "
                "so reviewers see it in the diff",
                node,
                pointer,
            )
        if isinstance(node, ScalarNode):
            return self.build_scalar(node, pointer)
        if node.tag not in (_STD + "map", _STD + "seq"):
            self.problem(
                "E_YAML_TAG",
                f"tag {node.tag!r} is not allowed; only plain YAML values are accepted",
                node,
                pointer,
            )
            return None
        self.doc.containers.add(pointer)
        if isinstance(node, SequenceNode):
            return [
                self.build(item, f"{pointer}/{i}", depth + 1) for i, item in enumerate(node.value)
            ]
        assert isinstance(node, MappingNode)
        return self.build_mapping(node, pointer, depth)

    def build_mapping(self, node: MappingNode, pointer: str, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first_seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == ALIAS_TAG:
                self.problem(
                    "E_YAML_COMPLEX_KEY", "a mapping key must be plain text", key_node, pointer
                )
                continue
            key = key_node.value
            child = f"{pointer}/{escape_pointer_token(key)}"
            if key_node.tag == PLAIN_TAG and key == "<<":
                self.problem(
                    "E_YAML_MERGE_KEY",
                    "merge keys (<<) are not allowed: write each field out",
                    key_node,
                    child,
                )
                continue
            if key_node.tag == PLAIN_TAG and key in _YAML11_BOOLEANS:
                self.problem(
                    "E_YAML_BOOLEAN",
                    f"key {key} is a YAML 1.1 boolean that other YAML tools read as "
                    f'true/false; quote it ("{key}") if you mean the text',
                    key_node,
                    child,
                )
            elif key_node.tag not in (PLAIN_TAG, _STD + "str"):
                self.problem(
                    "E_YAML_TAG",
                    f"tag {key_node.tag!r} is not allowed on a key",
                    key_node,
                    child,
                )
            if key in first_seen:
                self.problem(
                    "E_DUPLICATE_KEY",
                    f"key {key!r} appears twice in this mapping (first on line "
                    f"{first_seen[key]}); YAML would silently keep only the last one",
                    key_node,
                    child,
                )
                continue
            first_seen[key] = key_node.start_mark.line + 1
            self.doc.key_positions[child] = _pos(key_node.start_mark)
            result[key] = self.build(value_node, child, depth + 1)
        return result

    def build_scalar(self, node: ScalarNode, pointer: str) -> Any:
        if node.tag == ALIAS_TAG:
            self.problem(
                "E_YAML_ALIAS",
                f"alias *{node.value} is not allowed: write the value out where it applies",
                node,
                pointer,
            )
            return None
        if node.tag == PLAIN_TAG:
            return self.resolve_plain(node, pointer)
        if node.tag == _STD + "str":
            return node.value
        if node.tag in _SAFE_SCALAR_TAGS:
            try:
                return _SAFE_CONSTRUCTOR.construct_object(node)
            except (yaml.YAMLError, ValueError) as exc:
                self.problem(
                    "E_YAML_TAG",
                    f"{node.value!r} does not fit tag {node.tag}: {exc}",
                    node,
                    pointer,
                )
                return None
        self.problem(
            "E_YAML_TAG",
            f"tag {node.tag!r} is not allowed; only plain YAML values are accepted",
            node,
            pointer,
        )
        return None

    def resolve_plain(self, node: ScalarNode, pointer: str) -> Any:
        text = node.value
        if text in _NULLS:
            return None
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        if text in _YAML11_BOOLEANS:
            self.problem(
                "E_YAML_BOOLEAN",
                f"{text} is a YAML 1.1 boolean that other YAML tools read as true/false; "
                f'write true or false, or quote it ("{text}") if you mean the text',
                node,
                pointer,
            )
            return text
        if _INT.fullmatch(text) or _FLOAT.fullmatch(text):
            number = int(text) if _INT.fullmatch(text) else float(text)
            if not abs(number) <= MAX_EXACT_NUMBER:  # also catches a float that overflowed
                self.problem(
                    "E_NUMBER_TOO_LARGE",
                    f"{text[:20]}{'...' if len(text) > 20 else ''} is too large to be exact; "
                    f"numbers here stay within {MAX_EXACT_NUMBER:,}",
                    node,
                    pointer,
                )
                return text
            return number
        trap = _number_trap(text)
        if trap is not None:
            code, message = trap
            self.problem(code, message, node, pointer)
        return text


def _number_trap(text: str) -> tuple[str, str] | None:
    if _NON_FINITE.fullmatch(text):
        return "E_NUMBER_NOT_FINITE", f"{text} is not a finite number"
    if _EXPONENT.fullmatch(text):
        return (
            "E_YAML_EXPONENT",
            f"{text} is exponent notation, which YAML 1.1 reads as text, not a number; "
            "write the number out in full (e.g. 1000), or quote it if you mean the text",
        )
    if _OCTAL.fullmatch(text):
        return (
            "E_YAML_OCTAL",
            f"{text} has a leading zero, which YAML 1.1 reads as an octal number; drop the "
            f'leading zero, or quote it ("{text}") if you mean the text',
        )
    if _SEXAGESIMAL.fullmatch(text):
        return (
            "E_YAML_SEXAGESIMAL",
            f"{text} looks like a time, which YAML 1.1 reads as a base-60 number; "
            f'quote it ("{text}") if you mean the text',
        )
    if _OTHER_NUMBER.fullmatch(text):
        return (
            "E_YAML_NUMBER_FORMAT",
            f"{text} is a hex, binary or underscore-separated number that YAML versions read "
            "differently; write a plain decimal number, or quote it if you mean the text",
        )
    return None


def _decode(data: bytes) -> tuple[str | None, YamlProblem | None]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        return None, YamlProblem(
            "E_NOT_UTF8",
            f"byte 0x{data[exc.start]:02x} is not valid UTF-8; save the file as UTF-8",
            line,
            column,
        )
    return text.removeprefix("\ufeff"), None


def _tab_problems(text: str) -> list[YamlProblem]:
    return [
        YamlProblem(
            "E_YAML_TAB",
            "tab character: YAML indentation must use spaces (tabs are not allowed anywhere "
            "in desired-state files)",
            number,
            line.index("\t") + 1,
        )
        for number, line in enumerate(text.split("\n"), start=1)
        if "\t" in line
    ]


def _syntax_problem(exc: yaml.YAMLError, text: str) -> YamlProblem:
    if isinstance(exc, yaml.reader.ReaderError):
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        return YamlProblem(
            "E_YAML_SYNTAX",
            f"control character U+{exc.character:04X} is not allowed in YAML",
            line,
            column,
        )
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    context_mark = getattr(exc, "context_mark", None)
    if context and context_mark is not None and context_mark is not mark:
        context += f" that starts on line {context_mark.line + 1}"
    message = f"not valid YAML: {problem}" + (f" ({context})" if context else "")
    if mark is None:
        return YamlProblem("E_YAML_SYNTAX", message, None, None)
    return YamlProblem("E_YAML_SYNTAX", message, mark.line + 1, mark.column + 1)


def parse_yaml(data: bytes) -> ParsedFile:
    """Parse every document of a file; never raises for malformed input."""
    text, problem = _decode(data)
    if text is None:
        return ParsedFile([], [problem] if problem else [])
    tabs = _tab_problems(text)
    if tabs:
        return ParsedFile([], tabs)
    documents: list[ParsedDocument] = []
    problems: list[YamlProblem] = []
    loader: _StrictLoader | None = None
    try:
        loader = _StrictLoader(text)
        while loader.check_node():
            start_event = loader.peek_event()
            node = loader.get_node()
            if node is None:  # pragma: no cover - check_node guarantees a node
                break
            doc = ParsedDocument(
                value=None, index=len(documents), start=_pos(start_event.start_mark)
            )
            doc.value = _Builder(doc).build(node, "")
            doc.start = _pos(node.start_mark) if doc.value is not None else doc.start
            documents.append(doc)
    except yaml.YAMLError as exc:
        problems.append(_syntax_problem(exc, text))
    except RecursionError:
        problems.append(
            YamlProblem(
                "E_YAML_TOO_DEEP",
                f"nested far more than {MAX_DEPTH} levels deep; not a desired-state file",
                1,
                1,
            )
        )
    finally:
        if loader is not None:
            loader.dispose()
    if not documents and not problems:
        problems.append(
            YamlProblem(
                "E_EMPTY_FILE",
                "the file holds no YAML document; add one or delete the file",
                1,
                1,
            )
        )
    return ParsedFile(documents, problems)


def needs_quotes(text: str) -> bool:
    """Whether `text` written as a plain scalar would read back as something else (or trap)."""
    if text in _NULLS or text in _TRUE or text in _FALSE or text in _YAML11_BOOLEANS:
        return True
    if text == "<<":
        return True
    return bool(_INT.fullmatch(text) or _FLOAT.fullmatch(text) or _number_trap(text) is not None)
