"""Sphinx configuration of the aicarousel API reference (``make docs``; warnings are errors)."""

from importlib import metadata

project = "aicarousel"
author = "The aicarousel authors"
copyright = "2026, The aicarousel authors"
release = version = metadata.version("aicarousel")

extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.viewcode"]
napoleon_numpy_docstring = True
napoleon_google_docstring = False
napoleon_use_rtype = False
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "none"  # the numpy docstrings state the types
nitpicky = False
exclude_patterns = ["_build", "tutorial.ipynb", "*.md"]
html_theme = "alabaster"
html_static_path: list[str] = []
