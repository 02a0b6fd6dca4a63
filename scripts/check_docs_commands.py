"""Replay every shell command of README.md and docs/*.md, verbatim, on a fresh clone, and report which ones work.

A command works when it exits 0 and prints no warning line. The replay clones the committed repository into a
temporary folder, makes a virtual environment there (with this interpreter's packages visible, so installs are quick)
and runs each ```bash block line by line, in page order, from the clone's root, as a user following the docs would:
the Quickstart's install puts that clone's ``seqlit`` on the PATH. Data sets are tiny stand-ins of the real layouts
placed where ``seqlit data get`` puts them (``data/imdb/aclImdb``, ``data/shakespeare/input.txt``,
``data/sunspots/monthly-sunspots.csv``), so ``seqlit data get`` finds them present and every later command reads them.
A page's ``<!-- file: PATH -->`` Python blocks are written first (the modules its commands import, as in
docs/library.md). Commands with the GPU preset are skipped on a machine without a GPU. A server (``tensorboard``,
``seqlit serve``) counts as working when it is still up after a few seconds.

    python scripts/check_docs_commands.py                  # all but the full benchmark runs (over an hour on 2 cores)
    python scripts/check_docs_commands.py --pages README.md --skip pytest

pip's own warnings (the root user, an index location) speak of the machine, not of seqlit: they are listed, not
counted. Prints one Markdown table and the count of commands that ran verbatim.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SERVERS = ("tensorboard", "seqlit serve")  # commands that run until stopped
WARNING = re.compile(r"warn", re.IGNORECASE)
GPU_ONLY = re.compile(r"configs/trainer/gpu\.yaml|--trainer\.accelerator (gpu|cuda)")  # skipped without a GPU
FULL_BENCHMARKS = r"^python3? scripts/bench\w*\.py(?!.* --quick)"


def page_commands(text: str) -> list[str]:
    """Every command line of the page's ```bash blocks: continuations joined, trailing comments removed."""
    found = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = strip_comment(line).strip()
            if line:
                found.append(" ".join(line.split()))
    return found


def write_page_files(text: str, root: Path) -> None:
    """Write the page's ``<!-- file: PATH -->`` blocks (modules its commands import), as the docs tests do."""
    for path, code in re.findall(r"<!--\s*file:\s*(\S+)\s*-->\s*\n```python\n(.*?)```", text, flags=re.S):
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(code)
        if target.parent != root:
            (target.parent / "__init__.py").touch()


def strip_comment(line: str) -> str:
    """The line without a ``#`` comment that stands outside quotes after white space (or at the start)."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def make_stand_ins(root: Path) -> None:
    """Tiny data sets in the real layouts, where ``seqlit data get`` puts them."""
    rng = random.Random(0)
    words = {"pos": ["great", "wonderful", "loved"], "neg": ["awful", "boring", "hated"]}
    filler = "the a movie film plot actor scene story it was and of to".split()
    for split in ("train", "test"):
        for label, marks in words.items():
            folder = root / "data" / "imdb" / "aclImdb" / split / label
            folder.mkdir(parents=True)
            for i in range(60):
                tokens = [rng.choice(filler) for _ in range(rng.randint(5, 30))] + [rng.choice(marks)]
                (folder / f"{i}_{rng.randint(1, 10)}.txt").write_text(" ".join(tokens) + "<br /><br />")
    verse = "ROMEO:\nBut soft, what light through yonder window breaks?\nIt is the east, and Juliet is the sun.\n\n"
    (root / "data" / "shakespeare").mkdir(parents=True)
    (root / "data" / "shakespeare" / "input.txt").write_text(verse * 400)
    rows = ["Month,Sunspots"]
    for t in range(600):  # an 11-year cycle with noise, monthly from 1749
        value = max(0.0, 80 + 70 * math.sin(2 * math.pi * t / 132) + rng.gauss(0, 12))
        rows.append(f"{1749 + t // 12}-{t % 12 + 1:02d},{value:.1f}")
    (root / "data" / "sunspots").mkdir(parents=True)
    (root / "data" / "sunspots" / "monthly-sunspots.csv").write_text("\n".join(rows) + "\n")


def replay(command: str, cwd: Path, env: dict[str, str], timeout: float) -> tuple[str, float, str]:
    """Run one command; return its verdict (``ok``, ``exit N``, ``timeout``), its seconds and its output."""
    start = time.monotonic()
    server = any(command.startswith(s) for s in SERVERS)
    proc = subprocess.Popen(["bash", "-c", command], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)  # fmt: skip
    try:
        out, _ = proc.communicate(timeout=8 if server else timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 15)
        out, _ = proc.communicate()
        return ("ok" if server else "timeout"), time.monotonic() - start, out
    verdict = "ok" if proc.returncode == 0 else f"exit {proc.returncode}"
    return verdict, time.monotonic() - start, out


def warning_lines(command: str, output: str) -> tuple[list[str], list[str]]:
    """(counted, listed-only) warning lines; pip's own ``WARNING:`` lines are listed only."""
    lines = [line.strip() for line in output.replace("\r", "\n").splitlines() if WARNING.search(line)]
    pip = [line for line in lines if line.startswith("WARNING:") and "pip" in command]
    return [line for line in lines if line not in pip], pip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", nargs="*", default=None, help="pages to replay (default: README.md, docs/*.md)")
    parser.add_argument(
        "--skip",
        default=FULL_BENCHMARKS,
        help="skip commands matching this regular expression "
        "(default: the full benchmark runs, which take 15-60 minutes each; their --quick runs stay)",
    )
    parser.add_argument("--timeout", type=float, default=1800, help="seconds one command may take")
    parser.add_argument("--keep", action="store_true", help="keep the temporary clone and print its path")
    args = parser.parse_args()
    pages = (
        [REPO / p for p in args.pages] if args.pages else [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    )
    work = Path(tempfile.mkdtemp(prefix="seqlit-docs-"))
    clone = work / "seqlit"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(work / "venv")], check=True)
    make_stand_ins(clone)
    env = {**os.environ, "PATH": f"{work / 'venv' / 'bin'}:{os.environ['PATH']}", "VIRTUAL_ENV": str(work / "venv")}
    env.pop("PYTHONPATH", None)
    print("| page | command | result | seconds | warning lines |\n|---|---|---|---:|---|")
    total = good = skipped = 0
    has_gpu = shutil.which("nvidia-smi") is not None  # the GPU preset's commands need one
    for page in pages:
        write_page_files(page.read_text(), clone)
        for command in page_commands(page.read_text()):
            if (args.skip and re.search(args.skip, command)) or (GPU_ONLY.search(command) and not has_gpu):
                skipped += 1
                continue
            total += 1
            verdict, seconds, out = replay(command, clone, env, args.timeout)
            counted, listed = warning_lines(command, out)
            if verdict == "ok" and counted:
                verdict = "warnings"
            good += verdict == "ok"
            shown = "; ".join(counted[:2]) or (f"(pip: {len(listed)})" if listed else "")
            print(f"| {page.name} | `{command[:110]}` | {verdict} | {seconds:.0f} | {shown[:160]} |", flush=True)
            if verdict != "ok":
                print("\n".join("    " + line for line in out.strip().splitlines()[-8:]), file=sys.stderr)
    print(f"\n{good} of {total} replayed commands ran verbatim (exit 0, no warning line); {skipped} skipped.")
    if args.keep:
        print(f"clone kept at {clone}")
    sys.exit(0 if good == total else 1)


if __name__ == "__main__":
    main()
