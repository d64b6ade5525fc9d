"""Freeze the Faker name lists the synthetic Denmark draws from into the package's data.

``synth`` reads ``src/socialsearch/synthetic/data/faker_names.json`` instead of importing Faker,
so the same seed gives the same country whatever Faker version is installed, and Faker is not a
runtime dependency. Run this only to move to another Faker version (``pip install faker==X``):

    python tools/freeze_faker_names.py

``tests/test_synth.py`` checks that the frozen lists equal those of the Faker version they record.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "src" / "socialsearch" / "synthetic" / "data"
#: The Provider attributes the name model reads (see synthetic/_names.py).
ATTRIBUTES = (
    "first_names_male", "first_names_female", "first_names", "last_names", "last_names_male",
    "last_names_female", "male_last_names", "last_names_common", "first_romanized_names",
    "last_romanized_names",
)


def locales(names_file: Path) -> list[str]:
    """The Faker locales names.json's origins use (curated sources are not Faker's), plus da_DK."""
    spec = json.loads(names_file.read_text(encoding="utf-8"))
    keys = {key for _country, _count, ks in spec["origins"]["countries"] for key in ks.split()}
    return sorted((keys - set(spec["curated"])) | {"da_DK"})


def frozen(locale_keys: list[str]) -> dict[str, object]:
    """Every listed attribute of each locale's person Provider, lists and weighted dicts as JSON."""
    import importlib

    import faker

    providers: dict[str, dict[str, object]] = {}
    for key in locale_keys:
        provider = importlib.import_module(f"faker.providers.person.{key}").Provider
        lists: dict[str, object] = {}
        for name in ATTRIBUTES:
            value = getattr(provider, name, None)
            if value is not None:
                lists[name] = dict(value) if hasattr(value, "items") else list(value)
        providers[key] = lists
    return {"faker_version": faker.VERSION, "providers": providers}


def main() -> int:
    data = frozen(locales(DATA / "names.json"))
    target = DATA / "faker_names.json"
    target.write_text(json.dumps(data, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    print(f"wrote {target} (Faker {data['faker_version']}, {len(data['providers'])} locales)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
