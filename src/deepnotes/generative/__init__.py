"""Generative models and the tools of notes chapter 8: density estimation, sampling, change
of variables, GANs, flows and restoration. Submodules are imported by name, e.g.
``from deepnotes.generative.density import KernelDensity``."""
