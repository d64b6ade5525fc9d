//! The register index of the station's resolution, over whole integer columns:
//!
//! * [`distinct`]: the distinct values of a column of 64-bit hashes (the spellings of a name
//!   column), with per row the id of its value, per value its first row and its number of rows;
//! * [`counting_sort`]: rows grouped by a small integer key (a day number, a name id) in CSR
//!   layout, offsets and row ids, by a stable counting sort; sorting rows already grouped by one
//!   key by a second gives them grouped by (second, first), as a radix sort does.
//!
//! Both are one or two sequential passes; neither allocates per row.

/// The id of "no value" (a null row, or a row a sort leaves out).
pub const NONE: u32 = u32::MAX;

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
/// `k` being `rows[offsets[k]..offsets[k + 1]]` in the order they had in `order` (all rows
/// `0..keys.len()` in turn when `None`). Rows whose key is `buckets` or more are left out.
///
/// # Panics
/// If a row of `order` is not a row of `keys`, or `keys` has `u32::MAX` rows or more.
pub fn counting_sort(keys: &[u32], buckets: usize, order: Option<&[u32]>) -> (Vec<u32>, Vec<u32>) {
    assert!(keys.len() < NONE as usize, "fewer than 2^32 - 1 rows");
    let all: Vec<u32>;
    let order = if let Some(order) = order {
        order
    } else {
        all = (0..keys.len() as u32).collect();
        &all
    };
    let mut offsets = vec![0u32; buckets + 1];
    for &row in order {
        let key = keys[row as usize] as usize;
        if key < buckets {
            offsets[key + 1] += 1;
        }
    }
    for k in 0..buckets {
        offsets[k + 1] += offsets[k];
    }
    let mut next = offsets[..buckets].to_vec();
    let mut rows = vec![0u32; offsets[buckets] as usize];
    for &row in order {
        let key = keys[row as usize] as usize;
        if key < buckets {
            rows[next[key] as usize] = row;
            next[key] += 1;
        }
    }
    (offsets, rows)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let (offsets, rows) = counting_sort(&keys, 3, None);
        assert_eq!(offsets, vec![0, 2, 3, 5]);
        assert_eq!(rows, vec![1, 5, 4, 0, 2]);
    }

    #[test]
    fn sorting_twice_groups_by_both_keys() {
        let first = [1, 0, 1, 0, 1];
        let second = [0, 1, 1, 0, 0];
        let (_, by_first) = counting_sort(&first, 2, None);
        let (offsets, rows) = counting_sort(&second, 2, Some(&by_first));
        assert_eq!(offsets, vec![0, 3, 5]);
        assert_eq!(rows, vec![3, 0, 4, 1, 2]);
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

    fn bytes<'py>(py: Python<'py>, values: &[u32]) -> Bound<'py, PyBytes> {
        let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        PyBytes::new(py, &raw)
    }

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
        Ok((bytes(py, &got.ids), bytes(py, &got.first), bytes(py, &got.count)))
    }

    /// `(offsets, rows)` of [`super::counting_sort`], each as `bytes` of little-endian u32.
    #[pyfunction]
    #[pyo3(signature = (keys, buckets, order = None))]
    fn group_rows<'py>(
        py: Python<'py>,
        keys: PyBuffer<u32>,
        buckets: usize,
        order: Option<PyBuffer<u32>>,
    ) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
        let keys = keys.to_vec(py)?;
        let order = order.map(|o| o.to_vec(py)).transpose()?;
        if keys.len() >= super::NONE as usize || buckets >= super::NONE as usize {
            return Err(PyValueError::new_err("fewer than 2^32 - 1 rows and buckets"));
        }
        if order.as_deref().is_some_and(|o| o.iter().any(|&r| r as usize >= keys.len())) {
            return Err(PyValueError::new_err("every row of order must be a row of keys"));
        }
        let (offsets, rows) = py.detach(move || super::counting_sort(&keys, buckets, order.as_deref()));
        Ok((bytes(py, &offsets), bytes(py, &rows)))
    }

    pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add_function(wrap_pyfunction!(distinct_hashes, m)?)?;
        m.add_function(wrap_pyfunction!(group_rows, m)?)?;
        Ok(())
    }
}
