"""Reading the platform document, and how values move between scopes (no processes run)."""

import itertools
import warnings
from pathlib import Path
from typing import Any

import pytest
from kfp import compiler, dsl, kubernetes

from workbench_dsl.engine import graph
from workbench_dsl.engine.orchestrator.states import BY_STORED
from workbench_dsl.engine.platform import plan
from workbench_dsl.engine.spec import PipelineSpec
from workbench_dsl.errors import UsageError


@dsl.component(base_image="python:3.11")
def op(x: str = "") -> str:
    return x


def _spec(pipeline: Any, tmp_path: Path) -> PipelineSpec:
    path = tmp_path / "p.yaml"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compiler.Compiler().compile(pipeline, str(path))
    return PipelineSpec.parse(path.read_text())


def test_scheduling_settings_are_ignored_once_secrets_and_pvcs_planned(tmp_path: Path) -> None:
    @dsl.pipeline(name="k8s")
    def p(optional_secret: str = "") -> None:
        a = op()
        kubernetes.add_node_selector(a, "disk", "ssd")
        kubernetes.add_toleration(a, key="gpu", operator="Exists")
        kubernetes.set_image_pull_secrets(a, ["regcred"])
        b = op()
        kubernetes.use_secret_as_env(b, secret_name="db", secret_key_to_env={"pw": "PW"})
        c = op()
        kubernetes.mount_pvc(c, pvc_name="shared", mount_path="/data")
        d = op()
        kubernetes.use_secret_as_env(
            d, secret_name=optional_secret, secret_key_to_env={"k": "K"}, optional=True
        )

    spec = _spec(p, tmp_path)
    result = plan(spec, {"optional_secret": ""})
    notes = " | ".join(result.notices)
    assert "node selectors" in notes and "tolerations" in notes and "image pull secrets" in notes
    assert result.refusals == []
    assert result.for_executor("exec-op-2").env_refs[0].env == "PW"
    (mount,) = result.for_executor("exec-op-3").mounts
    assert (mount.kind, mount.name, mount.path) == ("pvc", "shared", "/data")
    assert not any("optional" in n for n in result.notices)  # unset optional secret: silent


def test_field_path_env_and_timeout_and_cost(tmp_path: Path) -> None:
    @dsl.pipeline(name="meta")
    def p() -> None:
        a = op()
        kubernetes.add_pod_label(a, "team", "ml")
        kubernetes.add_pod_annotation(a, "workbench.dev/cost-per-hour", "1.5")
        kubernetes.use_field_path_as_env(a, "TEAM", "metadata.labels['team']")
        kubernetes.use_field_path_as_env(a, "NS", "metadata.namespace")
        kubernetes.set_timeout(a, 30)

    spec = _spec(p, tmp_path)
    ex = plan(spec, {}).for_executor("exec-op")
    assert ex.timeout == 30.0
    assert ex.cost_per_hour == 1.5
    assert ex.env_for("op") == {"TEAM": "ml", "NS": "local"}
    assert not plan(spec, {}).notices  # labels read through fieldPathAsEnv are honored, not noise


def test_a_secret_named_by_a_task_output_is_resolved_by_the_run(tmp_path: Path) -> None:
    @dsl.pipeline(name="vol")
    def p() -> None:
        name = op()
        c = op()
        kubernetes.use_secret_as_env(c, secret_name=name.output, secret_key_to_env={"k": "K"})

    (ref,) = plan(_spec(p, tmp_path), {}).for_executor("exec-op-2").env_refs
    assert (ref.name, dict(ref.source)) == ("", {"task": "op", "key": "Output"})


def test_multi_document_yaml_and_bad_input() -> None:
    text = (
        "pipelineInfo: {name: x}\nroot: {dag: {tasks: {}}}\n---\nplatforms:\n  kubernetes: {a: 1}\n"
    )
    spec = PipelineSpec.parse(text)
    assert spec.name == "x" and spec.platform == {"a": 1}
    with pytest.raises(UsageError, match="invalid YAML"):
        PipelineSpec.parse("a: [1,\n")
    with pytest.raises(UsageError, match="a component, not a pipeline"):
        PipelineSpec.parse("name: c\nimplementation: {container: {image: x}}\n")


def test_expression_selectors() -> None:
    assert graph.select('{"a": {"b": [5, 6]}}', 'parseJson(string_value)["a"]["b"][1]') == 6
    assert graph.select({"A_a": "heads"}, 'parseJson(string_value)["A_a"]') == "heads"
    with pytest.raises(graph.InputError, match="no 'z'"):
        graph.select({"a": 1}, 'parseJson(string_value)["z"]')


def _scope_with(children: dict[str, tuple[str, dict, dict]], dag_outputs: dict) -> graph.Scope:
    scope = graph.Scope(
        prefix="", component={"dag": {"tasks": {}, "outputs": dag_outputs}}, params={}, artifacts={}
    )
    for name, (status, params, arts) in children.items():
        n = graph.Node(
            name=name,
            qname=name,
            scope=scope,
            task={},
            comp_name="c",
            component={},
            kind="container",
            state=BY_STORED[status],
        )
        n.out_params, n.out_artifacts = params, arts
        scope.children[name] = n
    return scope


def test_oneof_picks_the_branch_that_ran() -> None:
    scope = _scope_with(
        {"a": ("SKIPPED", {}, {}), "b": ("SUCCEEDED", {"Output": "B"}, {"m": [{"uri": "/b"}]})},
        {
            "parameters": {
                "out": {
                    "valueFromOneof": {
                        "parameterSelectors": [
                            {"producerSubtask": "a", "outputParameterKey": "Output"},
                            {"producerSubtask": "b", "outputParameterKey": "Output"},
                        ]
                    }
                }
            },
            "artifacts": {
                "m": {
                    "artifactSelectors": [
                        {"producerSubtask": "a", "outputArtifactKey": "m"},
                        {"producerSubtask": "b", "outputArtifactKey": "m"},
                    ]
                }
            },
        },
    )
    params, arts = graph.dag_outputs(scope)
    assert params == {"out": "B"}
    assert arts == {"m": [{"uri": "/b"}]}


def test_loop_items_from_raw_and_json_text() -> None:
    seq = itertools.count()
    scope = graph.Scope(prefix="", component={}, params={}, artifacts={})
    node = graph.Node(
        name="l",
        qname="l",
        scope=scope,
        seq=next(seq),
        comp_name="c",
        component={},
        kind="loop",
        task={"parameterIterator": {"items": {"raw": '[{"a": 1}, 2]'}}},
    )
    assert graph.loop_items(node) == [{"a": 1}, 2]
    node.task = {"parameterIterator": {"items": {"inputParameter": "xs"}}}
    node.params = {"xs": "[1, 2]"}
    assert graph.loop_items(node) == [1, 2]
    node.params = {"xs": "not json"}
    with pytest.raises(graph.InputError, match="must be a list"):
        graph.loop_items(node)


def test_pvc_mounts_in_the_deprecated_fields_of_older_kfp_kubernetes() -> None:
    # kfp-kubernetes before pvcNameParameter wrote only the deprecated oneof of PvcMount.
    from workbench_dsl.engine.platform import plan
    from workbench_dsl.engine.spec import PipelineSpec

    spec = PipelineSpec.from_documents(
        [
            {"pipelineInfo": {"name": "old"}, "root": {"dag": {"tasks": {}}}},
            {
                "platforms": {
                    "kubernetes": {
                        "deploymentSpec": {
                            "executors": {
                                "exec-a": {
                                    "pvcMount": [
                                        {
                                            "mountPath": "/a",
                                            "taskOutputParameter": {
                                                "producerTask": "createpvc",
                                                "outputParameterKey": "name",
                                            },
                                        },
                                        {"mountPath": "/b", "componentInputParameter": "claim"},
                                        {"mountPath": "/c", "constant": "fixed"},
                                    ]
                                }
                            }
                        }
                    }
                }
            },
        ],
        "",
    )
    mounts = plan(spec, {}).for_executor("exec-a").mounts
    assert [(m.path, m.name, m.source) for m in mounts] == [
        ("/a", None, (("task", "createpvc"), ("key", "name"))),
        ("/b", None, (("input", "claim"),)),
        ("/c", "fixed", ()),
    ]
