"""Image restoration (notes 8.14-8.16): degradations and their likelihoods, classical
baselines, Deep Image Prior, Plug-and-Play ADMM and RED, and deep generative priors.
Submodules are imported by name, e.g. ``from deepnotes.restoration.degradations import Blur``."""
