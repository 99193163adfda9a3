"""aicarousel: a system-dynamics model of the AI industry's circular financing loop.

The model (``models/ai_carousel.mdl``) is the single source of truth for equations; this
package loads it through PySD (:mod:`aicarousel.model`), validates inputs
(:mod:`aicarousel.params`), records provenance (:mod:`aicarousel.provenance`) and exposes the
``aicarousel`` command line (:mod:`aicarousel.cli`).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
