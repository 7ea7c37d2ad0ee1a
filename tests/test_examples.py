"""The examples run from a fresh interpreter and print what they promise."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sklearn_cirrus import fetch_libsvm, fetch_movielens

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run(script, *args, env=None):
    completed = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return completed.stdout


def test_a9a_example_trains_on_every_executor(mirror, tmp_path):
    # from a clone with no dataset folder: the example fetches a9a into the data home,
    # here filled beforehand from the loopback mirror (the test has no other network)
    served, _ = mirror
    for subset in ("train", "test"):
        fetch_libsvm("a9a", subset, data_home=tmp_path, base_url=served.url)
    env = {**os.environ, "SCIKIT_LEARN_DATA": str(tmp_path)}
    out = run("a9a_on_every_executor.py", env=env)
    accuracies = [float(a) for a in re.findall(r"accuracy (\d\.\d+)", out)]
    assert [line.split()[0] for line in out.splitlines()] == ["sequential", "threads", "processes"]
    assert min(accuracies) >= 0.845


def test_grid_search_example_reports_a_good_pipeline():
    out = run("grid_search_in_a_pipeline.py")
    assert "best parameters: {" in out
    assert float(re.search(r"test accuracy of the refitted pipeline: (\S+)", out)[1]) > 0.83


def test_demo_prints_both_models():
    completed = subprocess.run(
        [sys.executable, "-m", "sklearn_cirrus", "demo", "--n-samples", "20000"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert "-- Epoch 1:" in completed.stdout
    # the header names the executor that ran, the default included
    assert "executor: threads (the default), 2 workers" in completed.stdout
    assert "path: workers;" in completed.stdout
    ours = re.search(r"ServerlessSGDClassifier\s+(\S+)\s+(\S+)", completed.stdout)
    theirs = re.search(r"sklearn SGDClassifier\(log_loss\)\s+(\S+)\s+(\S+)", completed.stdout)
    assert float(ours[1]) > 0.7 and float(theirs[1]) > 0.7


def test_command_line_tells_its_version():
    from sklearn_cirrus import __version__

    completed = subprocess.run(
        [sys.executable, "-m", "sklearn_cirrus", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert completed.stdout.strip() == f"sklearn-cirrus {__version__}"


def _command(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "sklearn_cirrus", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def test_demo_fetches_a_libsvm_dataset_given_by_name(mirror, tmp_path):
    served, _ = mirror
    for subset in ("train", "test"):
        fetch_libsvm("a9a", subset, data_home=tmp_path, base_url=served.url)
    env = {**os.environ, "SCIKIT_LEARN_DATA": str(tmp_path)}
    completed = _command("demo", "--data", "a9a", env=env)
    assert completed.returncode == 0, completed.stderr
    # the published test file, not a split of the training one
    assert "32561 train / 16281 test rows, 123 features" in completed.stdout
    ours = re.search(r"ServerlessSGDClassifier\s+(\S+)", completed.stdout)
    assert float(ours[1]) > 0.84


@pytest.mark.parametrize(
    "args, told",
    [
        (["demo", "--executor", "bogus"], "unknown executor 'bogus'; valid executors are dask"),
        (["demo", "--n-workers", "0"], "argument --n-workers: must be at least 1, got 0"),
        (["demo", "--n-samples", "many"], "argument --n-samples: 'many' is not an integer"),
        (["demo", "--data", "a9b"], "--data 'a9b': no such file, nor the name of a LIBSVM"),
        (["demo", "--data", "a9a", "--test-data", "missing.t"], "missing.t"),
    ],
)
def test_command_line_mistakes_are_told_in_one_line(args, told, mirror, tmp_path):
    served, _ = mirror
    fetch_libsvm("a9a", data_home=tmp_path, base_url=served.url)
    completed = _command(*args, env={**os.environ, "SCIKIT_LEARN_DATA": str(tmp_path)})
    assert completed.returncode == 2
    assert "Traceback" not in completed.stderr
    last = completed.stderr.strip().splitlines()[-1]
    assert last.startswith("python -m sklearn_cirrus demo: error: ") and told in last


def test_tuning_example_stops_candidates_and_draws_curves(mirror, tmp_path):
    # MovieLens fetched by the example into a data home filled from the loopback mirror
    served, _ = mirror
    fetch_movielens(data_home=tmp_path, base_url=served.url)
    figure = tmp_path / "curves.png"
    env = {**os.environ, "SCIKIT_LEARN_DATA": str(tmp_path)}
    out = run("tuning_with_early_stopping.py", "", str(figure), env=env)
    assert "stopped median" in out and "stopped no" in out
    assert float(re.search(r"best: .*RMSE (\S+)", out)[1]) < 0.88
    assert figure.stat().st_size > 10_000


def test_resources_example_plans_runs_and_draws(tmp_path):
    figure = tmp_path / "plan.png"
    out = run("choosing_resources.py", "60000", str(figure))
    assert "This machine:" in out and "AWS Lambda" in out
    predicted = re.findall(r"^\s+(\d)\s+(\d+\.\d+)\s+(\d+\.\d+)$", out, flags=re.MULTILINE)
    assert [int(w) for w, _, _ in predicted] == [1, 2, 4, 8]
    assert re.search(r"n_workers='auto' chose \d workers of \d+ MB", out)
    assert figure.stat().st_size > 10_000
