"""Model loading: embedded GGUF, tiny random model, hub ids, local paths, saved method outputs and endpoints."""

from ftguard.models.endpoint import EndpointModel
from ftguard.models.loading import (
    METHOD_OUTPUT_FILE,
    embedded_gguf,
    load_model,
    model_fingerprint,
    save_method_output,
    tiny_model,
)

__all__ = ["METHOD_OUTPUT_FILE", "EndpointModel", "embedded_gguf", "load_model", "model_fingerprint",
           "save_method_output", "tiny_model"]
