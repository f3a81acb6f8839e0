"""Reading template.yaml as data: CloudFormation tags, Globals, and the few intrinsics we resolve.

The local stack builds its resources from the same template that is deployed, so a change there
(a table key, a queue's redrive, a function's environment) reaches local runs and tests too.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from doctriage_local.paths import TEMPLATE_PATH


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


def sam_transform(template: Mapping[str, Any], region: str = "us-east-1") -> dict[str, Any]:
    """The template as ``sam deploy`` hands it to CloudFormation: SAM's transform applied.

    This is where the deployed roles come from (the managed policies SAM attaches, the policy
    templates expanded, the state machine's generated role). Local paths (CodeUri, ContentUri,
    DefinitionUri) become placeholder S3 locations, as ``sam package`` would make them.
    """
    import copy

    from samtranslator.public.exceptions import InvalidDocumentException
    from samtranslator.translator.transform import transform

    document = copy.deepcopy(dict(template))
    for resource in document.get("Resources", {}).values():
        props = resource.get("Properties", {})
        kind = resource.get("Type")
        if kind == "AWS::Serverless::Function" and isinstance(props.get("CodeUri"), str):
            props["CodeUri"] = "s3://doctriage-local-artifacts/function.zip"
        elif kind == "AWS::Serverless::LayerVersion" and isinstance(props.get("ContentUri"), str):
            props["ContentUri"] = "s3://doctriage-local-artifacts/layer.zip"
        elif kind == "AWS::Serverless::StateMachine" and isinstance(
            props.get("DefinitionUri"), str
        ):
            props["DefinitionUri"] = {"Bucket": "doctriage-local-artifacts", "Key": "asl.json"}

    class _NoManagedPolicyNames:  # the template names managed policies by ARN, if at all
        def load(self) -> dict[str, str]:
            return {}

    saved_region = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = region  # the translator picks the partition from it
    try:
        transformed: dict[str, Any] = transform(document, {}, _NoManagedPolicyNames())
    except InvalidDocumentException as exc:
        causes = "; ".join(str(cause) for cause in exc.causes)
        raise ValueError(f"SAM cannot transform template.yaml: {causes}") from exc
    finally:
        if saved_region is None:
            os.environ.pop("AWS_DEFAULT_REGION", None)
        else:
            os.environ["AWS_DEFAULT_REGION"] = saved_region
    return transformed


def resolve(value: Any, ref: Callable[[str], Any], get_att: Callable[[str, str], Any]) -> Any:
    """Resolve the intrinsics the template and SAM's output use: Ref, GetAtt, Sub, Join, Select,
    Split. ``ref`` answers resource, parameter and pseudo-parameter names."""
    if isinstance(value, list):
        return [resolve(v, ref, get_att) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        [(name, arg)] = value.items()
        if name == "Ref":
            return ref(arg)
        if name == "Fn::GetAtt":
            resource, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
            return get_att(resource, attribute)
        if name == "Fn::Sub":
            return _sub(arg, ref, get_att)
        if name == "Fn::Join":
            separator, items = arg
            return separator.join(str(v) for v in resolve(items, ref, get_att))
        if name == "Fn::Select":
            index, items = resolve(arg, ref, get_att)
            return items[int(index)]
        if name == "Fn::Split":
            separator, text = resolve(arg, ref, get_att)
            return text.split(separator)
    return {k: resolve(v, ref, get_att) for k, v in value.items()}


_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


def _sub(arg: Any, ref: Callable[[str], Any], get_att: Callable[[str, str], Any]) -> str:
    text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
    values = {name: resolve(v, ref, get_att) for name, v in variables.items()}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in values:
            return str(values[name])
        if "." in name:
            resource, attribute = name.split(".", 1)
            return str(get_att(resource, attribute))
        return str(ref(name))

    return _SUB_VARIABLE.sub(replace, text).replace("${!", "${")
