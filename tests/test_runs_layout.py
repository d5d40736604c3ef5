"""The run layout has one owner: :mod:`mrpo_rllib.runs` names every file of it, and no
other module of the package spells one of those names in its code (docstrings and comments
may describe the layout)."""

from __future__ import annotations

import ast
import json
import pathlib

import pandas as pd

from mrpo_rllib import runs

PACKAGE = pathlib.Path(runs.__file__).parent
# (runs.SUMMARY_FILE, report.md, is also the name of `mrpo report`'s own output: not checked)
LAYOUT_FILES = [
    runs.EXPERIMENT_FILE,
    runs.COMMAND_FILE,
    runs.CODE_FILE,
    runs.PARAMS_FILE,
    runs.PROGRESS_FILE,
    runs.RESULT_FILE,
    runs.ERROR_FILE,
    runs.ERROR_PICKLE,
    runs.LEDGER_FILE,
    runs.CURVES_FILE,
    runs.CHECKPOINT_MARKER,
    runs.ALGORITHM_STATE_FILE,
]


def _code_strings(tree: ast.AST):
    """Every string constant of a module's code, docstrings left out."""
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node


def test_no_layout_file_name_outside_runs():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == pathlib.Path(runs.__file__):
            continue
        for node in _code_strings(ast.parse(path.read_text())):
            for name in LAYOUT_FILES:
                if name in node.value:
                    found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {name!r}")
    assert not found, "layout file names spelled outside mrpo_rllib/runs.py:\n" + "\n".join(found)


def test_readers(tmp_path):
    run = tmp_path / "mrpo__CartPole__kappa0.5-2__seed0"
    run.mkdir()
    assert runs.read_progress(str(run)) is None
    assert runs.read_ledger(str(run)) is None
    assert runs.read_experiment(str(tmp_path)) is None
    assert runs.read_command(str(tmp_path)) is None
    (run / runs.PROGRESS_FILE).write_text("")
    assert runs.read_progress(str(run)) is None  # empty: nothing reported yet
    (run / runs.PROGRESS_FILE).write_text("training_iteration,x\n1,2.5\n")
    assert runs.read_progress(str(run)).to_dict("list") == {"training_iteration": [1], "x": [2.5]}
    (run / runs.LEDGER_FILE).write_text("iteration,return,length,kept\n1,3.0,10,1\n")
    ledger = runs.read_ledger(str(run), ["iteration", "return"])
    pd.testing.assert_frame_equal(ledger, pd.DataFrame({"iteration": [1], "return": [3.0]}))
    (run / runs.PARAMS_FILE).write_text(json.dumps({"episodes_per_iteration": 7}))
    assert runs.read_params(str(run)) == {"episodes_per_iteration": 7}


def test_sweep_files_round_trip(tmp_path):
    from mrpo_rllib.experiments import dump_experiment, parse_experiment, saved_experiment

    exp = parse_experiment(
        {
            "name": "x",
            "task": "CartPole",
            "algorithms": ["dr"],
            "seeds": [0],
            "budget": {"iterations": 2},
        },
        check=False,
    )
    runs.write_sweep_files(str(tmp_path / "x"), dump_experiment(exp), "mrpo tune x.yaml", "abc")
    assert runs.read_experiment(str(tmp_path / "x")) == exp.model_dump(exclude_unset=True)
    assert saved_experiment(str(tmp_path / "x")) == exp
    assert runs.read_command(str(tmp_path / "x")) == "mrpo tune x.yaml"
    assert (tmp_path / "x" / runs.CODE_FILE).read_text() == "abc\n"
    (tmp_path / "x" / runs.EXPERIMENT_FILE).write_text("name: [\n")  # not YAML: no experiment
    assert runs.read_experiment(str(tmp_path / "x")) is None
    assert saved_experiment(str(tmp_path / "x")) is None
