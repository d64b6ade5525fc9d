//! The Python module `socialsearch.crypto._native` (types in `src/socialsearch/crypto/_native.pyi`).
//!
//! Every kernel takes a column as any object with `__arrow_c_stream__` (a Polars Series),
//! releases the GIL while it works, and returns an [`ArrowArray`] that `pl.Series(...)` takes
//! over without a copy.

use std::sync::Mutex;

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::buffer::PyBuffer;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyCapsule, PyCapsuleMethods};

use arrow_array::ffi_stream::FFI_ArrowArrayStream;

use crate::arrow::{Column, Output};
use crate::kernels::{self, Encoding, SivKey, MAX_ASSOCIATED_DATA};
use crate::validate;

/// A string or binary column made by a kernel, for `polars.Series(...)` (Arrow PyCapsule
/// interface, `__arrow_c_array__`); it can be handed over once.
#[pyclass(module = "socialsearch.crypto._native", name = "ArrowArray", frozen)]
pub(crate) struct ArrowArray {
    output: Mutex<Option<Output>>,
    len: usize,
}

impl ArrowArray {
    pub(crate) fn new(output: Output) -> Self {
        let len = output.len();
        Self { output: Mutex::new(Some(output)), len }
    }
}

#[pymethods]
impl ArrowArray {
    #[pyo3(signature = (requested_schema = None))]
    fn __arrow_c_array__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<(Bound<'py, PyCapsule>, Bound<'py, PyCapsule>)> {
        let _ = requested_schema; // the array has one type; a consumer casts if it wants another
        let output = self
            .output
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .ok_or_else(|| PyRuntimeError::new_err("this native array was already handed over"))?;
        let (schema, array) = output.into_ffi().map_err(PyRuntimeError::new_err)?;
        // The PyCapsule interface: a capsule's pointer is the struct itself (PyO3 keeps the
        // value first), and dropping it calls `release` unless a consumer moved it out.
        let schema = PyCapsule::new_with_value(py, schema, c"arrow_schema")?;
        let array = PyCapsule::new_with_value(py, array, c"arrow_array")?;
        Ok((schema, array))
    }

    fn __len__(&self) -> usize {
        self.len
    }

    /// `<module.ArrowArray of N values>`, the module as the class declares it.
    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let class = slf.get_type();
        Ok(format!("<{}.{} of {} values>", class.module()?, class.qualname()?, slf.get().len))
    }
}

pub(crate) fn column(values: &Bound<'_, PyAny>) -> PyResult<Column> {
    let capsule = values
        .call_method0("__arrow_c_stream__")
        .map_err(|_| PyValueError::new_err("expected a column with __arrow_c_stream__ (a polars Series)"))?;
    let capsule = capsule.cast_into::<PyCapsule>().map_err(|e| PyValueError::new_err(e.to_string()))?;
    let stream = capsule.pointer_checked(Some(c"arrow_array_stream"))?;
    // SAFETY: the PyCapsule interface: a capsule named "arrow_array_stream" points to an
    // initialised `ArrowArrayStream` that its producer made, aligned and writable, and the
    // capsule (alive: `capsule` holds it) owns it; `from_stream` moves it out and leaves a
    // released stream behind, which the capsule's destructor then ignores.
    unsafe { Column::from_stream(stream.as_ptr().cast::<FFI_ArrowArrayStream>()) }.map_err(PyValueError::new_err)
}

fn siv_key(key: &[u8]) -> PyResult<SivKey> {
    SivKey::new(key).ok_or_else(|| PyValueError::new_err("an AES-SIV key is 32 or 64 bytes"))
}

fn check_associated_data(ad: &[Vec<u8>]) -> PyResult<()> {
    if ad.len() > MAX_ASSOCIATED_DATA {
        return Err(PyValueError::new_err("AES-SIV takes at most 126 associated-data items"));
    }
    Ok(())
}

/// HMAC-SHA256 of every value, each written as `prefix` + its encoding ("raw": 32 bytes,
/// binary column; "base64url16": 22 characters, string column; "hex8": 16 characters).
#[pyfunction]
#[pyo3(signature = (key, values, prefix = b"".as_slice(), encoding = "raw", threads = 0))]
fn hmac_sha256(
    py: Python<'_>,
    key: &[u8],
    values: &Bound<'_, PyAny>,
    prefix: &[u8],
    encoding: &str,
    threads: usize,
) -> PyResult<ArrowArray> {
    let encoding = Encoding::parse(encoding)
        .ok_or_else(|| PyValueError::new_err("encoding must be 'raw', 'base64url16' or 'hex8'"))?;
    let column = column(values)?;
    let (key, prefix) = (key.to_vec(), prefix.to_vec());
    let out = py.detach(move || kernels::with_threads(threads, || kernels::hmac_column(&key, &column, &prefix, encoding)));
    Ok(ArrowArray::new(out.map_err(PyValueError::new_err)?))
}

/// AES-SIV (RFC 5297) of every value under `key` (32 or 64 bytes) and `associated_data`.
#[pyfunction]
#[pyo3(signature = (key, values, associated_data, threads = 0))]
fn aes_siv_seal(
    py: Python<'_>,
    key: &[u8],
    values: &Bound<'_, PyAny>,
    associated_data: Vec<Vec<u8>>,
    threads: usize,
) -> PyResult<ArrowArray> {
    let key = siv_key(key)?;
    check_associated_data(&associated_data)?;
    let column = column(values)?;
    let (out, failed) = py
        .detach(move || kernels::with_threads(threads, || kernels::siv_seal(&key, &associated_data, &column)))
        .map_err(PyValueError::new_err)?;
    if failed > 0 {
        return Err(PyRuntimeError::new_err("AES-SIV failed to seal a value"));
    }
    Ok(ArrowArray::new(out))
}

/// Open values sealed by `aes_siv_seal`: `(plaintexts, 0)`, or `(None, n)` when `n` values do
/// not authenticate.
#[pyfunction]
#[pyo3(signature = (key, values, associated_data, threads = 0))]
fn aes_siv_open(
    py: Python<'_>,
    key: &[u8],
    values: &Bound<'_, PyAny>,
    associated_data: Vec<Vec<u8>>,
    threads: usize,
) -> PyResult<(Option<ArrowArray>, usize)> {
    let key = siv_key(key)?;
    check_associated_data(&associated_data)?;
    let column = column(values)?;
    let (out, failed) = py
        .detach(move || kernels::with_threads(threads, || kernels::siv_open(&key, &associated_data, &column)))
        .map_err(PyValueError::new_err)?;
    Ok(if failed > 0 { (None, failed) } else { (Some(ArrowArray::new(out)), 0) })
}

/// The CPR numbers (an `Int64` column: ten ASCII digits of an existing date, null elsewhere)
/// and the rows of values that are other text than ten ASCII digits (a `UInt64` column); with
/// `dashed`, `DDMMYY-SSSS` (an ASCII `-`) is decided as `DDMMYYSSSS`.
#[pyfunction]
#[pyo3(signature = (values, threads = 0, dashed = false))]
fn cpr_numbers(
    py: Python<'_>,
    values: &Bound<'_, PyAny>,
    threads: usize,
    dashed: bool,
) -> PyResult<(ArrowArray, ArrowArray)> {
    let column = column(values)?;
    let (numbers, others) = py
        .detach(move || kernels::with_threads(threads, || validate::cpr_numbers(&column, dashed)))
        .map_err(PyValueError::new_err)?;
    Ok((ArrowArray::new(numbers), ArrowArray::new(others)))
}

/// `values` as `bytes`, each value's little-endian bytes (`to`) in turn.
pub(crate) fn le_bytes<'py, T: Copy, const N: usize>(
    py: Python<'py>,
    values: &[T],
    to: fn(T) -> [u8; N],
) -> PyResult<Bound<'py, PyBytes>> {
    // written in place into the new bytes object (no intermediate buffer)
    PyBytes::new_with(py, values.len() * N, |raw| {
        for (out, &v) in raw.chunks_exact_mut(N).zip(values) {
            out.copy_from_slice(&to(v));
        }
        Ok(())
    })
}

/// For each of `probes` (64-bit keys), its position in `keys` (distinct 64-bit keys), or
/// 2^32 - 1 where it is not there: little-endian u32 `bytes` for `numpy.frombuffer`.
#[pyfunction]
fn key_positions<'py>(py: Python<'py>, keys: PyBuffer<u64>, probes: PyBuffer<u64>) -> PyResult<Bound<'py, PyBytes>> {
    let (keys, probes) = (keys.to_vec(py)?, probes.to_vec(py)?);
    let found = py.detach(move || validate::key_positions(&keys, &probes)).map_err(PyValueError::new_err)?;
    le_bytes(py, &found, u32::to_le_bytes)
}

/// How many present values are empty or begin or end with white space.
#[pyfunction]
#[pyo3(signature = (values, threads = 0))]
fn untrimmed(py: Python<'_>, values: &Bound<'_, PyAny>, threads: usize) -> PyResult<usize> {
    let column = column(values)?;
    py.detach(move || kernels::with_threads(threads, || validate::untrimmed(&column))).map_err(PyValueError::new_err)
}

/// `count` single-block SHA-256 compressions on `threads` threads (a benchmark of the
/// hardware's limit); returns a digest of the final states so that nothing is optimised away.
#[pyfunction]
#[pyo3(signature = (count, threads = 1))]
fn sha256_compressions<'py>(py: Python<'py>, count: u64, threads: usize) -> Bound<'py, PyBytes> {
    let threads = threads.max(1);
    let state = py.detach(move || kernels::with_threads(threads, || kernels::sha256_compressions(count, threads)));
    let bytes: Vec<u8> = state.iter().flat_map(|w| w.to_be_bytes()).collect();
    PyBytes::new(py, &bytes)
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ArrowArray>()?;
    m.add_function(wrap_pyfunction!(hmac_sha256, m)?)?;
    m.add_function(wrap_pyfunction!(aes_siv_seal, m)?)?;
    m.add_function(wrap_pyfunction!(aes_siv_open, m)?)?;
    m.add_function(wrap_pyfunction!(sha256_compressions, m)?)?;
    crate::resolve::python::register(m)?;
    m.add_function(wrap_pyfunction!(cpr_numbers, m)?)?;
    m.add_function(wrap_pyfunction!(untrimmed, m)?)?;
    m.add_function(wrap_pyfunction!(key_positions, m)?)?;
    m.add_function(wrap_pyfunction!(hmac_sha256_keyed, m)?)?;
    Ok(())
}

/// HMAC-SHA256 of every value under its own key, `keys[index[i]]`, written as
/// `prefixes[index[i]]` + its encoding (as `hmac_sha256` writes the values of one key).
#[pyfunction]
#[pyo3(signature = (keys, prefixes, index, values, encoding = "raw", threads = 0))]
fn hmac_sha256_keyed(
    py: Python<'_>,
    keys: Vec<Vec<u8>>,
    prefixes: Vec<Vec<u8>>,
    index: PyBuffer<u32>,
    values: &Bound<'_, PyAny>,
    encoding: &str,
    threads: usize,
) -> PyResult<ArrowArray> {
    let encoding = Encoding::parse(encoding)
        .ok_or_else(|| PyValueError::new_err("encoding must be 'raw', 'base64url16' or 'hex8'"))?;
    let (index, column) = (index.to_vec(py)?, column(values)?);
    let out = py.detach(move || {
        kernels::with_threads(threads, || crate::scope::hmac_keyed(&keys, &prefixes, &index, &column, encoding))
    });
    Ok(ArrowArray::new(out.map_err(PyValueError::new_err)?))
}
