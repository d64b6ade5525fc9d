//! The register index of the station's resolution, over whole integer columns:
//!
//! * [`fold_name`]: a name folded for comparison (NFKC, case, Danish letters, accents,
//!   separators), and [`fold_column`] over a whole string column read in place;
//! * [`distinct`]: the distinct values of a column of 64-bit hashes (the spellings of a name
//!   column), with per row the id of its value, per value its first row and its number of rows;
//! * [`counting_sort`]: rows grouped by a small integer key (a day number) in CSR layout,
//!   offsets and row ids, by a stable counting sort;
//! * [`pair_groups`]: the residents with both names grouped by surname, and by given name then
//!   surname with the sorted keys of their name pairs, the names carried along (no random reads);
//! * [`near_pairs`]: for each (day, up to four name tokens) of the queries, the residents born
//!   that day whose first given-name token or last surname token is one of them;
//! * [`rows_in`]: the rows of a 64-bit integer column (CPR numbers of the relations) whose value
//!   is one of a few (the persons of the week's events), one hashed pass.
//!
//! Each is one or two passes; none allocates per row.

use std::borrow::Cow;
use std::collections::HashMap;

use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, GeneralCategoryGroup, UnicodeGeneralCategory};

use crate::arrow::Column;

/// The id of "no value" (a null row, or a row a sort leaves out).
pub const NONE: u32 = u32::MAX;

// ------------------------------------------------------------------------------- name folding

/// The letters that a lower-case, canonically decomposed character stands for, and how many
/// characters (one, or a letter and the combining mark after it) it takes: the Danish letters
/// and the German ones seen in Danish names as letter pairs (å ≡ aa, æ ≡ ä ≡ ae, ø ≡ ö ≡ oe, also
/// an o with a combining stroke) and a few letters without a decomposition.
#[inline]
fn letter_pair(c: char, next: Option<char>) -> Option<(&'static str, usize)> {
    Some(match (c, next) {
        ('a', Some('\u{030A}')) => ("aa", 2),
        ('a', Some('\u{0308}')) => ("ae", 2),
        ('o', Some('\u{0308}' | '\u{0338}' | '\u{0337}')) => ("oe", 2),
        ('u', Some('\u{0308}')) => ("ue", 2),
        ('æ', _) => ("ae", 1),
        ('ø' | 'œ', _) => ("oe", 1),
        ('ß', _) => ("ss", 1),
        ('ð' | 'đ', _) => ("d", 1),
        ('þ', _) => ("th", 1),
        ('ł', _) => ("l", 1),
        ('ı', _) => ("i", 1),
        _ => return None,
    })
}

/// Whether `c` separates the parts of a name: white space, a dash, `_` or `/`.
#[inline]
fn separates(c: char) -> bool {
    c.is_whitespace() || c == '_' || c == '/' || c.general_category() == GeneralCategory::DashPunctuation
}

/// A name folded for comparison, `None` when no letter is left: Unicode NFKC, invisible format
/// characters dropped, lower case, canonical decomposition, the letter pairs of
/// [`letter_pair`], every other combining mark dropped, each run of separators one space
/// between parts, every character other than `a`-`z` dropped.
pub fn fold_name(name: &str) -> Option<String> {
    if let Some(folded) = fold_plain(name) {
        return (!folded.is_empty()).then_some(folded);
    }
    let visible: String = name.nfkc().filter(|&c| c.general_category() != GeneralCategory::Format).collect();
    let chars: Vec<char> = visible.to_lowercase().nfd().collect();
    let mut out = String::with_capacity(chars.len());
    let mut gap = false;
    let mut letters = |s: &str, gap: &mut bool| {
        if *gap && !out.is_empty() {
            out.push(' ');
        }
        *gap = false;
        out.push_str(s);
    };
    let mut at = 0;
    while at < chars.len() {
        let c = chars[at];
        if let Some((pair, used)) = letter_pair(c, chars.get(at + 1).copied()) {
            letters(pair, &mut gap);
            at += used;
            continue;
        }
        if c.general_category_group() == GeneralCategoryGroup::Mark {
            // dropped
        } else if separates(c) {
            gap = true;
        } else if c.is_ascii_lowercase() {
            let mut buf = [0u8; 4];
            letters(c.encode_utf8(&mut buf), &mut gap);
        }
        at += 1;
    }
    (!out.is_empty()).then_some(out)
}

/// [`fold_name`] of a name of ASCII characters and the Danish letters æ, ø, å (either case) only,
/// none of which composes with its neighbours: each character on its own (`None` for any other
/// name). The folding of what most names are written with, without the Unicode tables.
fn fold_plain(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len() + 4);
    let mut gap = false;
    for c in name.chars() {
        let mut buf = [0u8; 4];
        let letters: &str = match c {
            'a'..='z' => c.encode_utf8(&mut buf),
            'A'..='Z' => c.to_ascii_lowercase().encode_utf8(&mut buf),
            'æ' | 'Æ' => "ae",
            'ø' | 'Ø' => "oe",
            'å' | 'Å' => "aa",
            _ if c.is_ascii() => {
                gap |= separates(c);
                continue;
            }
            _ => return None,
        };
        if gap && !out.is_empty() {
            out.push(' ');
        }
        gap = false;
        out.push_str(letters);
    }
    Some(out)
}

const NOT_UTF8: &str = "a name is not UTF-8 text";
const MALFORMED: &str = "the Arrow array is malformed (a value lies outside its buffers)";

/// Every value of the string column `column` folded by [`fold_name`] (`None` for a null).
///
/// # Errors
/// When a value lies outside its buffers or is not UTF-8.
pub fn fold_column(column: &Column) -> Result<Vec<Option<String>>, String> {
    let mut out = Vec::with_capacity(column.len());
    for chunk in column.chunks() {
        for i in 0..chunk.len() {
            out.push(if chunk.is_valid(i) {
                let value = chunk.get(i).ok_or(MALFORMED)?;
                fold_name(std::str::from_utf8(value).map_err(|_| NOT_UTF8)?)
            } else {
                None
            });
        }
    }
    Ok(out)
}

/// The names of a field (see [`name_groups`]): the spellings grouped by their key.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Names<'a> {
    /// Per spelling, its name id (`-1` where it folds to nothing).
    pub of_spelling: Vec<i32>,
    /// Per name, the spelling it is known by: its most common (ties: the least hash).
    pub spelling: Vec<u32>,
    /// Per name, its key (the folded spelling without separators; borrowed when it has none).
    pub key: Vec<Cow<'a, str>>,
    /// Per name, the residents carrying any of its spellings.
    pub count: Vec<u32>,
    /// Per name, the tokens ([`token`]) of the first and the last part of its spelling's folded
    /// form, and its number of parts.
    pub first: Vec<i64>,
    pub last: Vec<i64>,
    pub parts: Vec<u32>,
}

/// The hasher of [`token`] (aHash with fixed seeds: the register and the queries of one run are
/// tokenised alike; nothing outside the run compares tokens).
const TOKENS: ahash::RandomState = ahash::RandomState::with_seeds(0x5EED, 1, 2, 3);

/// A name part as an integer.
pub fn token(part: &str) -> i64 {
    i64::from_ne_bytes(TOKENS.hash_one(part).to_ne_bytes())
}

/// The tokens of the first and the last part of a folded name, and its number of parts.
pub fn name_tokens(folded: &str) -> (i64, i64, u32) {
    let mut parts = folded.split(' ');
    let first = parts.next().unwrap_or_default();
    let (last, more) = parts.fold((first, 0u32), |(_, n), p| (p, n + 1));
    (token(first), token(last), more + 1)
}

/// The names of a field from its distinct spellings (`hashes`, `counts` and `folded` forms,
/// `None` for no letter): spellings with the same key are one name; names are numbered in the
/// order of their most common spelling (most residents first, ties by the lesser hash), and each
/// is known by that spelling's folded form.
///
/// # Panics
/// If the three differ in length or there are `i32::MAX` spellings or more.
pub fn name_groups<'a>(hashes: &[u64], counts: &[u32], folded: &'a [Option<String>]) -> Names<'a> {
    assert!(hashes.len() == counts.len() && counts.len() == folded.len(), "one hash and count per spelling");
    assert!(hashes.len() < i32::MAX as usize, "fewer than 2^31 - 1 spellings");
    let mut order: Vec<u32> = (0..hashes.len() as u32).filter(|&s| folded[s as usize].is_some()).collect();
    order.sort_unstable_by_key(|&s| (std::cmp::Reverse(counts[s as usize]), hashes[s as usize]));
    let mut ids: HashMap<Cow<'a, str>, u32, ahash::RandomState> =
        HashMap::with_capacity_and_hasher(order.len(), ahash::RandomState::new());
    let mut out = Names { of_spelling: vec![-1; hashes.len()], ..Names::default() };
    for s in order {
        let Some(form) = folded[s as usize].as_deref() else { continue };
        let key: Cow<'a, str> = if form.contains(' ') { form.replace(' ', "").into() } else { form.into() };
        let next = out.spelling.len() as u32;
        let id = *ids.entry(key).or_insert_with_key(|key| {
            let (first, last, parts) = name_tokens(form);
            out.spelling.push(s);
            out.key.push(key.clone());
            out.count.push(0);
            out.first.push(first);
            out.last.push(last);
            out.parts.push(parts);
            next
        });
        out.count[id as usize] += counts[s as usize];
        out.of_spelling[s as usize] = id as i32;
    }
    out
}

// ----------------------------------------------------------------------------- integer keys

/// The distinct values of a hash column (see [`distinct`]).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Distinct {
    /// Per row, the id of its value ([`NONE`] where the row is not valid); ids are numbered in
    /// the order of each value's first row.
    pub ids: Vec<u32>,
    /// Per id, the first row carrying the value.
    pub first: Vec<u32>,
    /// Per id, the number of rows carrying the value.
    pub count: Vec<u32>,
}

/// Fibonacci hashing of an already mixed 64-bit value into a table of `2^bits` slots.
#[inline]
fn slot(hash: u64, bits: u32) -> usize {
    (hash.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits)) as usize
}

/// An open-addressing table of (hash, id) slots (linear probing), kept at most half full.
struct Table {
    slots: Vec<(u64, u32)>,
    bits: u32,
}

impl Table {
    fn new(bits: u32) -> Self {
        Self { slots: vec![(0, NONE); 1 << bits], bits }
    }

    /// The id of `hash`, or the empty slot where it belongs.
    #[inline]
    fn find(&self, hash: u64) -> Result<u32, usize> {
        let mask = self.slots.len() - 1;
        let mut at = slot(hash, self.bits);
        loop {
            let (key, id) = self.slots[at];
            if id == NONE {
                return Err(at);
            }
            if key == hash {
                return Ok(id);
            }
            at = (at + 1) & mask;
        }
    }

    fn grow(&mut self) {
        let mut bigger = Self::new(self.bits + 1);
        for &(hash, id) in &self.slots {
            if id != NONE {
                if let Err(at) = bigger.find(hash) {
                    bigger.slots[at] = (hash, id);
                }
            }
        }
        *self = bigger;
    }
}

/// The distinct values of `hashes` among the rows where `valid` is true.
///
/// # Panics
/// If `hashes` and `valid` differ in length or have `u32::MAX` rows or more.
pub fn distinct(hashes: &[u64], valid: &[bool]) -> Distinct {
    assert_eq!(hashes.len(), valid.len(), "one validity flag per hash");
    assert!(hashes.len() < NONE as usize, "fewer than 2^32 - 1 rows");
    let mut table = Table::new(16);
    let mut out = Distinct { ids: Vec::with_capacity(hashes.len()), ..Distinct::default() };
    for (row, (&hash, &ok)) in hashes.iter().zip(valid).enumerate() {
        if !ok {
            out.ids.push(NONE);
            continue;
        }
        let id = match table.find(hash) {
            Ok(id) => id,
            Err(at) => {
                let id = out.first.len() as u32;
                table.slots[at] = (hash, id);
                out.first.push(row as u32);
                out.count.push(0);
                if 2 * out.first.len() > table.slots.len() {
                    table.grow();
                }
                id
            }
        };
        out.count[id as usize] += 1;
        out.ids.push(id);
    }
    out
}

/// Rows grouped by key, stably: `offsets` (`buckets + 1` of them) and `rows`, the rows of key
/// `k` being `rows[offsets[k]..offsets[k + 1]]` in ascending order. Rows whose key is `buckets`
/// or more are left out.
///
/// # Panics
/// If `keys` has `u32::MAX` rows or more.
pub fn counting_sort(keys: &[u32], buckets: usize) -> (Vec<u32>, Vec<u32>) {
    assert!(keys.len() < NONE as usize, "fewer than 2^32 - 1 rows");
    let mut counts = vec![0u32; buckets];
    for &key in keys {
        if let Some(c) = counts.get_mut(key as usize) {
            *c += 1;
        }
    }
    let offsets = offsets_of(counts);
    let mut next = offsets[..buckets].to_vec();
    let mut rows = vec![0u32; offsets[buckets] as usize];
    for (row, &key) in keys.iter().enumerate() {
        if let Some(at) = next.get_mut(key as usize) {
            rows[*at as usize] = row as u32;
            *at += 1;
        }
    }
    (offsets, rows)
}

/// The residents with both names (ids `given[r]`, `surname[r]`; negative for none) grouped two
/// ways (see [`pair_groups`]).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PairGroups {
    /// Rows grouped by surname id (ascending row within a surname): `surname_offsets` (one more
    /// than the surnames) and `surname_rows`.
    pub surname_offsets: Vec<u32>,
    pub surname_rows: Vec<u32>,
    /// Rows grouped by given-name id, then surname id, then row: `given_offsets` and `given_rows`.
    pub given_offsets: Vec<u32>,
    pub given_rows: Vec<u32>,
    /// Per row of `given_rows`: `given * surnames + surname`, ascending.
    pub pair_keys: Vec<u64>,
}

fn offsets_of(counts: Vec<u32>) -> Vec<u32> {
    let mut offsets = Vec::with_capacity(counts.len() + 1);
    offsets.push(0u32);
    let mut sum = 0u32;
    for c in counts {
        sum += c;
        offsets.push(sum);
    }
    offsets
}

/// Two stable counting sorts of the residents with both names (given-name ids below `givens`,
/// surname ids below `surnames`): by surname, then that order by given name. Each pass reads its
/// input in order and carries the other name with the row.
///
/// # Panics
/// If `given` and `surname` differ in length or have `u32::MAX` rows or more.
pub fn pair_groups(given: &[i32], surname: &[i32], givens: usize, surnames: usize) -> PairGroups {
    assert_eq!(given.len(), surname.len(), "one surname per given name");
    assert!(given.len() < NONE as usize, "fewer than 2^32 - 1 rows");
    let id = |v: i32, n: usize| usize::try_from(v).ok().filter(|&v| v < n);
    let mut s_counts = vec![0u32; surnames];
    let mut g_counts = vec![0u32; givens];
    for (&g, &s) in given.iter().zip(surname) {
        if let (Some(g), Some(s)) = (id(g, givens), id(s, surnames)) {
            s_counts[s] += 1;
            g_counts[g] += 1;
        }
    }
    let surname_offsets = offsets_of(s_counts);
    let given_offsets = offsets_of(g_counts);
    let both = surname_offsets[surnames] as usize;
    let (mut surname_rows, mut carried) = (vec![0u32; both], vec![0u32; both]);
    let mut next = surname_offsets[..surnames].to_vec();
    for (row, (&g, &s)) in given.iter().zip(surname).enumerate() {
        if let (Some(g), Some(s)) = (id(g, givens), id(s, surnames)) {
            let at = next[s] as usize;
            surname_rows[at] = row as u32;
            carried[at] = g as u32;
            next[s] += 1;
        }
    }
    let (mut given_rows, mut pair_keys) = (vec![0u32; both], vec![0u64; both]);
    let mut next = given_offsets[..givens].to_vec();
    for s in 0..surnames {
        for at in surname_offsets[s] as usize..surname_offsets[s + 1] as usize {
            let g = carried[at] as usize;
            let to = next[g] as usize;
            given_rows[to] = surname_rows[at];
            pair_keys[to] = g as u64 * surnames as u64 + s as u64;
            next[g] += 1;
        }
    }
    PairGroups { surname_offsets, surname_rows, given_offsets, given_rows, pair_keys }
}

/// The register's side of [`near_pairs`]: the residents grouped by day (CSR), each resident's
/// given-name and surname id (negative for none), and the token of each name id (its first
/// given-name part, its last surname part; [`NONE`] for none).
pub struct ByDay<'a> {
    pub offsets: &'a [u32],
    pub rows: &'a [u32],
    pub given: &'a [i32],
    pub surname: &'a [i32],
    pub given_token: &'a [u32],
    pub surname_token: &'a [u32],
}

impl ByDay<'_> {
    /// The token of the name of resident `row`; [`NONE`] for no name (or no such row or name).
    #[inline]
    fn token(ids: &[i32], tokens: &[u32], row: usize) -> u32 {
        ids.get(row)
            .and_then(|&id| usize::try_from(id).ok())
            .and_then(|id| tokens.get(id).copied())
            .unwrap_or(NONE)
    }
}

/// For each query entry `e` (`days[e]`, a day index within `register.offsets`, and
/// `wanted[4e..4e + 4]`: two given-name tokens, then two surname tokens, [`NONE`] for none): the
/// residents born that day whose given-name token is one of the entry's given-name tokens or
/// whose surname token is one of its surname tokens, as (entry, row) pairs in entry order.
///
/// # Panics
/// If `wanted` does not hold four tokens per day, or a day is out of range of the offsets.
pub fn near_pairs(register: &ByDay<'_>, days: &[u32], wanted: &[u32]) -> (Vec<u32>, Vec<u32>) {
    use rayon::prelude::*;
    assert_eq!(wanted.len(), 4 * days.len(), "four tokens per entry");
    // blocks of entries in parallel (each reads a few hundred residents per entry), in order
    let blocks: Vec<(Vec<u32>, Vec<u32>)> = (0..days.len().div_ceil(NEAR_BLOCK))
        .into_par_iter()
        .map(|b| near_block(register, days, wanted, b * NEAR_BLOCK..((b + 1) * NEAR_BLOCK).min(days.len())))
        .collect();
    let (mut entries, mut rows) = (Vec::new(), Vec::new());
    for (e, r) in blocks {
        entries.extend(e);
        rows.extend(r);
    }
    (entries, rows)
}

/// Entries per block of [`near_pairs`].
const NEAR_BLOCK: usize = 128;

/// [`near_pairs`] of the entries `range`.
fn near_block(register: &ByDay<'_>, days: &[u32], wanted: &[u32], range: std::ops::Range<usize>) -> (Vec<u32>, Vec<u32>) {
    let (mut entries, mut rows) = (Vec::new(), Vec::new());
    for entry in range {
        let (day, tokens) = (days[entry], &wanted[4 * entry..4 * entry + 4]);
        let (from, to) = (register.offsets[day as usize] as usize, register.offsets[day as usize + 1] as usize);
        for &row in &register.rows[from..to] {
            let g = ByDay::token(register.given, register.given_token, row as usize);
            let s = ByDay::token(register.surname, register.surname_token, row as usize);
            let hit = (g != NONE && (g == tokens[0] || g == tokens[1])) || (s != NONE && (s == tokens[2] || s == tokens[3]));
            if hit {
                entries.push(entry as u32);
                rows.push(row);
            }
        }
    }
    (entries, rows)
}

/// A set of 64-bit integers for [`rows_in`]: a bitmap of their hashes (one bit per value, in
/// 2^18 bits: a value not in the set is mostly turned away by one bit read from L1/L2 cache)
/// before the hash set itself.
pub struct Wanted {
    bits: Vec<u64>,
    set: std::collections::HashSet<i64, ahash::RandomState>,
}

const WANTED_BITS: u32 = 18;

impl Wanted {
    pub fn new(values: &[i64]) -> Self {
        let mut bits = vec![0u64; 1 << (WANTED_BITS - 6)];
        for &v in values {
            let b = Self::bit(v);
            bits[b >> 6] |= 1 << (b & 63);
        }
        let mut set = std::collections::HashSet::with_capacity_and_hasher(values.len(), ahash::RandomState::new());
        set.extend(values.iter().copied());
        Self { bits, set }
    }

    /// The bitmap position of `v`: the top bits of a multiplicative (Fibonacci) hash.
    #[inline]
    fn bit(v: i64) -> usize {
        ((v as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - WANTED_BITS)) as usize
    }

    #[inline]
    pub fn contains(&self, v: i64) -> bool {
        let b = Self::bit(v);
        self.bits[b >> 6] >> (b & 63) & 1 == 1 && self.set.contains(&v)
    }
}

/// The rows `offset + i` of `values` whose value is one of `wanted` and valid (`valid(i)`), ascending.
pub fn rows_in(values: &[i64], valid: impl Fn(usize) -> bool, wanted: &Wanted, offset: u32) -> Vec<u32> {
    let mut rows = Vec::new();
    for (i, &v) in values.iter().enumerate() {
        if wanted.contains(v) && valid(i) {
            rows.push(offset + i as u32);
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_in_finds_the_valid_rows_with_a_wanted_value_in_order() {
        let wanted = Wanted::new(&[7, -3, 7, i64::MIN]);
        let values = [1, 7, -3, 7, 0, 8, i64::MIN, i64::MAX];
        assert_eq!(rows_in(&values, |_| true, &wanted, 0), vec![1, 2, 3, 6]);
        assert_eq!(rows_in(&values, |i| i != 2, &wanted, 10), vec![11, 13, 16]);
        assert!(rows_in(&values, |_| true, &Wanted::new(&[]), 0).is_empty());
        // every value of a wide range against a set of a tenth of them: the bitmap never hides one
        let all: Vec<i64> = (0..100_000).map(|i| i * 7919 - 300_000).collect();
        let some: Vec<i64> = all.iter().copied().step_by(10).collect();
        let want: Vec<u32> = (0..100_000u32).step_by(10).collect();
        assert_eq!(rows_in(&all, |_| true, &Wanted::new(&some), 0), want);
    }

    fn fold(name: &str) -> Option<String> {
        fold_name(name)
    }

    #[test]
    fn fold_name_folds_danish_letters_case_accents_and_separators() {
        let cases = [
            ("Ærø", Some("aeroe")),
            ("AEROE", Some("aeroe")),
            (" Anne-Marie ", Some("anne marie")),
            ("A\u{030A}se", Some("aase")),
            ("Åse", Some("aase")),
            ("José", Some("jose")),
            ("O'Brien", Some("obrien")),
            ("Jörgen", Some("joergen")),
            ("o\u{0338}", Some("oe")),
            ("Ｓøｒｅｎ", Some("soeren")),
            ("Straße", Some("strasse")),
            ("Anne\u{00A0}\u{2013} Marie", Some("anne marie")),
            ("Ma\u{200D}rie", Some("marie")),
            ("a\u{0323}\u{030A}", Some("a")),
            ("İlker", Some("ilker")),
            ("Łukasz_Þór/Ðan", Some("lukasz thor dan")),
            (".", None),
            ("", None),
            ("李", None),
        ];
        for (name, want) in cases {
            assert_eq!(fold(name).as_deref(), want, "{name:?}");
        }
    }

    #[test]
    fn name_groups_number_names_by_their_most_common_spelling() {
        let some = |s: &str| Some(s.to_string());
        // spellings: "Anne Marie" (3), "Annemarie" (5), "Bo" (5, lesser hash), none (9)
        let folded = [some("anne marie"), some("annemarie"), some("bo"), None];
        let got = name_groups(&[7, 9, 2, 1], &[3, 5, 5, 9], &folded);
        assert_eq!(got.of_spelling, vec![1, 1, 0, -1]);
        assert_eq!(got.spelling, vec![2, 1]);
        assert_eq!(got.key, vec!["bo", "annemarie"]);
        assert_eq!(got.count, vec![5, 8]);
        assert_eq!((got.first[1], got.last[1], got.parts[1]), (token("annemarie"), token("annemarie"), 1));
        assert_eq!(name_tokens("anne marie louise"), (token("anne"), token("louise"), 3));
    }

    #[test]
    fn fold_column_folds_each_value_and_keeps_nulls() {
        use arrow_array::{ArrayRef, StringArray};
        use std::sync::Arc;
        let array: ArrayRef = Arc::new(StringArray::from(vec![Some("Åse"), None, Some("-")]));
        let column = Column::from_arrays([&array]).unwrap();
        assert_eq!(fold_column(&column).unwrap(), vec![Some("aase".to_string()), None, None]);
    }

    #[test]
    fn distinct_numbers_values_by_first_row_and_counts_them() {
        let hashes = [7, 3, 7, 0, 3, 7, 9];
        let valid = [true, true, true, false, true, true, true];
        let got = distinct(&hashes, &valid);
        assert_eq!(got.ids, vec![0, 1, 0, NONE, 1, 0, 2]);
        assert_eq!(got.first, vec![0, 1, 6]);
        assert_eq!(got.count, vec![3, 2, 1]);
    }

    #[test]
    fn distinct_survives_growing_and_colliding_slots() {
        // more values than the first table holds, many sharing their top bits
        let hashes: Vec<u64> = (0..200_000u64).map(|i| (i % 70_001) << 3).collect();
        let got = distinct(&hashes, &vec![true; hashes.len()]);
        assert_eq!(got.first.len(), 70_001);
        for (row, &id) in got.ids.iter().enumerate() {
            assert_eq!(hashes[got.first[id as usize] as usize], hashes[row]);
        }
        assert_eq!(got.count.iter().map(|&c| c as usize).sum::<usize>(), hashes.len());
    }

    #[test]
    fn counting_sort_is_stable_and_leaves_out_large_keys() {
        let keys = [2, 0, 2, NONE, 1, 0];
        let (offsets, rows) = counting_sort(&keys, 3);
        assert_eq!(offsets, vec![0, 2, 3, 5]);
        assert_eq!(rows, vec![1, 5, 4, 0, 2]);
    }

    #[test]
    fn near_pairs_match_a_given_or_a_surname_token_on_the_day() {
        // rows 0..4 born on day 0, rows 4..6 on day 1
        let register = ByDay {
            offsets: &[0, 4, 6],
            rows: &[0, 1, 2, 3, 4, 5],
            given: &[0, 1, -1, 0, 0, 1],
            surname: &[0, 0, 1, -1, 1, 1],
            given_token: &[10, 11],
            surname_token: &[20, NONE],
        };
        let wanted = [10, NONE, NONE, NONE, NONE, NONE, 20, NONE, 11, 10, NONE, NONE];
        let (entries, rows) = near_pairs(&register, &[0, 0, 1], &wanted);
        assert_eq!(entries, vec![0, 0, 1, 1, 2, 2]);
        assert_eq!(rows, vec![0, 3, 0, 1, 4, 5]);
    }

    #[test]
    fn near_pairs_of_many_entries_are_those_of_each_entry_in_entry_order() {
        let register = ByDay {
            offsets: &[0, 4, 6],
            rows: &[0, 1, 2, 3, 4, 5],
            given: &[0, 1, -1, 0, 0, 1],
            surname: &[0, 0, 1, -1, 1, 1],
            given_token: &[10, 11],
            surname_token: &[20, NONE],
        };
        let one = [[10, NONE, NONE, NONE], [NONE, NONE, 20, NONE], [11, 10, NONE, NONE], [NONE; 4]];
        let (mut days, mut wanted, mut want) = (Vec::new(), Vec::new(), (Vec::new(), Vec::new()));
        for e in 0..1000u32 {
            let (day, tokens) = (e % 2, one[(e as usize * 7) % 4]);
            let (_, rows) = near_pairs(&register, &[day], &tokens);
            want.0.extend(std::iter::repeat_n(e, rows.len()));
            want.1.extend(rows);
            days.push(day);
            wanted.extend(tokens);
        }
        assert_eq!(near_pairs(&register, &days, &wanted), want);
    }

    #[test]
    fn pair_groups_sort_the_residents_with_both_names() {
        let given = [1, 0, 1, -1, 0, 1];
        let surname = [0, 1, 1, 0, -1, 0];
        let got = pair_groups(&given, &surname, 2, 2);
        assert_eq!(got.surname_offsets, vec![0, 2, 4]);
        assert_eq!(got.surname_rows, vec![0, 5, 1, 2]);
        assert_eq!(got.given_offsets, vec![0, 1, 4]);
        assert_eq!(got.given_rows, vec![1, 0, 5, 2]);
        assert_eq!(got.pair_keys, vec![1, 2, 2, 3]);
    }
}

/// The Python functions of this module, registered in `socialsearch.crypto._native` (types in
/// `src/socialsearch/crypto/_native.pyi`). Columns come in as NumPy arrays (the buffer
/// protocol, copied once) and go out as `bytes` for `numpy.frombuffer`; the GIL is released
/// while a kernel works.
#[cfg(feature = "python")]
pub(crate) mod python {
    use pyo3::buffer::PyBuffer;
    use pyo3::exceptions::PyValueError;
    use pyo3::prelude::*;
    use pyo3::types::PyBytes;
    use std::sync::Arc;

    use arrow_array::{ArrayRef, StringArray};

    use crate::arrow::Output;
    use crate::python::le_bytes;

    /// `(ids, first, count)` of [`super::distinct`], each as `bytes` of little-endian u32.
    #[pyfunction]
    fn distinct_hashes<'py>(
        py: Python<'py>,
        hashes: PyBuffer<u64>,
        valid: PyBuffer<u8>,
    ) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
        let hashes = hashes.to_vec(py)?;
        let valid: Vec<bool> = valid.to_vec(py)?.into_iter().map(|v| v != 0).collect();
        if hashes.len() != valid.len() || hashes.len() >= super::NONE as usize {
            return Err(PyValueError::new_err("one validity flag per hash, fewer than 2^32 - 1 rows"));
        }
        let got = py.detach(move || super::distinct(&hashes, &valid));
        let u32s = |v: &[u32]| le_bytes(py, v, u32::to_le_bytes);
        Ok((u32s(&got.ids)?, u32s(&got.first)?, u32s(&got.count)?))
    }

    /// `(offsets, rows)` of [`super::counting_sort`], each as `bytes` of little-endian u32.
    #[pyfunction]
    fn group_rows<'py>(
        py: Python<'py>,
        keys: PyBuffer<u32>,
        buckets: usize,
    ) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
        let keys = keys.to_vec(py)?;
        if keys.len() >= super::NONE as usize || buckets >= super::NONE as usize {
            return Err(PyValueError::new_err("fewer than 2^32 - 1 rows and buckets"));
        }
        let (offsets, rows) = py.detach(move || super::counting_sort(&keys, buckets));
        Ok((le_bytes(py, &offsets, u32::to_le_bytes)?, le_bytes(py, &rows, u32::to_le_bytes)?))
    }

    /// A read-only, C-contiguous buffer as a slice.
    fn view<'b, T: pyo3::buffer::Element>(buffer: &'b PyBuffer<T>, what: &str) -> PyResult<&'b [T]> {
        if !buffer.readonly() {
            return Err(PyValueError::new_err(format!("{what} must be a read-only array")));
        }
        let pointer = buffer
            .as_slice_ptr()
            .ok_or_else(|| PyValueError::new_err(format!("{what} must be C-contiguous")))?;
        // SAFETY: `as_slice_ptr` checked that the buffer is C-contiguous and holds `item_count`
        // elements of `T` (the format was checked when the `PyBuffer<T>` was made); the buffer is
        // read-only, so no Python code writes to it, and `buffer` keeps it alive for the lifetime
        // of the slice; the caller holds the GIL while it reads.
        Ok(unsafe { pointer.as_ref() })
    }

    /// `(entries, rows)` of [`super::near_pairs`], as `bytes` of little-endian u32; the
    /// register's arrays are read in place (read-only NumPy arrays), with the GIL held.
    #[pyfunction]
    #[expect(clippy::too_many_arguments, reason = "the register's six arrays and the queries' two")]
    fn near_pairs<'py>(
        py: Python<'py>,
        offsets: PyBuffer<u32>,
        rows: PyBuffer<u32>,
        given: PyBuffer<i32>,
        surname: PyBuffer<i32>,
        given_token: PyBuffer<u32>,
        surname_token: PyBuffer<u32>,
        days: PyBuffer<u32>,
        wanted: PyBuffer<u32>,
    ) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
        let register = super::ByDay {
            offsets: view(&offsets, "offsets")?,
            rows: view(&rows, "rows")?,
            given: view(&given, "given")?,
            surname: view(&surname, "surname")?,
            given_token: view(&given_token, "given_token")?,
            surname_token: view(&surname_token, "surname_token")?,
        };
        let (days, wanted) = (days.to_vec(py)?, wanted.to_vec(py)?);
        let n_days = register.offsets.len().saturating_sub(1);
        if wanted.len() != 4 * days.len() || days.iter().any(|&d| d as usize >= n_days) {
            return Err(PyValueError::new_err("four tokens per entry, each day within the offsets"));
        }
        let bad_offsets = register.offsets.windows(2).any(|w| w[0] > w[1])
            || register.offsets.last().is_some_and(|&o| o as usize > register.rows.len());
        if bad_offsets {
            return Err(PyValueError::new_err("the offsets must ascend within the rows"));
        }
        let (entries, found) = super::near_pairs(&register, &days, &wanted);
        Ok((le_bytes(py, &entries, u32::to_le_bytes)?, le_bytes(py, &found, u32::to_le_bytes)?))
    }

    /// [`super::pair_groups`]'s grouping by given name then surname: `(given_offsets,
    /// given_rows)` as `bytes` of little-endian u32 and `pair_keys` as little-endian u64 (the
    /// grouping by surname is the first pass's, and Python reads none of it).
    #[pyfunction]
    fn pair_groups<'py>(
        py: Python<'py>,
        given: PyBuffer<i32>,
        surname: PyBuffer<i32>,
        givens: usize,
        surnames: usize,
    ) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
        let (given, surname) = (given.to_vec(py)?, surname.to_vec(py)?);
        if given.len() != surname.len() || given.len() >= super::NONE as usize {
            return Err(PyValueError::new_err("one surname per given name, fewer than 2^32 - 1 rows"));
        }
        let got = py.detach(move || super::pair_groups(&given, &surname, givens, surnames));
        Ok((
            le_bytes(py, &got.given_offsets, u32::to_le_bytes)?,
            le_bytes(py, &got.given_rows, u32::to_le_bytes)?,
            le_bytes(py, &got.pair_keys, u64::to_le_bytes)?,
        ))
    }

    /// A column of strings (nullable) as an Arrow `Utf8` array for `pl.Series(...)`.
    fn strings(values: &[Option<String>]) -> crate::python::ArrowArray {
        let array: ArrayRef = Arc::new(StringArray::from_iter(values.iter().map(Option::as_deref)));
        crate::python::ArrowArray::new(Output::from_array(array))
    }

    /// Every value of a string column folded by [`super::fold_name`], as a string column.
    #[pyfunction]
    fn fold_names(py: Python<'_>, values: &Bound<'_, PyAny>) -> PyResult<crate::python::ArrowArray> {
        let column = crate::python::column(values)?;
        let folded = py.detach(move || super::fold_column(&column)).map_err(PyValueError::new_err)?;
        Ok(strings(&folded))
    }

    /// What [`name_groups`] gives Python: the per-spelling and per-name integer columns as
    /// little-endian `bytes`, the keys and folded forms as string columns.
    type NamesOut<'py> = (
        Bound<'py, PyBytes>,
        Bound<'py, PyBytes>,
        crate::python::ArrowArray,
        crate::python::ArrowArray,
        Bound<'py, PyBytes>,
        Bound<'py, PyBytes>,
        Bound<'py, PyBytes>,
        Bound<'py, PyBytes>,
    );

    /// [`super::name_groups`] of the distinct spellings `raw` (a string column, folded here) with
    /// their `hashes` (uint64) and `counts` (uint32): `(of_spelling (int32), spelling (uint32),
    /// key, folded, count (uint32), first, last (int64 tokens), parts (uint32))`.
    #[pyfunction]
    fn name_groups<'py>(
        py: Python<'py>,
        hashes: PyBuffer<u64>,
        counts: PyBuffer<u32>,
        raw: &Bound<'py, PyAny>,
    ) -> PyResult<NamesOut<'py>> {
        let (hashes, counts) = (hashes.to_vec(py)?, counts.to_vec(py)?);
        let column = crate::python::column(raw)?;
        if hashes.len() != counts.len() || hashes.len() != column.len() || hashes.len() >= i32::MAX as usize {
            return Err(PyValueError::new_err("one hash and count per spelling, fewer than 2^31 - 1"));
        }
        let folded = py.detach(move || super::fold_column(&column)).map_err(PyValueError::new_err)?;
        let names = py.detach(|| super::name_groups(&hashes, &counts, &folded));
        let keys: ArrayRef = Arc::new(StringArray::from_iter_values(names.key.iter()));
        let forms: ArrayRef = Arc::new(StringArray::from_iter(names.spelling.iter().map(|&s| folded[s as usize].as_deref())));
        Ok((
            le_bytes(py, &names.of_spelling, i32::to_le_bytes)?,
            le_bytes(py, &names.spelling, u32::to_le_bytes)?,
            crate::python::ArrowArray::new(Output::from_array(keys)),
            crate::python::ArrowArray::new(Output::from_array(forms)),
            le_bytes(py, &names.count, u32::to_le_bytes)?,
            le_bytes(py, &names.first, i64::to_le_bytes)?,
            le_bytes(py, &names.last, i64::to_le_bytes)?,
            le_bytes(py, &names.parts, u32::to_le_bytes)?,
        ))
    }

    /// [`super::name_tokens`] of every value of a string column of folded names (nulls give
    /// tokens -1 and one part): `(first, last)` as little-endian int64 `bytes`, `parts` as uint32.
    #[pyfunction]
    fn name_tokens<'py>(
        py: Python<'py>,
        folded: &Bound<'py, PyAny>,
    ) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
        let column = crate::python::column(folded)?;
        let mut tokens = (Vec::new(), Vec::new(), Vec::new());
        for chunk in column.chunks() {
            for i in 0..chunk.len() {
                let value = chunk.is_valid(i).then(|| chunk.get(i)).flatten().map(std::str::from_utf8);
                let (first, last, parts) = match value {
                    Some(Ok(name)) => super::name_tokens(name),
                    Some(Err(_)) => return Err(PyValueError::new_err(super::NOT_UTF8)),
                    None => (-1, -1, 1),
                };
                tokens.0.push(first);
                tokens.1.push(last);
                tokens.2.push(parts);
            }
        }
        Ok((
            le_bytes(py, &tokens.0, i64::to_le_bytes)?,
            le_bytes(py, &tokens.1, i64::to_le_bytes)?,
            le_bytes(py, &tokens.2, u32::to_le_bytes)?,
        ))
    }

    /// [`super::rows_in`] of a column of 64-bit integers (anything with `__arrow_c_stream__` of
    /// type `Int64`, read in place, chunk by chunk in parallel; nulls never match): the rows
    /// whose value is one of `wanted` (an int64 NumPy array), as little-endian u32 `bytes`.
    #[pyfunction]
    fn rows_in<'py>(py: Python<'py>, values: &Bound<'py, PyAny>, wanted: PyBuffer<i64>) -> PyResult<Bound<'py, PyBytes>> {
        use arrow_array::cast::AsArray;
        use arrow_array::ffi_stream::{ArrayStreamReader, FFI_ArrowArrayStream};
        use arrow_array::types::Int64Type;
        use arrow_array::{Array, ArrayReader};
        use pyo3::types::{PyCapsule, PyCapsuleMethods};
        use rayon::prelude::*;

        let capsule = values
            .call_method0("__arrow_c_stream__")
            .map_err(|_| PyValueError::new_err("expected a column with __arrow_c_stream__ (a polars Series)"))?;
        let capsule = capsule.cast_into::<PyCapsule>().map_err(|e| PyValueError::new_err(e.to_string()))?;
        let stream = capsule.pointer_checked(Some(c"arrow_array_stream"))?;
        // SAFETY: the PyCapsule interface: a capsule named "arrow_array_stream" points to an
        // initialised `ArrowArrayStream` that its producer made, aligned and writable, and the
        // capsule (alive: `capsule` holds it) owns it; `from_raw` moves it out and leaves a
        // released stream behind, which the capsule's destructor then ignores.
        let reader = unsafe { ArrayStreamReader::from_raw(stream.as_ptr().cast::<FFI_ArrowArrayStream>()) }
            .map_err(|e| PyValueError::new_err(format!("the Arrow stream failed to give its schema: {e}")))?;
        if reader.field().data_type() != &arrow_schema::DataType::Int64 {
            return Err(PyValueError::new_err("expected an Int64 column"));
        }
        let arrays: Vec<ArrayRef> = reader
            .collect::<Result<_, _>>()
            .map_err(|e| PyValueError::new_err(format!("the Arrow stream failed: {e}")))?;
        let starts: Vec<usize> = arrays
            .iter()
            .scan(0usize, |at, a| {
                let start = *at;
                *at += a.len();
                Some(start)
            })
            .collect();
        if arrays.iter().map(|a| a.len()).sum::<usize>() >= super::NONE as usize {
            return Err(PyValueError::new_err("fewer than 2^32 - 1 rows"));
        }
        let wanted = super::Wanted::new(&wanted.to_vec(py)?);
        let rows: Vec<u32> = py.detach(move || {
            let parts: Vec<Vec<u32>> = arrays
                .par_iter()
                .zip(starts.par_iter())
                .map(|(array, &start)| {
                    let ints = array.as_primitive::<Int64Type>();
                    let nulls = ints.nulls();
                    let valid = |i: usize| nulls.is_none_or(|n| n.is_valid(i));
                    super::rows_in(ints.values(), valid, &wanted, start as u32)
                })
                .collect();
            parts.concat()
        });
        le_bytes(py, &rows, u32::to_le_bytes)
    }

    pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add_function(wrap_pyfunction!(distinct_hashes, m)?)?;
        m.add_function(wrap_pyfunction!(fold_names, m)?)?;
        m.add_function(wrap_pyfunction!(name_groups, m)?)?;
        m.add_function(wrap_pyfunction!(name_tokens, m)?)?;
        m.add_function(wrap_pyfunction!(pair_groups, m)?)?;
        m.add_function(wrap_pyfunction!(group_rows, m)?)?;
        m.add_function(wrap_pyfunction!(near_pairs, m)?)?;
        m.add_function(wrap_pyfunction!(rows_in, m)?)?;
        Ok(())
    }
}

