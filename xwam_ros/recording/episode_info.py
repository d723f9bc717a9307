"""What an episode bag says about itself, in metadata.yaml's `custom_data` (rosbag2 v9).

`custom_data` is a mapping of strings to strings, so every value is a string: the tags are a
JSON list, the success flag `true`/`false` (empty until the episode is stopped). `state` is
`recording` from the moment the bag is created until StopEpisode finalises it (`complete`):
a bag still saying `recording` was cut short (the recorder was killed) and holds the episode
up to its last closed split; `interrupted` means the recorder was shut down mid-episode and
closed the bag cleanly, but nobody said how the episode ended.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal

PREFIX = "xwam."
FORMAT = "xwam-episode/1"
State = Literal["recording", "interrupted", "complete"]
STATES = ("recording", "interrupted", "complete")


class EpisodeInfoError(ValueError):
    """A bag's custom_data is not an xwam episode description."""


@dataclass
class EpisodeInfo:
    """The episode's description: instruction, tags, outcome, provenance, state."""

    instruction: str = ""
    tags: list[str] = field(default_factory=list)
    success: bool | None = None
    notes: str = ""
    state: State = "recording"
    started_at: str = ""
    robot: str = ""
    cameras: str = ""

    @property
    def complete(self) -> bool:
        """Whether the episode was stopped properly (not cut short by a crash or a kill)."""
        return self.state == "complete"

    def to_custom_data(self) -> dict[str, str]:
        """The `custom_data` entries (all strings) describing the episode."""
        success = "" if self.success is None else ("true" if self.success else "false")
        values = {
            "format": FORMAT,
            "state": self.state,
            "instruction": self.instruction,
            "tags": json.dumps(list(self.tags)),
            "success": success,
            "notes": self.notes,
            "started_at": self.started_at,
            "robot": self.robot,
            "cameras": self.cameras,
        }
        return {PREFIX + key: value for key, value in values.items()}

    @classmethod
    def from_custom_data(cls, data: dict[str, str] | None, source: str = "bag") -> EpisodeInfo:
        """Read the description back; EpisodeInfoError when the bag is not an xwam episode."""
        data = data or {}
        if data.get(PREFIX + "format") != FORMAT:
            raise EpisodeInfoError(
                f"{source}: metadata.yaml custom_data has no {PREFIX}format: {FORMAT} "
                "(not recorded by the xwam recorder)"
            )
        get = lambda key: str(data.get(PREFIX + key, ""))  # noqa: E731
        try:
            tags = json.loads(get("tags") or "[]")
        except json.JSONDecodeError as exc:
            raise EpisodeInfoError(f"{source}: {PREFIX}tags is not a JSON list ({exc})") from None
        state = get("state")
        if state not in STATES:
            raise EpisodeInfoError(f"{source}: {PREFIX}state is {state!r}")
        success = {"true": True, "false": False, "": None}.get(get("success"))
        return cls(
            instruction=get("instruction"),
            tags=[str(t) for t in tags],
            success=success,
            notes=get("notes"),
            state=state,
            started_at=get("started_at"),
            robot=get("robot"),
            cameras=get("cameras"),
        )
