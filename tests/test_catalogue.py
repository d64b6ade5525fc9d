"""Tests for socialsearch.catalogue: the packaged catalogue and every validation rule."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest

from socialsearch.catalogue import ROLES, Catalogue, load_catalogue
from socialsearch.errors import CatalogueError, SocialsearchError

VALID = """\
schema_version = 1
lookback_weeks = 26
threshold = 3
child_max_age = 17

[[category]]
id = "violence"
label = "Vold"

[[category]]
id = "suicide"
label = "Selvmordsforsøg"
immediate = true

[[code]]
kind = "offence"
code = "1100"
label = "Vold, straffeloven § 244"
category = "violence"
weight = 2
roles = ["suspect", "victim"]

[[code]]
kind = "incident"
code = "5500"
label = "Selvmordsforsøg"
category = "suicide"
weight = 3
roles = ["involved"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "event_codes.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(CatalogueError) as info:
        load_catalogue(write(tmp_path, text))
    return info.value.problems


def only_problem(tmp_path: Path, text: str) -> str:
    problems = problems_of(tmp_path, text)
    assert len(problems) == 1, problems
    return problems[0]


# --- the packaged catalogue -------------------------------------------------------------


def test_packaged_catalogue_loads_with_the_designed_settings() -> None:
    cat = load_catalogue()
    assert (cat.schema_version, cat.lookback_weeks, cat.threshold, cat.child_max_age) == (1, 26, 3, 17)
    assert cat.source.endswith("event_codes.toml")
    assert cat.digest == hashlib.sha256(Path(cat.source).read_bytes()).hexdigest()


def test_packaged_catalogue_content_is_plausible() -> None:
    cat = load_catalogue()
    by_code = {(c.kind, c.code): c for c in cat.codes}
    assert all(len(c.code) == 4 and c.code.isdigit() for c in cat.codes)
    assert all(1 <= c.weight <= 3 for c in cat.codes)
    assert {c.kind for c in cat.codes} == {"offence", "incident"}
    assert by_code[("offence", "1100")].roles == ("suspect", "victim")
    assert by_code[("offence", "2100")].roles == ("suspect",)  # spirituskørsel
    assert cat.category("sexual_offence_child").immediate
    assert cat.category("suicide").immediate
    assert cat.category("child_alone").immediate
    assert not cat.category("violence").immediate
    labels = " ".join(c.label for c in cat.codes)
    for ref in ("§ 244", "§ 243", "§ 213", "§ 216", "§ 222", "§ 235", "§ 266", "§ 242",
                "færdselsloven § 53", "færdselsloven § 54", "§ 191", "våbenloven"):
        assert ref in labels, ref


def test_packaged_catalogue_codes_frame_has_one_row_per_code_and_role() -> None:
    cat = load_catalogue()
    frame = cat.codes_frame()
    assert frame.height == sum(len(c.roles) for c in cat.codes)
    assert set(frame["role"].unique()) <= set(ROLES)


# --- a valid file -------------------------------------------------------------------------


def test_valid_file_becomes_frozen_typed_objects(tmp_path: Path) -> None:
    path = write(tmp_path, VALID)
    cat = load_catalogue(str(path))
    assert isinstance(cat, Catalogue)
    assert [c.id for c in cat.categories] == ["violence", "suicide"]
    assert cat.categories[0].immediate is False  # the default
    assert cat.codes[1].kind == "incident" and cat.codes[1].roles == ("involved",)
    assert cat.source == str(path)
    assert cat.digest == hashlib.sha256(VALID.encode()).hexdigest()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cat.threshold = 1  # type: ignore[misc]
    assert cat.codes_frame().height == 3


def test_catalogue_error_is_a_socialsearch_error_with_exit_code_2(tmp_path: Path) -> None:
    with pytest.raises(SocialsearchError) as info:
        load_catalogue(write(tmp_path, VALID.replace("threshold = 3", "threshold = 0")))
    assert info.value.exit_code == 2


# --- one rule at a time -----------------------------------------------------------------


def test_toml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    problem = only_problem(tmp_path, VALID.replace('label = "Vold"\n', 'label = "Vold\n', 1))
    assert "TOML syntax error" in problem and "line 8" in problem and "column" in problem


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError) as info:
        load_catalogue(tmp_path / "nope.toml")
    assert "cannot read" in str(info.value) and "nope.toml" in str(info.value)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_bytes(VALID.encode().replace(b"Vold, straffeloven", "V\xf8ld".encode("latin-1")))
    with pytest.raises(CatalogueError, match="line 18: the file is not valid UTF-8"):
        load_catalogue(path)


def test_unknown_top_level_key(tmp_path: Path) -> None:
    problem = only_problem(tmp_path, VALID.replace("threshold = 3\n", "threshold = 3\nthreshhold = 3\n"))
    assert problem.startswith("line 4: top level: unknown key 'threshhold'")
    assert "did you mean 'threshold'?" in problem


def test_unknown_plain_table_is_an_unknown_top_level_key(tmp_path: Path) -> None:
    problem = only_problem(tmp_path, VALID + '\n[settings]\ncolour = "red"\n')
    assert problem.startswith("line 31: top level: unknown key 'settings'")


def test_unknown_category_key(tmp_path: Path) -> None:
    problem = only_problem(tmp_path, VALID.replace('label = "Vold"\n', 'label = "Vold"\nimmedate = true\n'))
    assert problem.startswith('line 9: [[category]] "violence": unknown key \'immedate\'')
    assert "did you mean 'immediate'?" in problem


def test_unknown_code_key(tmp_path: Path) -> None:
    problem = only_problem(tmp_path, VALID.replace("weight = 2\n", "wieght = 2\nweight = 2\n"))
    assert problem.startswith('line 20: [[code]] offence "1100": unknown key \'wieght\'')
    assert "did you mean 'weight'?" in problem


@pytest.mark.parametrize("key", ["schema_version", "lookback_weeks", "threshold", "child_max_age"])
def test_missing_top_level_key(tmp_path: Path, key: str) -> None:
    text = "\n".join(line for line in VALID.splitlines() if not line.startswith(key)) + "\n"
    problem = only_problem(tmp_path, text)
    assert f"missing required key '{key}'" in problem and problem.startswith("line 1: top level")


@pytest.mark.parametrize("key", ["kind", "code", "label", "category", "weight", "roles"])
def test_missing_code_key_names_the_entry_header_line(tmp_path: Path, key: str) -> None:
    lines = VALID.splitlines()
    start = lines.index("[[code]]", 20)  # the second [[code]], line 23
    text = "\n".join(line for i, line in enumerate(lines) if not (i > start and line.startswith(key + " ")))
    problem = only_problem(tmp_path, text + "\n")
    assert problem.startswith("line 23: [[code]]")
    assert f"missing required key '{key}'" in problem


def test_missing_category_label(tmp_path: Path) -> None:
    problem = only_problem(tmp_path, VALID.replace('label = "Selvmordsforsøg"\nimmediate', "immediate"))
    assert problem.startswith('line 10: [[category]] "suicide": missing required key \'label\'')


def test_no_codes_at_all(tmp_path: Path) -> None:
    text = VALID[: VALID.index("[[code]]")]
    problem = only_problem(tmp_path, text)
    assert "no [[code]] entries" in problem


@pytest.mark.parametrize(
    ("old", "new", "line", "expected"),
    [
        ("threshold = 3", 'threshold = "3"', 3, "'threshold' must be an integer, not a string"),
        ("lookback_weeks = 26", "lookback_weeks = 26.0", 2, "'lookback_weeks' must be an integer, not a float"),
        ("child_max_age = 17", "child_max_age = true", 4, "'child_max_age' must be an integer, not a boolean"),
        ("immediate = true", 'immediate = "yes"', 13, "'immediate' must be a boolean, not a string"),
        ('code = "1100"', "code = 1100", 17, "'code' must be a string, not an integer"),
        ('label = "Vold, straffeloven § 244"', "label = 244", 18, "'label' must be a string, not an integer"),
        ("weight = 2", "weight = 2.5", 20, "'weight' must be an integer, not a float"),
        ('roles = ["suspect", "victim"]', 'roles = "suspect"', 21, "'roles' must be an array of strings"),
        ('roles = ["suspect", "victim"]', 'roles = ["suspect", 1]', 21, "'roles' must be an array of strings"),
    ],
)
def test_wrong_types(tmp_path: Path, old: str, new: str, line: int, expected: str) -> None:
    assert old in VALID
    problem = only_problem(tmp_path, VALID.replace(old, new, 1))
    assert problem.startswith(f"line {line}: ")
    assert expected in problem


def test_integer_code_fix_keeps_leading_zeros(tmp_path: Path) -> None:
    problem = only_problem(tmp_path, VALID.replace('code = "1100"', "code = 110"))
    assert 'code = "110"' in problem


def test_duplicate_code_same_kind(tmp_path: Path) -> None:
    text = VALID.replace('kind = "incident"\ncode = "5500"', 'kind = "offence"\ncode = "1100"')
    problem = only_problem(tmp_path, text)
    assert problem.startswith('line 23: [[code]] offence "1100": duplicate code')
    assert "already on line 15" in problem


def test_same_code_number_in_both_kinds_is_allowed(tmp_path: Path) -> None:
    cat = load_catalogue(write(tmp_path, VALID.replace('code = "5500"', 'code = "1100"')))
    assert {(c.kind, c.code) for c in cat.codes} == {("offence", "1100"), ("incident", "1100")}


def test_duplicate_category_id(tmp_path: Path) -> None:
    problem = only_problem(tmp_path, VALID.replace('id = "suicide"', 'id = "violence"').replace(
        'category = "suicide"', 'category = "violence"'))
    assert problem.startswith('line 10: [[category]] "violence": duplicate category id')
    assert "first on line 6" in problem


def test_code_with_unknown_category(tmp_path: Path) -> None:
    problem = only_problem(tmp_path, VALID.replace('category = "violence"', 'category = "violense"'))
    assert problem.startswith('line 19: [[code]] offence "1100": unknown category \'violense\'')
    assert "did you mean 'violence'?" in problem


@pytest.mark.parametrize("weight", [0, -1])
def test_non_positive_weight(tmp_path: Path, weight: int) -> None:
    problem = only_problem(tmp_path, VALID.replace("weight = 2", f"weight = {weight}"))
    assert problem.startswith(f'line 20: [[code]] offence "1100": \'weight\' must be positive, got {weight}')


def test_role_outside_the_four(tmp_path: Path) -> None:
    problem = only_problem(tmp_path, VALID.replace('["suspect", "victim"]', '["suspect", "victm"]'))
    assert problem.startswith('line 21: [[code]] offence "1100": unknown role \'victm\'')
    assert "did you mean 'victim'?" in problem


def test_empty_roles(tmp_path: Path) -> None:
    problem = only_problem(tmp_path, VALID.replace('["suspect", "victim"]', "[]"))
    assert problem.startswith("line 21: ") and "'roles' is empty" in problem


def test_role_listed_twice(tmp_path: Path) -> None:
    problem = only_problem(tmp_path, VALID.replace('["suspect", "victim"]', '["suspect", "suspect"]'))
    assert "listed twice: suspect" in problem


def test_kind_not_offence_or_incident(tmp_path: Path) -> None:
    problem = only_problem(tmp_path, VALID.replace('kind = "offence"', 'kind = "offense"'))
    assert problem.startswith("line 16: [[code]] offense \"1100\": unknown kind 'offense'")
    assert 'kind = "offence"' in problem and 'kind = "incident"' in problem


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("lookback_weeks = 26", "lookback_weeks = 0", "line 2: top level: 'lookback_weeks' must be positive, got 0"),
        ("threshold = 3", "threshold = -2", "line 3: top level: 'threshold' must be positive, got -2"),
        ("child_max_age = 17", "child_max_age = 170", "line 4: top level: 'child_max_age' must be between 0 and 22"),
        ("schema_version = 1", "schema_version = 2", "line 1: top level: unsupported schema_version 2"),
    ],
)
def test_bad_settings(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert only_problem(tmp_path, VALID.replace(old, new)).startswith(expected)


def test_all_problems_are_reported_at_once_in_line_order(tmp_path: Path) -> None:
    text = (
        VALID.replace("threshold = 3", "threshold = 0")
        .replace('category = "violence"', 'category = "nope"')
        .replace('roles = ["involved"]', 'roles = ["bystander"]')
        .replace("weight = 3", "weight = 0")
    )
    problems = problems_of(tmp_path, text)
    assert len(problems) == 4
    lines = [int(p.split(":")[0].removeprefix("line ")) for p in problems]
    assert lines == sorted(lines) == [3, 19, 28, 29]


def test_error_message_lists_file_and_count(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("weight = 2", "weight = 0").replace("threshold = 3", "threshold = 0"))
    with pytest.raises(CatalogueError) as info:
        load_catalogue(path)
    assert str(info.value).startswith(f"{path}: 2 problem(s) in the catalogue:")


def test_multiline_strings_and_comments_do_not_confuse_line_numbers(tmp_path: Path) -> None:
    text = VALID.replace(
        'label = "Vold, straffeloven § 244"',
        'label = """Vold,\nweight = 7\nstraffeloven § 244"""  # comment',
    ).replace("weight = 2", "weight = 0")
    problem = only_problem(tmp_path, text)
    assert problem.startswith("line 22: ")  # two lines later than without the multi-line label
