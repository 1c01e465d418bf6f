"""`workbench plan`: the objects a run would create, one YAML file each, validated; exit 2 on problems."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import yaml
from typer.testing import CliRunner

from workbench_dsl.cli.app import app

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]


def test_plan_renders_every_object_of_the_recipe_with_placeholders(tmp_path: Path) -> None:
    out = tmp_path / "plan"
    r = runner.invoke(app, ["plan", str(REPO / "recipes/train_deploy.py"), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.iterdir()) == [
        "fit.trainjob.yaml",
        "pipeline.yaml",
        "predict.inferenceservice-patch.yaml",
        "predict.inferenceservice.yaml",
        "tune.experiment.yaml",
    ]
    text = (out / "predict.inferenceservice.yaml").read_text()
    assert "# placeholder" in text
    isvc = yaml.safe_load(text)
    assert isvc["kind"] == "InferenceService"
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Knative"
    experiment = yaml.safe_load((out / "tune.experiment.yaml").read_text())
    assert experiment["spec"]["trialTemplate"]["trialSpec"]["kind"] == "Job"
    assert "<run time:" in (out / "fit.trainjob.yaml").read_text()


def test_plan_json_lists_each_object(tmp_path: Path) -> None:
    r = runner.invoke(app, ["plan", str(REPO / "pipelines/sweep_then_train.py"), "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["ok"] is True and doc["problems"] == []
    assert sorted(o["kind"] for o in doc["objects"]) == ["Experiment", "TrainJob"]
    assert all(o["problems"] == [] for o in doc["objects"])


def test_plan_lists_every_problem_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    mod = tmp_path / "bad.py"
    mod.write_text(
        textwrap.dedent(
            """
            from workbench_dsl import deploy, pipeline, serve

            @serve(endpoint="open", auth="token")
            def predict(model, instances):
                return instances

            @pipeline(name="bad")
            def bad(uri: str = "models:/m/1", name: str = "Not_A_Name"):
                predict(model_uri=uri)
                deploy(model_uri=uri, endpoint=name)
            """
        ),
        encoding="utf-8",
    )
    out = tmp_path / "out"
    r = runner.invoke(app, ["plan", f"{mod}:bad", "-o", str(out)])
    assert r.exit_code == 2, r.output
    assert "auth='token'" in r.output
    assert "step deploy: endpoint name 'Not_A_Name' must be lowercase letters" in r.output
    assert not out.exists()
    # The same pipeline with a valid endpoint name given as a parameter still refuses the token.
    r = runner.invoke(app, ["plan", f"{mod}:bad", "-p", "name=good-name", "--json"])
    assert r.exit_code == 2
    problems = json.loads(r.stdout)["problems"]
    assert problems and all("auth='token'" in p for p in problems)


def test_plan_shows_the_objects_of_the_prebuilt_components_in_plain_kfp(tmp_path: Path) -> None:
    mod = tmp_path / "plain.py"
    mod.write_text(
        textwrap.dedent(
            f"""
            from kfp import components, dsl

            train = components.load_component_from_file({str(REPO / "components/train.yaml")!r})
            sweep = components.load_component_from_file({str(REPO / "components/sweep.yaml")!r})
            SRC = "def fit(lr: float = 0.1) -> dict:\\n    return {{'acc': lr}}\\n"

            @dsl.pipeline(name="plain")
            def plain(nodes: int = 2):
                train(function_source=SRC, function_name="fit", nodes=nodes, gpus=1)
                sweep(function_source=SRC, function_name="fit", objective="acc",
                      algorithm="grid", space={{"lr": {{"type": "grid", "values": [0.1, 0.2]}}}},
                      max_trials=5, parallel_trials=4)
            """
        ),
        encoding="utf-8",
    )
    r = runner.invoke(app, ["plan", f"{mod}:plain", "-p", "nodes=3", "--json"])
    assert r.exit_code == 0, r.output
    objects = {o["kind"]: o["body"]["spec"] for o in json.loads(r.stdout)["objects"]}
    assert objects["TrainJob"]["trainer"]["numNodes"] == 3
    assert objects["TrainJob"]["trainer"]["resourcesPerNode"]["limits"]["nvidia.com/gpu"] == "1"
    # A grid of two points: Katib's counts are bounded by it.
    assert (
        objects["Experiment"]["maxTrialCount"],
        objects["Experiment"]["parallelTrialCount"],
    ) == (
        2,
        2,
    )


def test_plan_shows_an_llm_endpoint_and_refuses_batching_without_gpus(tmp_path: Path) -> None:
    (tmp_path / "workbench.toml").write_text(
        '[profiles.gpu-1]\ncpu = "8"\nmemory = "32Gi"\naccelerator = "nvidia.com/gpu"\n'
        "accelerator_count = 1\n",
        encoding="utf-8",
    )
    mod = tmp_path / "llm.py"
    mod.write_text(
        textwrap.dedent(
            """
            from workbench_dsl import pipeline, serve

            @serve(kind="llm", endpoint="chat", profile="gpu-1", max_model_len=512)
            def chat():
                '''Chat.'''

            @serve(kind="llm", endpoint="tiny", max_batch_size={batch})
            def tiny():
                '''On CPU.'''

            @pipeline(name="llm")
            def llm(uri: str = "models:/chat/1"):
                chat(model_uri=uri)
                tiny(model_uri=uri)
            """
        ),
        encoding="utf-8",
    )
    source = mod.read_text(encoding="utf-8")
    mod.write_text(source.replace("{batch}", "1"), encoding="utf-8")
    r = runner.invoke(app, ["plan", f"{mod}:llm", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    chat = next(o for o in doc["objects"] if o["file"] == "chat.inferenceservice.yaml")
    model = chat["body"]["spec"]["predictor"]["model"]
    assert model["modelFormat"] == {"name": "huggingface"}
    assert model["args"][:2] == ["--backend=vllm", "--max-model-len=512"]
    assert model["resources"]["limits"]["nvidia.com/gpu"] == "1"
    mod.write_text(source.replace("{batch}", "4"), encoding="utf-8")
    r = runner.invoke(app, ["plan", f"{mod}:llm"])
    assert r.exit_code == 2
    assert "endpoint tiny: max_batch_size=4 needs vLLM, which runs only with GPUs" in r.output


def test_out_that_is_a_file_or_cannot_be_created_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("mine\n")
    for out in (tmp_path / "taken", Path("/proc/no-such-dir/plan")):
        r = runner.invoke(app, ["plan", str(REPO / "recipes/train_deploy.py"), "-o", str(out)])
        assert r.exit_code == 2, r.output
        assert r.stderr.startswith(f"error: -o {out}: ") and r.stderr.count("\n") == 1, r.stderr
    assert (tmp_path / "taken").read_text() == "mine\n"
