"""`served`: a model already fine-tuned elsewhere and served behind an OpenAI-compatible API, as a study subject.

Nothing is trained: the study evaluates its base (`model: {endpoint: ..., name: BASE}`) and this served model on
the same probes, so a fine-tune made anywhere (vLLM, Ollama, llama.cpp server, a hosted service) is audited
against its base with paired before/after numbers.

    model: {endpoint: http://127.0.0.1:8080/v1, name: my-base}
    methods: [{name: served, tag: my_finetune, model: my-finetune}]
"""

from __future__ import annotations

import dataclasses

from rich.console import Console

from ftguard.errors import ConfigError
from ftguard.methods.base import Method, TrainJob, TrainResult
from ftguard.models.endpoint import EndpointModel
from ftguard.models.loading import save_method_output
from ftguard.registry import METHODS

console = Console(stderr=True)


@METHODS.register("served")
def served(model: str, endpoint: str | None = None, api_key_env: str | None = None) -> Method:
    """A fine-tuned model served behind an OpenAI-compatible API, compared with the study's base; trains nothing.

    Args:
        model: The name the server serves the fine-tuned model under.
        endpoint: Its API base URL; default the study's `model.endpoint`.
        api_key_env: Environment variable with that endpoint's key; default the study's `model.api_key_env`.
    """
    if endpoint is not None and not endpoint.startswith(("http://", "https://")):
        raise ConfigError(f"served: endpoint must be an http(s) URL such as http://127.0.0.1:8080/v1, "
                          f"got {endpoint!r}")

    def train(job: TrainJob) -> TrainResult:
        study = job.model
        if not isinstance(study, EndpointModel) and endpoint is None:
            raise ConfigError("served: give `endpoint`, or serve the study's base too (model: {endpoint: ..., "
                              "name: ...}) so both are evaluated through the same API")
        if not isinstance(study, EndpointModel):
            console.log("[yellow]warning[/]: the base model runs locally and the served model behind an API; "
                        "differences in decoding and quantisation mix into the comparison")
            study = EndpointModel(endpoint or "", model)
        tuned = dataclasses.replace(study, base_url=endpoint or study.base_url, name=model,
                                    api_key_env=api_key_env or study.api_key_env)
        save_method_output(job.output_dir, base_name=job.base_name, artifact="endpoint",
                           extra={"endpoint": tuned.base_url, "model": model, "api_key_env": tuned.api_key_env})
        return TrainResult(tuned, "endpoint", None, None)

    return Method(train, trains_locally=False)  # needs no local weights
