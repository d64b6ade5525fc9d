//! Validation kernels over whole string columns, one pass over the bytes of each value:
//!
//! * [`cpr_numbers`]: a CPR number that is exactly ten ASCII digits (or, when asked, six, an
//!   ASCII `-` and four: `DDMMYY-SSSS`) as its integer `DDMMYYSSSS` when its birth date exists
//!   in the century its 7th digit gives (null otherwise), and the rows of any other text, which
//!   the caller decides by the general rule;
//! * [`untrimmed`]: how many values are empty or begin or end with white space (what
//!   `str::trim` would change), so that a clean column of text needs no stripped copy.
//!
//! Both read the column in place ([`Column`]) in blocks of [`BLOCK`] values on a rayon pool.
//!
//! * [`key_positions`]: where each of a column of 64-bit keys (hashes of text keys) is found
//!   among distinct 64-bit keys, through an open-addressing table: the integer half of a
//!   reference check whose text the caller then compares row by row.

use arrow_array::{ArrayRef, Int64Array, UInt64Array};
use arrow_buffer::{BooleanBuffer, NullBuffer, ScalarBuffer};
use rayon::prelude::*;
use std::sync::Arc;

use crate::arrow::{Column, Output, BLOCK};

/// Ten ASCII digits whose birth date does not exist.
pub const INVALID_DATE: i64 = -1;
/// Any other text than ten ASCII digits (the general rule decides it).
pub const NOT_TEN_DIGITS: i64 = -2;

const MALFORMED: &str = "the Arrow array is malformed (a value lies outside its buffers)";

/// Days in each month of a common year, indexed by month 1-12 (0: no month).
const DAYS_IN: [u8; 13] = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/// The year of birth from the two-digit year and the 7th digit (the CPR office's century table).
fn century_year(yy: u32, d7: u32) -> u32 {
    match d7 {
        4 | 9 if yy <= 36 => 2000 + yy,
        5..=8 if yy <= 57 => 2000 + yy,
        5..=8 => 1800 + yy,
        _ => 1900 + yy,
    }
}

fn is_leap(year: u32) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

/// The code of one value: its number, [`INVALID_DATE`] or [`NOT_TEN_DIGITS`].
pub fn cpr_code(value: &[u8]) -> i64 {
    let Ok(digits) = <&[u8; 10]>::try_from(value) else {
        return NOT_TEN_DIGITS;
    };
    if !digits.iter().all(u8::is_ascii_digit) {
        return NOT_TEN_DIGITS;
    }
    let d = |i: usize| u32::from(digits[i] - b'0');
    let (day, month, yy, d7) = (10 * d(0) + d(1), 10 * d(2) + d(3), 10 * d(4) + d(5), d(6));
    let days = match month {
        2 if is_leap(century_year(yy, d7)) => 29,
        1..=12 => u32::from(DAYS_IN[month as usize]),
        _ => 0,
    };
    if day == 0 || day > days {
        return INVALID_DATE;
    }
    digits.iter().fold(0i64, |n, b| 10 * n + i64::from(b - b'0'))
}

/// [`cpr_code`] of `DDMMYY-SSSS` (six ASCII digits, an ASCII `-`, four) as of `DDMMYYSSSS`;
/// any other value as [`cpr_code`] decides it.
pub fn dashed_cpr_code(value: &[u8]) -> i64 {
    match value {
        [head @ .., b'-', _, _, _, _] if head.len() == 6 => {
            let mut digits = [0u8; 10];
            digits[..6].copy_from_slice(head);
            digits[6..].copy_from_slice(&value[7..]);
            cpr_code(&digits)
        }
        _ => cpr_code(value),
    }
}

/// The code of a null slot (neither a number nor text to decide).
const NULL: i64 = -3;

/// `code` ([`cpr_code`] or [`dashed_cpr_code`]) of every value of `column` (a null slot:
/// [`NULL`]), in parallel blocks.
pub fn cpr_codes(column: &Column, code: fn(&[u8]) -> i64) -> Result<Vec<i64>, String> {
    let mut codes = vec![NULL; column.len()];
    let mut rest = codes.as_mut_slice();
    let mut parts = Vec::with_capacity(column.chunks().len());
    for chunk in column.chunks() {
        let (own, tail) = rest.split_at_mut(chunk.len());
        parts.push((chunk, own));
        rest = tail;
    }
    parts.into_par_iter().try_for_each(|(chunk, own)| {
        own.par_chunks_mut(BLOCK).enumerate().try_for_each(|(b, block)| {
            for (k, slot) in block.iter_mut().enumerate() {
                let i = b * BLOCK + k;
                if chunk.is_valid(i) {
                    *slot = code(chunk.get(i).ok_or(MALFORMED)?);
                }
            }
            Ok::<(), String>(())
        })
    })?;
    Ok(codes)
}

/// The CPR numbers of `column` and the rows left to the general rule: an `Int64` column holding
/// each value's number where it is ten ASCII digits of an existing date (null elsewhere), and
/// a `UInt64` column of the (0-based) rows whose value is other text than ten ASCII digits.
/// With `dashed`, `DDMMYY-SSSS` is decided as `DDMMYYSSSS` is (not left to the general rule).
pub fn cpr_numbers(column: &Column, dashed: bool) -> Result<(Output, Output), String> {
    let codes = cpr_codes(column, if dashed { dashed_cpr_code } else { cpr_code })?;
    let others: UInt64Array = codes
        .iter()
        .enumerate()
        .filter(|(_, &c)| c == NOT_TEN_DIGITS)
        .map(|(i, _)| i as u64)
        .collect::<Vec<u64>>()
        .into();
    let valid = NullBuffer::new(BooleanBuffer::collect_bool(codes.len(), |i| codes[i] >= 0));
    let numbers: ArrayRef = Arc::new(Int64Array::new(ScalarBuffer::from(codes), Some(valid)));
    Ok((Output::from_array(numbers), Output::from_array(Arc::new(others))))
}

/// The position of no key (a probe that is not among the keys).
pub const ABSENT: u32 = u32::MAX;

/// For each of `probes`, its position in `keys` ([`ABSENT`] when it is not there); an error
/// when two keys are equal (the answer would not be one position) or there are `u32::MAX` keys
/// or more. The table is built in one pass, then probed in parallel blocks.
pub fn key_positions(keys: &[u64], probes: &[u64]) -> Result<Vec<u32>, String> {
    if keys.len() >= ABSENT as usize {
        return Err("fewer than 2^32 - 1 keys".to_string());
    }
    let bits = (2 * keys.len()).max(16).next_power_of_two().trailing_zeros();
    let slot = |key: u64| (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - bits)) as usize;
    let mask = (1usize << bits) - 1;
    let mut table = vec![ABSENT; 1 << bits]; // a position in `keys`, or ABSENT for an empty slot
    for (position, &key) in (0u32..).zip(keys) {
        let mut at = slot(key);
        while table[at] != ABSENT {
            if keys[table[at] as usize] == key {
                return Err("the keys are not distinct".to_string());
            }
            at = (at + 1) & mask;
        }
        table[at] = position;
    }
    let find = |key: u64| {
        let mut at = slot(key);
        loop {
            match table[at] {
                ABSENT => return ABSENT,
                position if keys[position as usize] == key => return position,
                _ => at = (at + 1) & mask,
            }
        }
    };
    let mut out = vec![ABSENT; probes.len()];
    out.par_chunks_mut(BLOCK).zip(probes.par_chunks(BLOCK)).for_each(|(own, keys)| {
        for (found, &key) in own.iter_mut().zip(keys) {
            *found = find(key);
        }
    });
    Ok(out)
}

/// Whether `c` is white space as `str::trim` sees it; `None` for bytes that are not one
/// UTF-8 character.
fn white(c: &[u8]) -> Option<bool> {
    std::str::from_utf8(c).ok()?.chars().next().map(char::is_whitespace)
}

/// Whether `str::trim` would change the value (or it is empty, or not UTF-8 at its ends).
pub fn needs_trim(value: &[u8]) -> bool {
    let (Some(&first), Some(&last)) = (value.first(), value.last()) else {
        return true;
    };
    if first.is_ascii() && last.is_ascii() {
        return char::from(first).is_whitespace() || char::from(last).is_whitespace();
    }
    let width = match first {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    };
    let tail_start = value.iter().rposition(|b| b & 0xc0 != 0x80).unwrap_or(0);
    let head = value.get(..width).and_then(white);
    let tail = value.get(tail_start..).and_then(white);
    !matches!((head, tail), (Some(false), Some(false)))
}

/// How many present values of `column` [`needs_trim`] flags.
pub fn untrimmed(column: &Column) -> Result<usize, String> {
    column
        .chunks()
        .par_iter()
        .map(|chunk| {
            (0..chunk.len().div_ceil(BLOCK))
                .into_par_iter()
                .map(|b| {
                    let mut count = 0;
                    for i in b * BLOCK..chunk.len().min((b + 1) * BLOCK) {
                        if chunk.is_valid(i) {
                            count += usize::from(needs_trim(chunk.get(i).ok_or(MALFORMED)?));
                        }
                    }
                    Ok::<usize, String>(count)
                })
                .sum::<Result<usize, String>>()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arrow::import::column_of;

    fn numbers(values: &[Option<&[u8]>]) -> (Vec<Option<i64>>, Vec<u64>) {
        numbers_of(values, false)
    }

    fn numbers_of(values: &[Option<&[u8]>], dashed: bool) -> (Vec<Option<i64>>, Vec<u64>) {
        let (numbers, others) = cpr_numbers(&column_of(values), dashed).expect("a valid column");
        let numbers = numbers.array().as_any().downcast_ref::<Int64Array>().expect("Int64").clone();
        let others = others.array().as_any().downcast_ref::<UInt64Array>().expect("UInt64").clone();
        (numbers.iter().collect(), others.values().to_vec())
    }

    #[test]
    fn ten_digits_with_an_existing_date_are_their_number() {
        assert_eq!(cpr_code(b"0101901234"), 101_901_234);
        assert_eq!(cpr_code(b"3112991234"), 3_112_991_234);
    }

    #[test]
    fn the_century_digit_decides_29_february() {
        // 2000 is a leap year (7th digit 4, yy 00), 1900 is not (7th digit 0), 1800 is not.
        assert_eq!(cpr_code(b"2902004000"), 2_902_004_000);
        assert_eq!(cpr_code(b"2902000000"), INVALID_DATE);
        assert_eq!(cpr_code(b"2902585000"), INVALID_DATE); // 1858: 5-8 and yy > 57
        assert_eq!(cpr_code(b"2902645000"), 2_902_645_000); // 1864
        assert_eq!(cpr_code(b"2902369000"), 2_902_369_000); // 2036
        assert_eq!(cpr_code(b"2902409000"), 2_902_409_000); // 1940: 9 and yy > 36
    }

    #[test]
    fn impossible_dates_are_invalid() {
        for value in [b"0001901234", b"3202901234", b"0113901234", b"0100901234", b"3104901234"] {
            assert_eq!(cpr_code(value), INVALID_DATE, "{value:?}");
        }
    }

    #[test]
    fn anything_else_is_left_to_the_general_rule() {
        for value in [&b"010190-1234"[..], b" 0101901234", b"010190123", b"", b"+101901234", b"01019O1234",
                      "０１０１９０１２３４".as_bytes()] {
            assert_eq!(cpr_code(value), NOT_TEN_DIGITS, "{value:?}");
        }
    }

    #[test]
    fn a_column_keeps_its_nulls_and_names_the_rows_left_over() {
        let (got, others) = numbers(&[Some(b"0101901234"), None, Some(b"x"), Some(b"3102901234"), Some(b" 1")]);
        assert_eq!(got, vec![Some(101_901_234), None, None, None, None]);
        assert_eq!(others, vec![2, 4]);
    }

    #[test]
    fn a_column_longer_than_a_block() {
        let values: Vec<Option<&[u8]>> = (0..3 * BLOCK + 5)
            .map(|i| match i % 7 {
                0 => None,
                3 => Some(&b"01019-1234"[..]),
                _ => Some(&b"0101901234"[..]),
            })
            .collect();
        let (got, others) = numbers(&values);
        assert_eq!(got.len(), values.len());
        assert!(got.iter().enumerate().all(|(i, c)| *c == if i % 7 == 0 || i % 7 == 3 { None } else { Some(101_901_234) }));
        assert_eq!(others, (0..values.len() as u64).filter(|i| i % 7 == 3).collect::<Vec<_>>());
    }

    #[test]
    fn dashed_numbers_are_their_undashed_number() {
        assert_eq!(dashed_cpr_code(b"010190-1234"), 101_901_234);
        assert_eq!(dashed_cpr_code(b"0101901234"), 101_901_234);
        assert_eq!(dashed_cpr_code(b"290200-0000"), INVALID_DATE); // 1900 is not a leap year
        assert_eq!(dashed_cpr_code(b"290200-4000"), 2_902_004_000);
    }

    #[test]
    fn other_dashed_forms_are_left_to_the_general_rule() {
        for value in [&b"01019-01234"[..], b"010190--1234", b"010190-123", b"010190-12345", b" 010190-1234",
                      b"010190 1234", b"01a190-1234", b"010190-12b4", b"-010190123", b"0101901234-",
                      "010190\u{2010}1234".as_bytes(), b"010190_1234"] {
            assert_eq!(dashed_cpr_code(value), NOT_TEN_DIGITS, "{value:?}");
        }
    }

    #[test]
    fn a_dashed_column_decides_its_dashed_values() {
        let values = [Some(&b"010190-1234"[..]), None, Some(b"010190-123"), Some(b"310290-1234"), Some(b"0101901234")];
        assert_eq!(numbers_of(&values, true), (vec![Some(101_901_234), None, None, None, Some(101_901_234)], vec![2]));
        assert_eq!(numbers_of(&values, false).1, vec![0, 2, 3]);
    }

    #[test]
    fn key_positions_find_each_key_or_none() {
        let keys = [7, 0, u64::MAX, 1 << 40, 3];
        let probes = [3, 8, 7, 7, u64::MAX, 0, 1 << 41, 1 << 40];
        let found = key_positions(&keys, &probes).expect("distinct keys");
        assert_eq!(found, vec![4, ABSENT, 0, 0, 2, 1, ABSENT, 3]);
        assert_eq!(key_positions(&[], &[1, 2]), Ok(vec![ABSENT, ABSENT]));
    }

    #[test]
    fn key_positions_refuse_repeated_keys() {
        assert!(key_positions(&[5, 6, 5], &[5]).is_err());
    }

    #[test]
    fn key_positions_over_many_colliding_slots() {
        // Several blocks of probes; key i << 32 is at position i.
        let keys: Vec<u64> = (0..3 * BLOCK as u64 + 7).map(|i| i << 32).collect();
        let probes: Vec<u64> = (0..3 * BLOCK as u64 + 20).rev().map(|i| i << 32).collect();
        let found = key_positions(&keys, &probes).expect("distinct keys");
        for (probe, position) in probes.iter().zip(&found) {
            let want = if (probe >> 32) < keys.len() as u64 { (probe >> 32) as u32 } else { ABSENT };
            assert_eq!(*position, want);
        }
    }

    #[test]
    fn trim_agrees_with_str_trim() {
        for text in ["", " ", "a", " a", "a ", "\u{a0}a", "a\u{3000}", "\u{85}", "æøå", "\u{1c}a", "a\u{b}",
                     "ab c", "\u{200b}a", "é", "x\u{2028}"] {
            assert_eq!(needs_trim(text.as_bytes()), text.is_empty() || text.trim() != text, "{text:?}");
        }
    }

    #[test]
    fn untrimmed_counts_present_values() {
        let column = column_of(&[Some(b" a"), None, Some(b"b"), Some(b""), Some(b"c\t")]);
        assert_eq!(untrimmed(&column), Ok(3));
    }
}
