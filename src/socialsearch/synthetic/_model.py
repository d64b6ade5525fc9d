"""The model's constants and the event profiles of the synthetic Denmark (docs/synthetic-data.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..contract import RAW_SCHEMA

Format = Literal["parquet", "csv"]
#: The input contract's columns and the types the generator writes (parquet).
INPUT_SCHEMAS = RAW_SCHEMA

# --------------------------------------------------------------------------- model constants
CHILDREN_NATIONAL = 1_150_000  # aged 0-17 (Danmarks Statistik, 2025)
KIDS_PER_FAMILY = np.array([0.38, 0.43, 0.15, 0.04])  # 1, 2, 3, 4 children under 18
# family structures
TOGETHER, SEP_JOINT, SEP_SOLE, FATHER_UNKNOWN, OTHER_CUSTODIAN = range(5)
STRUCTURES = ("together", "separated_joint_custody", "separated_sole_custody", "father_unknown",
              "custodian_not_parent")
STRUCTURE_P = np.array([0.68, 0.215, 0.07, 0.02, 0.015])
P_OTHER_PARENT_MOVED = 0.40  # separated: the non-resident parent lives in another municipality
P_STEP_PARENT = 0.45  # separated / father unknown: the resident parent lives with a new partner
P_MOTHER_RESIDENT = 0.80
# person kinds (truth/people.parquet "member")
OTHER, CHILD, MOTHER, FATHER, HOUSEHOLD, CUSTODIAN = range(6)
MEMBERS = ("other", "child", "mother", "father", "household", "custodian")
# risk: a small share of adults (and of 13-17-year-olds) carries most police involvement
RISK_SHARE_BY_AGE = ((18, 0.04), (30, 0.018), (50, 0.01), (65, 0.003))
RISK_SHAPE, RISK_BASELINE = 1.0, 0.012
CARER_RISK_FACTOR = 0.5  # adults living with children are less often at risk
YOUTH_RISK_SHARE, YOUTH_BASELINE = 0.04, 0.006
P_EVENT_AWAY = 0.2  # event in a random municipality rather than the main person's own
# identifiers
P_DASHED = {"population": 0.02, "relations": 0.02, "incident_persons": 0.08}
P_FALLBACK = 0.014  # incident persons with an empty or invalid CPR (a foreign person adds more)
P_FOREIGN = 0.003  # incident persons present in no register
FALLBACK_KINDS = ("empty", "wrong_length", "impossible_date", "fullwidth", "typo")
FALLBACK_P = np.array([0.45, 0.15, 0.12, 0.10, 0.18])
NAME_VARIANTS = ("none", "letter_swap", "transliterated", "dropped_given_name", "surname_variant",
                 "day_month_swap")
NAME_VARIANT_P = np.array([0.45, 0.13, 0.13, 0.09, 0.12, 0.08])
# Birth-date errors on the rows without a valid CPR number (foreigners too), drawn independently
# of the name variant and applied where the name variant left the date as it was: day and month
# swapped, one digit of YYYYMMDD changed, the year one off, the date not written at all. An edit
# that gives no calendar date (or a swap of a day above 12) is not applied and is recorded as none.
DATE_ERRORS = ("none", "day_month_swap", "one_digit", "year_off", "missing")
DATE_ERROR_P = np.array([0.90, 0.03, 0.03, 0.02, 0.02])

#: Journal-number prefixes (the district part of "0100-80123-00456-26"); the project's own.
DISTRICT_NUMBERS = {"KBH": "0100", "KVE": "0200", "NSJ": "0300", "MVS": "0400", "SSL": "0500",
                    "BOR": "0600", "FYN": "0700", "SSJ": "0800", "SOJ": "0900", "MVJ": "1000",
                    "OJY": "1100", "NJY": "1200"}
OFFICES = ("76102", "80123", "80145", "81210", "84330")
# local hour of registration (police events peak in the evening and at weekend nights)
HOUR_W = np.array([5.5, 5.0, 4.5, 3.5, 2.5, 2.0, 2.2, 3.0, 3.5, 4.0, 4.2, 4.3,
                    4.4, 4.5, 4.6, 4.8, 5.0, 5.2, 5.3, 5.3, 5.4, 5.5, 5.6, 5.6])

# --------------------------------------------------------------------------- event profiles
# Pools people are drawn from for a role slot.
RISK, RISK_PARENT, YOUTH, ANY_ADULT, ANY_CHILD, YOUNG_CHILD, CRIME, PARTNER, CHILD_OF, PARENT_OF = (
    range(10))
Mix = Mapping[int, float]
Slot = tuple[str, float, Mix]  # (role, probability the slot is filled, pool mixture)


@dataclass(frozen=True)
class Profile:
    """How often a category occurs (national, per year) and who takes part in its events."""

    rate: float
    primary: Mix
    roles: tuple[str, ...]  # preferred role of the main person, first one the code allows
    others: tuple[Slot, ...] = ()


_VICTIM: Mix = {PARTNER: 0.25, CHILD_OF: 0.04, ANY_ADULT: 0.6, ANY_CHILD: 0.11}
_WITNESS: Slot = ("witness", 0.3, {ANY_ADULT: 1.0})
_ADULT_RISK: Mix = {RISK: 0.9, YOUTH: 0.1}
# Catalogue categories by id keyword (first match wins); unknown categories get DEFAULT_PROFILE.
PROFILES: tuple[tuple[str, Profile], ...] = (
    ("psychological", Profile(1_500, {RISK: 1.0}, ("suspect",), (("victim", 0.9, {PARTNER: 0.7, ANY_ADULT: 0.3}),))),
    ("sexual", Profile(2_000, {RISK: 0.85, YOUTH: 0.15}, ("suspect",),
                        (("victim", 0.9, {ANY_CHILD: 0.6, CHILD_OF: 0.1, ANY_ADULT: 0.3}),))),
    ("violence", Profile(25_000, {RISK: 0.85, YOUTH: 0.15}, ("suspect",),
                          (("victim", 0.9, _VICTIM), _WITNESS, ("witness", 0.1, {ANY_ADULT: 1.0})))),
    ("neglect", Profile(3_000, {RISK_PARENT: 1.0}, ("suspect", "involved"), (("victim", 0.9, {CHILD_OF: 1.0}),))),
    ("threat", Profile(10_000, {RISK: 0.9, YOUTH: 0.1}, ("suspect",),
                        (("victim", 0.9, {ANY_ADULT: 0.7, PARTNER: 0.2, ANY_CHILD: 0.1}), _WITNESS))),
    ("stalking", Profile(1_500, {RISK: 1.0}, ("suspect",), (("victim", 0.95, {PARTNER: 0.6, ANY_ADULT: 0.4}),))),
    ("honour", Profile(300, {RISK_PARENT: 1.0}, ("suspect", "involved"),
                        (("victim", 0.9, {CHILD_OF: 0.5, PARTNER: 0.3, ANY_ADULT: 0.2}),))),
    ("driving", Profile(16_000, {RISK: 0.99, YOUTH: 0.01}, ("suspect",))),
    ("drug", Profile(16_000, {RISK: 0.85, YOUTH: 0.15}, ("suspect",), (("suspect", 0.2, {RISK: 0.8, YOUTH: 0.2}),))),
    ("weapon", Profile(4_000, {RISK: 0.9, YOUTH: 0.1}, ("suspect",))),
    ("arrest", Profile(8_000, {RISK: 0.9, YOUTH: 0.1}, ("suspect",))),
    ("domestic", Profile(18_000, {RISK: 1.0}, ("involved", "suspect"),
                          (("involved", 0.85, {PARTNER: 0.9, ANY_ADULT: 0.1}),
                           ("involved", 0.25, {CHILD_OF: 1.0}), ("witness", 0.1, {ANY_ADULT: 1.0})))),
    ("intoxica", Profile(10_000, {RISK: 0.95, YOUTH: 0.05}, ("involved", "suspect"))),
    ("psychiatr", Profile(14_000, {RISK: 0.95, YOUTH: 0.05}, ("involved",))),
    ("suicide", Profile(5_000, {RISK: 0.88, YOUTH: 0.12}, ("involved",))),
    ("child", Profile(1_500, {YOUTH: 0.6, YOUNG_CHILD: 0.4}, ("involved", "victim"),
                       (("involved", 0.7, {PARENT_OF: 1.0}),))),
)
DEFAULT_PROFILE = Profile(4_000, _ADULT_RISK, ("suspect", "involved"), (("victim", 0.5, {ANY_ADULT: 1.0}),))

# Codes outside the catalogue: (kind, code, label, national rate per year, slots; first = main person).
GENERIC_INCIDENT = ("9000", "9010")  # hændelseskode of a reported offence / a patrol's own finding
OTHER_CODES: tuple[tuple[str, str, str, float, tuple[Slot, ...]], ...] = (
    ("offence", "7100", "Tyveri", 85_000,
     (("victim", 1.0, {ANY_ADULT: 1.0}), ("suspect", 0.2, {CRIME: 0.8, YOUTH: 0.2}))),
    ("offence", "7110", "Butikstyveri", 30_000,
     (("suspect", 0.9, {CRIME: 0.7, YOUTH: 0.3}), ("witness", 0.5, {ANY_ADULT: 1.0}))),
    ("offence", "7120", "Indbrud i beboelse", 38_000,
     (("victim", 1.0, {ANY_ADULT: 1.0}), ("suspect", 0.08, {CRIME: 1.0}))),
    ("offence", "7130", "Cykeltyveri", 40_000,
     (("victim", 1.0, {ANY_ADULT: 0.8, ANY_CHILD: 0.2}), ("suspect", 0.03, {CRIME: 0.5, YOUTH: 0.5}))),
    ("offence", "7140", "Tyveri af eller fra bil", 20_000,
     (("victim", 1.0, {ANY_ADULT: 1.0}), ("suspect", 0.05, {CRIME: 1.0}))),
    ("offence", "7200", "Hærværk", 25_000,
     (("victim", 0.9, {ANY_ADULT: 1.0}), ("suspect", 0.2, {CRIME: 0.6, YOUTH: 0.4}))),
    ("offence", "7300", "Bedrageri", 45_000,
     (("victim", 1.0, {ANY_ADULT: 1.0}), ("suspect", 0.4, {CRIME: 1.0}))),
    ("offence", "7400", "Hastighedsovertrædelse", 60_000, (("suspect", 1.0, {ANY_ADULT: 1.0}),)),
    ("offence", "7410", "Kørsel uden kørekort", 12_000, (("suspect", 1.0, {CRIME: 0.7, ANY_ADULT: 0.3}),)),
    ("offence", "7500", "Overtrædelse af ordensbekendtgørelsen", 8_000,
     (("suspect", 1.0, {CRIME: 0.6, YOUTH: 0.4}),)),
    ("incident", "9100", "Færdselsuheld", 40_000,
     (("involved", 1.0, {ANY_ADULT: 1.0}), ("involved", 0.6, {ANY_ADULT: 1.0}), _WITNESS)),
    ("incident", "9110", "Støj og naboklage", 80_000, (("involved", 1.0, {ANY_ADULT: 1.0}),)),
    ("incident", "9120", "Hittegods", 40_000, (("involved", 0.8, {ANY_ADULT: 1.0}),)),
    ("incident", "9130", "Alarm", 60_000, (("involved", 0.3, {ANY_ADULT: 1.0}),)),
    ("incident", "9140", "Assistance til borger", 90_000, (("involved", 1.0, {ANY_ADULT: 0.8, RISK: 0.2}),)),
    ("incident", "9150", "Savnet voksen", 5_000, (("involved", 1.0, {RISK: 0.5, ANY_ADULT: 0.5}),)),
    ("incident", "9160", "Dyr", 15_000, (("involved", 0.7, {ANY_ADULT: 1.0}),)),
    ("incident", "9170", "Nabostrid", 25_000,
     (("involved", 1.0, {ANY_ADULT: 1.0}), ("involved", 1.0, {ANY_ADULT: 1.0}))),
    ("incident", "9180", "Uro og ordensforstyrrelse", 60_000,
     (("involved", 0.7, {ANY_ADULT: 0.6, CRIME: 0.2, YOUTH: 0.2}), ("witness", 0.2, {ANY_ADULT: 1.0}))),
    ("incident", "9190", "Færdselskontrol uden sigtelse", 50_000, (("involved", 1.0, {ANY_ADULT: 1.0}),)),
)


@dataclass(frozen=True)
class Spec:
    """One code the generator emits events for."""

    incident_code: str
    offence_code: str  # "" when none
    rate: float  # national events per year
    slots: tuple[Slot, ...]
    category: str | None  # catalogue category, None outside the catalogue


