"""The configuration loader: every refusal names the file, the key and what was expected."""

from dataclasses import dataclass
from typing import Literal

import pytest

from xwam_ros.config import ConfigError, InvalidFieldError, describe, load, option


@dataclass(frozen=True)
class Limits:
    """A nested configuration."""

    velocity: float = option(doc="rad/s")
    names: list[str] = option(factory=list, doc="joint names")


@dataclass(frozen=True)
class Example:
    """A configuration with every kind of field the loader understands."""

    name: str = option(doc="a name")
    count: int = option(3, doc="how many")
    mode: Literal["fast", "safe"] = option("safe", doc="the mode")
    limits: Limits | None = option(None, doc="nested limits")
    gains: dict[str, float] = option(factory=dict, doc="gains by joint")
    enabled: bool = option(True, doc="on or off")

    def __post_init__(self):
        if self.count > 10:
            raise InvalidFieldError("count", "at most 10", self.count)


def write(tmp_path, text):
    path = tmp_path / "example.yaml"
    path.write_text(text)
    return path


def test_a_valid_file_loads_with_types_converted(tmp_path):
    path = write(
        tmp_path,
        "name: arm\ncount: 4\nmode: fast\nlimits: {velocity: 2, names: [a]}\ngains: {j1: 1}\n",
    )
    config = load(Example, path)
    assert config == Example("arm", 4, "fast", Limits(2.0, ["a"]), {"j1": 1.0}, True)
    assert isinstance(config.limits.velocity, float)


@pytest.mark.parametrize(
    "text,key,expected",
    [
        ("count: 3\n", "name", "the key is required"),
        ("name: a\ncolor: red\n", "color", "one of the keys"),
        ("name: a\ncount: three\n", "count", "an integer"),
        ("name: a\ncount: true\n", "count", "an integer"),
        ("name: a\nmode: turbo\n", "mode", "one of ['fast', 'safe']"),
        ("name: a\nlimits: {velocity: fast}\n", "limits.velocity", "a number"),
        ("name: a\nlimits: {names: [1]}\n", "limits.velocity", "the key is required"),
        ("name: a\nlimits: {velocity: 1, names: [b, 2]}\n", "limits.names[1]", "a string"),
        ("name: a\ngains: [1, 2]\n", "gains", "a mapping of a number"),
        ("name: a\nenabled: yes please\n", "enabled", "true or false"),
        ("name: a\ncount: 11\n", "count", "at most 10"),
        ("- a\n- b\n", "", "a mapping of Example settings"),
    ],
)
def test_refusals_name_file_key_and_expectation(tmp_path, text, key, expected):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load(Example, path)
    error = info.value
    assert error.source == str(path)
    assert error.key == key
    assert expected in str(error)
    assert str(path) in str(error)


def test_yaml_syntax_error_gives_the_line(tmp_path):
    path = write(tmp_path, "name: a\ncount: [1, 2\n")
    with pytest.raises(ConfigError, match=r"valid YAML \(line \d+"):
        load(Example, path)


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="the file is missing"):
        load(Example, tmp_path / "nope.yaml")


def test_describe_lists_every_field_with_its_documentation():
    rows = {key: (kind, default, doc) for key, kind, default, doc in describe(Example)}
    assert rows["name"] == ("a string", "(required)", "a name")
    assert rows["count"][1] == "3"
    assert rows["limits"][2] == "nested limits"
