"""Sphinx configuration of the API reference: ``bash tools/build_docs.sh`` builds it into build/docs/html.

The pages are written by hand (one per area of the API) and filled from the docstrings by autodoc;
napoleon reads their Google-style sections (Args, Returns). The local extensions check that every
public name is documented (``api_coverage``) and insert each command's ``--help`` (``command_help``).
Everything is built offline from this checkout: the package is imported from the repository root,
so its compiled library must be built (``tools/setup.sh`` does).
"""
import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "_ext"))

import matnet_torch  # noqa: E402  (after the path is set)
import matnet_torch.imaging  # noqa: E402

project = "matnet_torch"
author = "The matnet_torch contributors"
copyright = "2026, the matnet_torch contributors"
release = version = matnet_torch.__version__

# Values shown on the pages, taken from the code so that they cannot go stale.
rst_epilog = f"""
.. |activations| replace:: ``{matnet_torch.ACTIVATIONS}``
.. |derivative_names| replace:: ``{matnet_torch.imaging.DERIVATIVE_NAMES}``
.. |kernels| replace:: ``{matnet_torch.imaging.KERNELS}``
"""

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "api_coverage",
    "command_help",
]

autodoc_member_order = "bysource"
autodoc_typehints = "description"  # types go beside each argument, signatures stay short
autodoc_inherit_docstrings = False  # not torch.nn.Module.forward's generic text on every forward
napoleon_google_docstring = True
napoleon_numpy_docstring = False
nitpicky = False  # torch's types are not cross-referenced: there is no network for intersphinx

html_theme = "furo"
html_title = f"matnet_torch {release}"
html_static_path = []
html_show_sourcelink = False
