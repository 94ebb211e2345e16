"""Translation invariance and convolutional networks (notes ch. 4, and sec. 8.6's transposed
convolution): LTI systems as circulant matrices and the convolution theorem, written-out
convolution / pooling / local response normalization with torch parity, the Fashion-MNIST
CNN, and shift (in/equi)variance tools."""

from deepnotes.conv.cnn import (
    FashionCNN,
    cnn_parameter_count,
    count_parameters,
    mlp_parameter_count,
)
from deepnotes.conv.functional import (
    avg_pool2d,
    conv2d,
    conv_transpose2d,
    local_response_norm,
    max_pool2d,
    output_size,
    transposed_output_size,
)
from deepnotes.conv.invariance import (
    normalize_to_circle,
    project_to_simplex,
    roll_images,
    shift_agreement,
    shift_images,
)
from deepnotes.conv.layers import AvgPool2d, Conv2d, ConvTranspose2d, LocalResponseNorm, MaxPool2d
from deepnotes.conv.lti import (
    circulant,
    circulant_deviation,
    correlation_matrix,
    cyclic_convolve,
    fft_convolve,
    forward_difference,
    kernel_of,
    nearest_circulant_kernel,
)

__all__ = [
    "FashionCNN", "cnn_parameter_count", "count_parameters", "mlp_parameter_count",
    "avg_pool2d", "conv2d", "conv_transpose2d", "local_response_norm", "max_pool2d",
    "output_size", "transposed_output_size", "normalize_to_circle", "project_to_simplex",
    "roll_images", "shift_agreement", "shift_images", "AvgPool2d", "Conv2d", "ConvTranspose2d",
    "LocalResponseNorm", "MaxPool2d", "circulant", "circulant_deviation", "correlation_matrix",
    "cyclic_convolve", "fft_convolve", "forward_difference", "kernel_of",
    "nearest_circulant_kernel",
]
