"""Locate the project's packaged configuration files and templates.

In a wheel, ``configs/`` is installed as ``socialsearch/configs``; in an editable checkout
it is the repository's top-level ``configs/`` folder.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import jinja2

_PACKAGE_DIR = Path(__file__).resolve().parent


def config_path(name: str) -> Path:
    """Return the path of a packaged config file such as ``event_codes.toml``."""
    for base in (_PACKAGE_DIR / "configs", _PACKAGE_DIR.parents[1] / "configs"):
        candidate = base / name
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"packaged config file {name!r} not found next to {_PACKAGE_DIR}")


def template_dir() -> Path:
    """The folder holding the package's Jinja2 templates."""
    return _PACKAGE_DIR / "templates"


@lru_cache(maxsize=1)
def templates() -> jinja2.Environment:
    """The one Jinja2 environment of the package's pages: autoescaped, strict about undefined
    names (a typo in a template fails the render instead of printing nothing)."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir())),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
