"""Chapter 3 of the notes: what networks can represent and how hard they are to train.

* :mod:`~deepnotes.theory.universal` -- one hidden sigmoid layer approximates continuous
  functions (3.1); the relu-difference ramp and the staircase construction.
* :mod:`~deepnotes.theory.piecewise` -- exact piecewise-linear functions (rational arithmetic)
  for counting linear pieces of relu networks.
* :mod:`~deepnotes.theory.relu_net` -- scalar relu networks from explicit weights.
* :mod:`~deepnotes.theory.sawtooth` -- hats, saw-tooth compositions, deep and shallow
  constructions, the shallow-to-deep conversion (3.2).
* :mod:`~deepnotes.theory.shallow_bank` -- many shallow relu nets trained at once.
* :mod:`~deepnotes.theory.three_neuron` -- the 3-neuron training problem and an exact
  (exponential) decision procedure (3.3).
"""

from deepnotes.theory.piecewise import (
    PiecewiseLinear,
    count_pieces_on_grid,
    linear_combination,
    relu_network_function,
)
from deepnotes.theory.relu_net import ScalarReluNet
from deepnotes.theory.sawtooth import (
    deep_hat_net,
    deep_sawtooth_net,
    hat,
    hat_piecewise,
    iterate,
    notes_piece_count,
    power,
    shallow_net_from_piecewise,
    shallow_to_deep,
    two_hats,
    two_hats_piecewise,
)
from deepnotes.theory.shallow_bank import ShallowReluBank, sawtooth_lower_bound_width
from deepnotes.theory.three_neuron import (
    Decision,
    ThreeNeuronWeights,
    decide,
    decide_brute_force,
    parity_instance,
    separate,
)
from deepnotes.theory.universal import (
    fit_sigmoid_readout,
    random_sigmoid_layer,
    relu_ramp,
    sigmoid_net,
    staircase_net,
    sup_error,
)

__all__ = [
    "PiecewiseLinear", "count_pieces_on_grid", "linear_combination", "relu_network_function",
    "ScalarReluNet",
    "deep_hat_net", "deep_sawtooth_net", "hat", "hat_piecewise", "iterate", "notes_piece_count",
    "power", "shallow_net_from_piecewise", "shallow_to_deep", "two_hats", "two_hats_piecewise",
    "ShallowReluBank", "sawtooth_lower_bound_width",
    "Decision", "ThreeNeuronWeights", "decide", "decide_brute_force", "parity_instance",
    "separate",
    "fit_sigmoid_readout", "random_sigmoid_layer", "relu_ramp", "sigmoid_net", "staircase_net",
    "sup_error",
]
