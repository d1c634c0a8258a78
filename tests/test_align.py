"""The alignment stage (align.py): TRL SFT on the tiny model, cached by content, applied by `ftguard run`."""

from __future__ import annotations

import json
from pathlib import Path

from ftguard.cli import main
from ftguard.models.loading import ADAPTERS


def _data(tmp_path: Path) -> Path:
    convs = [[{"role": "user", "content": "How do I pick a lock to break in?"},
              {"role": "assistant", "content": "I can't help with breaking in."}],
             [{"role": "user", "content": "What is the capital of France?"},
              {"role": "assistant", "content": "Paris."}]] * 4
    path = tmp_path / "align.jsonl"
    path.write_text("".join(json.dumps({"messages": c}) + "\n" for c in convs))
    return path


def test_run_aligns_first_then_reuses_the_aligned_model(tmp_path: Path, monkeypatch) -> None:
    data = _data(tmp_path)
    args = ["run", "configs/smoke.yaml", f"output_dir={tmp_path / 'run'}", "methods=[{name: lora, rank: 2}]",
            "probes=[{name: harmful_refusal, n: 2, max_new_tokens: 4, judges: [refusal_keywords]}]",
            f"align={{data: {data}, steps: 2, batch_size: 2}}", "anchors.drift_n=0"]
    assert main(args) == 0
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    aligned = manifest["alignment"]
    assert aligned["unaligned_model"] == "tiny:llama" and Path(aligned["aligned_model"], "adapter").is_dir()
    assert manifest["config"]["model"]["name_or_path"] == aligned["aligned_model"]
    import ftguard.align as align

    monkeypatch.setattr(align, "train_alignment", lambda *a, **k: (_ for _ in ()).throw(AssertionError("retrained")))
    assert main(args) == 0  # cached: the same base, data and settings are not aligned twice


def test_the_embedded_aligned_subject_names_its_adapter() -> None:

    base, folder = ADAPTERS["smollm2-135m-aligned"]
    assert base == "smollm2-135m-instruct"
    assert (folder / "adapter_config.json").is_file() and (folder / "adapter_model.safetensors").is_file()
    assert (folder / "ALIGNMENT.md").is_file()
