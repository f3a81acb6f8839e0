"""Static checks of the state machine definition against the template and doctriage_core.errors.

The template is read with the local stack's own loader (doctriage_local.template), so these
checks see it exactly as the local stack does. Each check is a small function that returns a
list of problems (empty when all is well), so a test can assert that the real definition passes
and that a broken copy is caught.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from doctriage_local.paths import PROJECT_ROOT
from doctriage_local.template import load_template

PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
BUILT_IN_ERROR_PREFIXES = ("States.", "Lambda.")
# Both match every error the poll task raises, permanent ones included.
CATCH_ALL_ERRORS = {"States.ALL", "States.TaskFailed"}
TERMINAL_TYPES = {"Succeed", "Fail"}

Definition = dict[str, Any]


# ------------------------------------------------------------------------------- loading


def state_machine(template: dict[str, Any], name: str = "DocumentStateMachine") -> dict[str, Any]:
    """The Properties of the template's state machine resource."""
    return template["Resources"][name]["Properties"]


def definition_text(properties: dict[str, Any]) -> str:
    """The raw ASL text named by DefinitionUri, placeholders still in it."""
    return (PROJECT_ROOT / properties["DefinitionUri"]).read_text(encoding="utf-8")


def substitute(text: str, values: dict[str, str]) -> str:
    """Fills ``${Key}`` placeholders the way CloudFormation does; unknown ones stay as they are."""
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def fake_substitutions(template: dict[str, Any], properties: dict[str, Any]) -> dict[str, str]:
    """A Lambda ARN for each ``!GetAtt <Function>.Arn`` substitution, any string for the rest."""
    values = {}
    for key, value in properties.get("DefinitionSubstitutions", {}).items():
        if isinstance(value, dict) and "Fn::GetAtt" in value:
            resource = value["Fn::GetAtt"][0]
            values[key] = f"arn:aws:lambda:us-east-1:123456789012:function:{resource}"
        else:
            values[key] = str(value)
    return values


def load(template_path: Path | None = None) -> tuple[dict[str, Any], dict[str, Any], str]:
    """(template, state machine properties, raw ASL text) of the project."""
    template = load_template(template_path) if template_path else load_template()
    properties = state_machine(template)
    return template, properties, definition_text(properties)


# ------------------------------------------------------------------------------- walking


def scopes(definition: Definition) -> Iterator[Definition]:
    """The top level and every nested branch/iterator: each has its own StartAt and States."""
    yield definition
    for state in definition.get("States", {}).values():
        for branch in state.get("Branches", []):
            yield from scopes(branch)
        for key in ("Iterator", "ItemProcessor"):
            if key in state:
                yield from scopes(state[key])


def transitions(state: dict[str, Any]) -> list[str]:
    """Every state name this state can go to next."""
    targets = [state[key] for key in ("Next", "Default") if key in state]
    targets += [choice["Next"] for choice in state.get("Choices", []) if "Next" in choice]
    targets += [catch["Next"] for catch in state.get("Catch", []) if "Next" in catch]
    return targets


def reachable_from(states: dict[str, Any], start: list[Any]) -> set[str]:
    """The names of the states reachable from ``start`` (included) by following transitions."""
    seen: set[str] = set()
    todo = list(start)
    while todo:
        name = todo.pop()
        if name in states and name not in seen:
            seen.add(name)
            todo += transitions(states[name])
    return seen


def error_names(state: dict[str, Any], field: str) -> list[str]:
    """Every ErrorEquals name in the state's Retry or Catch list."""
    return [name for rule in state.get(field, []) for name in rule.get("ErrorEquals", [])]


# ------------------------------------------------------------------------------- checks


def check_substitutions(text: str, substitutions: dict[str, Any]) -> list[str]:
    """Every ``${X}`` in the ASL has a DefinitionSubstitutions key, and every key is used."""
    used, given = set(PLACEHOLDER.findall(text)), set(substitutions)
    missing = [f"${{{name}}} has no DefinitionSubstitutions entry" for name in sorted(used - given)]
    unused = [
        f"DefinitionSubstitutions key {n!r} is not used in the ASL" for n in sorted(given - used)
    ]
    return missing + unused


def check_substitution_targets(
    template: dict[str, Any], substitutions: dict[str, Any]
) -> list[str]:
    """Every ``!GetAtt X.Arn`` substitution names a function in the template."""
    functions = {
        name
        for name, resource in template["Resources"].items()
        if resource["Type"] in ("AWS::Serverless::Function", "AWS::Lambda::Function")
    }
    problems = []
    for key, value in substitutions.items():
        if isinstance(value, dict) and "Fn::GetAtt" in value:
            resource, attribute = value["Fn::GetAtt"]
            if resource not in functions or attribute != "Arn":
                problems.append(f"{key}: !GetAtt {resource}.{attribute} is not a function's Arn")
    return problems


def check_transitions(definition: Definition) -> list[str]:
    """StartAt and every Next / Default / Choice / Catch target names a state in its scope."""
    problems = []
    for scope in scopes(definition):
        states = scope.get("States", {})
        if scope.get("StartAt") not in states:
            problems.append(f"StartAt {scope.get('StartAt')!r} is not a state")
        for name, state in states.items():
            problems += [
                f"{name!r} goes to {target!r}, which is not a state"
                for target in transitions(state)
                if target not in states
            ]
    return problems


def check_reachable(definition: Definition) -> list[str]:
    """Every state can be reached from StartAt."""
    problems = []
    for scope in scopes(definition):
        states = scope.get("States", {})
        seen = reachable_from(states, [scope.get("StartAt")])
        problems += [
            f"{name!r} cannot be reached from StartAt" for name in states if name not in seen
        ]
    return problems


def check_can_end(definition: Definition) -> list[str]:
    """Every state has a way to end: a path to Succeed, Fail or a state with End: true."""
    problems = []
    for scope in scopes(definition):
        states = scope.get("States", {})
        ending = {n for n, s in states.items() if s.get("Type") in TERMINAL_TYPES or s.get("End")}
        changed = True
        while changed:
            before = len(ending)
            ending |= {n for n, s in states.items() if set(transitions(s)) & ending}
            changed = len(ending) != before
        for name, state in states.items():
            if state.get("Type") not in TERMINAL_TYPES | {"Choice"} and not (
                "Next" in state or state.get("End")
            ):
                problems.append(f"{name!r} has neither Next nor End")
            elif name not in ending:
                problems.append(f"{name!r} has no path to an end (Succeed, Fail or End)")
    return problems


def check_error_names(definition: Definition, known: set[str]) -> list[str]:
    """Every ErrorEquals name is a Step Functions built-in or a class in doctriage_core.errors."""
    problems = []
    for scope in scopes(definition):
        for name, state in scope.get("States", {}).items():
            for field in ("Retry", "Catch"):
                problems += [
                    f"{name!r} {field} names {error!r}: not built in, not in doctriage_core.errors"
                    for error in error_names(state, field)
                    if not error.startswith(BUILT_IN_ERROR_PREFIXES) and error not in known
                ]
    return problems


def check_retries(
    definition: Definition, state_name: str, transient: set[str], permanent: set[str]
) -> list[str]:
    """The state retries every transient error and no permanent one."""
    state = definition["States"].get(state_name)
    if state is None:
        return [f"no state named {state_name!r}"]
    retried = set(error_names(state, "Retry"))
    problems = [f"{state_name!r} does not retry {e}" for e in sorted(transient - retried)]
    problems += [f"{state_name!r} retries permanent error {e}" for e in sorted(retried & permanent)]
    problems += [
        f"{state_name!r} retries {e}, which also retries permanent errors"
        for e in sorted(retried & CATCH_ALL_ERRORS)
    ]
    return problems


def check_wait_reads_poll_result(
    definition: Definition, poll_state: str, seconds_path: str = "$.poll.next_wait_seconds"
) -> list[str]:
    """The poll task's result lands at $.poll; the Wait in its loop sleeps for next_wait_seconds.

    Only Wait states downstream of the poll task count: a first wait before any poll reads the
    execution input instead.
    """
    states = definition["States"]
    problems = []
    result_path = states.get(poll_state, {}).get("ResultPath")
    if not seconds_path.startswith(f"{result_path}."):
        problems.append(f"{poll_state!r} ResultPath is {result_path!r}, Wait reads {seconds_path}")
    downstream = reachable_from(states, transitions(states.get(poll_state, {})))
    waits = {n: states[n] for n in sorted(downstream) if states[n].get("Type") == "Wait"}
    if not waits:
        problems.append(f"no Wait state after {poll_state!r}: nothing paces the poll loop")
    problems += [
        f"Wait state {name!r} has SecondsPath {state.get('SecondsPath')!r}, not {seconds_path!r}"
        for name, state in waits.items()
        if state.get("SecondsPath") != seconds_path
    ]
    return problems


def check_moto_parses(text: str) -> list[str]:
    """moto's ASL parser (the interpreter the local stack runs) accepts the definition."""
    from moto.stepfunctions.parser.asl.static_analyser.static_analyser import StaticAnalyser

    try:
        StaticAnalyser().analyse(text)
    except Exception as exc:  # the parser raises ASLParserException, ValueError, KeyError …
        return [f"moto's ASL parser rejects the definition: {exc!r}"]
    return []


def parse(text: str) -> Definition:
    """The ASL as JSON (placeholders are inside strings, so the raw text parses)."""
    return json.loads(text)
