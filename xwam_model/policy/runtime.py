"""`XWAMPolicy`: the one runtime object the ROS side calls.

One call, as DESIGN.md's control cycle runs it:

    run = policy.begin(Observation(images, proprio, instruction))   # prepare + encode
    chunk = run.decode_actions()       # ANS phase 1: the de-normalised action chunk, at once
    future = run.imagine()             # ANS phase 2 (optional): RGB + metric depth per view

`policy.act(observation, imagine=...)` does the same in one call. Each `begin` draws its noise
from the policy's generator (seeded by `PolicySettings.seed`; `reset` re-seeds it) or from
its own `seed=`, so runs are deterministic for a seed. The policy is not thread-safe: one
worker thread drives it.

Preparation: each view is centre-cropped to the model's aspect ratio and resized (bilinear,
antialiased) to `settings.height` x `settings.width`; `ViewCrop` says how, so camera
intrinsics can follow (`ViewCrop.intrinsics`). Proprio is normalised with the checkpoint's
q01/q99 statistics; actions come back de-normalised with them.

Released X-WAM checkpoints (`from_release`) run with `settings.conventions == "reference"`:
everything around the network as the reference server does it (sharinka0715/X-WAM at
72cfb86, `evaluation/policy_server.py`): views stretched to the model size and centre-cropped
(`prepare_image_stretched`), the text context with its padded outputs kept, proprio
normalised without clipping and a missing arm's dimensions zeroed, the model's first
`action_columns` actions de-normalised without clipping and `negate_action_dims` negated,
every proprio row returned (`PolicyOutput.proprio`), decoded video truncated to uint8 and
depth reported on that 8-bit video scale when no metric range is configured. Noise for
`seed=s`: one CPU `torch.Generator` seeded with s draws the video latents, then the actions,
then the proprio, in the reference's shapes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Mapping
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from ..checkpoint import load_pretrained
from ..configuration import XWAMConfig
from ..normalization import Normalization
from ..sampling.inference import AsyncSampler
from ..text import TextEmbeddings, TextEncoder
from ..transformer import XWAMTransformer
from ..vae import WanVAE, video_to_depth, video_to_uint8
from .settings import PathLike, PolicyConfigError, PolicySettings
from .types import ActionChunk, ImaginedFuture, Observation, ObservationError, PolicyOutput
from .views import ViewCrop, prepare_image, prepare_image_stretched, stretched_crop


class XWAMPolicy:
    """Observation in, action chunk (and imagined future) out; see the module docstring."""

    def __init__(
        self,
        model: XWAMTransformer,
        vae: WanVAE,
        text_encoder: TextEncoder | TextEmbeddings,
        normalization: Normalization,
        settings: PolicySettings | None = None,
        imagination_vae: WanVAE | None = None,
    ) -> None:
        self.model = model.eval()
        self.vae = vae
        # What decodes imagined futures: `vae`, or its weights in another dtype
        # (`WanVAE.in_dtype`): on a CPU the decode is most of an imagination.
        self.imagination_vae = vae if imagination_vae is None else imagination_vae
        self.text_encoder = text_encoder
        self.normalization = normalization
        self.settings = settings or PolicySettings()
        self._check_parts()
        self.view_names = self.settings.names_for(model.config.num_views)
        self._generator = torch.Generator().manual_seed(self.settings.seed)
        # The last context on the model's device: one instruction runs for many calls, and
        # its context (2 x 512 x 4096 floats with guidance) need not cross to the GPU each.
        self._context_key: tuple | None = None
        self._context_value: torch.Tensor | None = None

    # -------------------------------------------------------------- construction

    @classmethod
    def from_pretrained(
        cls,
        directory: PathLike,
        *,
        vae: WanVAE | PathLike,
        text_encoder: TextEncoder | TextEmbeddings | PathLike,
        settings: PolicySettings | None = None,
        device: str | torch.device = "cpu",
        dtype: torch.dtype | None = None,
        depth_branch: bool = True,
    ) -> XWAMPolicy:
        """Load a checkpoint written by `save_pretrained` (`model.safetensors`, `config.json`,
        `normalization.json`, and `policy.json` unless `settings` is given). `vae` and
        `text_encoder` are built objects or local diffusers/transformers folders;
        `text_encoder` may also be precomputed embeddings (`TextEmbeddings` or its
        `.safetensors` file), and then umT5 is not loaded. `depth_branch=False` leaves the
        depth branch out (a policy that never imagines; `imagine` then returns no depth)."""
        directory = Path(directory)
        loaded = load_pretrained(directory, device=device, dtype=dtype, depth_branch=depth_branch)
        if loaded.normalization is None:
            raise PolicyConfigError(
                f"{directory}: no normalization.json; a policy needs the q01/q99 statistics the "
                "model was trained with"
            )
        normalization = Normalization.from_dict(
            loaded.normalization, source=str(directory / "normalization.json")
        )
        settings = settings or PolicySettings.load(directory) or PolicySettings()
        if not isinstance(vae, WanVAE):
            vae = WanVAE.from_pretrained(vae, device=device)
        if not isinstance(text_encoder, (TextEncoder, TextEmbeddings)):
            if Path(text_encoder).is_file():
                text_encoder = TextEmbeddings.load(text_encoder)
            else:
                text_encoder = TextEncoder.from_pretrained(
                    text_encoder, text_len=loaded.model.config.text_len, device=device
                )
        return cls(loaded.model, vae, text_encoder, normalization, settings)

    @classmethod
    def from_config(
        cls,
        config: XWAMConfig,
        *,
        vae: WanVAE,
        text_encoder: TextEncoder | TextEmbeddings,
        normalization: Normalization | None = None,
        settings: PolicySettings | None = None,
        device: str | torch.device = "cpu",
        weights_seed: int = 0,
        dtype: torch.dtype | None = None,
        depth_branch: bool = True,
    ) -> XWAMPolicy:
        """A policy with random weights (demos, tests, benchmarks); identity statistics
        unless `normalization` is given. `dtype` casts the transformer (bfloat16: it then
        runs under bfloat16 autocast, its norms, modulation and RoPE in float32);
        `depth_branch=False` drops the branch after drawing the weights, so the other
        weights are those of the full model for the same seed."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(weights_seed)
            model = XWAMTransformer(config).to(device=device, dtype=dtype)
        if not depth_branch:
            model.drop_depth_branch()
        normalization = normalization or Normalization.identity(
            config.action_dim, config.proprio_dim
        )
        return cls(model, vae, text_encoder, normalization, settings)

    @classmethod
    def from_release(
        cls,
        exp_dir: PathLike,
        *,
        wan_dir: PathLike,
        steps: str = "last",
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        settings: PolicySettings | None = None,
        depth_branch: bool = True,
        text_embeddings: TextEmbeddings | PathLike | None = None,
    ) -> XWAMPolicy:
        """Load a released X-WAM experiment folder as it is (see `xwam_model.release`).

        Deployment: `depth_branch=False` leaves the depth branch out (no imagined depth);
        `text_embeddings` (precomputed, `python -m xwam_model.text --release ...`) replaces
        umT5, which is then never built.

        `exp_dir`: the folder with `config.yaml` and `checkpoints/<steps>.ckpt/checkpoint/
        mp_rank_00_model_states.pt`; `wan_dir`: the Wan2.2-TI2V-5B folder (`config.json`,
        the umT5 tokenizer). The transformer, VAE and text encoder all come from the
        checkpoint's `module` (memory-mapped), the statistics and the preparation from
        `config.yaml`; `settings` replaces the derived ones (`release_settings`). Raises
        `FileNotFoundError` for a missing file, `ValueError` subclasses for tensors or
        configuration that do not fit.
        """
        from ..release.loader import load_release

        if text_embeddings is not None and not isinstance(text_embeddings, TextEmbeddings):
            text_embeddings = TextEmbeddings.load(text_embeddings)
        parts = load_release(
            exp_dir,
            wan_dir=wan_dir,
            steps=steps,
            device=device,
            dtype=dtype,
            depth_branch=depth_branch,
            text_encoder=text_embeddings is None,
        )
        return cls(
            parts.model,
            parts.vae,
            parts.text_encoder if text_embeddings is None else text_embeddings,
            parts.normalization,
            settings or parts.settings,
        )

    def save_pretrained(self, directory: PathLike) -> Path:
        """Write the model, its statistics and these settings (what `from_pretrained` reads)."""
        self.model.save_pretrained(directory, normalization=self.normalization.to_dict())
        return self.settings.save(directory)

    def compile(
        self,
        *,
        mode: str | None = None,
        cuda_graphs: bool = False,
        dynamic: bool = False,
        backend: str = "inductor",
    ) -> XWAMPolicy:
        """`torch.compile` the transformer (in place; returns the policy). Opt-in: the first
        calls of each shape compile (seconds on a CPU, a minute or more for the paper
        preset on a GPU), later ones run the compiled graph. `mode` is torch.compile's
        (None, "max-autotune", ...). `cuda_graphs=True` also captures CUDA graphs
        (inductor's "reduce-overhead"; the policy's shapes are fixed for a run) and is a
        no-op on a CPU, where there are none. Needs a C++ compiler on a CPU (inductor;
        ~40 s for the tiny preset's one graph on 2 cores). `backend` is torch.compile's
        ("aot_eager" traces without code generation: the tests' quick check).
        """
        graphs = cuda_graphs and _device_of(self.model).type == "cuda"
        if graphs:
            mode = "reduce-overhead"
        compiled = torch.compile(self.model.forward, mode=mode, dynamic=dynamic, backend=backend)

        def forward(**kwargs):
            if graphs:
                # Each pass is a new step of the graphs; outputs are copied because the next
                # replay overwrites the graphs' own buffers (the sampler keeps some outputs).
                torch.compiler.cudagraph_mark_step_begin()
                out = compiled(**kwargs)
                return type(out)(*(None if t is None else t.clone() for t in vars(out).values()))
            return compiled(**kwargs)

        self.model.forward = forward
        return self

    # -------------------------------------------------------------- running

    @property
    def num_actions(self) -> int:
        """Action steps per chunk: `actions_per_frame` for every future video frame."""
        return self.model.config.actions_per_frame * self._future_frames

    @property
    def num_proprio(self) -> int:
        """Proprio steps denoised: one per video frame, the observed one first."""
        return 1 + self._future_frames

    def reset(self, seed: int | None = None) -> None:
        """Re-seed the noise generator (with `settings.seed` unless `seed` is given)."""
        self._generator.manual_seed(self.settings.seed if seed is None else seed)

    def begin(
        self,
        observation: Observation,
        *,
        seed: int | None = None,
        guidance: float | None = None,
        action_prefix: np.ndarray | None = None,
    ) -> PolicyRun:
        """Check and prepare an observation, encode it and set up the sampler.

        `guidance` overrides `settings.guidance` for this run (> 0: the conditional and the
        empty prompt in one doubled batch). `action_prefix` `[d, action_dim]` in the data's
        units (as `ActionChunk.actions`): the chunk's first d actions, fixed (prefix-
        conditioned decoding, `sampling.inference`); d at most `settings.max_action_prefix`,
        what the checkpoint was trained for. Raises `ObservationError` naming what was
        expected when the observation or the prefix does not fit.
        """
        started = time.perf_counter()
        guidance = self.settings.guidance if guidance is None else float(guidance)
        if not guidance >= 0:
            raise ValueError(f"guidance: expected a number >= 0, got {guidance!r}")
        images, proprio = self._checked(observation)
        video, crops = self._prepared_views(images)  # [3, V, H, W]
        first_frame = self.vae.encode_video(video[None, :, None])  # [1, C, 1, V, h, w]
        device = _device_of(self.model)
        settings = self.settings
        cond_proprio = self.normalization.proprio.normalize(
            torch.from_numpy(proprio), clip=not settings.reference
        )
        cond_proprio[list(settings.zero_proprio_dims)] = 0.0
        prefix = self._normalized_prefix(action_prefix)
        sampler = AsyncSampler(
            self.model,
            cond_latents=first_frame.to(device),
            cond_proprio=cond_proprio.float().view(1, 1, -1).to(device),
            context=self._context(observation.instruction, guidance, device),
            **self._noise(first_frame.shape, seed, device),
            video_steps=settings.video_steps,
            action_steps=settings.action_steps,
            shift=settings.shift,
            guidance=guidance,
            action_prefix=None if prefix is None else prefix.to(device),
        )
        return PolicyRun(self, sampler, crops, started, time.perf_counter() - started, seed)

    def act(
        self,
        observation: Observation,
        *,
        imagine: bool = False,
        run_depth: bool | None = None,
        seed: int | None = None,
        guidance: float | None = None,
    ) -> PolicyOutput:
        """`begin`, `decode_actions` and, with `imagine`, `imagine(run_depth)` in one call."""
        run = self.begin(observation, seed=seed, guidance=guidance)
        chunk = run.decode_actions()
        return PolicyOutput(chunk, run.imagine(run_depth=run_depth) if imagine else None)

    # -------------------------------------------------------------- helpers

    def _prepared_views(
        self, images: list[np.ndarray]
    ) -> tuple[torch.Tensor, tuple[ViewCrop, ...]]:
        """The views as the model input `[3, V, H, W]` in [-1, 1], and how each was cropped."""
        settings, device = self.settings, self.vae.device
        size = (settings.height, settings.width)
        if settings.reference:
            crops = tuple(
                stretched_crop(*image.shape[:2], *size, settings.crop_ratio) for image in images
            )
            views = [
                prepare_image_stretched(image, *size, settings.crop_ratio, device)
                for image in images
            ]
        else:
            crops = tuple(ViewCrop.centred(*image.shape[:2], *size) for image in images)
            views = [prepare_image(image, crop, device) for image, crop in zip(images, crops)]
        return torch.stack(views, dim=1), crops

    @property
    def _future_frames(self) -> int:
        return self.vae.temporal_compression * (self.settings.latent_frames - 1)

    def _check_parts(self) -> None:
        config, settings, vae = self.model.config, self.settings, self.vae
        decoder = self.imagination_vae
        if decoder is not vae and decoder.model.config != vae.model.config:
            raise PolicyConfigError(
                "imagination_vae: expected the policy's VAE in another dtype "
                "(WanVAE.in_dtype), got a VAE of another configuration"
            )
        if vae.latent_channels != config.in_channels:
            raise PolicyConfigError(
                f"VAE: {vae.latent_channels} latent channels, the model expects "
                f"{config.in_channels}"
            )
        # Each latent patch covers (VAE stride x patch) pixels along each image axis.
        rows = vae.spatial_compression * config.patch_size[1]
        cols = vae.spatial_compression * config.patch_size[2]
        if settings.height % rows or settings.width % cols:
            raise PolicyConfigError(
                f"height, width: expected multiples of {rows} and {cols} (VAE stride x patch), "
                f"got {settings.height}x{settings.width}"
            )
        encoder = self.text_encoder
        if encoder.text_dim != config.text_dim or encoder.text_len > config.text_len:
            raise PolicyConfigError(
                f"text encoder: width {encoder.text_dim} and length {encoder.text_len}, the model "
                f"expects width {config.text_dim} and at most {config.text_len} tokens"
            )
        if settings.view_names and len(settings.view_names) != config.num_views:
            raise PolicyConfigError(
                f"view_names: expected {config.num_views} names (the model's views), got "
                f"{list(settings.view_names)}"
            )
        if len(settings.depth_ranges) not in (0, 1, config.num_views):
            raise PolicyConfigError(
                f"depth_ranges: expected 0 (8-bit depth video), 1 or {config.num_views} "
                f"ranges, got {len(settings.depth_ranges)}"
            )
        if settings.action_columns > config.action_dim:
            raise PolicyConfigError(
                f"action_columns: expected at most the model's {config.action_dim}, got "
                f"{settings.action_columns}"
            )
        for name, limit in (
            ("zero_proprio_dims", config.proprio_dim),
            ("negate_action_dims", self.action_dim),
        ):
            if any(d >= limit for d in getattr(settings, name)):
                raise PolicyConfigError(
                    f"{name}: expected indices below {limit}, got {list(getattr(settings, name))}"
                )
        if settings.max_action_prefix >= self.num_actions:
            raise PolicyConfigError(
                f"max_action_prefix: expected fewer than the chunk's {self.num_actions} actions, "
                f"got {settings.max_action_prefix}"
            )
        try:
            self.normalization.check_dims(self.action_dim, config.proprio_dim)
        except ValueError as error:
            raise PolicyConfigError(f"normalization: {error}") from error

    @property
    def action_dim(self) -> int:
        """Action values per step returned (`settings.action_columns`, or the model's)."""
        return self.settings.action_columns or self.model.config.action_dim

    def _checked(self, observation: Observation) -> tuple[list[np.ndarray], np.ndarray]:
        names = self.view_names
        images = observation.images
        if isinstance(images, Mapping):
            if set(images) != set(names):
                raise ObservationError(
                    f"images: expected views {list(names)}, got {sorted(images)}"
                )
            images = [images[name] for name in names]
        else:
            images = list(images)
            if len(images) != len(names):
                raise ObservationError(
                    f"images: expected {len(names)} views ({', '.join(names)}), got {len(images)}"
                )
        for name, image in zip(names, images):
            if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
                kind = getattr(image, "dtype", type(image).__name__)
                raise ObservationError(f"images[{name}]: expected uint8 RGB [H, W, 3], got {kind}")
            if image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
                raise ObservationError(
                    f"images[{name}]: expected uint8 RGB [H, W, 3], got shape {image.shape}"
                )
        try:
            proprio = np.asarray(observation.proprio, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise ObservationError(f"proprio: expected numbers ({error})") from error
        expected = self.model.config.proprio_dim
        if proprio.shape != (expected,):
            raise ObservationError(
                f"proprio: expected {expected} values, got shape {list(proprio.shape)}"
            )
        if not np.isfinite(proprio).all():
            bad = np.flatnonzero(~np.isfinite(proprio)).tolist()
            raise ObservationError(f"proprio: expected finite values, got NaN/Inf at {bad}")
        if not isinstance(observation.instruction, str):
            raise ObservationError(
                f"instruction: expected a string (empty is valid: the unconditional prompt), "
                f"got {observation.instruction!r}"
            )
        return images, proprio

    def _normalized_prefix(self, action_prefix: np.ndarray | None) -> torch.Tensor | None:
        """`[1, d, model action_dim]` float32 model values of a prefix in the data's units (the
        inverse of `PolicyRun.decode_actions`: sign flips undone, normalised, padded with
        zeros to the model's width); None for no prefix or d = 0."""
        if action_prefix is None:
            return None
        prefix = np.asarray(action_prefix, dtype=np.float64)
        limit = self.settings.max_action_prefix
        if prefix.ndim != 2 or prefix.shape[1] != self.action_dim:
            raise ObservationError(
                f"action_prefix: expected [d, {self.action_dim}], got shape {list(prefix.shape)}"
            )
        if len(prefix) > limit:
            raise ObservationError(
                f"action_prefix: {len(prefix)} steps, the checkpoint was trained with at most "
                f"{limit} (policy setting max_action_prefix)"
            )
        if not np.isfinite(prefix).all():
            raise ObservationError("action_prefix: expected finite values, got NaN/Inf")
        if len(prefix) == 0:
            return None
        prefix = torch.from_numpy(prefix.copy())
        prefix[:, list(self.settings.negate_action_dims)] *= -1.0
        normalized = self.normalization.action.normalize(prefix, clip=not self.settings.reference)
        padded = torch.zeros(len(prefix), self.model.config.action_dim, dtype=torch.float32)
        padded[:, : self.action_dim] = normalized.float()
        return padded[None]

    def _context(self, instruction: str, guidance: float, device: torch.device) -> torch.Tensor:
        """The text context `[1 or 2, text_len, text_dim]` on `device`, kept for the next
        call with the same instruction. Raises `UnknownInstructionError` when the policy
        runs on precomputed embeddings that do not hold `instruction`."""
        keep = self.settings.reference
        key = (instruction, guidance > 0, keep, device, id(self.text_encoder))
        if key != self._context_key:
            if guidance > 0:
                context = torch.cat(self.text_encoder.encode_pair(instruction, keep_padding=keep))
            else:
                context = self.text_encoder.encode([instruction], keep_padding=keep)
            self._context_key, self._context_value = None, context.to(device)
            self._context_key = key
        return self._context_value

    def _noise(
        self, first_frame_shape: torch.Size, seed: int | None, device: torch.device
    ) -> dict[str, torch.Tensor]:
        """Gaussian noise on the CPU (the same numbers on every device), float32, drawn as the
        reference's `XWAMRunner.forward(seeds=...)` draws it: one generator, the video latents
        `[1, C, T, V, h, w]`, then the actions `[1, Na, model action_dim]`, then the proprio
        `[1, Np, proprio_dim]` (rows 0 / frame 0 are replaced by the observation)."""
        generator = self._generator if seed is None else torch.Generator().manual_seed(seed)
        batch, channels, _, views, height, width = first_frame_shape
        config = self.model.config
        shapes = {
            "noise_video": (batch, channels, self.settings.latent_frames, views, height, width),
            "noise_actions": (batch, self.num_actions, config.action_dim),
            "noise_proprio": (batch, self.num_proprio, config.proprio_dim),
        }
        return {
            name: torch.randn(shape, generator=generator).to(device)
            for name, shape in shapes.items()
        }


class PolicyRun:
    """One observation's sampling run: the chunk first, then (optionally) the future."""

    def __init__(
        self,
        policy: XWAMPolicy,
        sampler: AsyncSampler,
        crops: tuple[ViewCrop, ...],
        started: float,
        prepare_s: float,
        seed: int | None,
    ) -> None:
        self.policy = policy
        self.sampler = sampler
        self.crops = crops
        self.started = started
        self.prepare_s = prepare_s
        self.seed = seed

    def decode_actions(self) -> ActionChunk:
        """Run the action passes and return the de-normalised chunk."""
        decoded = self.sampler.decode_actions()
        policy = self.policy
        normalization, settings = policy.normalization, policy.settings
        clip = not settings.reference
        columns = policy.action_dim
        actions = decoded.actions[0, :, :columns].double().cpu()
        actions = normalization.action.denormalize(actions, clip=clip)
        actions[:, list(settings.negate_action_dims)] *= -1.0
        proprio = decoded.proprio[0].double().cpu()
        proprio = normalization.proprio.denormalize(proprio, clip=clip).numpy()
        return ActionChunk(
            actions=actions.numpy(),
            proprio=proprio[1:],
            normalized_actions=decoded.actions[0].float().cpu().numpy(),
            latency_s=time.perf_counter() - self.started,
            prepare_s=self.prepare_s,
            seed=self.seed,
            observed_proprio=proprio[0],
        )

    def imagine(
        self,
        *,
        run_depth: bool | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> ImaginedFuture | None:
        """Run the remaining video passes and decode the future; None if `should_stop`
        answered True before one of its pieces (`imagine_steps`).

        `run_depth` defaults to `settings.run_depth`; the depth branch runs on the final pass.
        """
        steps = self.imagine_steps(run_depth=run_depth)
        while True:
            try:
                next(steps)
            except StopIteration as finished:
                return finished.value
            if should_stop is not None and should_stop():
                steps.close()
                return None

    def imagine_steps(
        self, *, run_depth: bool | None = None
    ) -> Generator[str, None, ImaginedFuture]:
        """The imagination as resumable pieces: a generator that yields the name of the piece
        it runs next ("pass" for a remaining video pass, "rgb" and "depth" for a piece of the
        VAE decode of every view's RGB, then depth: `WanVAE.decode_video_steps`, one
        upsampling block of one latent frame) and returns the `ImaginedFuture` when the last
        is done.

        The pieces are what a worker can interleave with other runs of the same policy (the
        next observation's action decode): a run's sampler state is its own and the VAE's
        causal cache is the piece's (`WanVAE.decode_video_steps`), so a decode between two
        pieces leaves this imagination as it was, and a decode waits for at most one piece.
        On a CPU the VAE decode is most of an imagination (the small checkpoint's Wan decoder
        at 128 x 128, three views: 0.27 s for the RGB on 2 idle cores, against 0.03 s a pass),
        hence pieces of it no longer than a pass or so (0.12 s the longest on one thread);
        the views stay batched: decoded view by view it took twice as long in all (small
        convolutions: measured 1.06 s against 0.50 s on one thread). `run_depth` as in
        `imagine`.
        """
        policy = self.policy
        run_depth = policy.settings.run_depth if run_depth is None else run_depth
        run_depth = run_depth and policy.model.config.has_depth_branch
        for _ in self.sampler.remaining_passes(run_depth):
            yield "pass"
        result = self.sampler.result()
        decode_started = time.perf_counter()
        vae, settings = policy.imagination_vae, policy.settings
        truncate = settings.reference
        video = yield from _named(vae.decode_video_steps(result.video.to(vae.device)), "rgb")
        rgb = video_to_uint8(video, truncate=truncate)[0]
        depth, depth_unit = None, "m"
        if run_depth:
            decoded = yield from _named(
                vae.decode_video_steps(result.depth.to(vae.device)), "depth"
            )
            if settings.depth_ranges:
                ranges = settings.depth_ranges
                metres = video_to_depth(decoded, ranges[0] if len(ranges) == 1 else ranges)
                depth = metres[0, 1:].transpose(0, 1).cpu().numpy()  # [V, F, H, W]
            else:  # no metric range: the 8-bit depth video as decoded, [V, F, H, W, 3]
                video = video_to_uint8(decoded, truncate=truncate)
                depth, depth_unit = np.ascontiguousarray(video[0, 1:].swapaxes(0, 1)), "uint8"
        return ImaginedFuture(
            view_names=policy.view_names,
            rgb=np.ascontiguousarray(rgb[1:].swapaxes(0, 1)),
            depth=None if depth is None else np.ascontiguousarray(depth),
            depth_unit=depth_unit,
            crops=self.crops,
            elapsed_s=time.perf_counter() - self.started,
            decode_s=time.perf_counter() - decode_started,
        )


_T = TypeVar("_T")


def _named(pieces: Generator[int, None, _T], name: str) -> Generator[str, None, _T]:
    """`pieces` with each of its yields named `name`; returns what it returns."""
    while True:
        try:
            next(pieces)
        except StopIteration as done:
            return done.value
        yield name


def _device_of(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device
