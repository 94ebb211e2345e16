"""Neural-network building blocks of notes chapter 2, written out and tested against torch.

perceptron (2.1), MLP and the affine collapse (2.2-2.3), activations (2.3.1), losses (2.4),
manual back-propagation (2.5.3), standardization, BatchNorm, dropout, weight penalties and
augmentation (2.6).
"""

from deepnotes.nn.activations import (
    ACTIVATIONS,
    get_activation,
    log_softmax,
    relu,
    sigmoid,
    softmax,
    tanh,
)
from deepnotes.nn.augment import gaussian_noise, horizontal_flip, random_crop
from deepnotes.nn.backprop import manual_gradients
from deepnotes.nn.losses import (
    binary_cross_entropy_with_logits,
    cross_entropy,
    l2_loss,
    zero_one_loss,
)
from deepnotes.nn.mlp import MLP, compose_affine
from deepnotes.nn.normalization import BatchNorm1d, BatchNorm2d
from deepnotes.nn.perceptron import NovikoffBound, Perceptron, PerceptronResult, novikoff_bound
from deepnotes.nn.preprocessing import Standardizer
from deepnotes.nn.regularization import (
    Dropout,
    dropout,
    l1_penalty,
    l2_penalty,
    weight_parameters,
)

__all__ = [
    "ACTIVATIONS", "get_activation", "sigmoid", "relu", "tanh", "softmax", "log_softmax",
    "random_crop", "horizontal_flip", "gaussian_noise", "manual_gradients", "l2_loss",
    "zero_one_loss", "binary_cross_entropy_with_logits", "cross_entropy", "MLP",
    "compose_affine", "BatchNorm1d", "BatchNorm2d", "Perceptron", "PerceptronResult",
    "NovikoffBound", "novikoff_bound", "Standardizer", "Dropout", "dropout", "l1_penalty",
    "l2_penalty", "weight_parameters",
]
