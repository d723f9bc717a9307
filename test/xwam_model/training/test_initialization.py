"""Where a run's weights come from: random, a project/X-WAM checkpoint (also for a robot with
other action sizes), or Wan2.2 base weights."""

import pytest
import torch
from safetensors.torch import save_file

from xwam_model.checkpoint import XWAM_ONLY_MODULES
from xwam_model.configuration import XWAMConfig
from xwam_model.data.format import DatasetSpec
from xwam_model.training import TrainingConfig
from xwam_model.training.initialization import initial_model, run_architecture
from xwam_model.transformer import XWAMTransformer

SPEC = DatasetSpec(
    view_names=("a", "b"),
    height=32,
    width=32,
    latent_frames=3,
    actions_per_frame=2,
    control_period=0.05,
    action_space="ee_delta",
    action_dim=7,
    proprio_dim=8,
)


def run(tmp_path, **changes):
    return TrainingConfig(dataset="d", output_dir=str(tmp_path), preset="tiny", **changes)


def test_the_dataset_fixes_views_and_sizes(tmp_path):
    wide = DatasetSpec(
        **{
            **SPEC.to_dict(),
            "view_names": ["a", "b", "c"],
            "action_dim": 14,
            "proprio_dim": 16,
            "actions_per_frame": 4,
        }
    )
    architecture = run_architecture(run(tmp_path), wide)
    assert (
        architecture.num_views,
        architecture.action_dim,
        architecture.proprio_dim,
        architecture.actions_per_frame,
    ) == (3, 14, 16, 4)


def test_scratch_is_seeded(tmp_path):
    architecture = run_architecture(run(tmp_path), SPEC)
    a, _ = initial_model(run(tmp_path, seed=3), architecture)
    b, _ = initial_model(run(tmp_path, seed=3), architecture)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_an_xwam_checkpoint_loads_whole_or_without_its_action_layers(tmp_path):
    architecture = run_architecture(run(tmp_path), SPEC)
    source = XWAMTransformer(architecture)
    source.save_pretrained(tmp_path / "same")
    loaded, line = initial_model(
        run(tmp_path, init="xwam", init_checkpoint=str(tmp_path / "same")), architecture
    )
    assert "X-WAM checkpoint" in line
    assert all(torch.equal(source.state_dict()[k], v) for k, v in loaded.state_dict().items())

    # A two-arm checkpoint (14 actions, 16 proprio) fine-tuned for one arm.
    two_arms = XWAMTransformer(XWAMConfig.preset("tiny", action_dim=14, proprio_dim=16))
    two_arms.save_pretrained(tmp_path / "two_arms")
    loaded, line = initial_model(
        run(
            tmp_path,
            init="xwam",
            init_checkpoint=str(tmp_path / "two_arms"),
            reinit_action_modules=True,
        ),
        architecture,
    )
    assert "afresh" in line and loaded.action_encoder[0].weight.shape[1] == 7
    assert torch.equal(loaded.blocks[0].self_attn.q.weight, two_arms.blocks[0].self_attn.q.weight)


def test_wan_base_weights_start_the_video_backbone(tmp_path):
    architecture = run_architecture(run(tmp_path), SPEC)
    wan = XWAMTransformer(architecture)
    backbone = {
        k: v.contiguous()
        for k, v in wan.state_dict().items()
        if not k.startswith(XWAM_ONLY_MODULES)
    }
    save_file(backbone, str(tmp_path / "wan.safetensors"))
    loaded, line = initial_model(
        run(tmp_path, init="wan", init_checkpoint=str(tmp_path / "wan.safetensors")), architecture
    )
    assert "Wan2.2 base weights" in line
    assert torch.equal(loaded.head.head.weight, wan.head.head.weight)
    assert torch.count_nonzero(loaded.view_embedding.weight) == 0


def test_a_missing_checkpoint_is_named(tmp_path):
    from xwam_model.training.initialization import InitializationError

    with pytest.raises(InitializationError, match="nowhere.ckpt does not exist"):
        initial_model(
            run(tmp_path, init="xwam", init_checkpoint="nowhere.ckpt"),
            run_architecture(run(tmp_path), SPEC),
        )
