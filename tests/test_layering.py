"""The house's rules, checked on the source: imports point one way between the layers, and private attributes of
Lightning and Optuna are named in one commented module only."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "seqlit"

# layer -> the seqlit modules it must never import (a prefix matches the module and everything below it)
FORBIDDEN = {
    "seqlit.models": (
        "lightning",
        "pytorch_lightning",
        "seqlit.data",
        "seqlit.tasks",
        "seqlit.run",
        "seqlit.inference",
    ),
    "seqlit.data": ("seqlit.tasks", "seqlit.run", "seqlit.inference"),
    "seqlit.tasks": ("seqlit.data", "seqlit.run", "seqlit.inference"),
    "seqlit.vocab": ("lightning", "seqlit.data", "seqlit.tasks", "seqlit.run"),
    "seqlit.errors": ("seqlit.",),
    "seqlit.compat": ("seqlit.",),
}
# private names of other libraries that only seqlit/compat.py may touch
PRIVATE = re.compile(
    r"(?<![\w])_(?:hparams_initial|batches_that_stepped|signal_connector|run_subcommand|parse_ckpt_path|storage|trial_id)\b"
    r"|__new__\(SeqlitCLI"
)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, module: str) -> set[str]:
    """Every module an ``import`` or ``from … import`` names, at any depth of the file (function bodies too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: resolve against this module's package
                base = module.split(".")[: -node.level] if not module.endswith("__init__") else module.split(".")
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            found.add(name)
            found |= {f"{name}.{alias.name}" for alias in node.names}  # `from seqlit import data` imports seqlit.data
    return found


def violations(module: str, source: str) -> list[str]:
    rules = [banned for layer, banned in FORBIDDEN.items() if module == layer or module.startswith(layer + ".")]
    bad = []
    for imported in sorted(imported_modules(source, module)):
        for banned in (b for rule in rules for b in rule):
            if imported == banned.rstrip(".") or imported.startswith(banned if banned.endswith(".") else banned + "."):
                bad.append(f"{module} imports {imported}")
    return bad


def sources() -> list[tuple[str, str]]:
    return [(module_name(p), p.read_text()) for p in sorted(PACKAGE.rglob("*.py"))]


def test_imports_point_one_way_between_the_layers():
    bad = [line for module, source in sources() for line in violations(module, source)]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize(
    "module, line",
    [
        ("seqlit.models.encoder", "import lightning as L"),
        ("seqlit.models.encoder", "from seqlit.data.loading import tensor_loader"),
        ("seqlit.data.chars", "from seqlit.tasks.language_model import LanguageModel"),
        ("seqlit.data.text.tokenizer", "def f():\n    from seqlit.tasks import classifier"),
        ("seqlit.tasks.language_model", "from seqlit.data import chars"),
        ("seqlit.tasks.forecaster", "from seqlit.run.checkpoints import load_checkpoint"),
    ],
)
def test_a_wrong_arrow_is_caught(module, line):
    assert violations(module, line)


def test_allowed_arrows_pass():
    assert not violations(
        "seqlit.run.cli", "from seqlit.data import SineDataModule\nfrom seqlit.tasks import Forecaster"
    )
    assert not violations("seqlit.tasks.language_model", "from seqlit.vocab import decode\nimport lightning as L")
    assert not violations("seqlit.inference", "from seqlit.tasks.classifier import Classifier")


def test_private_library_attributes_live_in_one_module():
    bad = [
        f"{module}: {match.group(0)}"
        for module, source in sources()
        if module != "seqlit.compat"
        for match in PRIVATE.finditer(source)
    ]
    assert not bad, "\n".join(bad)


def test_no_file_in_the_package_is_over_300_lines():
    long = {
        str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 300
    }
    assert not long, long


def test_a_task_loads_its_test_quantile_and_corpus_code_only_when_used():
    """What a reader copies for one task: importing the tasks and their data leaves out the writers and figures of test
    and predict, the quantile side of the forecaster, chrono initialisation and the text corpus readers."""
    probe = """
import sys, torch
import seqlit.data.forecasting.csv, seqlit.data.text.datamodule
from seqlit.tasks import Classifier, Forecaster, LanguageModel
lazy = ("outputs", "forecast_outputs", "classifier_figures", "forecast_intervals", "chrono", "corpus", "readers")
def seen():
    print(sorted(m for m in sys.modules if m.startswith("seqlit.") and m.rpartition(".")[2] in lazy))
for loss in ("mse", "quantile"):
    task = Forecaster(cell="gru", hidden_size=2, input_size=1, horizon=1, num_targets=1, loss=loss)
    task.point_and_quantiles(task(torch.randn(2, 3, 1)))
    seen()
"""
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out == ["[]", "['seqlit.models.forecast_intervals', 'seqlit.tasks.forecast_intervals']"]
