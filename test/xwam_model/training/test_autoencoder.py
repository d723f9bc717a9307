"""Training the video VAE on a dataset's views (`xwam_model.training.autoencoder`) on the tiny
synthetic dataset (32x32, 9-frame clips): the config's checks, a short run's outputs (the VAE
in the diffusers layout with measured latent statistics, the report, the log), and the
command line."""

from __future__ import annotations

import json
import math

import pytest
import torch

from xwam_model.data import ClipDataset
from xwam_model.data.format import read_index
from xwam_model.normalization import Normalization
from xwam_model.training.autoencoder import (
    LOG_FILE,
    REPORT_FILE,
    VAE_FOLDER,
    AutoencoderConfig,
    main,
    train_autoencoder,
)
from xwam_model.training.objective import pixels_to_video
from xwam_model.vae import WanVAE, tiny_vae_config


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """Every test here runs the tiny VAE on one thread."""


@pytest.fixture(scope="module")
def run(tiny_dataset, tmp_path_factory):
    """A 4-step run on whole 32x32 frames; its output folder and report."""
    output = tmp_path_factory.mktemp("vae_run")
    config = AutoencoderConfig(
        str(tiny_dataset),
        str(output),
        steps=4,
        batch_size=2,
        frames=5,
        crop=0,
        eval_clips=1,
        log_every=2,
        depth_share=0.5,
    )
    return output, train_autoencoder(config, progress=False)


@pytest.mark.parametrize(
    ("field", "value"),
    [("frames", 4), ("frames", 0), ("crop", 20), ("crop", -16), ("steps", 0), ("batch_size", 0)]
    + [("log_every", 0), ("depth_share", 1.5), ("depth_share", -0.1)],
)
def test_config_refuses_bad_values_naming_the_field(field, value):
    with pytest.raises(ValueError, match=rf"^{field}: "):
        AutoencoderConfig("data", "out", **{field: value})


def test_config_accepts_the_edges():
    AutoencoderConfig("data", "out", frames=1, crop=0, depth_share=0.0, steps=1)
    AutoencoderConfig("data", "out", frames=9, crop=32, depth_share=1.0)


def test_frames_or_crop_larger_than_the_dataset_are_refused(tiny_dataset, tmp_path):
    for changes, message in (({"frames": 13}, "frames"), ({"crop": 48}, "crop 48 exceeds")):
        config = AutoencoderConfig(
            str(tiny_dataset), str(tmp_path), steps=1, batch_size=1, **changes
        )
        with pytest.raises(ValueError, match=message):
            train_autoencoder(config, progress=False)


def test_run_writes_the_vae_the_report_and_the_log(run):
    output, report = run
    assert (output / VAE_FOLDER / "config.json").is_file()
    weights = list((output / VAE_FOLDER).glob("*.safetensors")) + list(
        (output / VAE_FOLDER).glob("*.bin")
    )
    assert weights
    stored = json.loads((output / REPORT_FILE).read_text())
    assert stored == json.loads(json.dumps(report))
    for key in ("train_time_s", "parameters", "held_out"):
        assert key in stored
    assert stored["train_time_s"] >= 0
    assert stored["config"]["steps"] == 4
    held_out = stored["held_out"]
    assert held_out["clips"] == 1
    assert math.isfinite(held_out["rgb_psnr_db"]) and held_out["rgb_psnr_db"] > 0
    # The front view recorded depth: its RMSE is a distance within the 0.05-2 m range.
    assert held_out["depth_rmse_m"] is not None and 0 <= held_out["depth_rmse_m"] < 2.0
    records = [json.loads(line) for line in (output / LOG_FILE).read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4]
    assert all(math.isfinite(r["loss"]) and r["loss"] > 0 for r in records)
    assert records[-1]["mse"] >= 0 and records[-1]["lr"] > 0


def test_saved_vae_loads_with_measured_latent_statistics(run, tiny_dataset):
    output, report = run
    vae = WanVAE.from_pretrained(output / VAE_FOLDER)
    assert vae.latent_channels == 48
    assert report["parameters"] == sum(p.numel() for p in vae.model.parameters())
    defaults = tiny_vae_config(z_dim=48)
    config = vae.model.config
    assert len(config.latents_mean) == len(config.latents_std) == 48
    assert list(config.latents_mean) != defaults["latents_mean"]
    assert list(config.latents_std) != defaults["latents_std"]
    assert min(config.latents_std) > 0
    # Normalised with its own statistics, the latents of the dataset's frames are centred and
    # of about unit spread (the tiny_vae_config defaults would not give that).
    normalization = Normalization.from_dict(read_index(tiny_dataset).normalization, source="x")
    clips = ClipDataset(tiny_dataset, "train", normalization)
    video = torch.cat([pixels_to_video(clips[i]["video"][None]) for i in (0, 9)])
    latents = vae.encode_video(video[:, :, :5])
    assert latents.shape == (2, 48, 2, 2, 2, 2)
    assert abs(float(latents.mean())) < 0.5
    assert 0.5 < float(latents.std()) < 2.0


def test_command_line_trains_and_refuses_bad_values(tiny_dataset, tmp_path, capsys):
    common = ["--dataset", str(tiny_dataset), "--quiet"]
    assert main([*common, "--output", str(tmp_path / "bad"), "--frames", "4"]) == 2
    assert "frames" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main([*common, "--output", str(tmp_path / "bad"), "--steps", "many"])
    assert exited.value.code == 2
    capsys.readouterr()
    output = tmp_path / "cli"
    code = main(
        [*common, "--output", str(output), "--steps", "2", "--batch-size", "1", "--crop", "32"]
        + ["--eval-clips", "1", "--log-every", "1"]
    )
    assert code == 0
    assert "held-out reconstruction" in capsys.readouterr().out
    assert (output / VAE_FOLDER / "config.json").is_file()
    report = json.loads((output / REPORT_FILE).read_text())
    assert report["config"]["crop"] == 32 and report["config"]["steps"] == 2
    assert len((output / LOG_FILE).read_text().splitlines()) == 2
