"""Render the new-plugin template: a complete, installable vendor plugin package.

The template lives in ``oomnitza_connect/templates/plugin`` (package data).
Files ending in ``.j2`` are rendered with Jinja2 using ``{@ name @}`` as the
variable syntax, because the plugin code itself holds ``{{variable}}`` preset
templates and ``Callable[[...]]`` annotations that must come out unchanged;
other files are copied. A path part ``__module__`` becomes the plugin's module
name.
"""

from __future__ import annotations

import importlib.metadata
import re
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import attrs
import jinja2

from ._version import __version__
from .errors import ConfigurationError

__all__ = ["PluginNames", "installed_plugin_clash", "plugin_names", "render_plugin"]

_NAME = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")
_TEMPLATE_ROOT = ("templates", "plugin")


@attrs.frozen
class PluginNames:
    """The names one plugin goes by.

    :param vendor: the connector name and entry-point name (``acme_hr``).
    :param distribution: the PyPI name (``oomnitza-connect-acme-hr``).
    :param module: the import name (``oomnitza_connect_acme_hr``).
    :param display_name: the vendor as people write it (``Acme Hr``).
    :param class_prefix: the prefix of the plugin's classes (``AcmeHr``).
    """

    vendor: str
    distribution: str
    module: str
    display_name: str
    class_prefix: str


def plugin_names(name: str, display_name: str | None = None) -> PluginNames:
    """Return the names of a plugin for vendor *name*.

    :raises ConfigurationError: *name* is not lowercase letters and digits,
        optionally joined by single ``-`` or ``_``, starting with a letter.
    """
    if not _NAME.match(name):
        raise ConfigurationError(
            f"'{name}' cannot name a plugin",
            allowed="lowercase letters and digits, joined by single '-' or '_', "
            "starting with a letter (for example 'acme' or 'acme-hr')",
        )
    vendor = name.replace("-", "_")
    words = vendor.split("_")
    return PluginNames(
        vendor=vendor,
        distribution="oomnitza-connect-" + "-".join(words),
        module="oomnitza_connect_" + vendor,
        display_name=display_name or " ".join(word.capitalize() for word in words),
        class_prefix="".join(word.capitalize() for word in words),
    )


def _distribution_key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()  # PEP 503: Slack_Plugin is slack-plugin


def installed_plugin_clash(names: PluginNames) -> str | None:
    """Say which installed plugin *names* would replace, or ``None`` when none.

    Read from the entry points' metadata (group ``oomnitza_connect``), without
    importing any plugin: a package with the same entry-point name,
    distribution or module shadows the installed one once it is installed,
    and nothing would say so.
    """
    from .plugins import ENTRY_POINT_GROUP

    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist_name = entry_point.dist.name if entry_point.dist is not None else None
        module = entry_point.value.partition(":")[0].partition(".")[0].strip()
        if not (
            entry_point.name.replace("-", "_").lower() == names.vendor
            or module == names.module
            or (dist_name and _distribution_key(dist_name) == names.distribution)
        ):
            continue
        where = f"distribution '{dist_name}'" if dist_name else "an unnamed distribution"
        return f"the installed plugin '{entry_point.name}' ({where}, module '{module}')"
    return None


def _environment() -> jinja2.Environment:
    # Not sandboxed: these are the SDK's own templates, never user input.
    return jinja2.Environment(
        variable_start_string="{@",
        variable_end_string="@}",
        block_start_string="{@%",
        block_end_string="%@}",
        comment_start_string="{@#",
        comment_end_string="#@}",
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 - renders Python and TOML, not HTML
    )


def _walk(root: Traversable, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], str]]:
    files = []
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if entry.name == "__pycache__":
            continue
        parts = (*prefix, entry.name)
        if entry.is_dir():
            files.extend(_walk(entry, parts))
        else:
            files.append((parts, entry.read_text(encoding="utf-8")))
    return files


def render_plugin(
    name: str, directory: str | Path = ".", *, display_name: str | None = None
) -> Path:
    """Render a plugin package for vendor *name* into ``directory/<distribution>``.

    :returns: the new package's directory.
    :raises ConfigurationError: the name is not valid, an installed plugin already
        has its entry point, distribution or module name, or the target directory exists.
    """
    names = plugin_names(name, display_name)
    clash = installed_plugin_clash(names)
    if clash is not None:
        raise ConfigurationError(
            f"'{name}' is taken by {clash}: a package named "
            f"{names.distribution} would replace it once installed; choose another "
            f"name (for example '{name}-custom')"
        )
    target = Path(directory) / names.distribution
    if target.exists():
        raise ConfigurationError(
            f"'{target}' already exists; choose another --directory or remove it first"
        )
    variables = {**attrs.asdict(names), "core_version": __version__}
    environment = _environment()
    template_root = resources.files("oomnitza_connect").joinpath(*_TEMPLATE_ROOT)
    # Render everything in memory first, so that a template error leaves no half package.
    rendered: list[tuple[Path, str]] = []
    for parts, text in _walk(template_root):
        relative = Path(*(names.module if part == "__module__" else part for part in parts))
        if relative.name.endswith(".j2"):
            relative = relative.with_name(relative.name.removesuffix(".j2"))
            text = environment.from_string(text).render(variables)
        rendered.append((relative, text))
    for relative, text in rendered:
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_text(text, encoding="utf-8")
    return target
