//! Reading a column of strings or binaries through the C stream interface (the consumer side
//! of `__arrow_c_stream__`) or the C data interface (`__arrow_c_array__`).
//!
//! arrow-rs imports the producer's buffers without copying them and keeps each array alive
//! (its `release` called once, on drop) for as long as a [`Chunk`] holds one of its buffers.
//! The import trusts the producer for what the interface declares (buffer pointers, the
//! array's length and offset, the data buffers' sizes); [`Chunk::get`] checks every offset and
//! view against those sizes before it reads, so a malformed array gives `None`, never a read
//! outside its buffers.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::ffi::{from_ffi, FFI_ArrowArray, FFI_ArrowSchema};
use arrow_array::ffi_stream::{ArrayStreamReader, FFI_ArrowArrayStream};
use arrow_array::{make_array, Array, ArrayReader, ArrayRef};
use arrow_buffer::{Buffer, NullBuffer, ScalarBuffer};
use arrow_data::ByteView;
use arrow_schema::DataType;

/// Where the bytes of a chunk's values are.
enum Values {
    /// `Utf8`/`Binary`: value `i` is `data[offsets[i]..offsets[i + 1]]`
    Offsets32 { offsets: ScalarBuffer<i32>, data: Buffer },
    /// `LargeUtf8`/`LargeBinary`
    Offsets64 { offsets: ScalarBuffer<i64>, data: Buffer },
    /// `Utf8View`/`BinaryView`: 16-byte views, values of up to 12 bytes inline, longer ones in
    /// one of the data buffers
    Views { views: ScalarBuffer<u128>, data: Arc<[Buffer]> },
}

/// One imported array of a [`Column`] (a string column is read as its bytes).
pub struct Chunk {
    values: Values,
    /// `None` when the array has no null
    nulls: Option<NullBuffer>,
    len: usize,
}

impl Chunk {
    /// The values of `array`, or an error naming its type if it holds no strings or binaries.
    pub fn new(array: &dyn Array) -> Result<Self, String> {
        let values = match array.data_type() {
            DataType::Utf8 => array.as_string_opt::<i32>().map(|a| Values::Offsets32 {
                offsets: a.offsets().inner().clone(),
                data: a.values().clone(),
            }),
            DataType::Binary => array.as_binary_opt::<i32>().map(|a| Values::Offsets32 {
                offsets: a.offsets().inner().clone(),
                data: a.values().clone(),
            }),
            DataType::LargeUtf8 => array.as_string_opt::<i64>().map(|a| Values::Offsets64 {
                offsets: a.offsets().inner().clone(),
                data: a.values().clone(),
            }),
            DataType::LargeBinary => array.as_binary_opt::<i64>().map(|a| Values::Offsets64 {
                offsets: a.offsets().inner().clone(),
                data: a.values().clone(),
            }),
            DataType::Utf8View => array
                .as_string_view_opt()
                .map(|a| Values::Views { views: a.views().clone(), data: a.data_buffers().clone() }),
            DataType::BinaryView => array
                .as_binary_view_opt()
                .map(|a| Values::Views { views: a.views().clone(), data: a.data_buffers().clone() }),
            _ => None,
        }
        .ok_or_else(|| not_bytes(array.data_type()))?;
        let nulls = array.nulls().filter(|n| n.null_count() > 0).cloned();
        Ok(Self { values, nulls, len: array.len() })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The validity bits, `None` when the chunk has no null.
    pub fn nulls(&self) -> Option<&NullBuffer> {
        self.nulls.as_ref()
    }

    /// Whether value `i` is present (`false` for a null and past the end).
    #[inline]
    pub fn is_valid(&self, i: usize) -> bool {
        i < self.len && self.nulls.as_ref().is_none_or(|n| n.is_valid(i))
    }

    /// The bytes of value `i` (of a null slot: whatever the producer left there, often empty);
    /// `None` past the end or when the array's offsets or view point outside its buffers.
    #[inline]
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        if i >= self.len {
            return None;
        }
        match &self.values {
            Values::Offsets32 { offsets, data } => slice(data, offsets.get(i)?.as_usize(), offsets.get(i + 1)?.as_usize()),
            Values::Offsets64 { offsets, data } => slice(data, offsets.get(i)?.as_usize(), offsets.get(i + 1)?.as_usize()),
            Values::Views { views, data } => {
                let view = ByteView::from(*views.get(i)?);
                let n = view.length as usize;
                if n <= 12 {
                    // inline: the view's bytes 4..4 + n, in the views buffer itself
                    let start = 16 * i + 4;
                    views.inner().get(start..start + n)
                } else {
                    let start = view.offset as usize;
                    data.get(view.buffer_index as usize)?.get(start..start.checked_add(n)?)
                }
            }
        }
    }
}

/// `data[start..end]`, `None` for a decreasing or out-of-range pair of offsets.
#[inline]
fn slice(data: &[u8], start: Option<usize>, end: Option<usize>) -> Option<&[u8]> {
    data.get(start?..end?)
}

/// An offset as an index, `None` when negative.
trait AsIndex {
    fn as_usize(&self) -> Option<usize>;
}

impl AsIndex for i32 {
    #[inline]
    fn as_usize(&self) -> Option<usize> {
        usize::try_from(*self).ok()
    }
}

impl AsIndex for i64 {
    #[inline]
    fn as_usize(&self) -> Option<usize> {
        usize::try_from(*self).ok()
    }
}

fn not_bytes(data_type: &DataType) -> String {
    format!("expected a string or binary column, got Arrow type {data_type}")
}

fn is_bytes(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Utf8
            | DataType::Binary
            | DataType::LargeUtf8
            | DataType::LargeBinary
            | DataType::Utf8View
            | DataType::BinaryView
    )
}

/// A column of strings or binaries, one [`Chunk`] per (non-empty) array.
pub struct Column {
    chunks: Vec<Chunk>,
}

impl Column {
    /// A column of the given arrays, or an error if one holds no strings or binaries.
    pub fn from_arrays<'a>(arrays: impl IntoIterator<Item = &'a ArrayRef>) -> Result<Self, String> {
        let mut chunks = Vec::new();
        for array in arrays {
            let chunk = Chunk::new(array.as_ref())?;
            if !chunk.is_empty() {
                chunks.push(chunk);
            }
        }
        Ok(Self { chunks })
    }

    /// Read a whole stream; takes ownership of `*stream` (its `release` is set to null) and
    /// releases it before returning (each array keeps its own buffers alive).
    ///
    /// # Safety
    /// `stream` must be valid for reads and writes, aligned, and point to an initialised
    /// `ArrowArrayStream` whose callbacks and arrays follow the C stream interface.
    pub unsafe fn from_stream(stream: *mut FFI_ArrowArrayStream) -> Result<Self, String> {
        // SAFETY: the caller's precondition is `ArrayStreamReader::from_raw`'s: a valid,
        // initialised stream that is moved out (its release set to null in place).
        let reader = unsafe { ArrayStreamReader::from_raw(stream) }
            .map_err(|e| format!("the Arrow stream failed to give its schema: {e}"))?;
        let data_type = reader.field().data_type().clone();
        if !is_bytes(&data_type) {
            return Err(not_bytes(&data_type));
        }
        let arrays: Vec<ArrayRef> =
            reader.collect::<Result<_, _>>().map_err(|e| format!("the Arrow stream failed: {e}"))?;
        Self::from_arrays(&arrays)
    }

    /// A column of one array (the consumer side of `__arrow_c_array__`); takes ownership of
    /// `array` (released when the column is dropped).
    ///
    /// # Safety
    /// `array` and `schema` must be valid C data interface structs describing the same array.
    pub unsafe fn from_ffi(array: FFI_ArrowArray, schema: &FFI_ArrowSchema) -> Result<Self, String> {
        // SAFETY: the caller guarantees that `array` follows the C data interface and that
        // `schema` describes it, which is `from_ffi`'s precondition.
        let data = unsafe { from_ffi(array, schema) }.map_err(|e| format!("cannot import the Arrow array: {e}"))?;
        Self::from_arrays(&[make_array(data)])
    }

    pub fn chunks(&self) -> &[Chunk] {
        &self.chunks
    }

    pub fn len(&self) -> usize {
        self.chunks.iter().map(Chunk::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    pub fn has_nulls(&self) -> bool {
        self.chunks.iter().any(|c| c.nulls.is_some())
    }
}

/// A column of the given values (`None` = null): a `LargeBinary` array exported and imported
/// through the C data interface.
#[cfg(test)]
pub(crate) fn column_of(values: &[Option<&[u8]>]) -> Column {
    let array = arrow_array::LargeBinaryArray::from_iter(values.iter().copied());
    let (array, schema) = arrow_array::ffi::to_ffi(&array.to_data()).expect("a valid array");
    // SAFETY: `to_ffi` made both structs from one array.
    unsafe { Column::from_ffi(array, &schema) }.expect("a binary column")
}

/// The values of `output` (`None` = null), exported and imported through the C data interface
/// and checked against every condition of its Arrow type.
#[cfg(test)]
pub(crate) fn read_ffi(output: super::Output) -> Vec<Option<Vec<u8>>> {
    let (schema, array) = output.into_ffi().expect("an exportable array");
    // SAFETY: `into_ffi` made both structs from one array.
    let data = unsafe { from_ffi(array, &schema) }.expect("an importable array");
    data.validate_full().expect("a valid view array");
    let column = Column::from_arrays(&[make_array(data)]).expect("a string or binary column");
    let mut got = Vec::new();
    for chunk in column.chunks() {
        for i in 0..chunk.len() {
            got.push(chunk.is_valid(i).then(|| chunk.get(i).expect("a value inside its buffers").to_vec()));
        }
    }
    got
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{BinaryArray, Int32Array, LargeStringArray, StringViewArray};

    #[test]
    fn every_layout_reads_its_values_and_nulls() {
        let values = [Some("a"), None, Some("a value longer than twelve bytes"), Some("")];
        let arrays: Vec<ArrayRef> = vec![
            Arc::new(BinaryArray::from_iter(values.iter().map(|v| v.map(str::as_bytes)))),
            Arc::new(LargeStringArray::from_iter(values)),
            Arc::new(StringViewArray::from_iter(values)),
        ];
        for array in &arrays {
            for sliced in [array.clone(), array.slice(1, 3)] {
                let column = Column::from_arrays([&sliced]).unwrap();
                let chunk = &column.chunks()[0];
                let skip = values.len() - sliced.len();
                for (i, expected) in values[skip..].iter().enumerate() {
                    assert_eq!(chunk.is_valid(i), expected.is_some());
                    if let Some(v) = expected {
                        assert_eq!(chunk.get(i), Some(v.as_bytes()));
                    }
                }
                assert!(!chunk.is_valid(sliced.len()));
                assert_eq!(chunk.get(sliced.len()), None);
            }
        }
    }

    #[test]
    fn a_view_outside_its_buffers_reads_as_none() {
        let good = StringViewArray::from_iter_values(["a value longer than twelve bytes", "short"]);
        let (views, data, _) = good.into_parts();
        let mut bad: Vec<u128> = views.to_vec();
        // the long value's view now claims 100 bytes more than its buffer holds
        bad[0] = u128::from(ByteView::from(bad[0]).with_offset(100));
        let views = ScalarBuffer::from(bad);
        let chunk = Chunk {
            values: Values::Views { views: views.clone(), data: data.clone() },
            nulls: None,
            len: 2,
        };
        assert_eq!(chunk.get(0), None);
        assert_eq!(chunk.get(1), Some(&b"short"[..]));
        let offsets = Chunk {
            values: Values::Offsets32 { offsets: vec![0, 5, 3].into(), data: Buffer::from_vec(vec![1u8; 5]) },
            nulls: None,
            len: 2,
        };
        assert_eq!(offsets.get(0), Some(&[1u8; 5][..]));
        assert_eq!(offsets.get(1), None, "a decreasing pair of offsets");
        // the kernels refuse such a column instead of reading past a buffer
        let column = Column { chunks: vec![chunk, offsets] };
        let copy = |_: &mut (), v: &[u8], o: &mut [u8]| o.copy_from_slice(&v[..o.len()]);
        let err = crate::arrow::Output::map_fixed(&column, 1, || (), copy).err().unwrap();
        assert!(err.contains("malformed"), "{err}");
        let err = crate::arrow::Output::map(&column, |v| v.len(), || (), |s, v, o| {
            copy(s, v, o);
            true
        })
        .err()
        .unwrap();
        assert!(err.contains("malformed"), "{err}");
    }

    #[test]
    fn other_types_are_refused_by_name() {
        let array: ArrayRef = Arc::new(Int32Array::from(vec![1, 2]));
        let err = Column::from_arrays([&array]).err().unwrap();
        assert!(err.contains("string or binary") && err.contains("Int32"), "{err}");
    }
}
