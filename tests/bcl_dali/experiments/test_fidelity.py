"""`experiment fidelity`: each baseline and its BCL method trained alike, evaluated, tabulated and reported."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from bcl_dali.runs.rundir import RunDir
from tests.cli_support import assert_one_line_error, run


@pytest.mark.slow
def test_fidelity_trains_evaluates_tabulates_and_reports(tmp_path: Path) -> None:
    """SimCLR against BCL-I for one epoch: the table's differences equal BCL's evaluation minus the
    baseline's, read back from the runs' own eval files; rerunning resumes instead of retraining.
    `eval` refuses to average the runs of two methods."""
    out = tmp_path / "fidelity"
    args = ["experiment", "fidelity", "--out", out, "--pairs", "simclr", "--epochs", "1", "--num-classes", "3",
            "--batch-size", "64", "--width", "16"]
    result = run(*args)
    assert result.exit_code == 0, result.output
    table = json.loads((out / "fidelity.json").read_text())["table"]
    evaluated = {m: json.loads(RunDir(out / m).evaluation_path(1).read_text())["shots"]["full"] for m in ("simclr", "bcl-i")}
    assert len(table) == 4
    for row in table:
        assert row["difference"] == pytest.approx(evaluated["bcl-i"][row["number"]] - evaluated["simclr"][row["number"]])
    assert (out / "report" / "groups.png").exists() and "| simclr / bcl-i | 1 / 1 | full-shot | few |" in (
        out / "fidelity.md").read_text()
    again = run(*args)
    assert again.exit_code == 0 and "resuming" in again.output

    mixed = run("eval", out / "simclr", out / "bcl-i")
    assert_one_line_error(mixed, "runs of one method")
    assert "evaluating" not in mixed.stderr  # refused before any work
