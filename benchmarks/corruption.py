"""A second corruption model for the resolution benchmark, written apart from ``synth``'s.

``synth`` makes its own name and date errors (letter swaps, transliteration, dropped given
names, surname variants; day/month swap, one digit, year off, missing). A model fitted and
checked only against the errors its own data generator makes can look better than it is, so
this module corrupts residents of the register by other rules, with other rates, chosen
without looking at the resolution model:

* ``typo`` (10 %): one keyboard slip in the given name or the surname: the letter replaced by
  its right-hand neighbour on a Danish keyboard, deleted, or doubled;
* ``ocr`` (5 %): a visual confusion of a scanned form (m → rn, rn → m, d → cl, h → li,
  w → vv, e → c), the first place it fits in the surname, else in the given name;
* ``nickname`` (5 %): the first given name replaced by a short form (Johannes → Hans,
  Margrethe → Grethe, Christian → Chris, ...; see :data:`NICKNAMES`) where it has one;
* ``marriage`` (6 %): the surname after a marriage: another resident's surname, or the
  partner's surname joined with a hyphen after one's own, or only the last part of a double
  surname;
* ``digits`` (3 %): two neighbouring digits of DDMMYYYY transposed (dropped when no date);
* ``day_off`` (2 %): the birth date one day off;
* ``no_given`` (2 %): no given name written.

Each query has at most one corruption (drawn with the rates above; 67 % none). ``outsiders``
of the queries are residents taken out of the register (people in no register, who must stay
unresolved). Everything is vectorised over the whole frame.

**The written CPR number** (:func:`written_cpr`; a query is a person whose number is not valid),
drawn independently of the name and date corruption, by these rules and rates:

* ``blank`` (40 %): nothing written;
* ``four_digit_year`` (12 %): the year written with four digits, ``DDMMYYYY-SSSS`` (12 digits);
* ``separators`` (10 %): written as ``DD.MM.YY SSSS`` (dots and a space);
* ``transposed`` (12 %): two neighbouring digits of the ten swapped;
* ``last_dropped`` (8 %): the last digit left out (nine digits);
* ``date_only`` (8 %): only the six digits of the birth date;
* ``ocr_zero`` (5 %): every 0 read as the letter O;
* ``relative`` (5 %): another resident's number (a relative's, mistyped) with its last digit
  left out — a wrong number, not this person's.

A rule whose result would be a valid CPR number (a transposition that makes another existing
date, a number without a 0 for ``ocr_zero``) writes nothing instead (``blank``): such a person
would not be a query. Outsiders get the same rules with their own (former) number.

**The event's municipality** (:func:`event_places`): the resident's own municipality with
probability 0.7, else the municipality of another resident drawn at random (so by population).

**The other persons on the event** (:func:`co_persons`, v2.3; every one with a valid CPR
number): with probability 0.35 one relative of the resident (one of their relations in the
relations register, drawn uniformly: a parent, custodian or household adult of a child, a child
of an adult; nobody when the resident has no relation), and independently with probability 0.4
one resident drawn at random from the whole register (a stranger: a witness, the other party).
The station's evidence is then what :func:`socialsearch.station.resolution.relatives` makes of
these persons and the relations register, as for any event.
"""

from __future__ import annotations

import numpy as np
import polars as pl

KINDS = ("none", "typo", "ocr", "nickname", "marriage", "digits", "day_off", "no_given")
RATES = np.array([0.67, 0.10, 0.05, 0.05, 0.06, 0.03, 0.02, 0.02])

# Danish short forms of given names (first given name, as written in the register).
NICKNAMES = {
    "Johannes": "Hans", "Johan": "Hans", "Margrethe": "Grethe", "Margit": "Grethe", "Christian": "Chris",
    "Kristian": "Kris", "Christoffer": "Chris", "Elisabeth": "Lise", "Elizabeth": "Lise", "Katrine": "Trine",
    "Kathrine": "Trine", "Catharina": "Karina", "Frederik": "Frede", "Alexander": "Alex", "Alexandra": "Alex",
    "Sebastian": "Basse", "Benjamin": "Ben", "Nikolaj": "Niko", "Nicolai": "Niko", "Rasmus": "Rasse",
    "Jacob": "Jake", "Jakob": "Jake", "Mikkel": "Mikke", "Thomas": "Tom", "Michael": "Mike", "Mikael": "Mike",
    "Jørgen": "Jørn", "Søren": "Søs", "Karoline": "Line", "Caroline": "Line", "Emilie": "Emmy",
    "Anne-Marie": "Annemie", "Marianne": "Janne", "Susanne": "Sanne", "Gertrud": "Gerda", "Ingeborg": "Inge",
    "Kirsten": "Kirse", "Henrik": "Henne", "Valdemar": "Valde", "Magnus": "Mads", "Mathias": "Thias",
    "Matthias": "Thias", "Tobias": "Tobi", "Victoria": "Vicky", "Viktoria": "Vicky", "Josefine": "Fie",
    "Sofie": "Fie", "Sophie": "Fie", "Mohammad": "Mo", "Mohammed": "Mo", "Muhammad": "Mo", "Abdullah": "Abdi",
}

# A Danish keyboard's right-hand neighbour of each letter (the last of a row wraps to its left).
_ROWS = ("qwertyuiopå", "asdfghjklæø", "zxcvbnm")
RIGHT = {row[i]: row[(i + 1) % len(row)] for row in _ROWS for i in range(len(row))}
OCR = (("m", "rn"), ("rn", "m"), ("d", "cl"), ("h", "li"), ("w", "vv"), ("e", "c"))


def _typo(name: pl.Expr, pos: pl.Expr, how: pl.Expr) -> pl.Expr:
    """One slip at ``pos`` (modulo the length): 0 neighbour key, 1 deletion, 2 doubled letter."""
    p = pos % pl.max_horizontal(name.str.len_chars(), 1)
    ch = name.str.slice(p, 1)
    right = ch.str.to_lowercase().replace_strict(RIGHT, default=ch)
    right = pl.when(ch == ch.str.to_uppercase()).then(right.str.to_uppercase()).otherwise(right)
    head, tail = name.str.slice(0, p), name.str.slice(p + 1)
    return (pl.when(how == 0).then(pl.concat_str(head, right, tail))
            .when(how == 1).then(pl.concat_str(head, tail))
            .otherwise(pl.concat_str(head, ch, ch, tail)))


def _ocr(name: pl.Expr, which: pl.Expr) -> pl.Expr:
    out = name
    for k, (a, b) in enumerate(OCR):
        out = pl.when(which == k).then(name.str.replace(a, b, literal=True)).otherwise(out)
    return out


def corrupt(residents: pl.DataFrame, seed: int) -> pl.DataFrame:
    """Queries made from ``residents`` (``cpr``, ``given_name``, ``surname``, ``birth_date``):
    ``given_name``, ``surname``, ``birth_date`` as written, ``true_cpr``, ``corruption`` (the
    kind applied; ``none`` when the drawn kind had nothing to change)."""
    rng = np.random.default_rng(seed)
    n = residents.height
    kind = pl.Series(KINDS).gather(rng.choice(len(KINDS), size=n, p=RATES))
    other_surname = residents["surname"].gather(rng.integers(0, max(n, 1), size=n))
    f = residents.with_columns(
        _kind=kind, _pos=pl.Series(rng.integers(0, 1 << 16, size=n)), _how=pl.Series(rng.integers(0, 3, size=n)),
        _field=pl.Series(rng.integers(0, 2, size=n)), _ocr=pl.Series(rng.integers(0, len(OCR), size=n)),
        _m=pl.Series(rng.integers(0, 3, size=n)), _other=other_surname,
        _dpos=pl.Series(rng.integers(0, 7, size=n)), _sign=pl.Series(rng.choice([-1, 1], size=n)),
    )
    g, s, d, k = pl.col("given_name"), pl.col("surname"), pl.col("birth_date"), pl.col("_kind")
    first = g.str.split(" ").list.first()
    nick = first.replace_strict(NICKNAMES, default=None)
    with_nick = pl.concat_str(nick, g.str.slice(first.str.len_chars()))
    surname_ocr = _ocr(s, pl.col("_ocr"))
    last_part = s.str.split("-").list.last().str.split(" ").list.last()
    married = (pl.when(pl.col("_m") == 0).then(pl.col("_other"))
               .when(pl.col("_m") == 1).then(pl.concat_str(s, pl.lit("-"), pl.col("_other")))
               .otherwise(last_part))
    text = d.dt.strftime("%d%m%Y")
    p = pl.col("_dpos")
    transposed = pl.concat_str(text.str.slice(0, p), text.str.slice(p + 1, 1), text.str.slice(p, 1),
                               text.str.slice(p + 2)).str.to_date("%d%m%Y", strict=False)
    out = f.with_columns(
        _g=pl.when((k == "typo") & (pl.col("_field") == 0)).then(_typo(g, pl.col("_pos"), pl.col("_how")))
        .when((k == "ocr") & (surname_ocr == s)).then(_ocr(g, pl.col("_ocr")))
        .when((k == "nickname") & nick.is_not_null()).then(with_nick)
        .when(k == "no_given").then(pl.lit(None, pl.String)).otherwise(g),
        _s=pl.when((k == "typo") & (pl.col("_field") == 1)).then(_typo(s, pl.col("_pos"), pl.col("_how")))
        .when(k == "ocr").then(surname_ocr)
        .when(k == "marriage").then(married).otherwise(s),
        _d=pl.when(k == "digits").then(pl.coalesce(transposed, d))
        .when(k == "day_off").then(d + pl.duration(days=pl.col("_sign"))).otherwise(d),
    )
    changed = ((pl.col("_g") != g).fill_null(True) & ~(pl.col("_g").is_null() & g.is_null())) | (
        pl.col("_s") != s).fill_null(False) | (pl.col("_d") != d).fill_null(False)
    return out.select(
        given_name="_g", surname="_s", birth_date="_d", true_cpr="cpr",
        corruption=pl.when(changed).then(k).otherwise(pl.lit("none")),
    )


CPR_KINDS = ("blank", "four_digit_year", "separators", "transposed", "last_dropped", "date_only", "ocr_zero",
             "relative")
CPR_RATES = np.array([0.40, 0.12, 0.10, 0.12, 0.08, 0.08, 0.05, 0.05])
P_EVENT_HOME = 0.7


def written_cpr(residents: pl.DataFrame, seed: int) -> pl.DataFrame:
    """The CPR number each of ``residents`` (``cpr``: ten digits) has written on the event, by the
    rules above: ``written_cpr`` (null for ``blank``) and ``cpr_kind`` (the rule applied)."""
    from socialsearch import identifiers

    rng = np.random.default_rng(seed + 101)
    n = residents.height
    kind = pl.Series(CPR_KINDS).gather(rng.choice(len(CPR_KINDS), size=n, p=CPR_RATES))
    other = residents["cpr"].gather(rng.integers(0, max(n, 1), size=n))
    f = residents.select("cpr").with_columns(_kind=kind, _other=other, _t=pl.Series(rng.integers(0, 9, size=n)))
    c, t, k = pl.col("cpr"), pl.col("_t"), pl.col("_kind")
    year4 = pl.when(c.str.slice(6, 1).cast(pl.Int32) >= 5).then(pl.lit("19")).otherwise(pl.lit("20"))
    transposed = pl.concat_str(c.str.slice(0, t), c.str.slice(t + 1, 1), c.str.slice(t, 1), c.str.slice(t + 2))
    text = (pl.when(k == "four_digit_year").then(pl.concat_str(c.str.slice(0, 4), year4, c.str.slice(4, 2),
                                                               pl.lit("-"), c.str.slice(6)))
            .when(k == "separators").then(pl.concat_str(c.str.slice(0, 2), pl.lit("."), c.str.slice(2, 2), pl.lit("."),
                                                        c.str.slice(4, 2), pl.lit(" "), c.str.slice(6)))
            .when(k == "transposed").then(transposed)
            .when(k == "last_dropped").then(c.str.slice(0, 9))
            .when(k == "date_only").then(c.str.slice(0, 6))
            .when(k == "ocr_zero").then(c.str.replace_all("0", "O", literal=True))
            .when(k == "relative").then(pl.col("_other").str.slice(0, 9)))
    f = f.with_columns(_text=text).with_columns(_valid=identifiers.cpr_status(pl.col("_text")) == "valid")
    blank = pl.col("_text").is_null() | pl.col("_valid").fill_null(False)
    return f.select(written_cpr=pl.when(blank).then(None).otherwise("_text"),
                    cpr_kind=pl.when(blank).then(pl.lit("blank")).otherwise(k))


def event_places(residents: pl.DataFrame, seed: int) -> pl.Series:
    """The municipality of each resident's event: their own (``municipality``) with probability
    :data:`P_EVENT_HOME`, else another resident's drawn at random."""
    rng = np.random.default_rng(seed + 202)
    n = residents.height
    home = rng.random(n) < P_EVENT_HOME
    away = residents["municipality"].gather(rng.integers(0, max(n, 1), size=n))
    return pl.Series("municipality", np.where(home, residents["municipality"].to_numpy(), away.to_numpy()),
                     dtype=pl.String)


P_RELATIVE_ON_EVENT = 0.35
P_STRANGER_ON_EVENT = 0.4


def co_persons(residents: pl.DataFrame, relations: pl.DataFrame, register: pl.DataFrame, seed: int) -> pl.DataFrame:
    """The other persons (valid CPR numbers) on the event of each of ``residents`` (``cpr``), by
    the rule above: ``row`` (the resident's position in ``residents``) and ``person``.
    ``relations``: ``child``, ``adult``; ``register``: ``cpr``."""
    rng = np.random.default_rng(seed + 303)
    n = residents.height
    who = residents.select(pl.col("cpr").alias("me")).with_row_index("row")
    theirs = pl.concat([
        who.join(relations.select(me="child", person="adult"), on="me"),
        who.join(relations.select(me="adult", person="child"), on="me"),
    ]).select("row", "person").unique().sort("row", "person")
    theirs = theirs.with_columns(_r=pl.Series(rng.random(theirs.height))).sort("row", "_r")
    one = theirs.group_by("row", maintain_order=True).agg(pl.col("person").first())
    with_relative = pl.Series(rng.random(n) < P_RELATIVE_ON_EVENT)
    relative = one.join(who.filter(with_relative).select("row"), on="row")
    strangers = who.with_columns(person=register["cpr"].gather(rng.integers(0, max(register.height, 1), size=n)),
                                 drawn=pl.Series(rng.random(n) < P_STRANGER_ON_EVENT))
    strangers = strangers.filter(pl.col("drawn") & (pl.col("person") != pl.col("me"))).select("row", "person")
    return pl.concat([relative, strangers]).sort("row")
