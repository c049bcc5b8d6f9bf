"""w2sg: weak-to-strong generalization: pipeline, representation kernels, bounds, sweeps."""

from w2sg.errors import W2SGError

__version__ = "0.1.0"
__all__ = ["W2SGError", "__version__"]
