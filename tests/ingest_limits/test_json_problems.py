"""`json_problems` names every unstorable value of decoded JSON by its dotted path, and nothing else."""

import json

import pytest

from ingest_limits import NOT_FINITE_PROBLEM, NUL_PROBLEM, SURROGATE_PROBLEM, json_problems, text_problem


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"a": {"b": "x\x00y"}}, [("a.b", NUL_PROBLEM)]),
        ({"a": ["ok", "\ud800"]}, [("a.1", SURROGATE_PROBLEM)]),
        ({"a": [{"b": float("nan")}, float("-inf")]}, [("a.0.b", NOT_FINITE_PROBLEM), ("a.1", NOT_FINITE_PROBLEM)]),
        ({"a": {"k\x00": 1}}, [("a", f"has a key that {NUL_PROBLEM}")]),
        ("\x00", [("(body)", NUL_PROBLEM)]),
        (json.loads('{"pair": "\\ud83c\\udfaa", "big": 1e300, "n": 123456789012345678901234567890}'), []),
        ({"text": "plain ascii", "accents": "café", "none": None, "flag": True}, []),
    ],
    ids=["nul-deep", "lone-surrogate-in-list", "nan-and-minus-infinity", "nul-in-key", "top-level", "fine", "plain"],
)
def test_every_unstorable_value_is_named_by_its_path(document, expected) -> None:
    assert json_problems(document) == expected


def test_a_prefix_roots_the_paths() -> None:
    assert json_problems({"b": float("inf")}, "items.3.raw") == [("items.3.raw.b", NOT_FINITE_PROBLEM)]


def test_text_problem_passes_a_surrogate_pair_decoded_to_one_character() -> None:
    assert text_problem(json.loads('"\\ud83c\\udfaa"')) is None
    assert text_problem(json.loads('"\\udfaa\\ud83c"')) == SURROGATE_PROBLEM
