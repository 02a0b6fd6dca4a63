"""``seqlit predict --onnx``: predict from an exported folder with ONNX Runtime, printing one JSON line per answer.

    python -m seqlit.run.predict_onnx --model exported/imdb --input reviews.txt     # a text per line
    python -m seqlit.run.predict_onnx --model exported/sine --input history.csv     # rows of numbers, oldest first
    python -m seqlit.run.predict_onnx --model exported/charlm --prompt "ROMEO:" --length 200 --seed 1

A text classifier reads one text per line (blank lines skipped); a forecaster reads a CSV of numeric rows (a header
line is skipped) and forecasts after its last row; a language model continues ``--prompt``. Only numpy, onnxruntime
and tokenizers are imported.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

from seqlit.errors import InputError, require


def read_rows(path: Path) -> list[list[float]]:
    """Numeric CSV rows; a first line that is not numbers is a header."""
    rows: list[list[float]] = []
    with path.open(newline="") as f:
        for number, line in enumerate(csv.reader(f), start=1):
            if not line:
                continue
            try:
                rows.append([float(v) for v in line])
            except ValueError:
                require(number == 1, "input", f"{path}:{number}", "rows of numbers (a header only on line 1)")
    return rows


def answers(args: argparse.Namespace) -> list[dict[str, Any]]:
    from seqlit import runtime

    model = runtime.load(args.model)
    if model.kind == "language_model":
        require(args.prompt is not None, "prompt", None, "a prompt for a language model (--prompt TEXT)")
        return [{"text": model.generate(args.prompt, args.length, args.temperature, args.top_k, args.seed)}]
    require(args.input is not None, "input", None, "a file to read (--input PATH)")
    path = Path(args.input)
    require(path.is_file(), "input", str(path), "an existing file")
    if model.kind == "classifier":
        lines = [(i, t) for i, t in enumerate(path.read_text().splitlines()) if t.strip()]
        require(bool(lines), "input", str(path), "a file with at least one non-blank line")
        return [{"id": i, **p} for (i, _), p in zip(lines, model.predict([t for _, t in lines]), strict=True)]
    got = model.forecast(read_rows(path))
    return [{k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in got.items()}]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="seqlit predict --onnx", description="Predict from an exported folder.")
    parser.add_argument("--model", required=True, help="a folder written by seqlit export")
    parser.add_argument("--input", default=None, help="texts (one per line) or a CSV of rows")
    parser.add_argument("--prompt", default=None, help="language model: the text to continue")
    parser.add_argument("--length", type=int, default=200)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--top_k", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        for answer in answers(args):
            print(json.dumps(answer))
    except InputError as err:
        print(f"seqlit predict: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
