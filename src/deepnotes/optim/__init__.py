"""Optimization (notes chapter 9): SGD, momentum, averaging, AdaGrad, Adam, Langevin, sharpness.

Every optimizer is a ``torch.optim.Optimizer`` whose update is vectorized over the parameter
list with ``torch._foreach_*`` kernels (``foreach=False`` gives the per-tensor reference path).
Where the notes' formula differs from the standard one, the standard form is the default and
the notes' form is an explicit option; docs/ERRATA.md records each difference.
"""

from deepnotes.optim.adagrad import AdaGrad
from deepnotes.optim.adam import Adam
from deepnotes.optim.averaging import AveragedSGD
from deepnotes.optim.landscapes import (
    Quadratic,
    double_well,
    double_well_grad,
    rosenbrock,
    rosenbrock_grad,
)
from deepnotes.optim.langevin import (
    Langevin,
    fit_gibbs_temperature,
    gibbs_density,
    langevin_temperature,
    sgd_temperature,
)
from deepnotes.optim.sgd import SGD
from deepnotes.optim.sharpness import Sharpness, keskar_sharpness

__all__ = [
    "SGD",
    "AveragedSGD",
    "AdaGrad",
    "Adam",
    "Langevin",
    "langevin_temperature",
    "sgd_temperature",
    "gibbs_density",
    "fit_gibbs_temperature",
    "keskar_sharpness",
    "Sharpness",
    "Quadratic",
    "rosenbrock",
    "rosenbrock_grad",
    "double_well",
    "double_well_grad",
]
