"""Discovery of third-party plugin packages through entry points.

A plugin package declares, in its packaging metadata::

    [project.entry-points."dinov3_mm.plugins"]
    my_plugin = "my_plugin.components"

The value names a module (``pkg.module``, or ``pkg.module:attr`` whose module
part is imported); importing it registers the plugin's components in the
``dinov3_mm`` registries. :func:`load_plugins` imports every declared
module once per process. Set ``DINOV3_MM_NO_PLUGINS=1`` to skip discovery.
"""
import logging
import os
from importlib.metadata import EntryPoint, entry_points
from typing import Dict, List, Tuple

from mmengine.logging import print_log

ENTRY_POINT_GROUP = 'dinov3_mm.plugins'
DISABLE_ENV = 'DINOV3_MM_NO_PLUGINS'

# (entry-point name, value) -> value, for every plugin imported so far.
_loaded: Dict[Tuple[str, str], str] = {}


class PluginImportError(ImportError):
    """A declared plugin module could not be imported."""


def plugins_disabled() -> bool:
    """Whether plugin discovery is switched off by the environment."""
    return os.environ.get(DISABLE_ENV, '').strip().lower() in ('1', 'true',
                                                               'yes')


def discover_plugins() -> List[EntryPoint]:
    """List the entry points declared in the ``dinov3_mm.plugins`` group."""
    return list(entry_points(group=ENTRY_POINT_GROUP))


def load_plugins(force: bool = False) -> Dict[str, str]:
    """Import every plugin module declared by installed packages.

    Args:
        force (bool): Re-scan the entry points even if they were loaded
            before. Defaults to False.

    Returns:
        dict: Entry-point name to imported module name, for every plugin
        loaded so far in this process.

    Raises:
        PluginImportError: A declared module failed to import; the message
            names the entry point and the distribution that declared it.
    """
    if plugins_disabled():
        return {}
    for ep in discover_plugins():
        key = (ep.name, ep.value)
        if key in _loaded and not force:
            continue
        try:
            ep.load()
        except Exception as exc:  # any import-time failure of a plugin
            dist = ep.dist.name if ep.dist is not None else 'unknown'
            raise PluginImportError(
                f'dinov3_mm plugin {ep.name!r} (module {ep.value!r}, from '
                f'distribution {dist!r}) failed to import: {exc!r}. Fix or '
                f'uninstall that package, or set {DISABLE_ENV}=1 to skip '
                'plugin discovery.') from exc
        _loaded[key] = ep.value
        print_log(
            f'Loaded dinov3_mm plugin {ep.name!r} from {ep.value!r}',
            logger='current',
            level=logging.DEBUG)
    return {name: value for (name, _), value in _loaded.items()}
