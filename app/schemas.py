"""Every model of the REST API in one namespace: the requests (app/requests.py, app/requests_stack.py)
and the responses (app/responses.py, app/responses_stack.py). Routes name them as `schemas.X`.

Layer parameters arrive as form fields, query parameters (GET) or a JSON body; app/params.py reads
all three into the same model. The field types of app/fields.py validate themselves against the
Settings (a pair takes 3, [3, 5] or "3,5"); a {max_...} in a description is filled from the
Settings in /openapi.json.
"""

from __future__ import annotations

from pydantic import BaseModel

from .requests import (
    ID_PATTERN,
    ConvolveParams,
    DenseMatrixParams,
    FeatureMapParams,
    GradientParams,
    LayerParams,
    PresetsParams,
    ReceptiveFieldParams,
    WeightUsageParams,
)
from .requests_stack import ErfParams, NetworkMapParams, NetworkParams, TrainParams
from .responses import (
    AxisArithmeticOut,
    Box,
    ContributionsOut,
    ConvolveResponse,
    CoverageOut,
    DenseEntries,
    DenseMatrixResponse,
    ErrorResponse,
    GradientResponse,
    ImageInfo,
    LayerInfo,
    MapInfo,
    ParametersOut,
    PresetOut,
    PresetsResponse,
    ReceptiveFieldResponse,
    StepOut,
    Tap,
    WeightUsageEntry,
    WeightUsageResponse,
)
from .responses_stack import (
    ErfResponse,
    LayerCountsOut,
    NetworkLayerOut,
    NetworkMapOut,
    NetworkOut,
    NetworkResponse,
    NetworksResponse,
    PaddingOut,
    ReceptiveEntryOut,
    StackConvolveResponse,
    StackLayerOut,
    StackReceptiveFieldResponse,
    TrainDoneLine,
    TrainErrorLine,
    TrainLayerOut,
    TrainMapsOut,
    TrainReportLine,
)

# Every request model, in the order /openapi.json lists them.
REQUEST_MODELS: tuple[type[BaseModel], ...] = (
    LayerParams, ConvolveParams, FeatureMapParams, ReceptiveFieldParams, WeightUsageParams,
    DenseMatrixParams, GradientParams, TrainParams, NetworkParams, NetworkMapParams, ErfParams,
)

__all__ = [
    "ID_PATTERN",
    "TrainDoneLine", "TrainErrorLine", "TrainLayerOut", "TrainMapsOut", "TrainParams", "TrainReportLine",
    "REQUEST_MODELS", "AxisArithmeticOut", "Box", "ContributionsOut", "ConvolveParams", "ConvolveResponse",
    "CoverageOut", "DenseEntries", "DenseMatrixParams", "DenseMatrixResponse", "ErrorResponse",
    "FeatureMapParams", "GradientParams", "GradientResponse", "ImageInfo", "LayerInfo", "LayerParams",
    "MapInfo", "ParametersOut", "PresetOut", "PresetsParams", "PresetsResponse", "ReceptiveFieldParams",
    "ReceptiveFieldResponse", "Tap", "WeightUsageEntry", "WeightUsageParams", "WeightUsageResponse",
    "ErfParams", "ErfResponse", "LayerCountsOut", "NetworkLayerOut", "NetworkMapOut", "NetworkMapParams",
    "NetworkOut", "NetworkParams", "NetworkResponse", "NetworksResponse", "PaddingOut", "ReceptiveEntryOut",
    "StackConvolveResponse", "StackLayerOut", "StackReceptiveFieldResponse", "StepOut",
]
