"""aicarousel: a system-dynamics model of the AI industry's circular financing loop.

The model (``models/ai_carousel.mdl``) is the single source of truth for equations; this
package loads it through PySD (:mod:`aicarousel.model`), validates inputs
(:mod:`aicarousel.params`), records provenance (:mod:`aicarousel.provenance`) and exposes the
``aicarousel`` command line (:mod:`aicarousel.cli`).
"""

from importlib import metadata as _metadata

try:
    #: Package version, read from the installed distribution's metadata (``pyproject.toml`` is
    #: the one place it is written). It changes whenever results change (see CHANGELOG.md) and
    #: is recorded in every result's provenance.
    __version__ = _metadata.version("aicarousel")
except _metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
