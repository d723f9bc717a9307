"""All configuration of xwam_ros, declared, documented and validated in one place.

Each kind of YAML file has a dataclass here whose fields carry their documentation; the
loader in `schema` checks every key and type and reports the file, the key and what was
expected. Nothing starts half-configured.
"""

from xwam_ros.config.schema import ConfigError, InvalidFieldError, describe, load, option

__all__ = ["ConfigError", "InvalidFieldError", "describe", "load", "option"]
