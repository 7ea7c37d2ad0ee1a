"""Integrity: a damaged, replaced or lying dataset is refused, naming the file at fault."""

import json
import shutil

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
