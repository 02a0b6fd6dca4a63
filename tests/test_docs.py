"""The README's two Quickstart commands stay true: CI runs exactly the test command, the main job's config exists."""

from __future__ import annotations

import re

from conftest import REPO


def _commands(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)\n```", text, flags=re.S)


def test_ci_runs_exactly_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    quickstart = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    blocks = _commands(quickstart)
    test_command = next(b for b in blocks if "pytest" in b)
    ci_lines = [line for line in (REPO / ".ci" / "run").read_text().splitlines() if "pytest" in line]
    assert ci_lines == [test_command]


def test_quickstart_main_job_uses_a_config_that_exists():
    readme = (REPO / "README.md").read_text()
    quickstart = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    main_job = next(b for b in _commands(quickstart) if "seqlit fit" in b)
    config = re.search(r"--config (\S+)", main_job).group(1)
    assert (REPO / config).is_file()
