"""Reading template.yaml as data: CloudFormation tags, Globals, and the few intrinsics we resolve.

The local stack builds its resources from the same template that is deployed, so a change there
(a table key, a queue's redrive, a function's environment) reaches local runs and tests too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = PROJECT_ROOT / "template.yaml"


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags turned into their long form."""


def _construct_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:
        raise yaml.constructor.ConstructorError(None, None, f"unexpected node {node!r}")
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{tag_suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    data: dict[str, Any] = yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 (SafeLoader subclass)
    return data


def resources_of_type(template: Mapping[str, Any], type_name: str) -> dict[str, dict[str, Any]]:
    return {
        name: resource
        for name, resource in template.get("Resources", {}).items()
        if resource.get("Type") == type_name
    }


def parameter_defaults(template: Mapping[str, Any]) -> dict[str, Any]:
    return {name: spec.get("Default") for name, spec in template.get("Parameters", {}).items()}


def function_properties(template: Mapping[str, Any], logical_id: str) -> dict[str, Any]:
    """A function's properties with SAM's Globals applied (environment variables merged)."""
    globals_ = dict(template.get("Globals", {}).get("Function", {}))
    own = template["Resources"][logical_id]["Properties"]
    merged = {**globals_, **own}
    env = {
        **globals_.get("Environment", {}).get("Variables", {}),
        **own.get("Environment", {}).get("Variables", {}),
    }
    merged["Environment"] = {"Variables": env}
    return merged


def resolve(value: Any, ref: Callable[[str], Any], get_att: Callable[[str, str], Any]) -> Any:
    """Resolve Ref and Fn::GetAtt (all the function environments and substitutions use)."""
    if isinstance(value, dict):
        if set(value) == {"Ref"}:
            return ref(value["Ref"])
        if set(value) == {"Fn::GetAtt"}:
            resource, attribute = value["Fn::GetAtt"]
            return get_att(resource, attribute)
        return {k: resolve(v, ref, get_att) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, ref, get_att) for v in value]
    return value
