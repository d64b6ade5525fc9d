//! Building a string or binary *view* column in parallel and handing it over through the C
//! data interface (the producer side of `__arrow_c_array__`).
//!
//! Every value is written by exactly one task into its own place, through plain `&mut`
//! slices: the values are cut into [`Block`]s of [`BLOCK`] (never across two input chunks);
//! each block's long values (more than 12 bytes) get one contiguous region of one data buffer,
//! laid out before any task runs ([`place`]), and the buffers are cut into those regions with
//! `split_at_mut` ([`parts`]). The buffers are allocated zeroed, which for large ones is
//! pages the operating system zeroes when a task first touches them.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::ffi::{FFI_ArrowArray, FFI_ArrowSchema};
use arrow_array::{Array, ArrayRef, BinaryViewArray};
use arrow_buffer::{BooleanBufferBuilder, Buffer, NullBuffer, ScalarBuffer};
use arrow_data::ByteView;
use arrow_schema::Field;
use rayon::prelude::*;

use super::import::Column;

/// Values per parallel task.
pub const BLOCK: usize = 2048;

/// Largest data buffer (a view's offset is a u32; stay well inside i32 for every consumer).
const MAX_BUFFER: usize = 1 << 30;

/// Longest value kept inside its view.
const MAX_INLINE: usize = 12;

const MALFORMED: &str = "the Arrow array is malformed (a value lies outside its buffers)";
const TOO_LARGE: &str = "the output column is too large for an Arrow view array";

/// A finished string or binary view column, exported by [`Output::into_ffi`].
pub struct Output {
    array: ArrayRef,
}

/// `count` values of input chunk `chunk` from index `first`, whose long values take `bytes`
/// bytes of data buffer `buffer` from `start`.
struct Block {
    chunk: usize,
    first: usize,
    count: usize,
    buffer: usize,
    start: usize,
    bytes: usize,
}

/// A block, its views and its region of a data buffer (empty when it has no long value).
type Part<'a> = (&'a Block, &'a mut [u128], &'a mut [u8]);

/// The blocks of `column` in order: [`BLOCK`] values each, never across two chunks.
fn blocks(column: &Column) -> Vec<Block> {
    let mut blocks = Vec::with_capacity(column.len().div_ceil(BLOCK) + column.chunks().len());
    for (c, chunk) in column.chunks().iter().enumerate() {
        for first in (0..chunk.len()).step_by(BLOCK) {
            let count = BLOCK.min(chunk.len() - first);
            blocks.push(Block { chunk: c, first, count, buffer: 0, start: 0, bytes: 0 });
        }
    }
    blocks
}

/// Give every block with long values its region: the blocks in order, one after the other in
/// a data buffer, a new buffer when the next block would take the current one past
/// [`MAX_BUFFER`]. Returns the buffers' sizes.
fn place(blocks: &mut [Block]) -> Result<Vec<usize>, String> {
    let mut sizes: Vec<usize> = Vec::new();
    for block in blocks.iter_mut().filter(|b| b.bytes > 0) {
        let n = sizes.len();
        match sizes.last_mut() {
            Some(size) if *size + block.bytes <= MAX_BUFFER => {
                (block.buffer, block.start) = (n - 1, *size);
                *size += block.bytes;
            }
            _ => {
                (block.buffer, block.start) = (n, 0);
                sizes.push(block.bytes);
            }
        }
        // a view holds its buffer's index and its offset in it as u32
        if u32::try_from(block.buffer).is_err() || u32::try_from(block.start + block.bytes).is_err() {
            return Err(TOO_LARGE.into());
        }
    }
    Ok(sizes)
}

/// Cut `views` and `buffers` into the blocks' own parts, in block order.
fn parts<'a>(blocks: &'a [Block], views: &'a mut [u128], buffers: &'a mut [Vec<u8>]) -> Vec<Part<'a>> {
    let mut views = views;
    let mut rest: Vec<(usize, &mut [u8])> = buffers.iter_mut().map(|b| (0, b.as_mut_slice())).collect();
    let mut out = Vec::with_capacity(blocks.len());
    for block in blocks {
        let (own, tail) = std::mem::take(&mut views).split_at_mut(block.count);
        views = tail;
        let region: &mut [u8] = if block.bytes > 0 {
            let (at, buffer) = &mut rest[block.buffer];
            assert_eq!(*at, block.start, "blocks are placed one after the other");
            let (region, tail) = std::mem::take(buffer).split_at_mut(block.bytes);
            (*at, *buffer) = (*at + block.bytes, tail);
            region
        } else {
            &mut []
        };
        out.push((block, own, region));
    }
    out
}

/// The view of a value of `m <= 12` bytes held inline (the rest of `bytes` is zero).
#[inline]
fn inline_view(m: usize, bytes: &[u8; MAX_INLINE]) -> u128 {
    let mut view = [0u8; 16];
    view[..4].copy_from_slice(&(m as u32).to_le_bytes());
    view[4..].copy_from_slice(bytes);
    u128::from_le_bytes(view)
}

/// The view of a long value written at `at` in `block`'s region (`value` is its bytes).
#[inline]
fn long_view(block: &Block, at: usize, value: &[u8]) -> u128 {
    // the length (checked by the callers) and the buffer index and offset (checked by `place`)
    // fit in u32
    ByteView::new(value.len() as u32, &value[..4])
        .with_buffer_index(block.buffer as u32)
        .with_offset((block.start + at) as u32)
        .as_u128()
}

/// The validity of `column` (chunk after chunk), `None` when it has no null.
fn validity(column: &Column) -> Option<NullBuffer> {
    column.has_nulls().then(|| {
        let mut bits = BooleanBufferBuilder::new(column.len());
        for chunk in column.chunks() {
            match chunk.nulls() {
                Some(nulls) => bits.append_buffer(nulls.inner()),
                None => bits.append_n(chunk.len(), true),
            }
        }
        NullBuffer::new(bits.finish())
    })
}

impl Output {
    /// Lay out one output value per input value and fill them in parallel.
    ///
    /// `out_len(input)` gives the output length of a non-null input; `fill(state, input, out)`
    /// writes it into `out` (exactly that long) and returns `false` on failure (counted, the
    /// value is left as it is). Nulls stay null. `init` makes one mutable state per task.
    /// Returns the binary column and the number of failures, or an error for a malformed input.
    pub fn map<S, I, L, F>(column: &Column, out_len: L, init: I, fill: F) -> Result<(Self, usize), String>
    where
        I: Fn() -> S + Sync + Send,
        L: Fn(&[u8]) -> usize + Sync,
        F: Fn(&mut S, &[u8], &mut [u8]) -> bool + Sync + Send,
    {
        let mut blocks = blocks(column);
        let mut views = vec![0u128; column.len()];
        // pass 1 (parallel, no cryptography): every value's length into its view, and the
        // bytes of each block's long values
        let mut view_parts: Vec<&mut [u128]> = Vec::with_capacity(blocks.len());
        let mut rest = views.as_mut_slice();
        for block in &blocks {
            let (own, tail) = rest.split_at_mut(block.count);
            view_parts.push(own);
            rest = tail;
        }
        blocks.par_iter_mut().zip(view_parts).try_for_each(|(block, views)| {
            let chunk = &column.chunks()[block.chunk];
            for (k, view) in views.iter_mut().enumerate() {
                let i = block.first + k;
                if chunk.is_valid(i) {
                    let m = out_len(chunk.get(i).ok_or(MALFORMED)?);
                    *view = u128::from(u32::try_from(m).map_err(|_| TOO_LARGE)?);
                    if m > MAX_INLINE {
                        block.bytes += m;
                    }
                }
            }
            Ok::<(), String>(())
        })?;
        let sizes = place(&mut blocks)?;
        let mut buffers: Vec<Vec<u8>> = sizes.iter().map(|&size| vec![0u8; size]).collect();
        // pass 2 (parallel): every value into its own place
        let failures = AtomicUsize::new(0);
        parts(&blocks, &mut views, &mut buffers).into_par_iter().for_each_init(&init, |state, (block, views, region)| {
            let chunk = &column.chunks()[block.chunk];
            let (mut failed, mut at) = (0, 0);
            for (k, view) in views.iter_mut().enumerate() {
                let i = block.first + k;
                // pass 1 read every valid value
                let Some(input) = chunk.is_valid(i).then(|| chunk.get(i)).flatten() else {
                    continue;
                };
                let m = *view as u32 as usize;
                let ok = if m <= MAX_INLINE {
                    let mut inline = [0u8; MAX_INLINE];
                    let ok = fill(state, input, &mut inline[..m]);
                    *view = inline_view(m, &inline);
                    ok
                } else {
                    let out = &mut region[at..at + m];
                    let ok = fill(state, input, out);
                    *view = long_view(block, at, out);
                    at += m;
                    ok
                };
                failed += usize::from(!ok);
            }
            if failed > 0 {
                failures.fetch_add(failed, Ordering::Relaxed);
            }
        });
        Ok((Self::finish(views, buffers, validity(column)), failures.into_inner()))
    }

    /// Like [`Output::map`] for outputs of one fixed width that cannot fail: no length pass,
    /// every view and value is written by the task that owns it.
    pub fn map_fixed<S, I, F>(column: &Column, width: usize, init: I, fill: F) -> Result<Self, String>
    where
        I: Fn() -> S + Sync + Send,
        F: Fn(&mut S, &[u8], &mut [u8]) + Sync + Send,
    {
        u32::try_from(width).map_err(|_| TOO_LARGE)?;
        let mut blocks = blocks(column);
        if width > MAX_INLINE {
            for block in &mut blocks {
                block.bytes = block.count * width;
            }
        }
        let sizes = place(&mut blocks)?;
        let mut views = vec![0u128; column.len()];
        let mut buffers: Vec<Vec<u8>> = sizes.iter().map(|&size| vec![0u8; size]).collect();
        let malformed = AtomicBool::new(false);
        parts(&blocks, &mut views, &mut buffers).into_par_iter().for_each_init(&init, |state, (block, views, region)| {
            let chunk = &column.chunks()[block.chunk];
            let mut bad = false;
            for (k, view) in views.iter_mut().enumerate() {
                let i = block.first + k;
                if !chunk.is_valid(i) {
                    continue;
                }
                let Some(input) = chunk.get(i) else {
                    bad = true;
                    continue;
                };
                *view = if width <= MAX_INLINE {
                    let mut inline = [0u8; MAX_INLINE];
                    fill(state, input, &mut inline[..width]);
                    inline_view(width, &inline)
                } else {
                    let at = k * width;
                    let out = &mut region[at..at + width];
                    fill(state, input, out);
                    long_view(block, at, out)
                };
            }
            if bad {
                malformed.store(true, Ordering::Relaxed);
            }
        });
        if malformed.into_inner() {
            return Err(MALFORMED.into());
        }
        Ok(Self::finish(views, buffers, validity(column)))
    }

    fn finish(views: Vec<u128>, buffers: Vec<Vec<u8>>, nulls: Option<NullBuffer>) -> Self {
        let views = ScalarBuffer::from(views);
        let buffers: Arc<[Buffer]> = buffers.into_iter().map(Buffer::from_vec).collect();
        debug_assert!(arrow_data::validate_binary_view(&views, &buffers).is_ok());
        // SAFETY: these are `BinaryViewArray::try_new`'s conditions, which `map` and
        // `map_fixed` meet by construction: a long value's view holds its length, its first 4
        // bytes, and the index of and offset in the data buffer that `place` gave its block
        // (inside the block's region, which `parts` cut from that buffer); an inline view holds
        // the length and at most 12 bytes, the rest zero; a null's view is 0 (empty, inline);
        // `validity` has one bit per value.
        let array = unsafe { BinaryViewArray::new_unchecked(views, buffers, nulls) };
        Self { array: Arc::new(array) }
    }

    /// The same values as a string column (`Utf8View`).
    ///
    /// # Safety
    /// Every value must be UTF-8.
    pub unsafe fn assume_utf8(self) -> Self {
        let Some(binary) = self.array.as_binary_view_opt() else {
            return self; // already strings
        };
        debug_assert!(arrow_data::validate_string_view(binary.views(), binary.data_buffers()).is_ok());
        // SAFETY: the caller guarantees that every value is UTF-8, the one condition a string
        // view array adds to a binary view array.
        let strings = unsafe { binary.clone().to_string_view_unchecked() };
        Self { array: Arc::new(strings) }
    }

    /// Any finished array (a kernel's primitive column), for [`Output::into_ffi`].
    pub fn from_array(array: ArrayRef) -> Self {
        Self { array }
    }

    pub fn array(&self) -> &ArrayRef {
        &self.array
    }

    pub fn len(&self) -> usize {
        self.array.len()
    }

    pub fn is_empty(&self) -> bool {
        self.array.is_empty()
    }

    /// Export as C data interface structs (a nullable field named ""); the buffers are freed
    /// by the consumer's release.
    pub fn into_ffi(self) -> Result<(FFI_ArrowSchema, FFI_ArrowArray), String> {
        let field = Field::new("", self.array.data_type().clone(), true);
        let schema = FFI_ArrowSchema::try_from(&field).map_err(|e| format!("cannot export the Arrow schema: {e}"))?;
        Ok((schema, FFI_ArrowArray::new(&self.array.to_data())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arrow::import::column_of;

    fn round_trip(values: &[Option<&[u8]>]) -> Vec<Option<Vec<u8>>> {
        let column = column_of(values);
        // identity map through an Output, then read the exported views back
        let (out, failures) = Output::map(&column, |v| v.len(), || (), |_, v, o| {
            o.copy_from_slice(v);
            true
        })
        .unwrap();
        assert_eq!(failures, 0);
        crate::arrow::import::read_ffi(out)
    }

    #[test]
    fn views_round_trip_short_long_and_null() {
        let long = vec![7u8; 5000];
        let values: Vec<Option<&[u8]>> =
            vec![Some(b""), Some(b"abc"), None, Some(b"exactly12byt"), Some(b"thirteen byte"), Some(&long)];
        let expected: Vec<Option<Vec<u8>>> = values.iter().map(|v| v.map(<[u8]>::to_vec)).collect();
        assert_eq!(round_trip(&values), expected);
    }

    #[test]
    fn many_values_span_blocks() {
        let owned: Vec<Vec<u8>> = (0..10_000u32).map(|i| format!("value-{i:08}").into_bytes()).collect();
        let values: Vec<Option<&[u8]>> = owned.iter().map(|v| Some(v.as_slice())).collect();
        let got = round_trip(&values);
        assert_eq!(got.len(), 10_000);
        assert!(got.iter().zip(&owned).all(|(g, o)| g.as_deref() == Some(o.as_slice())));
    }

    #[test]
    fn empty_column() {
        assert!(round_trip(&[]).is_empty());
    }

    #[test]
    fn several_chunks_and_fixed_widths() {
        let a: ArrayRef = Arc::new(arrow_array::StringViewArray::from_iter([Some("a"); 3000]));
        let b: ArrayRef = Arc::new(arrow_array::LargeBinaryArray::from_iter([None, Some(&b"bb"[..])]));
        let column = Column::from_arrays([&a, &b]).unwrap();
        for width in [0, 5, 12, 13, 40] {
            let out = Output::map_fixed(&column, width, || (), |_, v, o| o.fill(v[0])).unwrap();
            let got = crate::arrow::import::read_ffi(out);
            assert_eq!(got.len(), 3002);
            assert!(got[..3000].iter().all(|g| g.as_deref() == Some(&vec![b'a'; width][..])));
            assert_eq!(got[3000], None);
            assert_eq!(got[3001].as_deref(), Some(&vec![b'b'; width][..]));
        }
    }

    #[test]
    fn blocks_are_placed_in_order_and_split_buffers() {
        let mut blocks: Vec<Block> = [MAX_BUFFER / 2, 0, MAX_BUFFER / 2, 1, 7]
            .iter()
            .map(|&bytes| Block { chunk: 0, first: 0, count: 0, buffer: 0, start: 0, bytes })
            .collect();
        let sizes = place(&mut blocks).unwrap();
        assert_eq!(sizes, vec![MAX_BUFFER, 8]);
        let placed: Vec<(usize, usize)> = blocks.iter().map(|b| (b.buffer, b.start)).collect();
        assert_eq!(placed, vec![(0, 0), (0, 0), (0, MAX_BUFFER / 2), (1, 0), (1, 1)]);
    }
}
