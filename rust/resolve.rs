//! The register index of the station's resolution, over whole integer columns:
//!
//! * [`fold_name`]: a name folded for comparison (NFKC, case, Danish letters, accents,
//!   separators), and [`fold_strings`] over a whole string column read in place;
//! * [`distinct_strings`]: the distinct values of a string column (the spellings of a name
//!   column) by a 64-bit hash, with per row the id of its value and per value its number of rows;
//! * [`name_groups`]: the spellings of a name column grouped by their key into names;
//! * [`counting_sort`]: rows grouped by a small integer key (a day number) in CSR layout,
//!   offsets and row ids, by a stable counting sort;
//! * [`pair_groups`]: the residents with both names grouped by given name then surname, with the
//!   sorted keys of their name pairs (a counting sort by given name, then a sort within each name);
//! * [`near_pairs`]: for each (day, up to four name tokens) of the queries, the residents born
//!   that day whose first given-name token or last surname token is one of them;
//! * [`rows_in`]: the rows of a 64-bit integer column (CPR numbers of the relations) whose value
//!   is one of a few (the persons of the week's events), one hashed pass.
//!
//! Each is one or two passes; none allocates per row.


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
    let mut out = String::with_capacity(name.len() + 4);
    fold_into(name, &mut out);
    (!out.is_empty()).then_some(out)
}

/// [`fold_name`] of `name` appended to `out` (nothing appended for `None`).
pub fn fold_into(name: &str, out: &mut String) {
    if !fold_plain_into(name, out) {
        fold_unicode_into(name, out);
    }
}

/// The general case of [`fold_into`], with the Unicode tables.
fn fold_unicode_into(name: &str, out: &mut String) {
    let visible: String = name.nfkc().filter(|&c| c.general_category() != GeneralCategory::Format).collect();
    let chars: Vec<char> = visible.to_lowercase().nfd().collect();
    let start = out.len();
    let mut gap = false;
    let mut letters = |s: &str, gap: &mut bool| {
        if *gap && out.len() > start {
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
}

/// [`fold_name`] of a name of ASCII characters and the Danish letters æ, ø, å (either case) only,
/// none of which composes with its neighbours, appended to `out`: each character on its own.
/// For any other name nothing is appended and the result is `false`. The folding of what most
/// names are written with, without the Unicode tables.
fn fold_plain_into(name: &str, out: &mut String) -> bool {
    let start = out.len();
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
            _ => {
                out.truncate(start);
                return false;
            }
        };
        if gap && out.len() > start {
            out.push(' ');
        }
        gap = false;
        out.push_str(letters);
    }
    true
}

const NOT_UTF8: &str = "a name is not UTF-8 text";
const MALFORMED: &str = "the Arrow array is malformed (a value lies outside its buffers)";

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

/// The names of a field (see [`name_groups`]): the spellings grouped by their key.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Names {
    /// Per spelling, its name id (`-1` where it folds to nothing).
    pub of_spelling: Vec<i32>,
    /// Per name, the spelling it is known by: its most common (ties: the least hash).
    pub spelling: Vec<u32>,
    /// Per name, its key (the folded spelling without separators).
    pub key: Strings,
    /// Per name, the residents carrying any of its spellings.
    pub count: Vec<u32>,
    /// Per name, the tokens ([`token`]) of the first and the last part of its spelling's folded
    /// form, and its number of parts.
    pub first: Vec<i64>,
    pub last: Vec<i64>,
    pub parts: Vec<u32>,
}

/// The names of a field from its distinct spellings (`hashes`, `counts` and `folded` forms, empty
/// for no letter): spellings with the same key are one name; names are numbered in the order of
/// their most common spelling (most residents first, ties by the lesser hash, then the lesser
/// spelling), and each is known by that spelling's folded form.
///
/// # Panics
/// If the three differ in length or there are `i32::MAX` spellings or more.
pub fn name_groups(hashes: &[u64], counts: &[u32], folded: &Strings) -> Names {
    assert!(hashes.len() == counts.len() && counts.len() == folded.len(), "one hash and count per spelling");
    assert!(hashes.len() < i32::MAX as usize, "fewer than 2^31 - 1 spellings");
    // One pass over the spellings in turn: each key's first-seen number, its residents, and its
    // most common spelling (the least by count, descending, hash, spelling) with that one's tokens.
    let rank = |s: u32| (std::cmp::Reverse(counts[s as usize]), hashes[s as usize], s);
    let mut keys = StringSet::default();
    let mut key_of = vec![-1i32; hashes.len()];
    let mut by_key = Names::default();
    let mut key = Vec::new();
    for (s, form) in folded.iter().enumerate() {
        if form.is_empty() {
            continue;
        }
        let s = s as u32;
        let (k, new) = if form.contains(' ') {
            key.clear();
            key.extend(form.bytes().filter(|&b| b != b' '));
            keys.insert(&key)
        } else {
            keys.insert(form.as_bytes())
        }
        .expect("a folded name is UTF-8 text");
        let k = k as usize;
        if new {
            by_key.spelling.push(s);
            by_key.count.push(0);
            by_key.first.push(0);
            by_key.last.push(0);
            by_key.parts.push(0);
        }
        if new || rank(s) < rank(by_key.spelling[k]) {
            let (first, last, parts) = name_tokens(form);
            (by_key.spelling[k], by_key.first[k], by_key.last[k], by_key.parts[k]) = (s, first, last, parts);
        }
        by_key.count[k] += counts[s as usize];
        key_of[s as usize] = k as i32;
    }
    // the names: the keys in the order of their most common spelling
    let mut order: Vec<_> = by_key.spelling.iter().map(|&s| rank(s)).zip(0u32..).collect();
    order.sort_unstable();
    let seen = keys.into_values().0;
    let mut id_of = vec![0i32; order.len()];
    let mut out = Names::default();
    for (id, &(_, k)) in order.iter().enumerate() {
        let k = k as usize;
        id_of[k] = id as i32;
        out.spelling.push(by_key.spelling[k]);
        out.key.push(seen.get(k));
        out.count.push(by_key.count[k]);
        out.first.push(by_key.first[k]);
        out.last.push(by_key.last[k]);
        out.parts.push(by_key.parts[k]);
    }
    out.of_spelling = key_of.into_iter().map(|k| if k < 0 { -1 } else { id_of[k as usize] }).collect();
    out
}

// ----------------------------------------------------------------------------- integer keys

/// Strings stored back to back: value `i` is `text[offsets[i]..offsets[i + 1]]`.
#[derive(Debug, PartialEq, Eq)]
pub struct Strings {
    text: String,
    offsets: Vec<usize>,
}

impl Default for Strings {
    fn default() -> Self {
        Self { text: String::new(), offsets: vec![0] }
    }
}

impl Strings {
    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Value `i`.
    ///
    /// # Panics
    /// If there is no value `i`.
    #[inline]
    pub fn get(&self, i: usize) -> &str {
        &self.text[self.offsets[i]..self.offsets[i + 1]]
    }

    /// Every value, in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    fn push(&mut self, value: &str) {
        self.text.push_str(value);
        self.offsets.push(self.text.len());
    }

    /// The text and the offsets (one more than the values), for an Arrow string array.
    pub fn into_parts(self) -> (String, Vec<usize>) {
        (self.text, self.offsets)
    }
}

/// The hasher of [`distinct_strings`] and [`StringSet`] (fixed seeds, so that runs are alike).
const SPELLINGS: ahash::RandomState = ahash::RandomState::with_seeds(0x5EED, 4, 5, 6);

/// Fibonacci hashing of an already mixed 64-bit value into a table of `2^bits` slots.
#[inline]
fn slot(hash: u64, bits: u32) -> usize {
    (hash.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits)) as usize
}

/// Bytes of a string kept in its [`Slot`].
const PREFIX: usize = 12;

/// A slot of a [`StringSet`]: a string's length and first bytes (zero-padded), its id ([`NONE`]
/// for an empty slot) and how many times it was inserted. A string of up to [`PREFIX`] bytes is
/// compared in the slot alone.
#[derive(Clone, Copy)]
struct Slot {
    len: u32,
    prefix: [u8; PREFIX],
    id: u32,
    count: u32,
}

const EMPTY: Slot = Slot { len: 0, prefix: [0; PREFIX], id: NONE, count: 0 };

/// The length (saturated) and the first [`PREFIX`] bytes of `value`, zero-padded.
#[inline]
fn head(value: &[u8]) -> (u32, [u8; PREFIX]) {
    let mut prefix = [0; PREFIX];
    let n = value.len().min(PREFIX);
    prefix[..n].copy_from_slice(&value[..n]);
    (u32::try_from(value.len()).unwrap_or(u32::MAX), prefix)
}

/// Distinct strings, each with an id (ids in order of insertion) and the number of times it was
/// inserted: the strings back to back and an open-addressing table (linear probing, at most 70%
/// full) of [`Slot`]s. A string is found by comparing its bytes (in the slot, and past its first
/// [`PREFIX`] bytes in the strings), so two strings sharing a hash are still two; a string found
/// again costs one read of the table.
pub struct StringSet {
    values: Strings,
    slots: Vec<Slot>,
    bits: u32,
    hash: fn(&[u8]) -> u64,
}

impl Default for StringSet {
    fn default() -> Self {
        Self::with_hasher(|value| SPELLINGS.hash_one(value))
    }
}

impl StringSet {
    /// An empty set hashing with `hash` (any function: it decides where a string is looked for,
    /// never whether two strings are one).
    pub fn with_hasher(hash: fn(&[u8]) -> u64) -> Self {
        Self { values: Strings::default(), slots: vec![EMPTY; 1 << 10], bits: 10, hash }
    }

    /// The id of `value` (counted once more) and whether it is new (then added, if it is UTF-8
    /// text).
    ///
    /// # Errors
    /// When `value` is new and not UTF-8 text.
    ///
    /// # Panics
    /// If it would be the `u32::MAX`-th string.
    #[inline]
    pub fn insert(&mut self, value: &[u8]) -> Result<(u32, bool), std::str::Utf8Error> {
        self.insert_hashed(value, (self.hash)(value))
    }

    /// [`StringSet::insert`] of a string whose hash is known.
    #[inline]
    fn insert_hashed(&mut self, value: &[u8], hash: u64) -> Result<(u32, bool), std::str::Utf8Error> {
        let (len, prefix) = head(value);
        let mask = self.slots.len() - 1;
        let mut at = slot(hash, self.bits);
        loop {
            let stored = &mut self.slots[at];
            if stored.id == NONE {
                break;
            }
            if stored.len == len
                && stored.prefix == prefix
                && (value.len() <= PREFIX || self.values.get(stored.id as usize).as_bytes() == value)
            {
                stored.count += 1;
                return Ok((stored.id, false));
            }
            at = (at + 1) & mask;
        }
        let text = std::str::from_utf8(value)?;
        let id = u32::try_from(self.values.len()).ok().filter(|&id| id < NONE).expect("fewer than 2^32 - 1 strings");
        self.values.push(text);
        self.slots[at] = Slot { len, prefix, id, count: 1 };
        if 10 * self.values.len() > 7 * self.slots.len() {
            self.grow();
        }
        Ok((id, true))
    }

    fn grow(&mut self) {
        let mut slots = vec![EMPTY; 2 * self.slots.len()];
        let (bits, mask) = (self.bits + 1, slots.len() - 1);
        for &stored in self.slots.iter().filter(|s| s.id != NONE) {
            let mut at = slot((self.hash)(self.values.get(stored.id as usize).as_bytes()), bits);
            while slots[at].id != NONE {
                at = (at + 1) & mask;
            }
            slots[at] = stored;
        }
        (self.slots, self.bits) = (slots, bits);
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The strings by id, and by id the number of times each was inserted.
    pub fn into_values(self) -> (Strings, Vec<u32>) {
        let mut counts = vec![0; self.values.len()];
        for stored in self.slots.iter().filter(|s| s.id != NONE) {
            counts[stored.id as usize] = stored.count;
        }
        (self.values, counts)
    }
}

/// The distinct values of a string column (see [`distinct_strings`]).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Distinct {
    /// Per row, the id of its value ([`NONE`] for a null); ids are numbered in the order of each
    /// value's first row.
    pub ids: Vec<u32>,
    /// Per id, the number of rows carrying the value.
    pub count: Vec<u32>,
    /// Per id, the value.
    pub values: Strings,
}

/// The distinct values of the string column `column` by a 64-bit hash of each (aHash with fixed
/// seeds), in one pass over its rows read in place: two values sharing a hash (about one run in
/// 10^8 for half a million values) would be one, known by the first.
///
/// # Errors
/// When a value lies outside its buffers or is not UTF-8, or there are `u32::MAX` rows or more.
pub fn distinct_strings(column: &Column) -> Result<Distinct, String> {
    distinct_strings_by(column, |value| SPELLINGS.hash_one(value))
}

/// [`distinct_strings`] with the hash function `hash`.
fn distinct_strings_by(column: &Column, hash: fn(&[u8]) -> u64) -> Result<Distinct, String> {
    const BLOCK: usize = 4096;
    if column.len() >= NONE as usize {
        return Err("fewer than 2^32 - 1 rows".into());
    }
    let mut table = HashCounts::default();
    let mut out = Distinct { ids: Vec::with_capacity(column.len()), ..Distinct::default() };
    let mut hashes = Vec::with_capacity(BLOCK);
    for chunk in column.chunks() {
        for from in (0..chunk.len()).step_by(BLOCK) {
            // the block's hashes first, then the table: each loop keeps many reads in flight
            let rows = from..chunk.len().min(from + BLOCK);
            hashes.clear();
            hashes.extend(rows.clone().map(|i| if chunk.is_valid(i) { chunk.get(i).map(hash) } else { Some(0) }));
            for (i, &h) in rows.zip(&hashes) {
                let h = h.ok_or(MALFORMED)?;
                if !chunk.is_valid(i) {
                    out.ids.push(NONE);
                    continue;
                }
                let (id, new) = table.insert(h);
                if new {
                    let value = chunk.get(i).ok_or(MALFORMED)?;
                    out.values.push(std::str::from_utf8(value).map_err(|_| NOT_UTF8)?);
                }
                out.ids.push(id);
            }
        }
    }
    out.count = table.into_counts();
    Ok(out)
}

/// Distinct 64-bit hashes, each with an id (in order of insertion) and the number of times it
/// was inserted: an open-addressing table (linear probing, at most half full) of (hash, id,
/// count) slots.
struct HashCounts {
    slots: Vec<(u64, u32, u32)>,
    bits: u32,
    len: usize,
}

impl Default for HashCounts {
    fn default() -> Self {
        Self { slots: vec![(0, NONE, 0); 1 << 10], bits: 10, len: 0 }
    }
}

impl HashCounts {
    /// The id of `hash` (counted once more), and whether it is new.
    #[inline]
    fn insert(&mut self, hash: u64) -> (u32, bool) {
        let mask = self.slots.len() - 1;
        let mut at = slot(hash, self.bits);
        loop {
            let stored = &mut self.slots[at];
            if stored.1 == NONE {
                break;
            }
            if stored.0 == hash {
                stored.2 += 1;
                return (stored.1, false);
            }
            at = (at + 1) & mask;
        }
        let id = self.len as u32;
        self.slots[at] = (hash, id, 1);
        self.len += 1;
        if 2 * self.len > self.slots.len() {
            let mut bigger = vec![(0, NONE, 0); 2 * self.slots.len()];
            let (bits, mask) = (self.bits + 1, bigger.len() - 1);
            for &stored in self.slots.iter().filter(|s| s.1 != NONE) {
                let mut at = slot(stored.0, bits);
                while bigger[at].1 != NONE {
                    at = (at + 1) & mask;
                }
                bigger[at] = stored;
            }
            (self.slots, self.bits) = (bigger, bits);
        }
        (id, true)
    }

    /// The number of times each id was inserted.
    fn into_counts(self) -> Vec<u32> {
        let mut counts = vec![0; self.len];
        for &(_, id, count) in self.slots.iter().filter(|s| s.1 != NONE) {
            counts[id as usize] = count;
        }
        counts
    }
}

/// Every value of the string column `column` folded by [`fold_name`], back to back (empty for a
/// null and where no letter is left).
///
/// # Errors
/// When a value lies outside its buffers or is not UTF-8.
pub fn fold_strings(column: &Column) -> Result<Strings, String> {
    let mut out = Strings::default();
    out.offsets.reserve(column.len());
    for chunk in column.chunks() {
        for i in 0..chunk.len() {
            if chunk.is_valid(i) {
                let value = chunk.get(i).ok_or(MALFORMED)?;
                fold_into(std::str::from_utf8(value).map_err(|_| NOT_UTF8)?, &mut out.text);
            }
            out.offsets.push(out.text.len());
        }
    }
    Ok(out)
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

/// The residents with both names (ids `given[r]`, `surname[r]`; negative for none) grouped by
/// given-name id, then surname id, then row (see [`pair_groups`]).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PairGroups {
    /// `given_offsets` (one more than the given names) and `given_rows`: the rows of given name
    /// `g` are `given_rows[given_offsets[g]..given_offsets[g + 1]]`.
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

/// The residents with both names (given-name ids below `givens`, surname ids below `surnames`)
/// by a stable counting sort by given name, each row written with its surname id above it, then
/// each given name's rows sorted by (surname, row) within the name (in cache, in parallel over
/// the names). The counting sort runs on two threads, one per half of the given names (split
/// where the rows are halved), each writing only its own contiguous part of the output.
///
/// # Panics
/// If `given` and `surname` differ in length or have `u32::MAX` rows or more.
pub fn pair_groups(given: &[i32], surname: &[i32], givens: usize, surnames: usize) -> PairGroups {
    use rayon::prelude::*;
    assert_eq!(given.len(), surname.len(), "one surname per given name");
    assert!(given.len() < NONE as usize, "fewer than 2^32 - 1 rows");
    let mid = given.len() / 2;
    let (low, high) = rayon::join(
        || given_counts(&given[..mid], &surname[..mid], givens, surnames),
        || given_counts(&given[mid..], &surname[mid..], givens, surnames),
    );
    let given_offsets = offsets_of(low.into_iter().zip(high).map(|(a, b)| a + b).collect());
    let both = given_offsets[givens] as usize;
    // (surname << 32 | row) per row, then, in place, its pair key
    let mut pair_keys = vec![0u64; both];
    let split = halfway(&given_offsets);
    {
        let (low, high) = pair_keys.split_at_mut(given_offsets[split] as usize);
        let pass = |buckets: std::ops::Range<usize>, out: &mut [u64]| {
            by_given(given, surname, surnames, &given_offsets, buckets, out);
        };
        rayon::join(|| pass(0..split, low), || pass(split..givens, high));
    }
    let mut given_rows = vec![0u32; both];
    let mut groups = Vec::with_capacity(givens);
    let (mut keys, mut rows) = (pair_keys.as_mut_slice(), given_rows.as_mut_slice());
    for g in 0..givens {
        let n = (given_offsets[g + 1] - given_offsets[g]) as usize;
        let (k, rest_keys) = keys.split_at_mut(n);
        let (r, rest_rows) = rows.split_at_mut(n);
        (keys, rows) = (rest_keys, rest_rows);
        if n > 0 {
            groups.push((g as u64, k, r));
        }
    }
    let surnames = surnames as u64;
    groups.into_par_iter().with_min_len(64).for_each(|(g, keys, rows)| {
        keys.sort_unstable();
        for (key, row) in keys.iter_mut().zip(rows) {
            *row = *key as u32;
            *key = g * surnames + (*key >> 32);
        }
    });
    PairGroups { given_offsets, given_rows, pair_keys }
}

/// The rows with both names among `given`/`surname` (ids below `givens`/`surnames`) per
/// given-name id.
fn given_counts(given: &[i32], surname: &[i32], givens: usize, surnames: usize) -> Vec<u32> {
    let mut counts = vec![0u32; givens];
    for (&g, &s) in given.iter().zip(surname) {
        // a negative id is 2^31 or more as u32, past any count
        let (g, s) = (g as u32 as usize, s as u32 as usize);
        if g < givens && s < surnames {
            counts[g] += 1;
        }
    }
    counts
}

/// The first bucket of `offsets` (ascending, one more than the buckets) that starts at half of
/// the rows or later: the buckets before it hold about half of them.
fn halfway(offsets: &[u32]) -> usize {
    let half = offsets.last().map_or(0, |&n| n / 2);
    offsets.partition_point(|&o| o < half).min(offsets.len().saturating_sub(1))
}

/// The counting sort of [`pair_groups`] for the given names `buckets`: their rows with both
/// names, in row order per given name, each as `surname << 32 | row`, into `out` (their part of
/// the output, from `offsets[buckets.start]`).
fn by_given(given: &[i32], surname: &[i32], surnames: usize, offsets: &[u32], buckets: std::ops::Range<usize>, out: &mut [u64]) {
    let base = offsets[buckets.start];
    let mut next: Vec<u32> = offsets[buckets.clone()].iter().map(|&o| o - base).collect();
    let (first, span) = (buckets.start, buckets.len());
    for (row, (&g, &s)) in given.iter().zip(surname).enumerate() {
        // a negative id is 2^31 or more as u32, past any count
        let (g, s) = ((g as u32 as usize).wrapping_sub(first), s as u32 as usize);
        if g < span && s < surnames {
            let at = next[g] as usize;
            out[at] = (s as u64) << 32 | row as u64;
            next[g] += 1;
        }
    }
}

/// Per given name `a`, Σ_b c_ab (c_ab - 1) / c_b over the surnames `b` it is paired with, and
/// per surname `b`, Σ_a c_ab (c_ab - 1) / c_a: `c_ab` the rows of the pair (a run of
/// `pair_keys`, ascending keys `given * surnames + surname`), `c_a` and `c_b` the names' counts
/// (`given_counts`, `surname_counts`). Each sum is taken in ascending order of pair key, and a
/// pair of one row (a term of 0) is left out. The two fields' sums are taken on two threads.
///
/// # Panics
/// If a key's names are outside the counts.
pub fn pair_sums(pair_keys: &[u64], surnames: usize, given_counts: &[f64], surname_counts: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let surnames = surnames.max(1) as u64;
    let sums = |own: usize, other: &[f64], given_side: bool| {
        let mut out = vec![0.0; own];
        let mut at = 0;
        while at < pair_keys.len() {
            let key = pair_keys[at];
            let run = pair_keys[at..].iter().take_while(|&&k| k == key).count();
            at += run;
            if run < 2 {
                continue;
            }
            let (g, s) = ((key / surnames) as usize, (key % surnames) as usize);
            let c = run as f64;
            if given_side {
                out[g] += c * (c - 1.0) / other[s];
            } else {
                out[s] += c * (c - 1.0) / other[g];
            }
        }
        out
    };
    rayon::join(|| sums(given_counts.len(), surname_counts, true), || sums(surname_counts.len(), given_counts, false))
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

    fn strings(values: &[&str]) -> Strings {
        let mut out = Strings::default();
        for v in values {
            out.push(v);
        }
        out
    }

    #[test]
    fn name_groups_number_names_by_their_most_common_spelling() {
        // spellings: "Anne Marie" (3), "Annemarie" (5), "Bo" (5, lesser hash), none (9)
        let folded = strings(&["anne marie", "annemarie", "bo", ""]);
        let got = name_groups(&[7, 9, 2, 1], &[3, 5, 5, 9], &folded);
        assert_eq!(got.of_spelling, vec![1, 1, 0, -1]);
        assert_eq!(got.spelling, vec![2, 1]);
        assert_eq!(got.key.iter().collect::<Vec<_>>(), vec!["bo", "annemarie"]);
        assert_eq!(got.count, vec![5, 8]);
        assert_eq!((got.first[1], got.last[1], got.parts[1]), (token("annemarie"), token("annemarie"), 1));
        assert_eq!(name_tokens("anne marie louise"), (token("anne"), token("louise"), 3));
    }

    #[test]
    fn name_groups_break_a_tie_of_count_and_hash_by_the_lesser_spelling() {
        // two spellings of one key sharing their hash and count: the first is the name's form
        let folded = strings(&["anne marie", "annemarie"]);
        let got = name_groups(&[4, 4], &[2, 2], &folded);
        assert_eq!(got.spelling, vec![0]);
        assert_eq!((got.first[0], got.parts[0], got.count[0]), (token("anne"), 2, 4));
    }

    #[test]
    fn fold_strings_folds_each_value_back_to_back() {
        use arrow_array::{ArrayRef, StringArray};
        use std::sync::Arc;
        let array: ArrayRef = Arc::new(StringArray::from(vec![Some("Åse"), None, Some("-"), Some("Jörgen Ø")]));
        let column = Column::from_arrays([&array]).unwrap();
        let got = fold_strings(&column).unwrap();
        assert_eq!(got.iter().collect::<Vec<_>>(), vec!["aase", "", "", "joergen oe"]);
    }

    #[test]
    fn distinct_strings_number_values_by_first_row_and_count_them() {
        use arrow_array::{ArrayRef, StringArray, StringViewArray};
        use std::sync::Arc;
        let values = [Some("Bo"), Some("Åse"), Some("Bo"), None, Some("Åse"), Some("a name longer than twelve"), Some("")];
        let arrays: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(values[..3].to_vec())),
            Arc::new(StringViewArray::from(values[3..].to_vec())),
        ];
        let got = distinct_strings(&Column::from_arrays(&arrays).unwrap()).unwrap();
        assert_eq!(got.ids, vec![0, 1, 0, NONE, 1, 2, 3]);
        assert_eq!(got.count, vec![2, 2, 1, 1]);
        assert_eq!(got.values.iter().collect::<Vec<_>>(), vec!["Bo", "Åse", "a name longer than twelve", ""]);
    }

    #[test]
    fn distinct_strings_sharing_a_hash_are_one_known_by_the_first() {
        let column = crate::arrow::import::column_of(&[Some(b"Bo"), None, Some(b"Aase"), Some(b"Bo")]);
        let got = distinct_strings_by(&column, |_| 42).unwrap();
        assert_eq!(got.ids, vec![0, NONE, 0, 0]);
        assert_eq!(got.count, vec![3]);
        assert_eq!(got.values.iter().collect::<Vec<_>>(), vec!["Bo"]);
    }

    #[test]
    fn distinct_strings_refuse_a_value_that_is_not_utf8() {
        let column = crate::arrow::import::column_of(&[Some(b"ok"), Some(b"\xff")]);
        assert_eq!(distinct_strings(&column).err().as_deref(), Some(NOT_UTF8));
    }

    #[test]
    fn a_string_set_keeps_strings_apart_that_share_a_hash_and_survives_growing() {
        // every string under one hash (the table grows twice): only the bytes tell them apart
        let mut set = StringSet::with_hasher(|_| 42);
        for round in 0..2 {
            for i in 0..3000u32 {
                assert_eq!(set.insert(i.to_string().as_bytes()), Ok((i, round == 0)));
            }
        }
        // many strings (the table grows several times), each found again by its bytes
        let mut set = StringSet::default();
        for i in 0..200_000u32 {
            assert_eq!(set.insert(format!("name {}", i % 70_001).as_bytes()), Ok((i % 70_001, i < 70_001)));
        }
        assert_eq!(set.len(), 70_001);
        let (values, counts) = set.into_values();
        assert_eq!(values.get(70_000), "name 70000");
        assert_eq!((counts[0], counts[70_000]), (3, 2));
    }

    #[test]
    fn pair_sums_add_each_pairs_term_to_both_names() {
        // pairs (given, surname) of 2 surnames: (0, 1) x3, (1, 0) x1, (1, 1) x2
        let keys = [1, 1, 1, 2, 3, 3];
        let (given, surname) = pair_sums(&keys, 2, &[3.0, 4.0], &[1.0, 5.0]);
        assert_eq!(given, vec![6.0 / 5.0, 2.0 / 5.0]);
        assert_eq!(surname, vec![0.0, 6.0 / 3.0 + 2.0 / 4.0]);
    }

    #[test]
    fn counting_sort_is_stable_and_leaves_out_large_keys() {
        let keys = [2, 0, 2, NONE, 1, 0];
        let (offsets, rows) = counting_sort(&keys, 3);
        assert_eq!(offsets, vec![0, 2, 3, 5]);
        assert_eq!(rows, vec![1, 5, 4, 0, 2]);
    }

    /// Six residents: rows 0..4 born on day 0, rows 4..6 on day 1, two given names (tokens 10
    /// and 11) and two surnames (token 20 and none).
    fn six_residents() -> ByDay<'static> {
        ByDay {
            offsets: &[0, 4, 6],
            rows: &[0, 1, 2, 3, 4, 5],
            given: &[0, 1, -1, 0, 0, 1],
            surname: &[0, 0, 1, -1, 1, 1],
            given_token: &[10, 11],
            surname_token: &[20, NONE],
        }
    }

    #[test]
    fn near_pairs_match_a_given_or_a_surname_token_on_the_day() {
        let register = six_residents();
        let wanted = [10, NONE, NONE, NONE, NONE, NONE, 20, NONE, 11, 10, NONE, NONE];
        let (entries, rows) = near_pairs(&register, &[0, 0, 1], &wanted);
        assert_eq!(entries, vec![0, 0, 1, 1, 2, 2]);
        assert_eq!(rows, vec![0, 3, 0, 1, 4, 5]);
    }

    #[test]
    fn near_pairs_of_many_entries_are_those_of_each_entry_in_entry_order() {
        let register = six_residents();
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

    /// The single-threaded [`pair_groups`] and [`pair_sums`] that the two-thread ones replaced,
    /// kept to check them against.
    fn reference_pair_groups(given: &[i32], surname: &[i32], givens: usize, surnames: usize) -> PairGroups {
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
        PairGroups { given_offsets, given_rows, pair_keys }
    }

    /// The sums of [`pair_sums`] from the pairs counted in a map (ascending keys, as it adds).
    fn reference_pair_sums(pair_keys: &[u64], surnames: usize, given_counts: &[f64], surname_counts: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let (mut given, mut surname) = (vec![0.0; given_counts.len()], vec![0.0; surname_counts.len()]);
        let mut pairs = std::collections::BTreeMap::new();
        for &key in pair_keys {
            *pairs.entry(key).or_insert(0u32) += 1;
        }
        let surnames = surnames.max(1) as u64;
        for (key, c) in pairs.into_iter().filter(|&(_, c)| c >= 2) {
            let (g, s, c) = ((key / surnames) as usize, (key % surnames) as usize, f64::from(c));
            given[g] += c * (c - 1.0) / surname_counts[s];
            surname[s] += c * (c - 1.0) / given_counts[g];
        }
        (given, surname)
    }

    /// A small xorshift generator for the random registers below.
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn pair_groups_and_sums_equal_the_single_threaded_ones_on_random_registers() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for case in 0..200usize {
            let rows = [0, 1, 2, 3, 17, 1000, 20_000][case % 7] + (xorshift(&mut state) % 50) as usize * (case % 3);
            let (givens, surnames) = (1 + (xorshift(&mut state) % 300) as usize, 1 + (xorshift(&mut state) % 700) as usize);
            let skew = 1 + case % 4; // a few names carry most residents when skewed
            let mut id = |n: usize| match xorshift(&mut state) % 20 {
                0 => -1,
                1 => n as i32 + 3, // past the names: left out like none
                _ => ((xorshift(&mut state) as usize % n).pow(skew as u32) / n.pow(skew as u32 - 1)) as i32,
            };
            let given: Vec<i32> = (0..rows).map(|_| id(givens)).collect();
            let surname: Vec<i32> = (0..rows).map(|_| id(surnames)).collect();
            let got = pair_groups(&given, &surname, givens, surnames);
            assert_eq!(got, reference_pair_groups(&given, &surname, givens, surnames), "case {case}");
            let given_counts: Vec<f64> = (0..givens).map(|_| 1.0 + (xorshift(&mut state) % 90) as f64 / 7.0).collect();
            let surname_counts: Vec<f64> = (0..surnames).map(|_| 1.0 + (xorshift(&mut state) % 90) as f64 / 3.0).collect();
            let (g, s) = pair_sums(&got.pair_keys, surnames, &given_counts, &surname_counts);
            let (want_g, want_s) = reference_pair_sums(&got.pair_keys, surnames, &given_counts, &surname_counts);
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<u64>>();
            assert_eq!((bits(&g), bits(&s)), (bits(&want_g), bits(&want_s)), "case {case}");
        }
    }

    #[test]
    fn pair_groups_sort_the_residents_with_both_names() {
        let given = [1, 0, 1, -1, 0, 1];
        let surname = [0, 1, 1, 0, -1, 0];
        let got = pair_groups(&given, &surname, 2, 2);
        assert_eq!(got.given_offsets, vec![0, 1, 4]);
        assert_eq!(got.given_rows, vec![1, 0, 5, 2]);
        assert_eq!(got.pair_keys, vec![1, 2, 2, 3]);
        let none = PairGroups { given_offsets: vec![0], ..PairGroups::default() };
        assert_eq!(pair_groups(&[0, -1], &[-1, 0], 0, 0), none);
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

    use arrow_array::{ArrayRef, LargeStringArray, StringArray};
    use arrow_buffer::{Buffer, OffsetBuffer, ScalarBuffer};

    use crate::arrow::Output;
    use crate::python::le_bytes;

    /// `(ids, count, values)` of [`super::distinct_strings`] of a string column: the ids and
    /// counts as `bytes` of little-endian u32, the values as a string column.
    #[pyfunction]
    fn distinct_strings<'py>(
        py: Python<'py>,
        values: &Bound<'py, PyAny>,
    ) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>, crate::python::ArrowArray)> {
        let column = crate::python::column(values)?;
        let got = py.detach(move || super::distinct_strings(&column)).map_err(PyValueError::new_err)?;
        let u32s = |v: &[u32]| le_bytes(py, v, u32::to_le_bytes);
        Ok((u32s(&got.ids)?, u32s(&got.count)?, string_array(got.values)?))
    }

    /// The strings as an Arrow `LargeUtf8` array for `pl.Series(...)`, without copying them.
    fn string_array(strings: super::Strings) -> PyResult<crate::python::ArrowArray> {
        let (text, offsets) = strings.into_parts();
        let offsets: Vec<i64> = offsets.into_iter().map(|o| o as i64).collect();
        let array = LargeStringArray::try_new(
            OffsetBuffer::new(ScalarBuffer::from(offsets)),
            Buffer::from_vec(text.into_bytes()),
            None,
        )
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(crate::python::ArrowArray::new(Output::from_array(Arc::new(array))))
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

    /// [`super::pair_groups`]'s grouping by given name then surname and the sums of
    /// [`super::pair_sums`] over it: `(given_offsets, given_rows)` as `bytes` of little-endian
    /// u32, `pair_keys` as little-endian u64 and the given-name and surname sums as little-endian
    /// f64.
    #[pyfunction]
    fn pair_groups<'py>(
        py: Python<'py>,
        given: PyBuffer<i32>,
        surname: PyBuffer<i32>,
        given_counts: PyBuffer<f64>,
        surname_counts: PyBuffer<f64>,
    ) -> PyResult<PairsOut<'py>> {
        let (given, surname) = (given.to_vec(py)?, surname.to_vec(py)?);
        let (given_counts, surname_counts) = (given_counts.to_vec(py)?, surname_counts.to_vec(py)?);
        if given.len() != surname.len() || given.len() >= super::NONE as usize {
            return Err(PyValueError::new_err("one surname per given name, fewer than 2^32 - 1 rows"));
        }
        let (givens, surnames) = (given_counts.len(), surname_counts.len());
        let (got, (given_sums, surname_sums)) = py.detach(move || {
            let got = super::pair_groups(&given, &surname, givens, surnames);
            let sums = super::pair_sums(&got.pair_keys, surnames, &given_counts, &surname_counts);
            (got, sums)
        });
        Ok((
            le_bytes(py, &got.given_offsets, u32::to_le_bytes)?,
            le_bytes(py, &got.given_rows, u32::to_le_bytes)?,
            le_bytes(py, &got.pair_keys, u64::to_le_bytes)?,
            le_bytes(py, &given_sums, f64::to_le_bytes)?,
            le_bytes(py, &surname_sums, f64::to_le_bytes)?,
        ))
    }

    /// What [`pair_groups`] gives Python.
    type PairsOut<'py> =
        (Bound<'py, PyBytes>, Bound<'py, PyBytes>, Bound<'py, PyBytes>, Bound<'py, PyBytes>, Bound<'py, PyBytes>);

    /// Every value of a string column folded by [`super::fold_name`], as a string column (null
    /// for a null and where no letter is left, as `fold_name` gives `None`).
    #[pyfunction]
    fn fold_names(py: Python<'_>, values: &Bound<'_, PyAny>) -> PyResult<crate::python::ArrowArray> {
        let column = crate::python::column(values)?;
        let folded = py.detach(move || super::fold_strings(&column)).map_err(PyValueError::new_err)?;
        let array: ArrayRef = Arc::new(StringArray::from_iter(folded.iter().map(|s| (!s.is_empty()).then_some(s))));
        Ok(crate::python::ArrowArray::new(Output::from_array(array)))
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
        let folded = py.detach(move || super::fold_strings(&column)).map_err(PyValueError::new_err)?;
        let names = py.detach(|| super::name_groups(&hashes, &counts, &folded));
        let forms: ArrayRef = Arc::new(StringArray::from_iter_values(names.spelling.iter().map(|&s| folded.get(s as usize))));
        Ok((
            le_bytes(py, &names.of_spelling, i32::to_le_bytes)?,
            le_bytes(py, &names.spelling, u32::to_le_bytes)?,
            string_array(names.key)?,
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
        m.add_function(wrap_pyfunction!(distinct_strings, m)?)?;
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
