"""Recurrent networks (notes ch. 5): the Elman, LSTM and GRU recurrences written out with
torch's interface, and the Elman network's gradient by hand, forward in time (RTRL, the notes'
derivation of sec. 5.3) and backward (BPTT), with their costs."""

from deepnotes.recurrent.cells import ElmanCell, GRUCell, LSTMCell, elman_step, gru_step, lstm_step
from deepnotes.recurrent.gradients import (
    ElmanGradients,
    ElmanParams,
    bptt,
    elman_forward,
    gradient_costs,
    readout_squared_error,
    rtrl,
)
from deepnotes.recurrent.layers import GRU, LSTM, RNN, LSTMOutput, LSTMState, RNNOutput

__all__ = [
    "ElmanCell", "GRUCell", "LSTMCell", "elman_step", "gru_step", "lstm_step",
    "ElmanGradients", "ElmanParams", "bptt", "elman_forward", "gradient_costs",
    "readout_squared_error", "rtrl", "GRU", "LSTM", "RNN", "LSTMOutput", "LSTMState",
    "RNNOutput",
]
