"""README's examples that are meant to run, as data: the test of the documentation reads them
from here so that README.md cannot drift from the code.

A fenced block preceded by `<!-- example: PATH -->` is a file of that name (relative to a
scratch workspace); one preceded by `<!-- example: run -->` is a list of shell command lines
to run there, in order. Importable from any test (pytest puts tests/ on sys.path).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
_MARKED = re.compile(
    r"^<!-- example: (?P<what>\S+) -->\n```(?P<lang>\w*)\n(?P<body>.*?)^```$",
    re.MULTILINE | re.DOTALL,
)


@dataclass(frozen=True)
class Examples:
    files: dict[str, str]  # workspace path -> content
    commands: list[str]  # shell lines, in README order


def readme_examples(text: str | None = None) -> Examples:
    text = README.read_text(encoding="utf-8") if text is None else text
    files: dict[str, str] = {}
    commands: list[str] = []
    for match in _MARKED.finditer(text):
        what, body = match["what"], match["body"]
        if what == "run":
            commands += [line for line in body.splitlines() if line.strip()]
        else:
            files[what] = files.get(what, "") + ("---\n" if what in files else "") + body
    return Examples(files, commands)


def write_files(examples: Examples, root: Path) -> None:
    for name, content in examples.files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
