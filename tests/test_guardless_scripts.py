"""Every entry point that starts worker processes runs from a script without the
``if __name__ == "__main__":`` guard: its top level runs once (a new process never
re-imports the main script), and its result is right.

A script runs as a file (the case that re-imports it under ``multiprocessing``), read
from stdin, or as ``python -c`` (a main module with no file, as in a notebook's kernel).
"""

import subprocess
import sys
import textwrap

import pytest

_DATA = """
print("TOP LEVEL RAN", flush=True)
import numpy as np
rng = np.random.RandomState(0)
X = rng.normal(size=(600, 5)); y = (X[:, 0] + 0.1 * rng.normal(size=600) > 0).astype(int)
"""

# (the estimators name their workers: a search's small fits would stay home otherwise)
_SEARCH_RAN_ON_WORKERS = """
refit = search.best_estimator_.fit_report_
assert refit["path"] == "workers" and refit["invocations"] > 0, refit
print("RESULT", search.best_score_)
"""

ENTRY_POINTS = {
    "estimator": """
from sklearn_cirrus import ServerlessSGDClassifier
clf = ServerlessSGDClassifier(executor="processes", n_workers=2, random_state=0)
clf.fit(X, y)
assert clf.fit_report_["path"] == "workers", clf.fit_report_["path"]
print("RESULT", clf.score(X, y))
""",
    "grid_search": """
from sklearn_cirrus import ServerlessGridSearchCV, ServerlessSGDClassifier
search = ServerlessGridSearchCV(
    ServerlessSGDClassifier(executor="processes", n_workers=2, random_state=0),
    {"alpha": [1e-4, 1e-3]}, cv=2,
).fit(X, y)
"""
    + _SEARCH_RAN_ON_WORKERS,
    "randomized_search": """
from scipy.stats import loguniform
from sklearn_cirrus import ServerlessRandomizedSearchCV, ServerlessSGDClassifier
search = ServerlessRandomizedSearchCV(
    ServerlessSGDClassifier(executor="processes", random_state=0),
    {"alpha": loguniform(1e-5, 1e-3)}, n_iter=2, cv=2, executor="processes", random_state=0,
).fit(X, y)
"""
    + _SEARCH_RAN_ON_WORKERS,
    "dashboard": """
from sklearn_cirrus import ServerlessGridSearchCV, ServerlessSGDClassifier
search = ServerlessGridSearchCV(
    ServerlessSGDClassifier(executor="processes", random_state=0),
    {"alpha": [1e-4, 1e-3]}, cv=2, executor="processes", dashboard=True,
).fit(X, y)
"""
    + _SEARCH_RAN_ON_WORKERS,
    "dataset_conversion": """
import tempfile
from sklearn.datasets import dump_svmlight_file
from sklearn_cirrus import ServerlessSGDClassifier, ShardedDataset
folder = tempfile.mkdtemp()
dump_svmlight_file(X, y, f"{folder}/train.svm")
data = ShardedDataset.from_svmlight(
    f"{folder}/train.svm", f"{folder}/data", executor="processes", n_workers=2, chunk_bytes=4096
)
assert data.n_samples == len(X), data.n_samples
clf = ServerlessSGDClassifier(random_state=0).fit(data)
print("RESULT", clf.score(X, y))
""",
    "preprocessing_map": """
import tempfile
from sklearn_cirrus import ShardedDataset
from sklearn_cirrus.preprocessing import ServerlessStandardScaler
data = ShardedDataset.from_arrays(X, y, tempfile.mkdtemp() + "/data", shard_bytes=8192)
scaler = ServerlessStandardScaler(executor="processes", n_workers=2).fit(data)
error = np.abs(scaler.mean_ - X.mean(axis=0)).max()
print("RESULT", 1.0 - error)
""",
}

# how each script shows its result: a score or a closeness, all near 1 when right
_RIGHT = 0.9


def _run(source: str, how: str, tmp_path) -> subprocess.CompletedProcess:
    script = tmp_path / "script.py"
    script.write_text(source)
    command = {
        "file": [sys.executable, str(script)],
        "stdin": [sys.executable, "-"],
        "no_file": [sys.executable, "-c", source],
    }[how]
    with open(script) as stdin:
        return subprocess.run(
            command,
            stdin=stdin if how == "stdin" else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=240,
            cwd=tmp_path,
        )


def _check(done: subprocess.CompletedProcess) -> None:
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("TOP LEVEL RAN") == 1, done.stdout + done.stderr[-3000:]
    assert "bootstrapping phase" not in done.stderr
    results = [line.split()[1] for line in done.stdout.splitlines() if line.startswith("RESULT")]
    assert len(results) == 1 and float(results[0]) > _RIGHT, done.stdout


@pytest.mark.parametrize("entry_point", sorted(ENTRY_POINTS))
def test_a_guardless_script_runs_its_top_level_once(entry_point, tmp_path):
    source = textwrap.dedent(_DATA) + textwrap.dedent(ENTRY_POINTS[entry_point])
    done = _run(source, "file", tmp_path)
    _check(done)
    if entry_point == "dashboard":  # one page, announced once
        assert done.stdout.count("http://") + done.stderr.count("http://") == 1, done.stdout


@pytest.mark.backends
@pytest.mark.parametrize("how", ["stdin", "no_file"])
@pytest.mark.parametrize("entry_point", sorted(ENTRY_POINTS))
def test_a_script_from_stdin_or_a_notebook_runs_once(entry_point, how, tmp_path):
    source = textwrap.dedent(_DATA) + textwrap.dedent(ENTRY_POINTS[entry_point])
    _check(_run(source, how, tmp_path))
