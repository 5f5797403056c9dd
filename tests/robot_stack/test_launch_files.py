"""Every shipped graph loads, names registered nodes, and every parameter fits the node's config."""

import ast
import pathlib

import pytest
import yaml

from robot_stack.config import from_mapping
from robot_stack.launcher import load_graph
from robot_stack.runtime.node_main import load_node_class
from robot_stack.runtime.params import load_params_file

LAUNCH = pathlib.Path(__file__).resolve().parents[2] / "launch"
GRAPHS = sorted(p for p in LAUNCH.glob("*.yaml"))


@pytest.mark.parametrize("graph", GRAPHS, ids=lambda p: p.name)
def test_graph_parameters_fit_the_node_configs(graph):
    specs, _ = load_graph(graph)
    assert specs
    for spec in specs:
        cls = load_node_class(spec.node)
        params: dict = {}
        for f in spec.params_files:
            params.update(load_params_file(f, "/" + spec.name, spec.name))
        params.update(spec.params or {})
        if cls.Config is not None:
            from_mapping(cls.Config, params, source=f"{graph.name}: node '{spec.name}'")


@pytest.mark.parametrize("robot", ["widowx250", "widowx_ai", "franka"])
def test_each_robot_has_a_launch_file_for_its_graph(robot):
    src = (LAUNCH / f"{robot}_finetune.launch.py").read_text()
    tree = ast.parse(src)
    assert any(isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description" for n in tree.body)
    assert f"{robot}_finetune.yaml" in src and (LAUNCH / f"{robot}_finetune.yaml").exists()
    params = yaml.safe_load((LAUNCH / "params" / f"{robot}.yaml").read_text())
    assert params["controller"]["ros__parameters"]["arm"] == robot


@pytest.mark.parametrize("robot", ["widowx250", "widowx_ai", "franka"])
def test_the_commented_pretraining_recipe_fits_the_learner(robot, tmp_path):
    """The params files suggest, commented out, the loss settings of README step 6's recipe: they
    must still parse as the learner's parameters once a lab uncomments them."""
    src = (LAUNCH / "params" / f"{robot}.yaml").read_text()
    uncommented = src.replace("    # policy.", "    policy.")
    assert uncommented != src
    path = tmp_path / f"{robot}.yaml"
    path.write_text(uncommented)
    cfg = from_mapping(load_node_class("learner").Config, load_params_file(path, "/learner", "learner"), source=robot)
    assert (cfg.policy.bc_weight, cfg.policy.cql_alpha, cfg.policy.freeze_image_encoder) == (30.0, 0.5, True)
