"""Warns (an error under ``-W``) for every public name of the library that no page documents.

The public names of a module are its ``__all__``, or else the functions and classes it defines
whose names do not start with an underscore. A name counts as documented when autodoc has described
it under any of the paths it can be imported from (``matnet_torch.nn.MatNetLayer`` or
``matnet_torch.nn.layer.MatNetLayer``).
"""
import importlib
import inspect

from sphinx.util import logging

logger = logging.getLogger(__name__)

# The library's public modules; the applications (matnet_torch.apps) are documented by their commands.
PUBLIC_MODULES = (
    "matnet_torch",
    "matnet_torch.nn",
    "matnet_torch.losses",
    "matnet_torch.regularizers",
    "matnet_torch.reference",
    "matnet_torch.data",
    "matnet_torch.data.images",
    "matnet_torch.imaging",
    "matnet_torch.imaging.superresolution",
    "matnet_torch.pretrained",
)
# Submodules documented as such, not as attributes of their package.
MODULE_ATTRIBUTES = {"nn", "reference"}


def public_names(module):
    if hasattr(module, "__all__"):
        return [name for name in module.__all__ if name not in MODULE_ATTRIBUTES]
    return [
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (inspect.isfunction(value) or inspect.isclass(value))
        and value.__module__ == module.__name__
    ]


def check_coverage(app, env):
    documented = set(env.domaindata["py"]["objects"])
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in public_names(module):
            value = getattr(module, name)
            paths = {f"{module_name}.{name}"}
            if hasattr(value, "__module__") and hasattr(value, "__qualname__"):
                paths.add(f"{value.__module__}.{value.__qualname__}")
            if not paths & documented:
                logger.warning(f"api_coverage: {module_name}.{name} is public but no page documents it")


def setup(app):
    app.connect("env-check-consistency", check_coverage)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
