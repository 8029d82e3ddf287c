"""The Prefect deployment: prefect.yaml is a valid project file whose entrypoint loads, whose parameters fit
the flow and name a loadable config; the deployment flow checks like the CLI and runs the build on the
task runner `runner:` names; chunk task runs are named by stage, chunk and round. No server, no build."""

from contextlib import nullcontext

import pytest
import yaml
from prefect import Flow
from prefect._internal.engine import resolve_custom_task_run_name
from prefect.exceptions import ParameterTypeError, SignatureMismatchError
from prefect.flows import load_flow_from_entrypoint
from prefect.utilities.callables import get_call_parameters, parameter_schema
from prefect.utilities.schema_tools import ValidationError, validate

from empathy_data.config.model import RunnerConfig, load_config
from empathy_data.core.errors import ConfigError
from empathy_data.flows import build as build_flow
from empathy_data.flows import deploy
from tests.conftest import REPO

PREFECT_YAML = REPO / "prefect.yaml"


def project() -> dict:
    return yaml.safe_load(PREFECT_YAML.read_text())


def the_deployment() -> dict:
    (deployment,) = project()["deployments"]
    return deployment


def test_prefect_yaml_is_a_valid_project_file():
    from prefect.cli.deploy._models import PrefectYamlModel  # what `prefect deploy` validates the file with

    model = PrefectYamlModel.model_validate(project())
    (deployment,) = model.deployments
    assert deployment.name == "empathy-data-build"
    assert deployment.work_pool is not None and deployment.work_pool.name == "empathy-data"
    # Nothing that fetches code or images: the worker runs this checkout.
    steps = [step for section in (model.build, model.push, model.pull) for step in section or []]
    steps += [step for section in (deployment.build, deployment.push, deployment.pull) for step in section or []]
    assert all(set(step) == {"prefect.deployments.steps.set_working_directory"} for step in steps)
    # The build's own progress lines reach the flow run's logs.
    assert "empathy_data" in deployment.work_pool.job_variables["env"]["PREFECT_LOGGING_EXTRA_LOGGERS"]


def load_entrypoint(monkeypatch) -> Flow:
    monkeypatch.chdir(REPO)  # `prefect deploy` runs from the repository root
    return load_flow_from_entrypoint(the_deployment()["entrypoint"], use_placeholder_flow=False)


def test_entrypoint_loads_the_deployment_flow(monkeypatch):
    loaded = load_entrypoint(monkeypatch)
    assert isinstance(loaded, Flow)
    assert loaded.name == deploy.build_deployment.name == "empathy-data"
    assert list(loaded.parameters.properties) == ["config_path", "overrides", "allow_shrink"]
    assert loaded.parameters.required == ["config_path"]


def test_deployment_parameters_fit_the_flow(monkeypatch):
    loaded = load_entrypoint(monkeypatch)
    parameters = the_deployment()["parameters"]
    schema = parameter_schema(loaded).model_dump_for_openapi()  # what the server checks a run's parameters by
    validate(parameters, schema, raise_on_error=True, ignore_required=False)
    # what the engine does at run time: the defaults fill in
    assert loaded.validate_parameters(parameters) == {**parameters, "overrides": None, "allow_shrink": False}
    with pytest.raises(ValidationError, match="config_path"):  # the checks bite: config_path is required
        validate({}, schema, raise_on_error=True, ignore_required=False)
    with pytest.raises(SignatureMismatchError):
        loaded.validate_parameters({"config": parameters["config_path"]})
    with pytest.raises(ParameterTypeError):
        loaded.validate_parameters({**parameters, "overrides": ["num_dialogues", 4]})


def test_config_path_parameter_names_a_loadable_config():
    path = REPO / the_deployment()["parameters"]["config_path"]
    config, config_dir = load_config(path)
    assert config_dir == path.parent and config.name == yaml.safe_load(path.read_text())["name"]


class Built:
    """What the build flow hands back (a Manifest), as far as the deployment reads it."""

    def to_json(self) -> dict:
        return {"ok": True}


class FakeBuildFlow:
    """Stands in for the build flow: records the task runner and arguments run_build hands it."""

    def __init__(self):
        self.options: dict = {}
        self.calls: list[tuple] = []

    def with_options(self, **options):
        self.options = options
        return lambda config_path, overrides: self.calls.append((config_path, overrides)) or Built()


def config_file(tmp_path, **changes) -> str:
    config = yaml.safe_load((REPO / "configs" / "smoke.yaml").read_text())
    config.update({"output": "built", **changes})
    config["script"]["embedded"] = {"model": "qwen2.5-0.5b"}  # the writer that ships with the package
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "c.yaml").write_text(yaml.safe_dump(config))
    return "configs/c.yaml"  # relative, as the deployment's default is


@pytest.mark.parametrize(
    ("runner", "kind"),
    [
        ({"kind": "thread", "max_workers": 3}, "ThreadPoolTaskRunner"),
        ({"kind": "dask", "max_workers": 2}, "DaskTaskRunner"),
        ({"kind": "dask", "address": "tcp://127.0.0.1:8786"}, "DaskTaskRunner"),
        ({"kind": "ray", "address": "ray://127.0.0.1:10001"}, "RayTaskRunner"),
    ],
)
def test_deployment_flow_runs_the_build_on_the_configured_runner(tmp_path, monkeypatch, runner, kind):
    fake = FakeBuildFlow()
    monkeypatch.setattr(build_flow, "build_corpus", fake)
    monkeypatch.setattr(build_flow, "share_temporary_api", lambda runner: nullcontext())  # no server for a fake
    monkeypatch.chdir(tmp_path)  # the worker's working directory
    manifest = deploy.build_deployment.fn(config_file(tmp_path, runner=runner), {"num_dialogues": 4})
    assert manifest == {"ok": True}
    ((config_path, overrides),) = fake.calls
    assert config_path == str(tmp_path / "configs" / "c.yaml")  # workers get absolute paths
    # `output: built` in the file: relative to the config file (config/paths.py), not the worker's directory
    assert overrides == {"num_dialogues": 4, "output": str(tmp_path / "configs" / "built")}
    task_runner = fake.options["task_runner"]
    assert type(task_runner).__name__ == kind
    # as `empathy-data build` picks it: the same workers, cluster address and cluster settings
    assert runner_settings(task_runner) == runner_settings(build_flow.task_runner(RunnerConfig(**runner)))
    assert runner_settings(task_runner) != runner_settings(
        build_flow.task_runner(RunnerConfig(kind=runner["kind"], max_workers=7))
    )


def runner_settings(task_runner) -> dict:
    """What a Prefect task runner was built with (they do not compare by settings)."""
    names = ("_max_workers", "address", "cluster_kwargs", "init_kwargs")
    return {name: getattr(task_runner, name) for name in names if hasattr(task_runner, name)}


def test_deployment_flow_refuses_what_preflight_refuses(tmp_path, monkeypatch):
    fake = FakeBuildFlow()
    monkeypatch.setattr(build_flow, "build_corpus", fake)
    monkeypatch.chdir(tmp_path)
    path = config_file(tmp_path, runner={"kind": "dask", "max_workers": 2}, resources={"synthesize": {"gpus": 1}})
    with pytest.raises(ConfigError, match="resources.synthesize.gpus"):
        deploy.build_deployment.fn(path)
    assert fake.calls == [] and not (tmp_path / "built").exists()


@pytest.mark.parametrize(
    ("task", "args", "name"),
    [
        (build_flow.script_task, (None, 3, "http://127.0.0.1:9/v1", 1), "script c00003-r1"),
        (build_flow.script_task, (None, 0, ""), "script c00000-r0"),
        (build_flow.synthesize_task, (None, 12, 2), "synthesize c00012-r2"),
        (build_flow.filter_task, (None, 7), "filter c00007-r0"),
        (build_flow.export_task, (None, 4, {}), "export c00004"),
    ],
)
def test_chunk_task_runs_are_named_by_stage_chunk_and_round(task, args, name):
    # The parameters as Prefect binds a submit() call's arguments, then the name the task engine gives the run.
    parameters = get_call_parameters(task.fn, args, {})
    assert resolve_custom_task_run_name(task, parameters) == name
