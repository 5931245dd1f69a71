"""docs/highdim.md is what scripts/highdim_report.py makes of the committed results, to the character."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_page_is_generated_from_the_committed_results(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("highdim_report", ROOT / "scripts" / "highdim_report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "highdim.md"
    text = module.build(
        ROOT / "benchmarks" / "results" / "highdim.jsonl",
        ROOT / "results" / "highdim",
        out,
        tmp_path / "figures" / "highdim_scaling.png",
    )
    assert text == (ROOT / "docs" / "highdim.md").read_text()
    assert (tmp_path / "figures" / "highdim_scaling.png").stat().st_size > 10_000
    # Every benchmark case appears as a row, and the real suite's datasets as theirs.
    cases = [line for line in (ROOT / "benchmarks" / "results" / "highdim.jsonl").read_text().splitlines() if line]
    assert text.count("| sparse |") + text.count("| dense |") >= len(
        module.load_bench(ROOT / "benchmarks" / "results" / "highdim.jsonl")
    )
    assert len(cases) >= 1 and "| ALLAML | 7,129 |" in text
