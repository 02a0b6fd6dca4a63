"""How much of seqlit a reader must take along to copy one task: the in-house modules a task and its data pull in.

For each task, a fresh interpreter imports the task module and its data module, then lists the ``seqlit`` modules in
``sys.modules``. Files are counted without package ``__init__.py``s (they hold no logic to copy); lines are counted
with them. Run: ``python scripts/import_closure.py`` (``--list`` also prints the files).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TASKS = {  # task -> (task module, data module)
    "sine forecaster": ("seqlit.tasks.forecaster", "seqlit.data.forecasting.sine"),
    "CSV forecaster": ("seqlit.tasks.forecaster", "seqlit.data.forecasting.csv"),
    "synthetic classifier": ("seqlit.tasks.classifier", "seqlit.data.classification.synthetic"),
    "text classifier": ("seqlit.tasks.classifier", "seqlit.data.text.datamodule"),
    "character LM": ("seqlit.tasks.language_model", "seqlit.data.chars"),
}
PROBE = """
import importlib, json, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
ours = [m for n, m in sys.modules.items() if n.split('.')[0] == 'seqlit']
files = sorted(m.__file__ for m in ours if getattr(m, '__file__', None))
print(json.dumps(files))
"""


def closure(modules: tuple[str, ...]) -> list[Path]:
    out = subprocess.run([sys.executable, "-c", PROBE, *modules], capture_output=True, text=True, check=True, cwd=ROOT)
    return [Path(f) for f in json.loads(out.stdout)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="also print every file of each closure")
    opts = parser.parse_args()
    print("| task | files (without `__init__`s) | lines (with them) |")
    print("|---|---:|---:|")
    for task, modules in TASKS.items():
        files = closure(modules)
        code = [f for f in files if f.name != "__init__.py"]
        lines = sum(len(f.read_text().splitlines()) for f in files)
        print(f"| {task} | {len(code)} | {lines} |")
        if opts.list:
            for f in files:
                print(f"|   {f.relative_to(ROOT)} | | {len(f.read_text().splitlines())} |")


if __name__ == "__main__":
    main()
