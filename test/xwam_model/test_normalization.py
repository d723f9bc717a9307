"""q01/q99 normalisation: statistics, the [-1, 1] mapping and its inverse, storage, validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xwam_model import XWAMConfig, XWAMTransformer
from xwam_model.checkpoint import load_pretrained
from xwam_model.normalization import Normalization, NormalizationError, QuantileStats


def _data(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    data = rng.normal(size=(5000, 3)) * [1.0, 10.0, 0.1] + [0.0, 5.0, -2.0]
    data[:, 2] = 0.25  # a constant dimension (a joint that never moved)
    return data


def test_statistics_are_the_first_and_last_percentile():
    data = _data()
    stats = QuantileStats.from_data(data, "action")
    np.testing.assert_allclose(stats.q01, np.quantile(data, 0.01, axis=0))
    np.testing.assert_allclose(stats.q99, np.quantile(data, 0.99, axis=0))
    # Leading axes (episodes, steps) are pooled.
    pooled = QuantileStats.from_data(torch.as_tensor(data).reshape(50, 100, 3))
    np.testing.assert_allclose(pooled.q01, stats.q01)


def test_normalize_maps_quantiles_to_unit_range_clips_and_inverts():
    stats = QuantileStats.from_data(_data())
    x = np.stack([stats.q01, stats.q99, (stats.q01 + stats.q99) / 2])
    expected = np.array([[-1.0, -1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(stats.normalize(x), expected, atol=1e-12)
    outside = stats.normalize(np.array([stats.q99 + 100.0, stats.q01 - 100.0]))
    assert outside[0, :2].tolist() == [1.0, 1.0] and outside[1, :2].tolist() == [-1.0, -1.0]
    inside = _data(1)[:200]
    inside = inside[((inside >= stats.q01) & (inside <= stats.q99)).all(axis=1)]
    np.testing.assert_allclose(stats.denormalize(stats.normalize(inside)), inside, atol=1e-9)
    # The constant dimension maps to 0 and back to its value.
    assert stats.normalize(inside)[:, 2].tolist() == [0.0] * len(inside)
    np.testing.assert_allclose(stats.denormalize(np.zeros((1, 3)))[0, 2], 0.25)


def test_torch_in_torch_out_with_dtype_and_device_kept():
    stats = QuantileStats.from_data(_data())
    x = torch.tensor(_data(2)[:10], dtype=torch.float32)
    normalized = stats.normalize(x)
    assert isinstance(normalized, torch.Tensor) and normalized.dtype == torch.float32
    np.testing.assert_allclose(normalized.numpy(), stats.normalize(x.double().numpy()), atol=1e-6)
    restored = stats.denormalize(normalized)
    assert isinstance(restored, torch.Tensor) and restored.dtype == torch.float32


def test_round_trip_through_a_saved_checkpoint(tmp_path):
    rng = np.random.default_rng(3)
    normalization = Normalization.from_data(rng.normal(size=(100, 7)), rng.normal(size=(100, 8)))
    model = XWAMTransformer(XWAMConfig.preset("tiny"))
    model.save_pretrained(tmp_path, normalization=normalization.to_dict())
    restored = Normalization.from_dict(load_pretrained(tmp_path).normalization)
    np.testing.assert_array_equal(restored.action.q01, normalization.action.q01)
    np.testing.assert_array_equal(restored.proprio.q99, normalization.proprio.q99)
    restored.check_dims(model.config.action_dim, model.config.proprio_dim)
    with pytest.raises(NormalizationError, match="the model expects 14 and 16"):
        restored.check_dims(14, 16)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "expected a mapping"),
        ({"action": {"q01": [0.0], "q99": [1.0]}}, r"missing \['proprio'\]"),
        ({"action": {"q01": [0.0]}, "proprio": {"q01": [0.0], "q99": [1.0]}}, "'q01' and 'q99'"),
        (
            {"action": {"q01": [0.0, 1.0], "q99": [1.0]}, "proprio": {"q01": [0], "q99": [1]}},
            "same non-zero length",
        ),
        (
            {"action": {"q01": [2.0], "q99": [1.0]}, "proprio": {"q01": [0], "q99": [1]}},
            r"q01 > q99 in dimensions \[0\]",
        ),
        (
            {"action": {"q01": [float("nan")], "q99": [1.0]}, "proprio": {"q01": [0], "q99": [1]}},
            "finite",
        ),
        (
            {"action": {"q01": ["a"], "q99": [1.0]}, "proprio": {"q01": [0], "q99": [1]}},
            "lists of numbers",
        ),
        ({"format_version": 7, "action": {}, "proprio": {}}, "format_version 7"),
    ],
)
def test_malformed_statistics_are_refused_with_what_was_expected(data, message):
    with pytest.raises(NormalizationError, match=message):
        Normalization.from_dict(data)


def test_bad_data_and_wrong_width_are_refused():
    with pytest.raises(NormalizationError, match="NaN"):
        QuantileStats.from_data(np.array([[0.0, np.nan]]))
    with pytest.raises(NormalizationError, match="expected 3 values in the last axis, got 2"):
        QuantileStats.from_data(_data(), "proprio").normalize(np.zeros(2))


def test_identity_leaves_unit_range_values_unchanged():
    normalization = Normalization.identity(7, 8)
    x = np.linspace(-1, 1, 7)
    np.testing.assert_allclose(normalization.action.normalize(x), x)
    np.testing.assert_allclose(normalization.action.denormalize(x), x)
