"""Theory layer: representation kernels (``kernels``) and bounds (``bounds``); see THEORY.md."""
