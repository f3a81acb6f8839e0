"""Static checks of statemachine/document_pipeline.asl.json, and proof that each check bites.

No AWS and no execution: the definition is read as the template deploys it (DefinitionUri +
DefinitionSubstitutions) and checked against the template and doctriage_core.errors.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from doctriage_core import errors
from tests.statemachine import asl_checks as checks

POLL_STATE = "Check Extraction"
ERROR_CLASSES = {
    name
    for name, obj in vars(errors).items()
    if isinstance(obj, type)
    and issubclass(obj, BaseException)
    and obj.__module__ == errors.__name__
}
TRANSIENT = {cls.__name__ for cls in errors.TRANSIENT_ERRORS}
PERMANENT = {cls.__name__ for cls in errors.PERMANENT_ERRORS}


@pytest.fixture(scope="module")
def project() -> tuple[dict[str, Any], dict[str, Any], str]:
    return checks.load()


@pytest.fixture
def template(project):
    return project[0]


@pytest.fixture
def substitutions(project) -> dict[str, Any]:
    return project[1].get("DefinitionSubstitutions", {})


@pytest.fixture
def text(project) -> str:
    return project[2]


@pytest.fixture
def definition(text) -> dict[str, Any]:
    return checks.parse(text)


# ----------------------------------------------------------------- the real definition passes


def test_every_placeholder_has_a_substitution_and_vice_versa(text, substitutions):
    assert checks.check_substitutions(text, substitutions) == []


def test_substitutions_point_at_template_functions(template, substitutions):
    assert checks.check_substitution_targets(template, substitutions) == []


def test_every_transition_names_an_existing_state(definition):
    assert checks.check_transitions(definition) == []


def test_every_state_is_reachable(definition):
    assert checks.check_reachable(definition) == []


def test_every_state_has_a_way_to_end(definition):
    assert checks.check_can_end(definition) == []


def test_error_names_are_built_in_or_ours(definition):
    assert checks.check_error_names(definition, ERROR_CLASSES) == []


def test_poll_retries_transient_errors_only(definition):
    assert TRANSIENT, "doctriage_core.errors.TRANSIENT_ERRORS is empty"
    assert checks.check_retries(definition, POLL_STATE, TRANSIENT, PERMANENT) == []


def test_wait_state_sleeps_for_the_polls_next_wait(definition):
    assert checks.check_wait_reads_poll_result(definition, POLL_STATE) == []


def test_every_error_is_in_exactly_one_registry():
    # The registries are derived from the class hierarchy; a class in two (or in none) would make
    # the retry check above meaningless for it.
    registries = {
        "TRANSIENT_ERRORS": {cls.__name__ for cls in errors.TRANSIENT_ERRORS},
        "PERMANENT_ERRORS": {cls.__name__ for cls in errors.PERMANENT_ERRORS},
        "OPERATIONAL_ERRORS": {cls.__name__ for cls in errors.OPERATIONAL_ERRORS},
    }
    bases = {"DoctriageError", "TransientError", "PermanentError"}
    for name in sorted(ERROR_CLASSES - bases):
        homes = [registry for registry, names in registries.items() if name in names]
        assert len(homes) == 1, f"{name} is in {homes or 'no registry'}"
    assert not bases & set().union(*registries.values())


def test_every_concrete_transient_error_is_retried_by_check_extraction(definition):
    retried = set(checks.error_names(definition["States"][POLL_STATE], "Retry"))
    missing = sorted(TRANSIENT - retried)
    assert not missing, f"{POLL_STATE!r} Retry does not list {missing}: add them to the ASL"


def test_moto_parses_the_deployed_definition(template, project, text):
    deployed = checks.substitute(text, checks.fake_substitutions(template, project[1]))
    assert "${" not in deployed
    assert checks.check_moto_parses(deployed) == []


# ----------------------------------------------------------------- each check catches a break


def _broken(definition: dict[str, Any], state: str, **changes: Any) -> dict[str, Any]:
    broken = copy.deepcopy(definition)
    broken["States"][state].update(changes)
    return broken


def test_catches_missing_and_unused_substitutions(text, substitutions):
    broken_text = text.replace("${EvaluateFunctionArn}", "${EvaluateFunctionArm}", 1)
    problems = checks.check_substitutions(broken_text, substitutions)
    assert any("${EvaluateFunctionArm}" in p for p in problems)
    unused = checks.check_substitutions(text, {**substitutions, "Spare": "x"})
    assert unused == ["DefinitionSubstitutions key 'Spare' is not used in the ASL"]


def test_catches_substitution_of_an_unknown_resource(template, substitutions):
    broken = {**substitutions, "PollFunctionArn": {"Fn::GetAtt": ["NoSuchFunction", "Arn"]}}
    assert checks.check_substitution_targets(template, broken)


def test_catches_dangling_next(definition):
    broken = _broken(definition, "Scores Ready?", Default="Wait Before Next Chek")
    assert checks.check_transitions(broken) == [
        "'Scores Ready?' goes to 'Wait Before Next Chek', which is not a state"
    ]


def test_catches_dangling_catch_target(definition):
    catch = [{"ErrorEquals": ["States.ALL"], "Next": "Nowhere"}]
    assert checks.check_transitions(_broken(definition, POLL_STATE, Catch=catch))


def test_catches_unreachable_state(definition):
    broken = copy.deepcopy(definition)
    broken["States"]["Orphan"] = {"Type": "Succeed"}
    assert checks.check_reachable(broken) == ["'Orphan' cannot be reached from StartAt"]


def test_catches_state_without_an_end(definition):
    broken = copy.deepcopy(definition)
    broken["States"]["Evaluate Fields"].pop("End")
    assert checks.check_can_end(broken) == ["'Evaluate Fields' has neither Next nor End"]
    # A loop with no exit: the poll task never fails over and the Choice never leaves.
    looping = _broken(definition, "Scores Ready?", Choices=[])
    looping["States"][POLL_STATE].pop("Catch")
    assert any("no path to an end" in p for p in checks.check_can_end(looping))


def test_catches_unknown_error_name(definition):
    retry = [{"ErrorEquals": ["DatalabRateLimitted"], "MaxAttempts": 2}]
    problems = checks.check_error_names(_broken(definition, POLL_STATE, Retry=retry), ERROR_CLASSES)
    assert len(problems) == 1
    assert "'DatalabRateLimitted': not built in, not in doctriage_core.errors" in problems[0]


def test_catches_unretried_transient_and_retried_permanent_errors(definition):
    retry = [{"ErrorEquals": ["DatalabRateLimited", "DatalabAuthError"], "MaxAttempts": 2}]
    problems = checks.check_retries(
        _broken(definition, POLL_STATE, Retry=retry), POLL_STATE, TRANSIENT, PERMANENT
    )
    assert "'Check Extraction' retries permanent error DatalabAuthError" in problems
    assert "'Check Extraction' does not retry DatalabServerError" in problems


def test_catches_catch_all_retry(definition):
    retry = [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 2}]
    problems = checks.check_retries(
        _broken(definition, POLL_STATE, Retry=retry), POLL_STATE, set(), PERMANENT
    )
    assert problems == [
        "'Check Extraction' retries States.ALL, which also retries permanent errors"
    ]


def test_catches_wrong_wait_path(definition):
    broken = _broken(definition, "Wait Before Next Check", SecondsPath="$.poll.wait")
    assert checks.check_wait_reads_poll_result(broken, POLL_STATE) == [
        "Wait state 'Wait Before Next Check' has SecondsPath '$.poll.wait', "
        "not '$.poll.next_wait_seconds'"
    ]
    unpaced = _broken(definition, "Scores Ready?", Default="Check Extraction")
    assert checks.check_wait_reads_poll_result(unpaced, POLL_STATE) == [
        "no Wait state after 'Check Extraction': nothing paces the poll loop"
    ]


def test_catches_what_moto_cannot_parse(definition):
    broken = _broken(definition, "Wait Before Next Check", SecondsPath="poll.next_wait_seconds")
    assert checks.check_moto_parses(json.dumps(broken))
