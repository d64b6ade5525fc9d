"""Tests for socialsearch.station.extracts: the raw input contract and the hub layout."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import pytest
from conftest import invoke
from hypothesis import given, settings
from hypothesis import strategies as st

from socialsearch.errors import InputError, UsageError
from socialsearch.station.extracts import (
    _RAW_SPECS,
    PER_RULE_LIMIT,
    parse_datetime,
    read_raw,
)

CPH = "Europe/Copenhagen"

INCIDENTS_KBH = """\
district,incident_id,occurred_at,registered_at,municipality,incident_code,offence_code
KBH,J-KBH-0001,2026-11-16T08:30:00,2026-11-16T09:00:00,101,5100,
KBH,J-KBH-0002,2026-11-17T22:00:00+01:00,2026-11-17T23:15:00Z,147,,1100
"""
INCIDENTS_FYN = """\
district,incident_id,occurred_at,registered_at,municipality,incident_code,offence_code
FYN,J-KBH-0001,2026-11-18 10:00,2026-11-18 10:05,461,5400,
"""
PERSONS_KBH = """\
district,incident_id,cpr,role,given_name,surname,birth_date
KBH,J-KBH-0001,0101801234,suspect,,,
KBH,J-KBH-0001,,victim,Mette,Hansen,2015-03-10
KBH,J-KBH-0002,010180-1234,Suspect,,,
"""
PERSONS_FYN = """\
district,incident_id,cpr,role
FYN,J-KBH-0001,99999,involved
"""
POPULATION = """\
cpr,municipality,given_name,surname
0101801234,101,Peter,Nielsen
1003154123,0147,Aksel,Nielsen
"""
RELATIONS = """\
child_cpr,adult_cpr,relation
1003154123,0101801234,father
"""

#: The fixture's incidents come from KBH and FYN only; the other districts are named absent.
ABSENT = ("BOR", "KVE", "MVJ", "MVS", "NJY", "NSJ", "OJY", "SOJ", "SSJ", "SSL")

# Values that must never appear in an error message.
SECRETS = ("0101801234", "010180-1234", "1003154123", "Mette", "Hansen", "Peter", "Nielsen",
           "J-KBH-0001", "J-KBH-0002", "2015-03-10")


def make_raw(
    root: Path,
    *,
    incidents: dict[str, str] | None = None,
    persons: dict[str, str] | None = None,
    population: str | None = POPULATION,
    relations: str | None = RELATIONS,
) -> Path:
    """Write a raw input folder of CSV files; ``None`` leaves a table out."""
    root.mkdir(parents=True, exist_ok=True)
    tables = {
        "incidents": {"KBH.csv": INCIDENTS_KBH, "FYN.csv": INCIDENTS_FYN} if incidents is None else incidents,
        "incident_persons": {"KBH.csv": PERSONS_KBH, "FYN.csv": PERSONS_FYN} if persons is None else persons,
    }
    for folder, files in tables.items():
        (root / folder).mkdir(exist_ok=True)
        for name, text in files.items():
            (root / folder / name).write_text(text, encoding="utf-8")
    if population is not None:
        (root / "population.csv").write_text(population, encoding="utf-8")
    if relations is not None:
        (root / "relations.csv").write_text(relations, encoding="utf-8")
    return root


SHAPE = re.compile(r"an? \d+-character value of .+")


def input_error(root: Path, absent: tuple[str, ...] = ABSENT) -> InputError:
    with pytest.raises(InputError) as info:
        read_raw(root, absent_districts=absent)
    message = str(info.value).lower()
    for secret in SECRETS:
        assert secret.lower() not in message, f"{secret!r} leaked into: {message}"
    return info.value


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


# --- reading valid input ----------------------------------------------------------------


def test_reads_csv_tables_from_several_files(tmp_path: Path) -> None:
    root = make_raw(tmp_path / "in")
    raw = read_raw(root, absent_districts=ABSENT)
    assert raw.rows == {"incidents": 3, "incident_persons": 4, "population": 2, "relations": 1}
    assert raw.incidents.schema == pl.Schema({
        "district": pl.String, "incident_id": pl.String, "occurred_at": pl.Datetime("us", CPH),
        "registered_at": pl.Datetime("us", CPH), "municipality": pl.String,
        "incident_code": pl.String, "offence_code": pl.String,
    })
    assert raw.incident_persons.schema == pl.Schema({
        "district": pl.String, "incident_id": pl.String, "cpr": pl.String, "role": pl.String,
        "given_name": pl.String, "surname": pl.String, "birth_date": pl.Date,
    })
    assert raw.population.columns == ["cpr", "municipality", "given_name", "surname"]
    assert raw.relations.columns == ["child_cpr", "adult_cpr", "relation"]
    # files are read in name order: FYN before KBH
    assert raw.incidents["district"].to_list() == ["FYN", "KBH", "KBH"]
    assert raw.incidents["offence_code"].to_list() == [None, None, "1100"]
    assert raw.incidents["incident_code"].to_list() == ["5400", "5100", None]
    persons = raw.incident_persons
    assert persons["cpr"].to_list() == ["99999", "0101801234", None, "010180-1234"]  # as given
    assert persons["role"].to_list() == ["involved", "suspect", "victim", "suspect"]  # lower-cased
    assert persons["given_name"].to_list() == [None, None, "Mette", None]
    assert persons["birth_date"].to_list() == [None, None, date(2015, 3, 10), None]
    assert raw.population["cpr"].to_list() == ["0101801234", "1003154123"]  # leading zero kept
    assert raw.population["municipality"].to_list() == ["101", "147"]  # "0147" -> "147"
    assert sorted(raw.digests) == [
        "incident_persons/FYN.csv", "incident_persons/KBH.csv",
        "incidents/FYN.csv", "incidents/KBH.csv", "population.csv", "relations.csv",
    ]
    assert raw.digests["population.csv"] == hashlib.sha256(POPULATION.encode()).hexdigest()
    assert set(raw.files) == {root / rel for rel in raw.digests}


def test_incident_times_naive_and_with_offset_in_one_file(tmp_path: Path) -> None:
    raw = read_raw(make_raw(tmp_path / "in"), absent_districts=ABSENT)
    kbh = raw.incidents.filter(pl.col("district") == "KBH")
    got = kbh.select(pl.col("occurred_at", "registered_at").dt.convert_time_zone("UTC"))
    assert got.rows() == [
        (utc(2026, 11, 16, 7, 30), utc(2026, 11, 16, 8, 0)),  # local CET
        (utc(2026, 11, 17, 21, 0), utc(2026, 11, 17, 23, 15)),  # +01:00 and Z
    ]


def test_registered_before_occurred_is_accepted(tmp_path: Path) -> None:
    text = INCIDENTS_FYN.replace("2026-11-18 10:05", "2026-11-18 09:00")
    root = make_raw(tmp_path / "in", incidents={"KBH.csv": INCIDENTS_KBH, "FYN.csv": text})
    raw = read_raw(root, absent_districts=ABSENT)
    assert raw.rows["incidents"] == 3


def test_missing_or_invalid_cpr_of_incident_person_is_not_an_error(tmp_path: Path) -> None:
    raw = read_raw(make_raw(tmp_path / "in"), absent_districts=ABSENT)
    assert raw.incident_persons["cpr"].null_count() == 1
    assert "99999" in raw.incident_persons["cpr"].to_list()


def test_unknown_extra_columns_are_ignored(tmp_path: Path) -> None:
    text = POPULATION.replace("surname\n", "surname,shoe_size\n").replace("Nielsen\n", "Nielsen,44\n")
    raw = read_raw(make_raw(tmp_path / "in", population=text), absent_districts=ABSENT)
    assert raw.population.columns == ["cpr", "municipality", "given_name", "surname"]


def test_optional_columns_may_be_absent(tmp_path: Path) -> None:
    incidents = INCIDENTS_FYN.replace(",offence_code", "").replace("5400,\n", "5400\n")
    population = "cpr,municipality\n0101801234,101\n1003154123,147\n"
    raw = read_raw(make_raw(tmp_path / "in", incidents={"FYN.csv": incidents},
                            persons={"FYN.csv": PERSONS_FYN}, population=population),
                   absent_districts=(*ABSENT, "KBH"))
    assert raw.incidents["offence_code"].to_list() == [None]
    assert raw.population["given_name"].to_list() == [None, None]
    assert raw.incident_persons["birth_date"].dtype == pl.Date


def test_header_only_files_are_valid_and_empty(tmp_path: Path) -> None:
    header = INCIDENTS_KBH.splitlines()[0] + "\n"
    raw = read_raw(make_raw(tmp_path / "in", incidents={"KBH.csv": INCIDENTS_KBH, "BOR.csv": header},
                            persons={"KBH.csv": PERSONS_KBH}), absent_districts=(*ABSENT, "FYN"))
    assert raw.rows["incidents"] == 2


def test_reads_parquet_with_integer_codes_and_timestamps(tmp_path: Path) -> None:
    root = make_raw(tmp_path / "in", incidents={"KBH.csv": INCIDENTS_KBH}, persons={},
                    population=None)
    pl.DataFrame({
        "district": ["FYN", "FYN"],
        "incident_id": [7, 8],
        "occurred_at": [datetime(2026, 7, 1, 6, 30), datetime(2026, 11, 16, 8, 30)],
        "registered_at": pl.Series([utc(2026, 7, 1, 6, 45), utc(2026, 11, 16, 8, 45)],
                                   dtype=pl.Datetime("ns", "UTC")),
        "municipality": [461, 479],
        "incident_code": [5100, None],
        "offence_code": [None, "1100"],
    }).write_parquet(root / "incidents" / "FYN.parquet")
    pl.DataFrame({
        "district": ["KBH", "FYN"], "incident_id": ["J-KBH-0001", "7"],
        "cpr": [101801234, None], "role": ["suspect", "victim"],
        "birth_date": [None, date(2015, 3, 10)],
    }).write_parquet(root / "incident_persons" / "all.parquet")
    pl.DataFrame({"cpr": ["0101801234", "1003154123"], "municipality": [101, 147]}).write_parquet(
        root / "population.parquet")
    raw = read_raw(root, absent_districts=ABSENT)
    fyn = raw.incidents.filter(pl.col("district") == "FYN")
    assert fyn["incident_id"].to_list() == ["7", "8"]
    assert fyn["municipality"].to_list() == ["461", "479"]
    assert fyn["incident_code"].to_list() == ["5100", None]
    assert fyn.schema["occurred_at"] == pl.Datetime("us", CPH)
    assert fyn["occurred_at"].dt.convert_time_zone("UTC").to_list() == [
        utc(2026, 7, 1, 4, 30), utc(2026, 11, 16, 7, 30)]  # naive = local (CEST, CET)
    assert fyn["registered_at"].dt.convert_time_zone("UTC").to_list() == [
        utc(2026, 7, 1, 6, 45), utc(2026, 11, 16, 8, 45)]
    assert raw.incident_persons["cpr"].to_list() == ["0101801234", None]  # zero restored
    assert raw.population["municipality"].to_list() == ["101", "147"]
    assert "population.parquet" in raw.digests


@pytest.mark.parametrize(
    ("text", "instant"),
    [
        ("2026-11-16T08:30:00", utc(2026, 11, 16, 7, 30)),  # CET
        ("2026-07-01T08:30:00", utc(2026, 7, 1, 6, 30)),  # CEST
        ("2026-07-01 08:30", utc(2026, 7, 1, 6, 30)),
        ("2026-07-01T08:30:00+02:00", utc(2026, 7, 1, 6, 30)),
        ("2026-07-01T06:30:00Z", utc(2026, 7, 1, 6, 30)),
        ("2026-07-01T01:30:00-0500", utc(2026, 7, 1, 6, 30)),
        ("2026-11-16T08:30:00.250+01", utc(2026, 11, 16, 7, 30) + timedelta(milliseconds=250)),
        ("2026-03-29T01:59:59", utc(2026, 3, 29, 0, 59, 59)),  # last second of CET
        ("2026-03-29T03:00:00", utc(2026, 3, 29, 1, 0)),  # first minute of CEST
        ("2026-10-25T02:30:00", utc(2026, 10, 25, 0, 30)),  # repeated hour: the first (CEST)
        ("2026-10-25T02:30:00+01:00", utc(2026, 10, 25, 1, 30)),  # the second, by offset
        ("2026-10-25T03:00:00", utc(2026, 10, 25, 2, 0)),
    ],
)
def test_parse_datetime_rules(text: str, instant: datetime) -> None:
    value, gap = parse_datetime(pl.Series("t", [text]))
    assert value.dtype == pl.Datetime("us", CPH) and value.name == "t"
    assert value.dt.convert_time_zone("UTC").to_list() == [instant]
    assert gap.to_list() == [False]


@pytest.mark.parametrize("text", ["2026-11-16", "16-11-2026 08:30", "2026-02-30T08:00:00", "soon",
                                  "2026-11-16T25:00:00", "2026-11-16T08:30:00+1"])
def test_parse_datetime_rejects(text: str) -> None:
    value, gap = parse_datetime(pl.Series([text]))
    assert (value[0], gap[0]) == (None, False)


def test_parse_datetime_flags_the_spring_forward_gap() -> None:
    value, gap = parse_datetime(pl.Series(["2026-03-29T02:30:00", "2026-03-29T02:30:00+01:00", None, " "]))
    assert gap.to_list() == [True, False, False, False]
    assert value.dt.convert_time_zone("UTC").to_list() == [None, utc(2026, 3, 29, 1, 30), None, None]


@settings(max_examples=200, deadline=None)
@given(
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2040, 1, 1)),
    st.integers(min_value=-12 * 4, max_value=14 * 4),
)
def test_parse_datetime_offset_round_trip(moment: datetime, quarters: int) -> None:
    moment = moment.replace(microsecond=0)
    text = moment.replace(tzinfo=timezone(timedelta(minutes=15 * quarters))).isoformat()
    value, _ = parse_datetime(pl.Series([text]))
    got = value.dt.convert_time_zone("UTC")[0]
    assert got == moment.replace(tzinfo=timezone(timedelta(minutes=15 * quarters))).astimezone(UTC)


# --- errors: each names file, row and column ---------------------------------------------


def replace_in(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


@pytest.mark.parametrize(
    ("file", "old", "new", "where", "expected"),
    [
        ("incidents/KBH.csv", "KBH,J-KBH-0002", "XXX,J-KBH-0002",
         "line 3, column 'district'", "a police district code (BOR, FYN, KBH"),
        ("incidents/KBH.csv", ",147,", ",999,",
         "line 3, column 'municipality'", "one of the 98 kommunekoder"),
        ("incidents/KBH.csv", ",147,", ",kbh,",
         "line 3, column 'municipality'", "one of the 98 kommunekoder"),
        ("incidents/KBH.csv", "2026-11-16T08:30:00", "16/11/2026 08:30",
         "line 2, column 'occurred_at'", "an ISO 8601 date-time"),
        ("incidents/KBH.csv", "2026-11-16T09:00:00", "2026-03-29T02:30:00",
         "line 2, column 'registered_at'", "a local time that exists in Europe/Copenhagen"),
        ("incidents/KBH.csv", "2026-11-16T09:00:00", "",
         "line 2, column 'registered_at'", "a value (this column may not be empty)"),
        ("incidents/KBH.csv", "5100,", ",",
         "line 2, column 'incident_code'", "an incident_code or an offence_code"),
        ("incidents/KBH.csv", "J-KBH-0002", "J-KBH-0001",
         "line 3, column 'incident_id'", "a journal number unique within its district"),
        ("incidents/KBH.csv", "KBH,J-KBH-0001", ",J-KBH-0001",
         "line 2, column 'district'", "a value"),
        ("incident_persons/KBH.csv", ",victim,", ",bystander,",
         "line 3, column 'role'", "a role: suspect | victim | witness | involved"),
        ("incident_persons/KBH.csv", "KBH,J-KBH-0002", "KBH,J-KBH-0003",
         "line 4, column 'incident_id'", "an incident that exists in incidents/"),
        ("incident_persons/FYN.csv", "FYN,J-KBH-0001", "SSJ,J-KBH-0001",
         "line 2, column 'incident_id'", "an incident that exists in incidents/"),
        ("incident_persons/KBH.csv", "2015-03-10", "10.03.2015",
         "line 3, column 'birth_date'", "a date YYYY-MM-DD"),
        ("incident_persons/KBH.csv", ",suspect,,,\nKBH,J-KBH-0001,,victim", ",,,,\nKBH,J-KBH-0001,,victim",
         "line 2, column 'role'", "a value"),
        ("population.csv", "0101801234,101", "0101801234X,101",
         "line 2, column 'cpr'", "a valid CPR number"),
        ("population.csv", "0101801234,101", ",101",
         "line 2, column 'cpr'", "a value"),
        ("population.csv", "1003154123,0147", "0101801234,147",
         "line 3, column 'cpr'", "each person once"),
        ("population.csv", "0101801234,101", "0101801234,1000",
         "line 2, column 'municipality'", "one of the 98 kommunekoder"),
        ("relations.csv", ",father", ",uncle",
         "line 2, column 'relation'", "a relation: mother | father | custodian | household"),
        ("relations.csv", ",0101801234,", ",3213801234,",
         "line 2, column 'adult_cpr'", "a valid CPR number"),
        ("relations.csv", "1003154123,", "1003154123-,",
         "line 2, column 'child_cpr'", "a valid CPR number"),
        ("relations.csv", "1003154123,0101801234", "0101801234,0101801234",
         "line 2, column 'adult_cpr'", "an adult other than the child"),
    ],
)
def test_bad_values_name_file_row_and_column(
    tmp_path: Path, file: str, old: str, new: str, where: str, expected: str
) -> None:
    root = make_raw(tmp_path / "in")
    path = root / file
    path.write_text(replace_in(path.read_text(encoding="utf-8"), old, new), encoding="utf-8")
    error = input_error(root)
    in_file = [p for p in error.problems if p.file == file]
    assert len(in_file) == 1, str(error)  # others may follow from it (a person's incident gone)
    assert f"{file}, {where}: expected {expected}" in str(error)
    assert in_file[0].line == int(where.split(",")[0].removeprefix("line "))  # as an editor counts


def test_a_bad_value_is_described_by_its_shape_never_shown(tmp_path: Path) -> None:
    root = make_raw(tmp_path / "in")
    path = root / "incidents" / "KBH.csv"
    path.write_text(path.read_text().replace(",147,", ",999,"))
    (root / "population.csv").write_text(POPULATION.replace("0101801234,101", "0101801299X,101"))
    error = input_error(root)
    shown = {p.column: p.value for p in error.problems}
    assert shown == {"municipality": "a 3-character value of digits",
                     "cpr": "an 11-character value of digits and letters"}
    assert "999" not in str(error) and "0101801299X" not in str(error)
    assert "incidents/KBH.csv, line 3, column 'municipality': expected one of the 98 kommunekoder (3 " \
           "digits, e.g. 101 for København) (found a 3-character value of digits)" in str(error)


def test_missing_required_column(tmp_path: Path) -> None:
    text = INCIDENTS_FYN.replace(",registered_at", "").replace(",2026-11-18 10:05", "")
    error = input_error(make_raw(tmp_path / "in", incidents={"KBH.csv": INCIDENTS_KBH, "FYN.csv": text}))
    assert "incidents/FYN.csv, column 'registered_at': expected a column 'registered_at' (the header has: " \
           "district, incident_id, occurred_at, municipality, incident_code, offence_code)" in str(error)
    assert error.problems[0].row is None


def test_orphan_check_is_skipped_when_an_incidents_file_is_unreadable(tmp_path: Path) -> None:
    broken = INCIDENTS_FYN.replace("municipality", "kommune")
    error = input_error(make_raw(tmp_path / "in", incidents={"KBH.csv": INCIDENTS_KBH, "FYN.csv": broken}))
    assert [p.column for p in error.problems] == ["municipality"]


def test_wrong_parquet_column_type(tmp_path: Path) -> None:
    root = make_raw(tmp_path / "in", incidents={"KBH.csv": INCIDENTS_KBH}, persons={"KBH.csv": PERSONS_KBH})
    pl.DataFrame({
        "district": ["FYN"], "incident_id": ["x"], "occurred_at": [1.5],
        "registered_at": [utc(2026, 1, 1)], "municipality": [461.0], "incident_code": ["5100"],
    }).write_parquet(root / "incidents" / "FYN.parquet")
    error = input_error(root)
    message = str(error)
    assert "incidents/FYN.parquet, column 'occurred_at': expected date-times" in message
    assert "incidents/FYN.parquet, column 'municipality': expected text or integer values " \
           "(the column's type is Float64)" in message


@pytest.mark.parametrize(
    ("setup", "fragment"),
    [
        (lambda r: (r / "population.csv").unlink(),
         "population.csv: expected a file population.csv or population.parquet"),
        (lambda r: (r / "relations.csv").unlink(),
         "relations.csv: expected a file relations.csv or relations.parquet"),
        (lambda r: [p.unlink() for p in (r / "incidents").iterdir()],
         "incidents: expected at least one *.csv or *.parquet file"),
        (lambda r: (r / "population.parquet").write_bytes(b""),
         "population: expected one file, population.csv or population.parquet, not both"),
        (lambda r: (r / "relations.csv").write_bytes(b""), "relations.csv: expected a header row (the file is empty)"),
        (lambda r: (r / "relations.csv").write_text(RELATIONS + "1,2,father,extra\n"),
         "relations.csv, line 3: expected 3 fields on every row, as in the header (this row has 4"),
        (lambda r: (r / "relations.csv").write_bytes(RELATIONS.encode() + b"\xff\xfe,1,father\n"),
         "relations.csv, line 3: expected a UTF-8 CSV file (it is not UTF-8"),
        (lambda r: (r / "incident_persons" / "x.parquet").write_bytes(b"not parquet"),
         "incident_persons/x.parquet: expected a readable Parquet file"),
    ],
)
def test_missing_or_unreadable_files(tmp_path: Path, setup, fragment: str) -> None:  # type: ignore[no-untyped-def]
    root = make_raw(tmp_path / "in")
    setup(root)
    assert fragment in str(input_error(root))


def test_missing_folder_names_its_path(tmp_path: Path) -> None:
    root = make_raw(tmp_path / "in")
    for p in (root / "incident_persons").iterdir():
        p.unlink()
    (root / "incident_persons").rmdir()
    error = input_error(root)
    assert f"{root / 'incident_persons'}: expected a folder incident_persons/" in str(error)


def test_input_dir_must_exist(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="expected a folder holding incidents/"):
        read_raw(tmp_path / "nowhere", absent_districts=ABSENT)


def test_only_operating_system_litter_is_skipped(tmp_path: Path) -> None:
    root = make_raw(tmp_path / "in")
    for name in (".DS_Store", "Thumbs.db", "desktop.ini"):
        (root / "incidents" / name).write_bytes(b"\x00\x01 not a table")
    assert read_raw(root, absent_districts=ABSENT).rows["incidents"] == 3


def test_all_problems_are_reported_together_per_rule_capped(tmp_path: Path) -> None:
    rows = "".join(f"KBH,J-{i},2026-11-16T08:30:00,2026-11-16T09:00:00,101,5100,\n" for i in range(30))
    bad = INCIDENTS_KBH.splitlines()[0] + "\n" + rows.replace(",101,", ",999,")
    root = make_raw(tmp_path / "in", incidents={"KBH.csv": bad}, persons={})
    (root / "relations.csv").write_text(RELATIONS.replace("father", "uncle"))
    error = input_error(root)
    municipality = [p for p in error.problems if p.column == "municipality"]
    assert len(municipality) == PER_RULE_LIMIT + 1
    assert [p.line for p in municipality[:PER_RULE_LIMIT]] == list(range(2, PER_RULE_LIMIT + 2))
    assert "(10 more row(s) like this)" in municipality[-1].expected
    assert any(p.file == "relations.csv" and p.column == "relation" for p in error.problems)


def test_error_messages_never_contain_identifiers(tmp_path: Path) -> None:
    """Break every rule on rows full of CPR numbers, names and journal numbers."""
    incidents = INCIDENTS_KBH + (
        "KBH,J-KBH-0001,when,2026-11-16T09:00:00,999,5100,\n"  # duplicate id, bad date, bad kommune
        "KBH,J-KBH-0002,2026-11-16T08:30:00,2026-11-16T09:00:00,101,,\n"  # duplicate id, no code
    )
    persons = PERSONS_KBH + (
        "KBH,Mette,0101801234,Hansen,Mette,Hansen,2015-13-45\n"  # orphan, bad role, bad date
        "SSJ,J-KBH-0002,1003154123,victim,Peter,Nielsen,Peter\n"  # orphan, bad birth date
    )
    population = POPULATION + "Peter,101,Peter,Nielsen\n0101801234,101,,\n010180-1234,999,,\n"
    relations = RELATIONS + "0101801234,0101801234,Nielsen\nHansen,Mette,father\n"
    root = make_raw(tmp_path / "in", incidents={"KBH.csv": incidents}, persons={"KBH.csv": persons},
                    population=population, relations=relations)
    error = input_error(root)  # asserts the absence of every value in SECRETS
    message = str(error)
    assert len(error.problems) >= 14
    for p in error.problems:
        assert p.value is None or SHAPE.fullmatch(p.value), p.value
    for word in ("Mette", "Hansen", "Peter", "Nielsen", "when"):
        if word != "when":
            assert word not in message


# --- the hub layout -----------------------------------------------------------------------


def test_library_failures_do_not_carry_data_into_the_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug that makes Polars fail must not print the rows it failed on."""
    import socialsearch.station.extracts as extracts

    monkeypatch.setattr(extracts, "_normalise_cpr", lambda expr: expr.cast(pl.Int64, strict=True).cast(pl.String))
    # A dash other than '-' (ASCII '-' is decided by the native kernel) takes the general rule.
    root = make_raw(tmp_path / "in", population=POPULATION.replace("0101801234,101", "010180\u20101234,101"))
    with pytest.raises(RuntimeError) as info:
        read_raw(root, absent_districts=ABSENT)
    assert "withheld" in str(info.value)
    assert "010180\u20101234" not in str(info.value) and "1234" not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_parquet_naive_timestamp_in_the_spring_gap_is_an_error(tmp_path: Path) -> None:
    root = make_raw(tmp_path / "in", incidents={"KBH.csv": INCIDENTS_KBH}, persons={"KBH.csv": PERSONS_KBH})
    pl.DataFrame({
        "district": ["FYN"], "incident_id": ["x-1"],
        "occurred_at": [datetime(2026, 3, 29, 2, 30)], "registered_at": [datetime(2026, 3, 29, 4, 0)],
        "municipality": ["461"], "incident_code": ["5100"],
    }).write_parquet(root / "incidents" / "FYN.parquet")
    error = input_error(root)
    assert len(error.problems) == 1
    assert str(error.problems[0]).startswith(
        "incidents/FYN.parquet, row 1, column 'occurred_at': expected a local time that exists")


def test_a_shifted_column_does_not_echo_identifiers(tmp_path: Path) -> None:
    """Values are shown only when they look like the code or date-time that was expected."""
    incidents = INCIDENTS_KBH + (
        "Hansen,J-KBH-0003,2026-11-16T08:30:00,2026-11-16T09:00:00,0101801234,5100,\n"
        "KBH,J-KBH-0004,010180-1234,2026-11-16T09:00:00,101,5100,\n"
        "KBH,J-KBH-0005,2026-11-16T08:30:00,0101801234,101,5100,\n"
    )
    error = input_error(make_raw(tmp_path / "in", incidents={"KBH.csv": incidents},
                                 persons={"KBH.csv": PERSONS_KBH}), absent=(*ABSENT, "FYN"))
    shown = {(p.line, p.column): p.value for p in error.problems}
    assert shown == {(4, "district"): "a 6-character value of letters",
                     (4, "municipality"): "a 10-character value of digits",
                     (5, "occurred_at"): "an 11-character value of digits and '-'",
                     (6, "registered_at"): "a 10-character value of digits"}


def test_a_missing_header_row_is_not_echoed(tmp_path: Path) -> None:
    headless = "\n".join(POPULATION.splitlines()[1:]) + "\n"
    error = input_error(make_raw(tmp_path / "in", population=headless))
    assert "population.csv, column 'cpr': expected a column 'cpr' (the first row does not look like " \
           "a header row of column names; add one)" in str(error)


# --- no silent input loss: every entry of a folder is read or refused ---------------------


def refused(root: Path, absent: tuple[str, ...] = ABSENT) -> str:
    """The message of the InputError ``read_raw`` raises (which must name no identifier)."""
    return str(input_error(root, absent))


def loop(folder: Path, name: str) -> None:
    """Two links pointing at each other: ``name`` -> ``name.other`` -> ``name``."""
    (folder / name).symlink_to(f"{name}.other")
    (folder / f"{name}.other").symlink_to(name)


@pytest.mark.parametrize(
    ("setup", "fragments"),
    [
        (lambda f: (f / "SSJ.csv").symlink_to("SSJ.csv"),
         ["incidents/SSJ.csv: expected a file, not a symbolic link that loops"]),
        (lambda f: loop(f, "SSJ.csv"),
         ["incidents/SSJ.csv: expected a file, not a symbolic link that loops",
          "incidents/SSJ.csv.other: expected a file, not a symbolic link that loops"]),
        (lambda f: (f / "SSJ.csv").symlink_to("gone/SSJ.csv"),
         ["incidents/SSJ.csv: expected a file, not a broken symbolic link (its target does not exist)"]),
        (lambda f: (f / "SSJ.csv").mkdir(),
         ["incidents/SSJ.csv: expected a file, not a folder (sub-folders are not read"]),
        (lambda f: (f / "2026" / "week47").mkdir(parents=True),
         ["incidents/2026: expected a file, not a folder"]),
        (lambda f: __import__("os").mkfifo(f / "SSJ.csv"),
         ["incidents/SSJ.csv: expected a regular file (this is a named pipe, FIFO)"]),
        (lambda f: (f / "README.txt").write_text("notes"),
         ["incidents/README.txt: expected only *.csv and *.parquet files in incidents/ (move other "
          "files out; only .DS_Store, Thumbs.db, desktop.ini are skipped)"]),
        (lambda f: (f / "SSJ.xlsx").write_bytes(b"PK\x03\x04"),
         ["incidents/SSJ.xlsx: expected only *.csv and *.parquet files"]),
        (lambda f: (f / ".KBH.csv").write_text(INCIDENTS_KBH),
         ["incidents/.KBH.csv: expected a table file, not a hidden or temporary file (the name starts "
          "with '.')"]),
        (lambda f: (f / "~$KBH.csv").write_text("lock"),
         ["incidents/~$KBH.csv: expected a table file, not a hidden or temporary file"]),
    ],
    ids=["self-loop", "two-link-loop", "dangling-link", "folder-named-csv", "sub-folder", "fifo",
         "other-suffix", "workbook", "hidden-csv", "excel-lock-file"],
)
def test_every_folder_entry_is_read_or_refused(tmp_path: Path, setup, fragments: list[str]) -> None:  # type: ignore[no-untyped-def]
    root = make_raw(tmp_path / "in")
    setup(root / "incidents")
    message = refused(root)
    for fragment in fragments:
        assert fragment in message


def test_refused_entries_are_reported_with_every_other_problem(tmp_path: Path) -> None:
    root = make_raw(tmp_path / "in")
    (root / "incident_persons" / "SSJ.csv").symlink_to("nowhere.csv")
    (root / "relations.csv").write_text(RELATIONS.replace("father", "uncle"))
    error = input_error(root)
    assert [p.file for p in error.problems] == ["incident_persons/SSJ.csv", "relations.csv"]


def test_a_table_file_one_folder_too_high_is_refused(tmp_path: Path) -> None:
    root = make_raw(tmp_path / "in")
    (root / "incident_persons" / "FYN.csv").rename(root / "FYN.csv")
    (root / "truth").mkdir()  # other entries at the top (notes, synth's truth/) are not input
    (root / "notes.txt").write_text("week 47")
    message = refused(root)
    assert "FYN.csv: expected no table file at the top of the input folder other than " \
           "population.csv|parquet and relations.csv|parquet" in message
    (root / "FYN.csv").unlink()
    (root / "relations.csv").rename(root / "Relations.csv")
    message = refused(root)
    assert "Relations.csv: expected the name relations.csv (names are case-sensitive)" in message


def test_a_link_to_a_file_is_read(tmp_path: Path) -> None:
    root = make_raw(tmp_path / "in")
    elsewhere = tmp_path / "delivered" / "KBH.csv"
    elsewhere.parent.mkdir()
    (root / "incidents" / "KBH.csv").rename(elsewhere)
    (root / "incidents" / "KBH.csv").symlink_to(elsewhere)
    assert read_raw(root, absent_districts=ABSENT).rows["incidents"] == 3


@pytest.mark.parametrize(
    ("setup", "fragment"),
    [
        (lambda r: ((r / "population.csv").unlink(), (r / "population.csv").mkdir()),
         "population.csv: expected a file, not a folder"),
        (lambda r: ((r / "relations.csv").unlink(), (r / "relations.csv").symlink_to("relations.csv")),
         "relations.csv: expected a file, not a symbolic link that loops"),
        (lambda r: ((r / "relations.csv").unlink(), (r / "relations.parquet").symlink_to("old.parquet")),
         "relations.parquet: expected a file, not a broken symbolic link"),
        (lambda r: ((r / "incidents").rename(r / "incidents.old"), (r / "incidents").symlink_to("gone")),
         "incidents: expected a folder incidents/ holding *.csv or *.parquet files (this is a symbolic "
         "link to no folder)"),
    ],
    ids=["table-is-folder", "table-link-loops", "table-link-dangles", "folder-link-dangles"],
)
def test_table_files_and_folders_that_are_not_what_they_seem(tmp_path: Path, setup, fragment: str) -> None:  # type: ignore[no-untyped-def]
    root = make_raw(tmp_path / "in")
    setup(root)
    assert fragment in refused(root)


def deny_opening(monkeypatch: pytest.MonkeyPatch, target: Path) -> None:
    """Make opening ``target`` fail with EACCES (root reads a mode-000 file anyway)."""
    real_open = Path.open

    def deny(self: Path, *args, **kwargs):  # type: ignore[no-untyped-def]
        if self == target:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", deny)


def test_an_unreadable_file_is_an_input_error_not_a_crash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Root reads a mode-000 file anyway, so the test makes opening it fail as EACCES would."""
    root = make_raw(tmp_path / "in")
    deny_opening(monkeypatch, root / "incidents" / "KBH.csv")
    message = refused(root, (*ABSENT, "KBH"))
    assert "incidents/KBH.csv: expected a readable file (Permission denied)" in message


# --- CSV: encodings, separators, fields per row, header ----------------------------------


def test_a_utf8_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    root = make_raw(tmp_path / "in")
    (root / "incidents" / "KBH.csv").write_bytes(INCIDENTS_KBH.encode("utf-8-sig"))
    (root / "population.csv").write_bytes(POPULATION.replace("\n", "\r\n").encode("utf-8-sig"))
    raw = read_raw(root, absent_districts=ABSENT)
    assert raw.incidents.columns[0] == "district" and raw.rows["incidents"] == 3
    assert raw.population["cpr"].to_list() == ["0101801234", "1003154123"]


SAVE_AS = 'Filer > Gem som > filtype "CSV UTF-8 (kommasepareret) (*.csv)"'


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (INCIDENTS_KBH.replace(",", ";").encode(),
         "incidents/KBH.csv: expected comma-separated values (the file is separated by ';', expected ',')"),
        (INCIDENTS_KBH.replace(",", "\t").encode(),
         "incidents/KBH.csv: expected comma-separated values (the file is separated by tabs, expected ',')"),
        (INCIDENTS_KBH.encode("utf-16"),
         "incidents/KBH.csv: expected a UTF-8 CSV file (this one is UTF-16"),
        (INCIDENTS_KBH.encode("utf-16-le"),
         "incidents/KBH.csv: expected a UTF-8 CSV file (this one holds zero bytes: UTF-16 without a "
         "byte-order mark"),
        (INCIDENTS_KBH.replace("J-KBH-0002", "J-KBH-Ø002").encode("latin-1"),
         "incidents/KBH.csv, line 3: expected a UTF-8 CSV file (it is not UTF-8: it looks like "
         "Windows-1252"),
        (INCIDENTS_KBH.replace(",", ";").replace("J-KBH-0002", "J-KBH-Ø002").encode("cp1252"),
         "incidents/KBH.csv: expected comma-separated values (the file is separated by ';', expected ','; "
         "also, it is not UTF-8: it looks like Windows-1252"),
        (b"PK\x03\x04" + bytes(40), "incidents/KBH.csv: expected a CSV file (this is an Excel workbook"),
    ],
    ids=["semicolon", "tab", "utf-16-bom", "utf-16-no-bom", "latin-1", "danish-excel", "workbook"],
)
def test_other_encodings_and_separators_say_which_and_how_to_save(tmp_path: Path, content: bytes,
                                                                   fragment: str) -> None:
    root = make_raw(tmp_path / "in")
    (root / "incidents" / "KBH.csv").write_bytes(content)
    message = refused(root)
    assert fragment in message
    assert SAVE_AS in message
    assert "Ø002" not in message and "J-KBH" not in message


def test_a_danish_excel_file_names_the_encoding_of_its_letters(tmp_path: Path) -> None:
    root = make_raw(tmp_path / "in")
    text = PERSONS_KBH.replace("Mette,Hansen", "Søren,Ærø")
    (root / "incident_persons" / "KBH.csv").write_bytes(text.encode("cp1252"))
    message = refused(root)
    assert "incident_persons/KBH.csv, line 3: expected a UTF-8 CSV file" in message
    assert "its æ, ø and å are single bytes" in message
    assert "Søren" not in message and "Ærø" not in message


def test_rows_with_too_many_or_too_few_fields_name_the_row_and_the_count(tmp_path: Path) -> None:
    root = make_raw(tmp_path / "in")
    text = PERSONS_KBH.replace("0101801234,suspect,,,", "0101801234,suspect,,").replace(
        "Mette,Hansen,2015-03-10", "Mette,Hansen,,2015-03-10")
    (root / "incident_persons" / "KBH.csv").write_text(text)
    error = input_error(root)
    assert [(p.line, p.column) for p in error.problems] == [(2, None), (3, None)]
    message = str(error)
    assert "incident_persons/KBH.csv, line 2: expected 7 fields on every row, as in the header (this row has 6" \
        in message
    assert "incident_persons/KBH.csv, line 3: expected 7 fields on every row, as in the header (this row has 8" \
        in message


def test_field_count_check_is_capped_per_file(tmp_path: Path) -> None:
    rows = "".join(f"KBH,J-{i},2026-11-16T08:30:00,2026-11-16T09:00:00,101,5100,,extra\n" for i in range(25))
    root = make_raw(tmp_path / "in", incidents={"KBH.csv": INCIDENTS_KBH + rows, "FYN.csv": INCIDENTS_FYN})
    error = input_error(root)
    assert len(error.problems) == PER_RULE_LIMIT + 1
    assert "(5 more row(s) like this)" in error.problems[-1].expected


def test_quoted_values_may_hold_commas_quotes_and_line_breaks(tmp_path: Path) -> None:
    root = make_raw(tmp_path / "in")
    text = PERSONS_KBH.replace("Mette,Hansen", '"Mette, ""Mis""","Hansen\nJensen"').replace(
        "010180-1234,Suspect", "010180-1234,Suspect")
    (root / "incident_persons" / "KBH.csv").write_text(text + "KBH,J-KBH-0002,,bystander,,,\n")
    error = input_error(root)
    # the bad role is on the fourth record, which starts on line 6 of the file: lines are the file's
    assert [(p.line, p.column) for p in error.problems] == [(6, "role")]
    (root / "incident_persons" / "KBH.csv").write_text(text)
    raw = read_raw(root, absent_districts=ABSENT)
    assert raw.incident_persons["given_name"].to_list()[2] == 'Mette, "Mis"'
    assert raw.incident_persons["surname"].to_list()[2] == "Hansen\nJensen"


def test_an_unclosed_quote_is_refused(tmp_path: Path) -> None:
    root = make_raw(tmp_path / "in")
    (root / "incident_persons" / "KBH.csv").write_text(PERSONS_KBH.replace("Mette", '"Mette'))
    assert "incident_persons/KBH.csv: expected a CSV file whose quotes are balanced" in refused(root)


def test_blank_lines_are_skipped_and_still_counted_as_lines(tmp_path: Path) -> None:
    root = make_raw(tmp_path / "in")
    text = INCIDENTS_KBH.replace("\nKBH,J-KBH-0002", "\n\n   \nKBH,J-KBH-0002") + "\n\r\n"
    (root / "incidents" / "KBH.csv").write_text(text)
    assert read_raw(root, absent_districts=ABSENT).rows["incidents"] == 3
    (root / "incidents" / "KBH.csv").write_text(text.replace(",147,", ",999,"))
    error = input_error(root)
    assert [(p.file, p.line, p.column) for p in error.problems] == [("incidents/KBH.csv", 5, "municipality")]


def test_a_column_name_twice_is_refused(tmp_path: Path) -> None:
    root = make_raw(tmp_path / "in")
    header = "district,incident_id,cpr,role,given_name,surname,role\n"
    (root / "incident_persons" / "KBH.csv").write_text(header + "".join(PERSONS_KBH.splitlines(True)[1:]))
    message = refused(root)
    assert "incident_persons/KBH.csv, column 'role': expected each column name once in the header (it " \
           "appears in columns 4 and 7; only one of them would be read)" in message


def test_a_repeated_name_that_may_be_data_is_not_shown(tmp_path: Path) -> None:
    """Without a header the first data row is taken as one; its values must not be echoed."""
    root = make_raw(tmp_path / "in")
    (root / "relations.csv").write_text("0101801234,0101801234,father\n1003154123,0101801234,father\n")
    message = refused(root)
    assert "relations.csv: expected each column name once in the header (a name (not shown) appears in " \
           "columns 1 and 2" in message


def test_a_header_differing_in_case_is_pointed_out_without_echoing_it(tmp_path: Path) -> None:
    root = make_raw(tmp_path / "in")
    (root / "incidents" / "KBH.csv").write_text(INCIDENTS_KBH.replace("registered_at", "Registered At"))
    message = refused(root)
    assert "incidents/KBH.csv, column 'registered_at': expected a column 'registered_at' (the header has: " \
           "district, incident_id, occurred_at, municipality, incident_code, offence_code and 1 other " \
           "column(s); one differs from 'registered_at' only in case, spaces or dashes)" in message
    assert "Registered At" not in message


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"PAR1" + bytes(20), "incidents/KBH.csv: expected a CSV file (this is a Parquet file: rename it"),
        (INCIDENTS_KBH.replace("\n", "\r").encode(),
         "incidents/KBH.csv: expected a CSV file whose lines end in a line feed"),
        (b"\n\n  \n", "incidents/KBH.csv: expected a header row (the file is empty)"),
    ],
    ids=["parquet-named-csv", "classic-mac", "only-blank-lines"],
)
def test_files_that_are_not_csv_text(tmp_path: Path, content: bytes, fragment: str) -> None:
    root = make_raw(tmp_path / "in")
    (root / "incidents" / "KBH.csv").write_bytes(content)
    assert fragment in refused(root)


# --- police districts --------------------------------------------------------------------


def test_rows_per_district_are_counted_for_the_summary(tmp_path: Path) -> None:
    raw = read_raw(make_raw(tmp_path / "in"), absent_districts=ABSENT)
    assert raw.rows_per_district["incidents"] == {**dict.fromkeys(ABSENT, 0), "FYN": 1, "KBH": 2}
    assert raw.rows_per_district["incident_persons"] == {**dict.fromkeys(ABSENT, 0), "FYN": 1, "KBH": 3}
    assert list(raw.rows_per_district["incidents"]) == sorted(raw.rows_per_district["incidents"])


def test_a_district_without_incident_rows_is_an_error_unless_named_absent(tmp_path: Path) -> None:
    header = INCIDENTS_KBH.splitlines()[0] + "\n"
    root = make_raw(tmp_path / "in", incidents={"KBH.csv": INCIDENTS_KBH, "FYN.csv": INCIDENTS_FYN,
                                                "BOR.csv": header})  # a header-only file is no delivery
    error = input_error(root, absent=())
    assert len(error.problems) == 1
    message = str(error)
    assert "incidents/, column 'district': expected incident rows from every police district (none from " \
           "BOR (Bornholms Politi), KVE (Københavns Vestegns Politi)," in message
    assert "--absent-district BOR --absent-district KVE --absent-district MVJ" in message
    assert "FYN (" not in message and "KBH (" not in message
    error = input_error(root, absent=("BOR",))
    assert "none from KVE" in str(error) and "BOR (" not in str(error)
    assert read_raw(root, absent_districts=[c.lower() for c in ABSENT]).rows["incidents"] == 3


def test_a_district_named_absent_must_have_no_rows(tmp_path: Path) -> None:
    error = input_error(make_raw(tmp_path / "in"), absent=(*ABSENT, "KBH"))
    assert [str(p) for p in error.problems] == [
        "incidents/, column 'district': expected no rows of police district KBH (Københavns Politi), which "
        "was named with --absent-district (found 2 row(s)); drop the option for KBH"]


def test_an_unknown_absent_district_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"--absent-district XYZ: not a police district code \(the codes are BOR"):
        read_raw(make_raw(tmp_path / "in"), absent_districts=(*ABSENT, "XYZ"))




def absent_options(codes: tuple[str, ...] = ABSENT) -> list[str]:
    return [arg for code in codes for arg in ("--absent-district", code)]


def test_cli_pseudonymise_refuses_a_missing_district_then_accepts_it_named(tmp_path: Path, keys: Path) -> None:
    root = make_raw(tmp_path / "in")
    code, out = invoke("pseudonymise", "--input", root, "--out", tmp_path / "pseudo", "--keys", keys,
                       "--week", "2026-W47")
    assert code == 2
    assert "incidents/, column 'district': expected incident rows from every police district" in out
    assert not (tmp_path / "pseudo").exists()
    code, out = invoke("pseudonymise", "--input", root, "--out", tmp_path / "pseudo", "--keys", keys,
                       "--week", "2026-W47", *absent_options())
    assert code == 0, out
    code, out = invoke("pseudonymise", "--input", root, "--out", tmp_path / "p2", "--keys", keys, "--week", "2026-W47",
                       *absent_options((*ABSENT, "KBH")))
    assert code == 2 and "named with --absent-district (found 2 row(s))" in out


def test_cli_run_refuses_a_missing_district_with_exit_2(tmp_path: Path, keys: Path) -> None:
    root = make_raw(tmp_path / "in")
    args = ["run", "--input", root, "--week", "2026-W47", "--out", tmp_path / "out",
            "--state", tmp_path / "state", "--keys", keys, "--week", "2026-W47", "--new-state"]
    code, out = invoke(*args, *absent_options(ABSENT[1:]))
    assert code == 2
    assert "none from BOR (Bornholms Politi): their children would be missed" in out
    assert "--absent-district BOR" in out
    code, out = invoke(*args, *absent_options(), "--absent-district", "xyz")
    assert code == 2 and "--absent-district XYZ: not a police district code" in out


def test_cli_unreadable_and_looping_files_exit_2_naming_them(
    tmp_path: Path, keys: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_raw(tmp_path / "in")
    loop(root / "incident_persons", "SSJ.csv")
    deny_opening(monkeypatch, root / "population.csv")
    code, out = invoke("pseudonymise", "--input", root, "--out", tmp_path / "pseudo", "--keys", keys,
                       "--week", "2026-W47", *absent_options())
    assert code == 2, out
    assert "incident_persons/SSJ.csv: expected a file, not a symbolic link that loops" in out
    assert "population.csv: expected a readable file (Permission denied)" in out


# --- no message quotes a cell ---------------------------------------------------------------

IDENTIFIERS = {
    "cpr": "2512874321",
    "dashed_cpr": "251287-4321",
    "name": "Kirstine",
    "birth_date": "1987-12-25",
    "journal": "4400-81234-00077-26",
}
FILES = {
    "incidents": "incidents/KBH.csv",
    "incident_persons": "incident_persons/KBH.csv",
    "population": "population.csv",
    "relations": "relations.csv",
}
COLUMNS = [(table, col.name) for table, specs in _RAW_SPECS.items() for col in specs]


def accepts(table: str, column: str, kind: str) -> bool:
    """Whether the contract accepts this kind of identifier in this column (then no error is due)."""
    if column in ("incident_id", "given_name", "surname", "incident_code", "offence_code"):
        return True  # free text
    if table == "incident_persons" and column == "cpr":
        return True  # an invalid CPR number of an incident person goes to the fallback
    if column == "birth_date":
        return kind == "birth_date"
    if column in ("cpr", "child_cpr", "adult_cpr"):
        return kind in ("cpr", "dashed_cpr")
    return False


@pytest.mark.parametrize(("table", "column"), COLUMNS, ids=[f"{t}.{c}" for t, c in COLUMNS])
@pytest.mark.parametrize("kind", sorted(IDENTIFIERS))
def test_no_message_quotes_an_identifier_put_in_any_column(tmp_path: Path, table: str, column: str,
                                                           kind: str) -> None:
    root = make_raw(tmp_path / "in")
    path = root / FILES[table]
    header, first, *rest = path.read_text().splitlines()
    fields = first.split(",")
    fields[header.split(",").index(column)] = IDENTIFIERS[kind]
    path.write_text("\n".join([header, ",".join(fields), *rest]) + "\n")
    try:
        read_raw(root, absent_districts=ABSENT)
    except Exception as exc:  # whatever is raised must not carry the value
        message = str(exc)
        for value in IDENTIFIERS.values():
            assert value not in message, message
        assert isinstance(exc, InputError), message
        here = [p for p in exc.problems if (p.file, p.line, p.column) == (FILES[table], 2, column)]
        if not accepts(table, column, kind):
            assert here and all(p.value and SHAPE.fullmatch(p.value) for p in here), message
            assert f"{FILES[table]}, line 2, column '{column}': expected" in message
    else:
        assert accepts(table, column, kind), f"{table}.{column} accepted a {kind}"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(*[st.text(alphabet='ab ,;"\næø-', max_size=8)] * 2), min_size=1, max_size=6))
def test_any_properly_quoted_csv_is_read_back_exactly(names: list[tuple[str, str]]) -> None:
    """Commas, quotes and line breaks inside quoted values never make a false refusal."""
    import csv
    import io
    import tempfile

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["cpr", "municipality", "given_name", "surname"])
    cprs = [f"0101{80 + i:02d}1234" for i in range(len(names))]
    writer.writerows([cpr, "101", given, surname] for cpr, (given, surname) in zip(cprs, names, strict=True))
    with tempfile.TemporaryDirectory() as tmp:
        root = make_raw(Path(tmp) / "in", population=buffer.getvalue(), relations="child_cpr,adult_cpr,relation\n")
        raw = read_raw(root, absent_districts=ABSENT)

    def expected(value: str) -> str | None:
        return value.strip() or None

    assert raw.population["cpr"].to_list() == cprs
    assert raw.population["given_name"].to_list() == [expected(g) for g, _ in names]
    assert raw.population["surname"].to_list() == [expected(s) for _, s in names]


# --- bounds: a CSV line and a CSV field have a stated maximum ------------------------------


def test_a_corrupt_line_3_is_reported_as_line_3(tmp_path: Path) -> None:
    """Positions are the file's lines as an editor numbers them: the header is line 1."""
    root = make_raw(tmp_path / "in")
    path = root / "population.csv"
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace("0147", "9999")  # the third line of the file
    path.write_text("\n".join(lines) + "\n")
    error = input_error(root)
    assert [(p.file, p.line, p.row, p.column) for p in error.problems] == [
        ("population.csv", 3, None, "municipality")]
    assert str(error.problems[0]).startswith("population.csv, line 3, column 'municipality': expected")


def test_a_parquet_position_is_a_row(tmp_path: Path) -> None:
    root = make_raw(tmp_path / "in", population=None)
    pl.DataFrame({"cpr": ["0101801234", "1003154123"], "municipality": ["101", "9999"]}).write_parquet(
        root / "population.parquet")
    error = input_error(root)
    assert [(p.row, p.line, p.column) for p in error.problems] == [(2, None, "municipality")]
    assert "population.parquet, row 2, column 'municipality'" in str(error)

def _keep_from_the_parser(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Fail the test if the file ``name`` reaches Polars' CSV parser (a bound must refuse it first)."""
    from socialsearch.station import _reading

    parse = pl.read_csv

    def guarded(source: Path, *args: object, **kwargs: object) -> pl.DataFrame:
        assert Path(source).name != name, "the file reached the CSV parser"
        return parse(source, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(_reading.pl, "read_csv", guarded)


def test_a_header_longer_than_the_bound_is_refused_before_any_parser_reads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from socialsearch.station import _reading

    root = make_raw(tmp_path / "in")
    (root / "relations.csv").write_bytes(b"child_cpr," + b"x" * _reading.MAX_LINE_BYTES + b"\n1,2,3\n")

    _keep_from_the_parser(monkeypatch, "relations.csv")
    message = refused(root)
    assert "relations.csv: expected a header row within the first 1 MiB of the file" in message


def test_a_line_longer_than_the_bound_is_refused_naming_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from socialsearch.station import _reading

    monkeypatch.setattr(_reading, "BLOCK_BYTES", 4096)  # several blocks, and a line across them
    monkeypatch.setattr(_reading, "MAX_LINE_BYTES", 10_000)
    root = make_raw(tmp_path / "in")
    path = root / "population.csv"
    path.write_text(POPULATION + "0101801235,101,Peter," + "N" * 10_000 + "\n" + "0101801236,101,Peter,N\n")
    error = input_error(root)
    assert [(p.file, p.line) for p in error.problems] == [("population.csv", 4)]
    assert "population.csv, line 4: expected lines of at most 9 KiB" in str(error)
    path.write_text(POPULATION + "0101801235,101,Peter," + "N" * 9_000 + "\n")  # within the bound
    assert read_raw(root, absent_districts=ABSENT).rows["population"] == 3


def test_a_field_longer_than_the_bound_is_refused_naming_line_and_column(tmp_path: Path) -> None:
    """A quoted value may span lines, each within the line bound: the field bound still holds."""
    from socialsearch.station import _reading

    root = make_raw(tmp_path / "in")
    value = '"' + ("Nielsen " * 100 + "\n") * (_reading.MAX_FIELD_BYTES // 800 + 1) + '"'
    (root / "population.csv").write_text(POPULATION + f"0101801235,101,Peter,{value}\n")
    error = input_error(root)
    assert [(p.file, p.line, p.column) for p in error.problems] == [("population.csv", 4, "surname")]
    assert "expected a value of at most 64 KiB (this one is longer)" in str(error)


def test_the_cli_refuses_an_endless_line_with_exit_2(tmp_path: Path, keys: Path) -> None:
    root = make_raw(tmp_path / "in")
    (root / "relations.csv").write_bytes(b"child_cpr,adult_cpr,relation\n" + b"1" * (2 << 20))
    code, out = invoke("pseudonymise", "--input", root, "--out", tmp_path / "out", "--keys",
                       keys, "--week", "2026-W47",
                       *[a for d in ABSENT for a in ("--absent-district", d)])
    assert code == 2, out
    assert "relations.csv, line 2: expected lines of at most 1 MiB" in out
    assert not (tmp_path / "out").exists()


def test_the_population_numbers_are_handed_on_row_for_row(tmp_path: Path) -> None:
    """``read_raw`` computes the population's Int64 CPR numbers once, for its checks and the station."""
    from socialsearch.identifiers import cpr_number

    population = POPULATION.replace("1003154123,0147", " 100315-4123 ,0147")
    raw = read_raw(make_raw(tmp_path / "in", population=population), absent_districts=ABSENT)
    assert raw.population_numbers is not None
    expected = raw.population.select(cpr_number("cpr")).to_series()
    assert raw.population_numbers.to_list() == expected.to_list() == [101801234, 1003154123]
    assert raw.population["cpr"].to_list() == ["0101801234", "100315-4123"]  # stripped, as delivered


def test_a_quoted_value_spanning_lines_far_over_the_bound_is_refused_before_parsing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every line is short, but one quoted value holds thousands of them: found in blocks."""
    from socialsearch.station import _reading

    monkeypatch.setattr(_reading, "BLOCK_BYTES", 4096)  # the value spans many blocks
    root = make_raw(tmp_path / "in")
    value = '"' + ("Nielsen " * 10 + "\n") * (3 * _reading.MAX_FIELD_BYTES // 81) + '"'
    (root / "population.csv").write_text(POPULATION + f"0101801235,101,{value},Hansen\n")
    _keep_from_the_parser(monkeypatch, "population.csv")
    error = input_error(root)
    assert [(p.file, p.line, p.column) for p in error.problems] == [("population.csv", 4, "given_name")]
    assert "population.csv, line 4, column 'given_name': expected a value of at most 64 KiB" in str(error)


def test_the_relation_numbers_are_handed_on_row_for_row(tmp_path: Path) -> None:
    """``read_raw`` hands on the relations' Int64 CPR numbers, so the station can drop their text."""
    from socialsearch.identifiers import cpr_number

    relations = RELATIONS + " 010180-1234 ,100315-4123,mother\n"
    raw = read_raw(make_raw(tmp_path / "in", relations=relations), absent_districts=ABSENT)
    assert raw.relation_numbers is not None
    expected = raw.relations.select(cpr_number("child_cpr").alias("child"), cpr_number("adult_cpr").alias("adult"))
    assert raw.relation_numbers.rows() == expected.rows() == [(1003154123, 101801234), (101801234, 1003154123)]


@pytest.mark.parametrize("blank_lines", [False, True])
def test_a_single_file_table_names_the_row_of_a_cross_file_problem(tmp_path: Path, blank_lines: bool) -> None:
    """Population and relations are held without their positions; a repeated CPR number and a
    child who is its own adult are still found at their row (Parquet) or line (CSV)."""
    cprs = ["0101801234", "1003154123", "0101801234"]
    root = make_raw(tmp_path / "in", population=None, relations=None)
    pl.DataFrame({"cpr": cprs, "municipality": ["101", "147", "101"]}).write_parquet(root / "population.parquet")
    text = "child_cpr,adult_cpr,relation\n" + ("\n" if blank_lines else "") + \
        "1003154123,0101801234,father\n1003154123,1003154123,mother\n"
    (root / "relations.csv").write_text(text, encoding="utf-8")
    error = input_error(root)
    assert "population.parquet, row 3, column 'cpr': expected each person once" in str(error)
    line = 4 if blank_lines else 3
    assert f"relations.csv, line {line}, column 'adult_cpr': expected an adult other than the child" in str(error)


def test_a_parquet_file_of_a_folder_names_the_row_of_each_problem(tmp_path: Path) -> None:
    """Parquet rows are positions made only when needed: per-row and cross-file problems name them."""
    root = make_raw(tmp_path / "in", persons={"KBH.csv": PERSONS_KBH})
    pl.DataFrame({
        "district": ["FYN", "FYN", "FYN"], "incident_id": ["J-KBH-0001", "J-FYN-0404", "J-KBH-0001"],
        "cpr": [None, None, None], "role": ["involved", "victim", "bystander"],
    }).write_parquet(root / "incident_persons" / "FYN.parquet")
    error = input_error(root)
    assert "incident_persons/FYN.parquet, row 3, column 'role': expected a role" in str(error)
    assert "incident_persons/FYN.parquet, row 2, column 'incident_id': expected an incident that exists" in str(error)


# --- the cross-file checks on integer keys -----------------------------------------------------

_KEYS = st.tuples(st.sampled_from(["KBH", "FYN", None]), st.sampled_from(["J-1", "J-2", "J-3", "j-1", "", None]))


@settings(max_examples=150, deadline=None)
@given(st.lists(_KEYS, unique=True, max_size=12), st.lists(_KEYS, max_size=25), st.data())
def test_orphans_by_hash_agree_with_the_join_on_the_text(
    incident_keys: list[tuple[str | None, str | None]], person_keys: list[tuple[str | None, str | None]],
    data: st.DataObject,
) -> None:
    """Whatever hash each key gets (two keys may share one: a collision), the orphans found
    through the incidents' distinct hashes are exactly those of an anti-join on the text."""
    from unittest import mock

    import socialsearch.station.extracts as extracts

    schema = {"district": pl.String, "incident_id": pl.String}
    incidents = pl.DataFrame(incident_keys, schema=schema, orient="row")
    persons = pl.DataFrame(person_keys, schema=schema, orient="row").with_columns(
        pl.lit(0, pl.UInt32).alias("_file"), pl.int_range(1, pl.len() + 1, dtype=pl.UInt32).alias("_row"))
    keyed = [d is not None and i is not None for d, i in incident_keys]
    codes = data.draw(st.lists(st.integers(0, (1 << 64) - 1), min_size=len(incident_keys),
                               max_size=len(incident_keys), unique=True))
    hashes = pl.Series([c if k else None for c, k in zip(codes, keyed, strict=True)], dtype=pl.UInt64)
    # A hash is a function of the key: an incident's key has its hash; any other key gets any
    # hash, an incident's (a collision) or a new one.
    pool = [c for c, k in zip(codes, keyed, strict=True) if k] + [7, 8]
    hash_of = dict(zip(incident_keys, codes, strict=True))
    for key in person_keys:  # at most 25
        hash_of.setdefault(key, data.draw(st.sampled_from(pool)))

    def person_hashes(frame: pl.DataFrame) -> pl.Series:
        return pl.Series([hash_of[key] for key in frame.select("district", "incident_id").rows()], dtype=pl.UInt64)

    with mock.patch.object(extracts, "_key_hashes", person_hashes):
        by_hash = extracts._orphans(persons, incidents, hashes)
    by_text = extracts._orphans(persons, incidents, None)
    assert by_hash.sort("_row").equals(by_text.sort("_row"))


@given(st.lists(st.none() | st.integers(-(1 << 63), (1 << 63) - 1) | st.integers(0, 40), max_size=40))
def test_no_duplicates_is_a_count_of_distinct_values(values: list[int | None]) -> None:
    import socialsearch.station.extracts as extracts

    series = pl.Series(values, dtype=pl.Int64)
    present = [v for v in values if v is not None]
    assert extracts._no_duplicates(series) == (len(set(present)) == len(present))
    unsigned = pl.Series([None if v is None else v % (1 << 64) for v in values], dtype=pl.UInt64)
    assert extracts._no_duplicates(unsigned) == (len(set(present)) == len(present))
