"""Typed run configuration, loaded from YAML with `key=value` overrides.

    cfg = load_config("configs/quick.yaml", ["train.steps=2", "methods.1.rank=8"])

Every model forbids unknown keys, so a typo is an error, not a silent default. Components
(`methods`, `probes`, `judges`) carry free parameters that their registry validates.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from ftguard.errors import ConfigError, validation_lines

EMBEDDED_MODEL = "embedded:smollm2-135m-instruct"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Component(BaseModel):
    """`{name: lora, rank: 16}`: the name picks a registered factory, the other keys are its parameters."""

    model_config = ConfigDict(extra="allow")
    name: str

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,63}$")  # a method tag is a folder name under models/


class MethodSpec(Component):
    """A fine-tuning method plus the per-method training knobs the shared loop reads."""

    tag: str | None = None  # name in results and report; defaults to `name` (set it to run one method twice)
    lr: float | None = Field(None, gt=0)  # peak learning rate; defaults to train.lr

    @field_validator("tag")
    @classmethod
    def _safe_tag(cls, v: str | None) -> str | None:
        if v is not None and (not LABEL.match(v) or ".." in v):
            raise ValueError("a tag names a folder inside the run's models/: letters, digits and _ . @ + - only, "
                             "at most 64 characters, not starting with a dot and without '..'")
        return v

    @property
    def label(self) -> str:
        return self.tag or self.name


def judges_shorthand(v: Any) -> Any:
    """`judges: llm`, `[act_match, {name: llm, ...}]`: a bare name stands for `{name: NAME}`."""
    if isinstance(v, (str, dict)):
        v = [v]
    if isinstance(v, list):
        return [{"name": j} if isinstance(j, str) else j for j in v]
    return v


class ProbeSpec(Component):
    """A probe plus the judges that score it; the first judge is the primary verdict."""

    judges: list[Component] | None = None  # None: the probe's default offline judge

    @field_validator("judges", mode="before")
    @classmethod
    def _judges_shorthand(cls, v: Any) -> Any:
        return judges_shorthand(v)


class ModelConfig(Strict):
    """A local model (`name_or_path`), or a model served behind an OpenAI-compatible API (`endpoint` + `name`).

    `model: {endpoint: http://127.0.0.1:8080/v1, name: smollm2}` evaluates whatever that server serves
    (vLLM, Ollama, llama.cpp server, OpenAI, Together, ...) through chat completions; `name` is an alias
    of `name_or_path`. The key comes from the environment variable `api_key_env`, never from the config.
    """

    name_or_path: str = EMBEDDED_MODEL  # "embedded:smollm2-135m-instruct", "tiny:llama", a hub id, a local folder or .gguf file
    sha256: str | None = Field(None, pattern=r"^[0-9a-fA-F]{64}$")  # a .gguf file's checksum, checked before use
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    revision: str | None = None
    trust_remote_code: bool = False  # never on unless you say so
    cache_dir: Path | None = None  # default: $FTGUARD_CACHE or ~/.cache/ftguard
    chat_template: str | None = None  # Jinja template for tokenizers that lack one
    endpoint: str | None = None  # base URL of an OpenAI-compatible API; name_or_path is then the served model name
    api_key_env: str = "OPENAI_API_KEY"  # env variable with the endpoint's key (local hosts need none)
    # other variables a saved model folder (RUN/models/X/ftguard_model.json) may name as its key; a folder
    # that names any other one is refused, so a crafted folder cannot pick which secret is sent where
    allowed_key_envs: list[str] = Field(default_factory=list)
    concurrency: int = Field(4, ge=1)  # parallel requests to the endpoint
    timeout_s: float = Field(120, gt=0)  # per endpoint request

    @model_validator(mode="before")
    @classmethod
    def _name_alias(cls, data: Any) -> Any:
        if isinstance(data, dict) and "name" in data:
            if "name_or_path" in data:
                raise ValueError("give the model as `name` or as `name_or_path`, not both")
            data = {("name_or_path" if k == "name" else k): v for k, v in data.items()}
        return data

    @field_validator("endpoint")
    @classmethod
    def _endpoint_url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL such as http://127.0.0.1:8080/v1")
        return v

    @model_validator(mode="after")
    def _endpoint_needs_name(self) -> ModelConfig:
        if self.endpoint is None:
            return self
        if "name_or_path" not in self.model_fields_set:
            raise ValueError("with `endpoint`, also give `name`: the model name the server serves "
                             "(e.g. {endpoint: http://127.0.0.1:8080/v1, name: smollm2})")
        return self


class DataConfig(Strict):
    train: str = "builtin:sgd_hotels"  # or a chat JSONL file ({"messages": [...]} per line)
    max_examples: int | None = Field(None, ge=1)  # first N training conversations (after shuffling with the run seed)
    max_seq_len: int = Field(384, ge=16)  # conversations are cut to this many tokens
    system_prompt: str | None = None  # override the builtin hotel-agent system prompt
    # hold out this share of data.train (a fixed, seeded split by content) for the chat_holdout probe; the split
    # is saved in the run folder (holdout.json) and the held-out conversations are never trained on
    holdout_fraction: float = Field(0.0, ge=0, lt=1)


Scheduler = Literal["linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup",
                    "inverse_sqrt", "cosine_with_min_lr", "warmup_stable_decay"]  # transformers' SchedulerType


class TrainConfig(Strict):
    steps: int = Field(40, ge=1)  # optimizer steps, the same for every method
    batch_size: int = Field(4, ge=1)  # per device
    grad_accum: int = Field(1, ge=1)
    lr: float = Field(2.0e-5, gt=0)  # default peak learning rate; a method may set its own `lr`
    scheduler: Scheduler = "cosine"
    warmup_ratio: float = Field(0.1, ge=0, le=1)
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float = Field(1.0, ge=0)  # 0 = no clipping
    logging_steps: int = Field(5, ge=1)
    use_cpu: bool | None = None  # None: CUDA when available
    # autocast for the forward/backward passes, weights and optimizer state stay float32 (mixed precision);
    # "bf16" also runs on CPUs (fast where they have AVX512-BF16 or AMX, emulated and ~20x slower elsewhere);
    # "auto": bf16 where the device computes it natively, else float32 (the training log records which); fp16: CUDA
    mixed_precision: Literal["no", "auto", "bf16", "fp16"] = "no"

    @model_validator(mode="after")
    def _fp16_needs_cuda(self) -> TrainConfig:
        if self.mixed_precision == "fp16" and self.use_cpu:
            raise ValueError("mixed_precision fp16 needs CUDA; on CPU use bf16 (or no)")
        return self


class GenerationConfig(Strict):
    batch_size: int = Field(16, ge=1)
    max_new_tokens: int | None = None  # None: each probe's own default
    max_prompt_tokens: int = Field(1024, ge=16)  # longer prompts keep their end (the latest turns)


class AnchorConfig(Strict):
    """General/safety prompts disjoint from every probe, answered by the base model itself (anchor_prompts.py)."""

    n: int = Field(64, ge=0)  # anchor conversations for methods that use them (guard, replay, corda_kpm)
    drift_n: int = Field(48, ge=0)  # held-out anchor prompts for the drift number KL(base || tuned); 0 = off
    max_new_tokens: int = Field(64, ge=1)  # length of the base model's anchor answers
    top_k: int = Field(32, ge=1)  # base log-probs kept per token for KL
    seed: int = 0  # fixed by default so every run seed measures drift on the same prompts


class WiseFTConfig(Strict):
    """Evaluate a trained adapter method scaled by each alpha (WiSE-FT), a free learning/forgetting curve."""

    method: str  # label of an adapter method in `methods` (lora, guard, dora, replay)
    alphas: list[float] = Field(default_factory=lambda: [0.25, 0.5, 0.75])

    @field_validator("alphas")
    @classmethod
    def _in_unit_interval(cls, v: list[float]) -> list[float]:
        if not v or any(not 0 <= a <= 1 for a in v):
            raise ValueError(f"alphas must be a non-empty list of numbers in [0, 1], got {v}")
        return v


class AlignConfig(Strict):
    """A safety-alignment stage applied to the subject before the study (align.py): LoRA SFT through TRL's
    SFTTrainer on refusals of harmful requests, constructive replies to hateful statements and general answers,
    merged into the weights; cached by content like any training."""

    data: str = "builtin:safety_alignment"  # or a chat JSONL file ({"messages": [...]} per line)
    steps: int = Field(60, ge=1)
    batch_size: int = Field(8, ge=1)
    lr: float = Field(1.0e-3, gt=0)
    rank: int = Field(8, ge=1)
    alpha: float = Field(16, gt=0)
    max_seq_len: int = Field(256, ge=16)
    warmup_ratio: float = Field(0.1, ge=0, le=1)
    seed: int = Field(0, ge=0)


class GateConfig(Strict):
    """A ship/no-ship gate checked at the end of `ftguard run` (gate.py): keys are categories or probes, values
    points; decided on the lower end of the paired 95% CI of the change vs base."""

    max_drop: dict[str, float] = Field(default_factory=dict)  # {safety: 2}: the data must rule out a larger drop
    min_gain: dict[str, float] = Field(default_factory=dict)  # {proficiency: 5}: the gain must be shown
    methods: list[str] | None = None  # default: every method of the run

    @model_validator(mode="after")
    def _checks(self) -> GateConfig:
        from ftguard.gate import (
            check_thresholds,  # the rule `ftguard gate` applies to its arguments
        )

        try:
            check_thresholds(self.max_drop, self.min_gain)
        except ConfigError as e:
            raise ValueError(str(e)) from None
        return self


class ReportConfig(Strict):
    bootstrap_samples: int = Field(2000, ge=100)
    max_flips: int = Field(5, ge=0)  # flipped examples shown per method and probe


class RunConfig(Strict):
    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()
    methods: list[MethodSpec] = Field(default_factory=lambda: [MethodSpec(name="full"), MethodSpec(name="lora")])
    probes: list[ProbeSpec] = Field(min_length=1)
    judges: list[Component] = Field(default_factory=list)  # extra judges run on every probe (e.g. an LLM judge)
    generation: GenerationConfig = GenerationConfig()
    anchors: AnchorConfig = AnchorConfig()
    wise_ft: WiseFTConfig | None = None
    align: AlignConfig | None = None  # align the subject first (the two-stage protocol of harmful-fine-tuning work)
    report: ReportConfig = ReportConfig()
    gate: GateConfig | None = None  # checked at the end of `ftguard run`: exit 1 when a method fails it
    output_dir: Path = Path("runs/default")
    cache_dir: Path | None = None  # content-addressed caches; default output_dir/cache (share one across runs)
    seed: int = Field(0, ge=0)
    knowledge_loglik: bool = True  # judge-free knowledge number: log-likelihood of reference answers

    @field_validator("judges", mode="before")
    @classmethod
    def _judges_shorthand(cls, v: Any) -> Any:
        return judges_shorthand(v)

    @field_validator("output_dir")
    @classmethod
    def _output_dir_not_a_file(cls, v: Path) -> Path:
        if v.exists() and not v.is_dir():
            raise ValueError(f"{v} is a file; output_dir must be a run folder, or an empty or new one")
        return v

    @model_validator(mode="after")
    def _unique_labels(self) -> RunConfig:
        labels = [m.label for m in self.methods]
        dupes = sorted({x for x in labels if labels.count(x) > 1})
        if dupes:
            raise ValueError(f"method labels must be unique, {dupes} repeat: give each a distinct `tag`")
        if "base" in labels:
            raise ValueError("'base' is reserved for the untuned model: tag the method differently")
        if self.gate is not None and self.gate.methods:
            unknown = [m for m in self.gate.methods if m not in labels]
            if unknown:
                raise ValueError(f"gate.methods {unknown} are not methods of this run {labels}")
        if self.wise_ft is not None and self.wise_ft.method not in labels:
            raise ValueError(f"wise_ft.method '{self.wise_ft.method}' is not one of the methods {labels}")
        return self


def cache_dir(cfg: ModelConfig | None = None) -> Path:
    if cfg is not None and cfg.cache_dir is not None:
        return Path(cfg.cache_dir).expanduser()
    return Path(os.environ.get("FTGUARD_CACHE", "~/.cache/ftguard")).expanduser()


def _yaml_value(item: str, value: str) -> Any:
    try:
        return yaml.safe_load(value)  # safe_load: a `!!python/...` tag is refused, never run
    except yaml.YAMLError as e:
        raise ConfigError(f"Override {item!r}: the value is not valid YAML ({getattr(e, 'problem', None) or e}); "
                          "quote it, e.g. data.system_prompt='\"Be brief: yes.\"'") from None


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `a.b.0.c=value` overrides in place; values are parsed as YAML (`2.0e-4`, `[a, b]`, `true`)."""
    for item in overrides:
        if "=" not in item or not item.split("=", 1)[0].strip():
            raise ConfigError(f"Override {item!r} is not key=value (e.g. train.steps=10)")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        node: Any = raw
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise ConfigError(f"Override {key!r}: '{part}' is not an index of a list of {len(node)}")
                if last:
                    node[int(part)] = _yaml_value(item, value)
                else:
                    node = node[int(part)]
            elif isinstance(node, dict):
                if last:
                    node[part] = _yaml_value(item, value)
                else:
                    node = node.setdefault(part, {})
            else:
                raise ConfigError(f"Override {key!r}: '{'.'.join(parts[:i])}' is not a mapping or list")
    return raw


def format_validation_error(e: ValidationError, source: str) -> str:
    lines = [f"{source}: {e.error_count()} config error(s):", *validation_lines(e, "key", "(top level)")]
    return "\n".join(lines)


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"Config file not found: {path}")
    if path.is_dir():
        raise ConfigError(f"{path} is a directory; give a YAML config file such as configs/quick.yaml")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: invalid YAML: {getattr(e, 'problem', e)}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, got {type(raw).__name__}")
    return raw


def load_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    raw = apply_overrides(read_yaml(path), overrides or [])
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, str(path))) from None
