"""Any one byte damaged in any file of a dataset: what is read back is what was written, or
an error that names the damaged file. Random datasets (dense or sparse, float32 or
float64, targets of several kinds, with or without weights), a thousand of them."""

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

hypothesis = pytest.importorskip("hypothesis", reason="pip install hypothesis")
from hypothesis import HealthCheck, event, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra.numpy import arrays  # noqa: E402

from sklearn_cirrus import ShardedDataset  # noqa: E402
from sklearn_cirrus.data.reader import read_shard  # noqa: E402

pytestmark = pytest.mark.backends

TARGETS = ["none", "int labels", "str labels", "bool labels", "float targets"]


@st.composite
def datasets(draw):
    """Arrays to write: X, y (or None), sample weights (or None), and a shard size that
    cuts them into one to a few shards."""
    n_rows = draw(st.integers(1, 40))
    n_features = draw(st.integers(1, 6))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    values = st.floats(-1e6, 1e6, allow_nan=False, width=32)
    X = draw(arrays(dtype, (n_rows, n_features), elements=values))
    if draw(st.booleans()):
        X[np.abs(X) < 1e5] = 0  # mostly zeros: a sparse matrix's own shape
        X = sp.csr_matrix(X)
    kind = draw(st.sampled_from(TARGETS))
    labels = draw(st.lists(st.integers(0, 3), min_size=n_rows, max_size=n_rows))
    y = {
        "none": None,
        "int labels": np.asarray(labels),
        "str labels": np.asarray([f"class-{label}" for label in labels]),
        "bool labels": np.asarray(labels) > 1,
        "float targets": draw(arrays(np.float64, n_rows, elements=values)),
    }[kind]
    weights = draw(arrays(np.float64, n_rows, elements=st.floats(0, 10)) | st.none())
    return X, y, weights, draw(st.integers(200, 4000))


def read_everything(url: str):
    """Every shard of the dataset at ``url`` as the workers read them, joined."""
    dataset = ShardedDataset(url)
    handle = dataset.handle()
    batches = [read_shard(handle, i) for i in range(len(handle.shard_rows))]
    parts = [b.X if isinstance(b.X, np.ndarray) else b.X.tocsr() for b in batches]
    X = np.vstack(parts) if isinstance(parts[0], np.ndarray) else sp.vstack(parts).tocsr()
    y = np.concatenate([b.y for b in batches])
    weights = np.concatenate([b.sample_weight for b in batches])
    return X, y, weights


def same(a, b) -> bool:
    if sp.issparse(a) or sp.issparse(b):
        return sp.issparse(a) and sp.issparse(b) and a.shape == b.shape and (a != b).nnz == 0
    return a.shape == b.shape and np.array_equal(a, b)


@settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(written=datasets(), where=st.integers(0, 2**32), flip=st.integers(1, 255))
def test_a_damaged_byte_is_read_as_written_or_refused_naming_its_file(written, where, flip):
    X, y, weights, shard_bytes = written
    folder = Path(tempfile.mkdtemp(prefix="damaged-"))
    try:
        url = str(folder / "ds")
        ShardedDataset.from_arrays(X, y, url, sample_weight=weights, shard_bytes=shard_bytes)
        files = sorted(Path(url).iterdir())
        victim = files[where % len(files)]
        payload = bytearray(victim.read_bytes())
        payload[(where // len(files)) % len(payload)] ^= flip
        victim.write_bytes(bytes(payload))
        try:
            X_read, y_read, weights_read = read_everything(url)
        except Exception as error:
            assert victim.name in str(error), f"{type(error).__name__}: {error}"
            event(f"refused ({type(error).__name__}, {victim.suffix})")
            return
        event(f"read as written ({victim.suffix})")
        # read back without an error: then exactly what was written
        assert same(X_read, X)
        if y is not None:
            assert np.array_equal(y_read, y)
        assert np.array_equal(weights_read, np.ones(X.shape[0]) if weights is None else weights)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
