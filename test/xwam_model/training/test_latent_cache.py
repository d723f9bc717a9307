"""`LatentCache` on the tiny synthetic dataset with a tiny VAE: the cached latents are the VAE's
encoding of each clip (RGB and depth), `lookup` hands float32 back, the cache file is read
back when the dataset and VAE match and rebuilt when the VAE changes, and a short training
run with `cache_latents` writes the cache and trains."""

from __future__ import annotations

import math

import pytest
import torch

from xwam_model.data import ClipDataset
from xwam_model.data.format import read_index
from xwam_model.normalization import Normalization
from xwam_model.training import TrainingConfig, train
from xwam_model.training.latent_cache import CACHE_FILE, LatentCache, vae_fingerprint
from xwam_model.training.objective import pixels_to_video
from xwam_model.vae import DepthRange, WanVAE, tiny_vae_config

RANGES = [DepthRange(0.05, 2.0)]


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """Every test here runs the tiny VAE on one thread."""


@pytest.fixture(scope="module")
def clips(tiny_dataset):
    """The training clips of the tiny dataset (two episodes of nine clips)."""
    index = read_index(tiny_dataset)
    normalization = Normalization.from_dict(index.normalization, source="test")
    return ClipDataset(tiny_dataset, "train", normalization)


@pytest.fixture(scope="module")
def vae():
    return WanVAE.from_config(tiny_vae_config(z_dim=8), seed=0)


@pytest.fixture(scope="module")
def exact(clips, vae):
    """The float32 cache of every training clip (no file)."""
    return LatentCache.build(clips, vae, RANGES, batch_size=8, dtype=torch.float32, progress=False)


@pytest.fixture(scope="module")
def half(clips, vae):
    """The default (float16) cache (no file)."""
    return LatentCache.build(clips, vae, RANGES, batch_size=8, progress=False)


def encoded(vae, item):
    video = vae.encode_video(pixels_to_video(item["video"][None]))
    depth = vae.encode_depth(item["depth"][None], RANGES[0], nan_fill=2.0)
    return video, depth


def test_cached_latents_are_the_vae_encoding_of_each_clip(clips, vae, exact):
    assert len(exact) == len(clips) == 18
    assert exact.video.dtype == torch.float32
    for index in (0, 5, 9, 17):  # both episodes, different starts
        video, depth = encoded(vae, clips[index])
        assert exact.video[index].shape == video[0].shape
        torch.testing.assert_close(exact.video[index], video[0], atol=1e-4, rtol=1e-4)
        assert exact.depth is not None  # the front view recorded depth
        torch.testing.assert_close(exact.depth[index], depth[0], atol=1e-4, rtol=1e-4)
    # Different clips have different latents (the cache is not one clip repeated).
    assert not torch.allclose(exact.video[0], exact.video[4], atol=1e-3)


def test_float16_cache_is_close_to_the_exact_one(half, exact):
    assert half.video.dtype == torch.float16 and half.depth.dtype == torch.float16
    torch.testing.assert_close(half.video.float(), exact.video, atol=1e-2, rtol=1e-2)
    torch.testing.assert_close(half.depth.float(), exact.depth, atol=1e-2, rtol=1e-2)
    assert half.key["dtype"] == "torch.float16" and exact.key["dtype"] == "torch.float32"


def test_lookup_returns_float32_on_the_device(half):
    cache = half
    indices = torch.tensor([3, 0, 3])
    video, depth = cache.lookup(indices, torch.device("cpu"))
    assert video.dtype == torch.float32 and depth.dtype == torch.float32
    assert video.device.type == "cpu"
    assert video.shape == (3, *cache.video.shape[1:])
    torch.testing.assert_close(video[1], cache.video[0].float())
    torch.testing.assert_close(video[0], video[2])
    torch.testing.assert_close(depth[0], cache.depth[3].float())
    without_depth = LatentCache(cache.video, None, cache.key)
    assert without_depth.lookup(indices, torch.device("cpu"))[1] is None


def test_the_cache_file_is_read_back_for_the_same_dataset_and_vae(
    clips, vae, tmp_path, monkeypatch
):
    first = LatentCache.build(clips, vae, RANGES, batch_size=8, folder=tmp_path, progress=False)
    path = tmp_path / CACHE_FILE
    assert path.is_file() and not path.with_suffix(".partial").exists()
    written = path.stat().st_mtime_ns

    def no_encoding(*args, **kwargs):
        raise AssertionError("the VAE encoded again instead of reading the cache file")

    monkeypatch.setattr(vae, "encode_video", no_encoding)
    second = LatentCache.build(clips, vae, RANGES, batch_size=8, folder=tmp_path, progress=False)
    assert path.stat().st_mtime_ns == written
    assert second.key == first.key
    assert torch.equal(second.video, first.video) and torch.equal(second.depth, first.depth)


def test_another_vae_or_depth_range_rebuilds_the_cache(clips, vae, tmp_path):
    first = LatentCache.build(clips, vae, RANGES, batch_size=8, folder=tmp_path, progress=False)
    other = WanVAE.from_config(tiny_vae_config(z_dim=8), seed=1)
    assert vae_fingerprint(other) != vae_fingerprint(vae)
    assert vae_fingerprint(WanVAE.from_config(tiny_vae_config(z_dim=8), seed=0)) == (
        vae_fingerprint(vae)
    )
    rebuilt = LatentCache.build(clips, other, RANGES, batch_size=8, folder=tmp_path, progress=False)
    assert rebuilt.key["vae"] == vae_fingerprint(other) != first.key["vae"]
    assert not torch.allclose(rebuilt.video.float(), first.video.float(), atol=1e-2)
    video, _ = encoded(other, clips[1])
    torch.testing.assert_close(rebuilt.video[1].float(), video[0], atol=1e-2, rtol=1e-2)
    stored = torch.load(tmp_path / CACHE_FILE, weights_only=True)
    assert stored["key"] == rebuilt.key  # the file now holds the new VAE's latents
    # Another depth range changes the key too, and so the depth latents.
    wider = [DepthRange(0.05, 4.0)]
    again = LatentCache.build(clips, other, wider, batch_size=8, folder=tmp_path, progress=False)
    assert again.key["depth_ranges"] != rebuilt.key["depth_ranges"]
    assert torch.equal(again.video, rebuilt.video)
    assert not torch.allclose(again.depth.float(), rebuilt.depth.float(), atol=1e-2)


def test_training_with_cached_latents_writes_the_cache_and_trains(
    tiny_dataset, tmp_path, monkeypatch
):
    calls = []
    encode_video = WanVAE.encode_video

    def counted(self, video):
        calls.append(video.shape[0])
        return encode_video(self, video)

    monkeypatch.setattr(WanVAE, "encode_video", counted)
    output = tmp_path / "run"
    result = train(
        TrainingConfig(
            dataset=str(tiny_dataset),
            output_dir=str(output),
            preset="tiny",
            steps=3,
            batch_size=2,
            cache_latents=True,
            num_workers=0,
            val_every=0,
            checkpoint_every=1000,
            warmup_steps=1,
            log_every=1,
            policy={"video_steps": 2, "action_steps": 2},
        ),
        progress=False,
    )
    assert result.steps == 3 and len(result.losses) == 3
    assert all(math.isfinite(loss) for loss in result.losses)
    stored = torch.load(output / CACHE_FILE, weights_only=True)
    assert len(stored["video"]) == len(stored["key"]["clips"]) == 18
    assert stored["depth"] is not None
    # The VAE encoded each clip once, RGB and depth, for the cache; the steps encoded nothing.
    assert sum(calls) == 2 * 18
    assert result.final_checkpoint.is_dir()
