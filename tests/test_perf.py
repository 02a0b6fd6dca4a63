"""The performance benchmark runs end to end: ``scripts/bench.py --quick`` writes every section with sane
ratios. It asserts no speed: on a shared machine only the plumbing can be tested."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _rows(section: str) -> list[list[str]]:
    """The body rows of the Markdown table in ``section``, as lists of cells."""
    lines = [line for line in section.splitlines() if line.startswith("|")]
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]


def _number(cell: str) -> float:
    return float(cell.replace(",", "").replace("*", "").split()[0])


def test_bench_quick_writes_every_section(tmp_path: Path):
    out = tmp_path / "bench.md"
    env_python = [sys.executable, str(REPO / "scripts" / "bench.py"), "--quick", "--threads", "1", "--out", str(out)]
    proc = subprocess.run(env_python, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = out.read_text()
    assert report in proc.stdout  # the same report on stdout and in the file
    sections = re.split(r"^## ", report, flags=re.M)[1:]
    titles = [s.splitlines()[0] for s in sections]
    assert [t.split(".")[0] for t in titles] == ["1", "2", "3", "4", "5"], titles

    overhead = _rows(sections[0])
    assert [r[0] for r in overhead] == ["sine.yaml", "imdb_best.yaml (tiny)"]
    for row in overhead:
        steps, fit_ratio, step_ratio = int(row[1]), _number(row[3]), _number(row[4])
        assert steps > 0 and 0 < fit_ratio < 100 and 0 < step_ratio < 100, row

    throughput = _rows(sections[1])
    assert len(throughput) == 4 and "nn.LSTM dense" in throughput[0][0]
    assert {"packed", "equal-length", "padded"} <= {w for r in throughput for w in re.findall(r"[a-z-]+", r[0])}
    assert all(0 < _number(r[3]) < 10 for r in throughput), throughput  # a fraction of matmul FLOP/s

    scratch = {r[0].split(" (")[0]: r for r in _rows(sections[2])}
    assert {"nn.RNN", "scratch `eager`", "scratch `fast`", "scratch `script`", "scratch `compile`"} <= set(scratch)
    assert _number(scratch["nn.RNN"][2]) == 1.0
    assert all(0 < _number(scratch[k][2]) < 100 for k in ("scratch `eager`", "scratch `fast`", "scratch `script`"))

    pipeline = {r[0]: r[1] for r in _rows(sections[3])}
    cold, warm = (_number(v) for k, v in pipeline.items() if k.startswith("time to first training step"))
    assert cold > 0 and warm > 0
    assert _number(pipeline["encoding"]) > 0

    assert "No CUDA device" in sections[4] or "cuDNN" in sections[4]
