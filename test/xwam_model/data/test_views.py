"""Dataset frames are prepared exactly as the policy prepares camera images at run time."""

import numpy as np
import pytest
import torch

from xwam_model.data.views import resize_depth, resize_rgb
from xwam_model.policy import ViewCrop, prepare_image


@pytest.mark.parametrize("source", [(48, 64), (120, 90), (64, 64), (33, 200)])
def test_training_frames_match_the_policy_preparation(source):
    image = np.random.default_rng(0).integers(0, 256, (*source, 3), dtype=np.uint8)
    ours = resize_rgb(image, 64, 96)
    theirs = prepare_image(image, ViewCrop.centred(*source, 64, 96), torch.device("cpu"))
    assert ours.shape == (64, 96, 3) and ours.dtype == np.uint8
    # The dataset keeps uint8: within half a grey level of the policy's float input.
    difference = torch.from_numpy(ours).permute(2, 0, 1).float() / 127.5 - 1.0 - theirs
    assert difference.abs().max() <= 0.5 / 127.5 + 1e-6


def test_depth_is_cropped_like_the_image_and_never_blended():
    depth = np.full((48, 64), 2.0, np.float32)
    depth[:, :32] = 1.0  # an edge between 1 m and 2 m
    depth[0, 2] = np.nan  # outside the centre crop (columns 8..55 are kept)
    depth[24, 20] = np.nan  # inside: stays missing
    resized = resize_depth(depth, 32, 32)
    finite = resized[np.isfinite(resized)]
    assert set(np.unique(finite)) == {1.0, 2.0}  # no 1.5 m invented at the edge
    assert np.isnan(resized).sum() == 1
