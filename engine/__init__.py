"""ConvLens engine: a convolution layer and everything about its shared weights, in pure NumPy.

Images are (C, H, W), weights (J, C/groups, kh, kw), biases (J,), outputs (J, H_out, W_out),
with PyTorch's conventions (cross-correlation, symmetric zero padding).
"""

from .conv import (
    ACTIVATIONS,
    Decimation,
    FeatureMaps,
    activate,
    activation_grad,
    conv2d,
    conv2d_decimated,
    conv_layer,
)
from .errors import ArgumentError, ArgumentTypeError
from .grad import (
    LOSSES,
    LayerGradient,
    conv2d_backward,
    layer_gradient,
    loss_grad,
    weight_grad_contributions,
)
from .kernels import MAX_KERNEL_SIZE, PRESETS, Preset, preset
from .receptive import ReceptiveField, StackEntry, receptive_field, receptive_field_stack
from .sharing import (
    MAX_DENSE_ENTRIES,
    DenseMatrix,
    ParameterCounts,
    WeightUsage,
    coverage,
    dense_matrix,
    parameter_counts,
    weight_usage,
)
from .spec import AxisArithmetic, ConvSpec, output_arithmetic, output_shape, resolve_padding
from .untied import (
    SharedAndUntiedGrads,
    shared_and_untied_grads,
    tie,
    untied_bytes,
    untied_conv2d,
    untied_conv2d_backward,
)

__all__ = [
    "ACTIVATIONS",
    "ArgumentError",
    "ArgumentTypeError",
    "LayerGradient",
    "layer_gradient",
    "LOSSES",
    "MAX_DENSE_ENTRIES",
    "MAX_KERNEL_SIZE",
    "PRESETS",
    "AxisArithmetic",
    "ConvSpec",
    "Decimation",
    "DenseMatrix",
    "FeatureMaps",
    "ParameterCounts",
    "Preset",
    "ReceptiveField",
    "StackEntry",
    "WeightUsage",
    "activate",
    "activation_grad",
    "conv2d",
    "conv2d_backward",
    "conv2d_decimated",
    "conv_layer",
    "coverage",
    "dense_matrix",
    "loss_grad",
    "output_arithmetic",
    "output_shape",
    "parameter_counts",
    "preset",
    "receptive_field",
    "receptive_field_stack",
    "resolve_padding",
    "weight_grad_contributions",
    "weight_usage",
    "SharedAndUntiedGrads",
    "shared_and_untied_grads",
    "tie",
    "untied_bytes",
    "untied_conv2d",
    "untied_conv2d_backward",
]
