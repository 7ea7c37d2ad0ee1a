"""Integrity: a damaged, replaced or lying dataset is refused, naming the file at fault."""

import json
import re
import shutil
import warnings

import numpy as np
import pytest

from sklearn_cirrus import DamagedData, ServerlessSGDClassifier, ShardedDataset


@pytest.fixture
def dataset(tmp_path):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(4000, 20))
    y = (X[:, 0] > 0).astype(int)
    return ShardedDataset.from_arrays(X, y, str(tmp_path / "ds"), shard_bytes=64_000)


def _shards(dataset):
    return sorted(p for p in (dataset_path(dataset)).glob("*.npz"))


def dataset_path(dataset):
    from pathlib import Path

    return Path(dataset.url)


def _manifest(dataset) -> dict:
    return json.loads((dataset_path(dataset) / "manifest.json").read_text())


def _rewrite_manifest(dataset, manifest: dict) -> ShardedDataset:
    """The dataset with ``manifest`` written over its own, without the manifest's digest
    (as one written before manifests had one): its counts are what the reader checks."""
    manifest = {k: v for k, v in manifest.items() if k != "manifest_digest"}
    (dataset_path(dataset) / "manifest.json").write_text(json.dumps(manifest))
    return ShardedDataset(dataset.url)


@pytest.mark.parametrize("executor", ["sequential", "processes"])
def test_a_damaged_byte_fails_the_fit_naming_the_shard(dataset, executor):
    victim = _shards(dataset)[1]
    payload = bytearray(victim.read_bytes())
    payload[len(payload) // 2] ^= 0xFF  # in the middle of X's data
    victim.write_bytes(bytes(payload))
    clf = ServerlessSGDClassifier(executor=executor, n_workers=1, max_iter=3)
    with pytest.raises(DamagedData, match=f"{victim.name}.*CRC-32"):
        clf.fit(dataset)


def test_damage_is_not_tried_again(dataset):
    from sklearn_cirrus.executors import SequentialExecutor

    class Counting(SequentialExecutor):
        submitted = 0

        def submit(self, fn, task, *resources):
            Counting.submitted += 1
            return super().submit(fn, task, *resources)

    victim = _shards(dataset)[-1]
    victim.write_bytes(b"PK" + victim.read_bytes()[2:-10])
    with pytest.raises(DamagedData):
        ServerlessSGDClassifier(executor=Counting(), n_workers=1, max_iter=3).fit(dataset)
    assert Counting.submitted == 1  # the failure budget would have allowed 3 more


def test_a_shard_copied_over_another_is_refused(dataset):
    first, second = _shards(dataset)[:2]
    shutil.copyfile(first, second)
    with pytest.raises(DamagedData, match=f"{second.name} is not the shard"):
        ServerlessSGDClassifier(executor="sequential", n_workers=1, max_iter=2).fit(dataset)


def test_a_truncated_shard_is_named(dataset):
    victim = _shards(dataset)[0]
    victim.write_bytes(victim.read_bytes()[:-100])
    with pytest.raises(DamagedData, match=f"{victim.name} is damaged"):
        ServerlessSGDClassifier(executor="sequential", n_workers=1, max_iter=2).fit(dataset)


@pytest.mark.parametrize("n_features", [5, 50])
def test_a_manifest_that_lies_about_the_width_is_refused(dataset, n_features):
    lying = _rewrite_manifest(dataset, {**_manifest(dataset), "n_features": n_features})
    with pytest.raises(DamagedData, match=f"20 columns where the manifest says {n_features}"):
        ServerlessSGDClassifier(executor="sequential", n_workers=1, max_iter=2).fit(lying)


def test_a_manifest_that_lies_about_rows_is_refused(dataset):
    manifest = _manifest(dataset)
    manifest["shards"][0]["rows"] *= 2
    lying = _rewrite_manifest(dataset, manifest)
    with pytest.raises(DamagedData, match="rows where the manifest says"):
        ServerlessSGDClassifier(executor="sequential", n_workers=1, max_iter=2).fit(lying)


def test_a_damaged_manifest_names_itself(dataset):
    path = dataset_path(dataset) / "manifest.json"
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    with pytest.raises(DamagedData, match="manifest.json is not valid JSON"):
        ShardedDataset(dataset.url)
    manifest = json.loads(text)
    del manifest["n_features"], manifest["shards"][1]["rows"]
    path.write_text(json.dumps(manifest))
    with pytest.raises(DamagedData, match=r"manifest.json misses n_features, shards\[1\].rows"):
        ShardedDataset(dataset.url)


def test_a_manifest_that_lies_about_label_counts_is_refused(dataset):
    manifest = _manifest(dataset)
    counts = manifest["shards"][0]["targets"]["counts"]
    counts[0], counts[1] = counts[0] + 1, counts[1] - 1  # the same rows, other labels
    lying = _rewrite_manifest(dataset, manifest)
    with pytest.raises(DamagedData, match="labels counted .* where the manifest says"):
        ServerlessSGDClassifier(executor="sequential", n_workers=1, max_iter=2).fit(lying)


def test_a_manifest_that_lies_about_non_zeros_is_refused(tmp_path):
    import scipy.sparse as sp

    X = sp.random(500, 30, density=0.2, format="csr", random_state=0)
    y = np.arange(500) % 2
    dataset = ShardedDataset.from_arrays(X, y, str(tmp_path / "sparse"), shard_bytes=4000)
    manifest = _manifest(dataset)
    manifest["shards"][2]["nnz"] += 1
    lying = _rewrite_manifest(dataset, manifest)
    with pytest.raises(DamagedData, match="non-zeros where the manifest says"):
        ServerlessSGDClassifier(executor="sequential", n_workers=1, max_iter=2).fit(lying)


@pytest.mark.parametrize(
    "edit",
    [
        lambda m: m.update(n_features=5000),
        lambda m: m["shards"][0].update(rows=m["shards"][0]["rows"] * 2),
        lambda m: m["shards"][1]["targets"]["counts"].reverse(),
    ],
    ids=["n_features", "rows", "label counts"],
)
def test_an_edited_manifest_is_refused_naming_itself(dataset, edit):
    path = dataset_path(dataset) / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))
    with pytest.raises(DamagedData, match="manifest.json does not match its own digest"):
        ShardedDataset(dataset.url)


def test_a_dataset_written_before_digests_still_opens_and_trains(dataset):
    manifest = _manifest(dataset)
    for shard in manifest["shards"]:
        del shard["digest"]
    older = _rewrite_manifest(dataset, manifest)
    clf = ServerlessSGDClassifier(
        executor="sequential", n_workers=1, max_iter=3, random_state=0
    ).fit(older)
    assert clf.score(older) > 0.85  # (y = X[:, 0] > 0: any model that trained)
    # its zip CRCs are still checked
    victim = _shards(dataset)[0]
    payload = bytearray(victim.read_bytes())
    payload[len(payload) // 2] ^= 0xFF
    victim.write_bytes(bytes(payload))
    with pytest.raises(DamagedData, match=victim.name):
        ServerlessSGDClassifier(executor="sequential", n_workers=1, max_iter=2).fit(older)


def test_a_fits_own_shards_carry_digests_and_train_as_before():
    from sklearn_cirrus.data.staging import stage

    rng = np.random.RandomState(0)
    X, y = rng.normal(size=(3000, 5)), rng.randint(0, 2, 3000).astype(float)
    handle = stage(X, y, np.ones(3000), "memory://digests", batch_size=256)
    assert len(handle.shard_digests) == handle.n_shards
    assert all(d.startswith("crc32:") for d in handle.shard_digests)
    clf = ServerlessSGDClassifier(executor="processes", max_iter=2).fit(X, y)
    assert clf.fit_report_["path"] == "workers" and clf.score(X, y) > 0.4


# messages that name the file, store or parameter at fault


def test_mixed_label_types_are_named():
    X = np.zeros((4, 2))
    with pytest.raises(ValueError, match=r"y mixes labels of types \['int', 'str'\]"):
        ServerlessSGDClassifier().fit(X, np.array([1, "a", 1, "a"], dtype=object))


def test_a_missing_redis_database_names_the_store(redis_url):
    url = redis_url.rsplit("/", 1)[0] + "/99"
    X = np.random.RandomState(0).normal(size=(50, 2))
    with pytest.raises(
        ValueError, match=r"redis://127.0.0.1:\d+/99: the server has no database 99"
    ):
        ServerlessSGDClassifier(executor="sequential", store=url).fit(X, X[:, 0] > 0)


def test_a_model_too_large_for_memory_names_its_size():
    import scipy.sparse as sp

    with open("/proc/sys/vm/overcommit_memory") as f:
        if f.read().strip() == "1":
            pytest.skip("this machine grants every allocation (vm.overcommit_memory=1)")
    # one non-zero near 2**31: a model of 2**31 rows (48 GiB with AdaGrad's state)
    X = sp.csr_matrix((np.ones(2), ([0, 1], [0, 2**31 - 2])), shape=(2, 2**31 - 1))
    with pytest.raises(MemoryError, match=r"2,147,483,648 rows .* 48.0 GiB.*hash the features"):
        ServerlessSGDClassifier(worker_memory_mb=None).fit(X, [0, 1])


@pytest.mark.parametrize("loss, eta0", [("log_loss", 1e300), ("hinge", 1e6)])
def test_a_step_size_that_diverges_is_warned_of(loss, eta0):
    from sklearn.exceptions import ConvergenceWarning

    rng = np.random.RandomState(0)
    X = rng.normal(size=(2000, 5))
    y = (X[:, 0] > 0).astype(int)
    diverging = ServerlessSGDClassifier(loss=loss, eta0=eta0, max_iter=3, tol=None, random_state=0)
    with pytest.warns(
        ConvergenceWarning,
        match=f"training diverged at epoch 1.*eta0={re.escape(format(eta0, 'g'))}",
    ):
        diverging.fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        # a large step that still trains (8 times a model of zeros' loss) is not
        ServerlessSGDClassifier(
            eta0=1e3, learning_rate="constant", optimizer="sgd", max_iter=3, tol=None
        ).fit(X, y)


def test_the_fast_crc32_is_zlibs():
    import zlib

    from sklearn_cirrus.data import integrity

    payload = np.random.RandomState(0).bytes(3_000_001)
    assert integrity.crc32(payload) == zlib.crc32(payload)
    assert integrity.crc32(bytearray(payload)) == zlib.crc32(payload)  # (what reads hold)
