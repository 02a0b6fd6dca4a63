"""Every documented code example runs, so the docs cannot rot.

The ```python blocks of docs/*.md and README.md run in order, one namespace per page, in a fresh folder (a page's
later block may use what an earlier one made, as a reader would). A block preceded by ``<!-- file: PATH -->`` is
written to PATH instead (it is a module that later blocks or commands import); one preceded by ``<!-- no-test -->``
is skipped (it needs data or a trained checkpoint that a test cannot have, such as IMDB). The examples in the package
docstrings of seqlit.models, seqlit.tasks and seqlit.data run as doctests.
"""

from __future__ import annotations

import doctest
import importlib
import re
import sys
from pathlib import Path

import pytest
from conftest import REPO

PAGES = sorted((REPO / "docs").glob("*.md")) + [REPO / "README.md"]
_BLOCK = re.compile(r"(?:<!--\s*(no-test|file:\s*(\S+))\s*-->\s*\n)?```python\n(.*?)```", re.S)


def blocks(text: str) -> list[tuple[int, str | None, str | None, str]]:
    """(line, marker, file path, code) of every ```python block of a Markdown text."""
    return [(text.count("\n", 0, m.start()) + 1, m.group(1), m.group(2), m.group(3)) for m in _BLOCK.finditer(text)]


def test_block_markers_are_read():
    text = "a\n<!-- no-test -->\n```python\nx = 1\n```\n<!-- file: p/m.py -->\n```python\ny = 2\n```\n```python\nz\n```"
    found = blocks(text)
    assert [(marker, path) for _, marker, path, _ in found] == [("no-test", None), ("file: p/m.py", "p/m.py"),
                                                                 (None, None)]  # fmt: skip
    assert found[2][3] == "z\n"


RUNNABLE = [p for p in PAGES if p.is_file() and any(m != "no-test" for _, m, _, _ in blocks(p.read_text()))]


@pytest.mark.parametrize("page", RUNNABLE, ids=lambda p: p.name)
def test_python_examples_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    namespace: dict = {"__name__": "__doc_example__"}
    for line, marker, path, code in blocks(page.read_text()):
        if marker == "no-test":
            continue
        if path:
            target = tmp_path / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(code)
            if target.parent != tmp_path:
                (target.parent / "__init__.py").touch()
            continue
        try:
            exec(compile(code, f"{page.name}:{line}", "exec"), namespace)
        except Exception as exc:  # name the page and line of the example that broke
            pytest.fail(f"{page.relative_to(REPO)} line {line}: {type(exc).__name__}: {exc}\n{code}")
    for name, module in list(sys.modules.items()):  # forget modules the page wrote, so no other test sees them
        if str(getattr(module, "__file__", None) or "").startswith(str(tmp_path)):
            monkeypatch.delitem(sys.modules, name)


@pytest.mark.parametrize("module", ["seqlit.models", "seqlit.tasks", "seqlit.data"])
def test_package_docstring_examples(module: str):
    result = doctest.testmod(importlib.import_module(module), verbose=False)
    assert result.attempted > 0 and result.failed == 0
