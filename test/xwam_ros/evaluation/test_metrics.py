"""The evaluation metrics against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xwam_ros.evaluation.metrics import (
    depth_errors,
    rgb_psnr,
    rgb_ssim,
)


def images(n: int = 2, size: int = 32, seed: int = 0) -> np.ndarray:
    # Values kept away from 0 and 255 so a +/-10 offset never clips.
    return np.random.default_rng(seed).integers(20, 230, (n, size, size, 3), dtype=np.uint8)


def test_identical_images_give_infinite_psnr_and_ssim_one():
    stack = images()
    assert rgb_psnr(stack, stack.copy()) == math.inf
    assert rgb_psnr(stack[0], stack[0]) == math.inf
    assert rgb_ssim(stack, stack.copy()) == pytest.approx(1.0)
    assert rgb_ssim(stack[0], stack[0]) == pytest.approx(1.0)


def test_constant_offset_gives_the_psnr_computed_by_hand():
    stack = images()
    shifted = stack + np.uint8(10)
    assert rgb_psnr(shifted, stack) == pytest.approx(20 * math.log10(255 / 10))
    # Half the pixels off by 10, half exact: MSE 50.
    half = stack.copy()
    half[0] += np.uint8(10)
    assert rgb_psnr(half, stack) == pytest.approx(10 * math.log10(255**2 / 50))


def test_ssim_drops_with_noise_and_works_on_small_images():
    stack = images()
    noise = np.random.default_rng(1).integers(-60, 60, stack.shape)
    noisy = np.clip(stack.astype(int) + noise, 0, 255).astype(np.uint8)
    assert rgb_ssim(noisy, stack) < 0.9
    tiny = images(1, size=5)
    assert rgb_ssim(tiny, tiny) == pytest.approx(1.0)


def test_rgb_metrics_refuse_bad_inputs():
    stack = images()
    with pytest.raises(ValueError, match="shape mismatch"):
        rgb_psnr(stack, stack[:1])
    with pytest.raises(ValueError, match="uint8"):
        rgb_ssim(stack.astype(np.float32), stack)
    with pytest.raises(ValueError, match=r"\[H, W, 3\]"):
        rgb_psnr(stack[..., 0], stack[..., 0])
    with pytest.raises(ValueError, match="empty"):
        rgb_psnr(stack[:0], stack[:0])
    with pytest.raises(ValueError, match="too small"):
        rgb_ssim(images(1, size=2), images(1, size=2))


def test_depth_errors_by_hand_with_invalid_pixels_ignored():
    actual = np.array([[1.0, 2.0, 4.0], [np.nan, 0.01, 9.0]], dtype=np.float32)
    predicted = np.array([[1.5, 2.0, 3.0], [1.0, 1.0, np.inf]], dtype=np.float32)
    # Scored: (0,0), (0,1), (0,2). NaN, below near, and non-finite prediction are dropped.
    errors = depth_errors(predicted, actual, near=0.1, far=10.0)
    assert errors["abs_rel"] == pytest.approx((0.5 / 1 + 0 + 1 / 4) / 3)
    assert errors["rmse_m"] == pytest.approx(math.sqrt((0.25 + 0 + 1) / 3))
    assert errors["valid_pixels"] == 3
    # A far limit of 3 m also drops the 4 m reading.
    errors = depth_errors(predicted[None], actual[None], near=0.1, far=3.0)
    assert errors["abs_rel"] == pytest.approx(0.25)
    assert errors["valid_pixels"] == 2


def test_identical_depths_have_zero_error():
    depth = np.random.default_rng(0).uniform(0.2, 2.0, (3, 8, 8)).astype(np.float32)
    errors = depth_errors(depth, depth.copy(), near=0.05, far=2.0)
    assert errors["abs_rel"] == 0.0
    assert errors["rmse_m"] == 0.0


def test_depth_errors_refuse_bad_inputs():
    depth = np.ones((4, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="shape mismatch"):
        depth_errors(depth, np.ones((4, 5), dtype=np.float32), 0.1, 2.0)
    with pytest.raises(ValueError, match="no valid pixel"):
        depth_errors(depth, np.full((4, 4), np.nan, dtype=np.float32), 0.1, 2.0)
    with pytest.raises(ValueError, match="no valid pixel"):
        depth_errors(depth, depth * 5, 0.1, 2.0)
    with pytest.raises(ValueError, match="no valid pixel"):
        depth_errors(depth[:0], depth[:0], 0.1, 2.0)
    with pytest.raises(ValueError, match="near"):
        depth_errors(depth, depth, 0.0, 2.0)
    with pytest.raises(ValueError, match=r"\[H, W\]"):
        depth_errors(depth.ravel(), depth.ravel(), 0.1, 2.0)
