"""python -m src.report.studies: two studies' verdicts joined setting by setting, on the faces
study's exported comparison table."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from src.report import studies
from tests.conftest import ROOT

FACES = ROOT / "experiments" / "faces_image_ops"


@pytest.fixture
def other(tmp_path):
    """A copy of the faces study's folder whose table the test then edits."""
    folder = tmp_path / "other"
    folder.mkdir()
    shutil.copy(FACES / "comparison.csv", folder / "comparison.csv")
    return folder


def edit(folder, setting, **values):
    path = folder / "comparison.csv"
    table = pd.read_csv(path)
    row = (table.aug == setting[0]) & (table.strength == setting[1])
    assert row.sum() == 1
    for key, value in values.items():
        table.loc[row, key] = value
    table.to_csv(path, index=False)


def test_a_study_against_itself_changes_no_verdict(other, tmp_path, capsys):
    out = tmp_path / "side.md"
    assert studies.main([str(FACES), str(other), "--out", str(out)]) == 0
    text = out.read_text()
    assert "71 settings in both; 0 change verdict" in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 1 + 71  # the header and one row per setting
    assert "| flip | 0.25 | equivalent | +0.0050 |" in text


def test_a_changed_verdict_says_whether_the_audit_moved_with_the_effect(other):
    # noise 1 got worse and its label drop grew: the audit saw it; erasing 1 got worse while
    # its drop shrank: it did not; flip 0.25 went from equivalent to helps with no audit
    edit(other, ("noise", 1.0), verdict="hurts", diff=-0.2, audit_label_drop=0.6)
    edit(other, ("erasing", 1.0), verdict="hurts", diff=-0.2, audit_label_drop=0.01)
    edit(other, ("flip", 0.25), verdict="helps", diff=0.05, audit_label_drop=float("nan"))
    both = studies.side_by_side(studies.read(FACES), studies.read(other))
    changed = both[both.change != ""].set_index(["aug", "strength"])
    assert changed.change.to_dict() == {
        ("erasing", 1.0): "undecided -> hurts",
        ("flip", 0.25): "equivalent -> helps",
        ("noise", 1.0): "undecided -> hurts",
    }
    assert changed.audit_saw.to_dict() == {
        ("erasing", 1.0): "no",
        ("flip", 0.25): "no audit",
        ("noise", 1.0): "yes",
    }
    # a setting only one study ran is left out
    edit(other, ("blur", 0.25), strength=0.3)
    assert len(studies.side_by_side(studies.read(FACES), studies.read(other))) == 70


def test_a_table_of_an_older_report_is_refused_in_one_line(other, capsys):
    edit(other, ("blur", 0.25), verdict="no measurable effect")
    assert studies.main([str(FACES), str(other)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"augsweep: error: {other / 'comparison.csv'}: verdicts ['no measurable effect'] not of "
        "the current report; accepted verdicts: helps, equivalent, undecided, hurts"
    )
    assert studies.main([str(FACES), str(other.parent / "missing")]) == 2
    assert "no comparison.csv; accepted: a folder a report wrote" in capsys.readouterr().err
