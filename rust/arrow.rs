//! A minimal implementation of the Arrow C data and C stream interfaces
//! (<https://arrow.apache.org/docs/format/CDataInterface.html>), enough to read a column of
//! strings or binaries (`u`, `U`, `z`, `Z`, `vu`, `vz`) without copying it and to hand back a
//! string or binary *view* column (`vu`, `vz`, what Polars uses inside) without copying it.
//!
//! Reading borrows the producer's buffers for as long as the [`Column`] lives and releases them
//! when it is dropped. Writing fills an [`Output`] in parallel: its value lengths are laid out
//! once (one pass over the input), then every value is written by exactly one task into its own
//! disjoint place.

use std::ffi::{c_char, c_void, CStr, CString};
use std::mem::MaybeUninit;
use std::ptr;

use rayon::prelude::*;

/// `struct ArrowSchema` of the C data interface.
#[repr(C)]
pub struct ArrowSchema {
    pub format: *const c_char,
    pub name: *const c_char,
    pub metadata: *const c_char,
    pub flags: i64,
    pub n_children: i64,
    pub children: *mut *mut ArrowSchema,
    pub dictionary: *mut ArrowSchema,
    pub release: Option<unsafe extern "C" fn(*mut ArrowSchema)>,
    pub private_data: *mut c_void,
}

/// `struct ArrowArray` of the C data interface.
#[repr(C)]
pub struct ArrowArray {
    pub length: i64,
    pub null_count: i64,
    pub offset: i64,
    pub n_buffers: i64,
    pub n_children: i64,
    pub buffers: *mut *const c_void,
    pub children: *mut *mut ArrowArray,
    pub dictionary: *mut ArrowArray,
    pub release: Option<unsafe extern "C" fn(*mut ArrowArray)>,
    pub private_data: *mut c_void,
}

/// `struct ArrowArrayStream` of the C stream interface.
#[repr(C)]
pub struct ArrowArrayStream {
    pub get_schema: Option<unsafe extern "C" fn(*mut ArrowArrayStream, *mut ArrowSchema) -> i32>,
    pub get_next: Option<unsafe extern "C" fn(*mut ArrowArrayStream, *mut ArrowArray) -> i32>,
    pub get_last_error: Option<unsafe extern "C" fn(*mut ArrowArrayStream) -> *const c_char>,
    pub release: Option<unsafe extern "C" fn(*mut ArrowArrayStream)>,
    pub private_data: *mut c_void,
}

// The structs only carry pointers that the producer allows any thread to use (the interface
// requires it); release is called exactly once, by Drop, unless the struct was moved out.
unsafe impl Send for ArrowSchema {}
unsafe impl Send for ArrowArray {}
unsafe impl Send for ArrowArrayStream {}

impl ArrowSchema {
    pub fn empty() -> Self {
        Self {
            format: ptr::null(),
            name: ptr::null(),
            metadata: ptr::null(),
            flags: 0,
            n_children: 0,
            children: ptr::null_mut(),
            dictionary: ptr::null_mut(),
            release: None,
            private_data: ptr::null_mut(),
        }
    }
}

impl ArrowArray {
    pub fn empty() -> Self {
        Self {
            length: 0,
            null_count: 0,
            offset: 0,
            n_buffers: 0,
            n_children: 0,
            buffers: ptr::null_mut(),
            children: ptr::null_mut(),
            dictionary: ptr::null_mut(),
            release: None,
            private_data: ptr::null_mut(),
        }
    }
}

impl Drop for ArrowSchema {
    fn drop(&mut self) {
        if let Some(release) = self.release {
            unsafe { release(self) };
        }
    }
}

impl Drop for ArrowArray {
    fn drop(&mut self) {
        if let Some(release) = self.release {
            unsafe { release(self) };
        }
    }
}

impl Drop for ArrowArrayStream {
    fn drop(&mut self) {
        if let Some(release) = self.release {
            unsafe { release(self) };
        }
    }
}

// ------------------------------------------------------------------------------- reading
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    Offsets32,
    Offsets64,
    View,
}

/// One imported array: a run of values that [`Chunk::value`] reads in place.
pub struct Chunk {
    _array: ArrowArray,
    layout: Layout,
    len: usize,
    offset: usize,
    validity: *const u8,
    has_nulls: bool,
    /// i32/i64 offsets, or the 16-byte views
    index: *const u8,
    /// the values buffer (offset layouts) or the variadic data buffers (views)
    data: Vec<*const u8>,
}

unsafe impl Send for Chunk {}
unsafe impl Sync for Chunk {}

impl Chunk {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn has_nulls(&self) -> bool {
        self.has_nulls
    }

    #[inline]
    pub fn is_valid(&self, i: usize) -> bool {
        if !self.has_nulls {
            return true;
        }
        let bit = self.offset + i;
        unsafe { *self.validity.add(bit >> 3) & (1 << (bit & 7)) != 0 }
    }

    /// The bytes of value `i` (of a null slot: whatever the producer left there, often empty).
    #[inline]
    pub fn value(&self, i: usize) -> &[u8] {
        let j = self.offset + i;
        unsafe {
            match self.layout {
                Layout::Offsets32 => {
                    let offsets = self.index as *const i32;
                    let start = ptr::read_unaligned(offsets.add(j)) as usize;
                    let end = ptr::read_unaligned(offsets.add(j + 1)) as usize;
                    std::slice::from_raw_parts(self.data[0].add(start), end - start)
                }
                Layout::Offsets64 => {
                    let offsets = self.index as *const i64;
                    let start = ptr::read_unaligned(offsets.add(j)) as usize;
                    let end = ptr::read_unaligned(offsets.add(j + 1)) as usize;
                    std::slice::from_raw_parts(self.data[0].add(start), end - start)
                }
                Layout::View => {
                    let view = self.index.add(16 * j);
                    let n = ptr::read_unaligned(view as *const u32) as usize;
                    if n <= 12 {
                        std::slice::from_raw_parts(view.add(4), n)
                    } else {
                        let buffer = ptr::read_unaligned(view.add(8) as *const u32) as usize;
                        let start = ptr::read_unaligned(view.add(12) as *const u32) as usize;
                        std::slice::from_raw_parts(self.data[buffer].add(start), n)
                    }
                }
            }
        }
    }
}

/// A column of strings or binaries read through the C stream interface, one [`Chunk`] per array.
pub struct Column {
    pub chunks: Vec<Chunk>,
    pub utf8: bool,
    _stream: Option<ArrowArrayStream>,
}

// The stream is only kept to be released on drop; the chunks are read-only.
unsafe impl Sync for Column {}

impl Column {
    pub fn len(&self) -> usize {
        self.chunks.iter().map(Chunk::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn has_nulls(&self) -> bool {
        self.chunks.iter().any(Chunk::has_nulls)
    }

    /// A column of one array (the consumer side of `__arrow_c_array__`); takes ownership of both.
    ///
    /// # Safety
    /// `schema` and `array` must be valid C data interface structs describing the same array.
    pub unsafe fn from_array(schema: ArrowSchema, array: ArrowArray) -> Result<Self, String> {
        let (layout, utf8) = layout_of(&schema)?;
        let mut chunks = Vec::new();
        if array.length > 0 {
            chunks.push(import_chunk(array, layout)?);
        }
        Ok(Self { chunks, utf8, _stream: None })
    }

    /// Read a whole stream; takes ownership of `*stream` (its `release` is set to null).
    ///
    /// # Safety
    /// `stream` must point to a valid, not yet released `ArrowArrayStream`.
    pub unsafe fn from_stream(stream: *mut ArrowArrayStream) -> Result<Self, String> {
        let mut owned = ptr::read(stream);
        (*stream).release = None;
        let s: *mut ArrowArrayStream = &mut owned;
        let get_schema = owned.get_schema.ok_or("the Arrow stream has no get_schema")?;
        let get_next = owned.get_next.ok_or("the Arrow stream has no get_next")?;
        let mut schema = ArrowSchema::empty();
        if get_schema(s, &mut schema) != 0 {
            return Err(format!("the Arrow stream failed to give its schema: {}", last_error(s)));
        }
        let (layout, utf8) = layout_of(&schema)?;
        let mut chunks = Vec::new();
        loop {
            let mut array = ArrowArray::empty();
            if get_next(s, &mut array) != 0 {
                return Err(format!("the Arrow stream failed: {}", last_error(s)));
            }
            if array.release.is_none() {
                break;
            }
            if array.length > 0 {
                chunks.push(import_chunk(array, layout)?);
            }
        }
        Ok(Self { chunks, utf8, _stream: Some(owned) })
    }
}

unsafe fn last_error(s: *mut ArrowArrayStream) -> String {
    match (*s).get_last_error {
        Some(f) => {
            let p = f(s);
            if p.is_null() {
                "no message".into()
            } else {
                CStr::from_ptr(p).to_string_lossy().into_owned()
            }
        }
        None => "no message".into(),
    }
}

unsafe fn layout_of(schema: &ArrowSchema) -> Result<(Layout, bool), String> {
    if schema.format.is_null() {
        return Err("the Arrow schema has no format".into());
    }
    let format = CStr::from_ptr(schema.format).to_string_lossy();
    Ok(match format.as_ref() {
        "u" => (Layout::Offsets32, true),
        "z" => (Layout::Offsets32, false),
        "U" => (Layout::Offsets64, true),
        "Z" => (Layout::Offsets64, false),
        "vu" => (Layout::View, true),
        "vz" => (Layout::View, false),
        other => return Err(format!("expected a string or binary column, got Arrow format {other:?}")),
    })
}

unsafe fn import_chunk(array: ArrowArray, layout: Layout) -> Result<Chunk, String> {
    let n_buffers = array.n_buffers as usize;
    // offsets: validity, offsets, data; views: validity, views, data buffers..., their sizes
    if n_buffers < 3 || array.buffers.is_null() || array.length < 0 || array.offset < 0 {
        return Err("the Arrow array is malformed (too few buffers)".into());
    }
    let buffers = std::slice::from_raw_parts(array.buffers, n_buffers);
    let validity = buffers[0] as *const u8;
    let len = array.length as usize;
    let offset = array.offset as usize;
    let mut has_nulls = !validity.is_null() && array.null_count != 0;
    let data: Vec<*const u8> = match layout {
        Layout::View => buffers[2..n_buffers - 1].iter().map(|&p| p as *const u8).collect(),
        _ => vec![buffers[2] as *const u8],
    };
    let index = buffers[1] as *const u8;
    if index.is_null() && len > 0 {
        return Err("the Arrow array is malformed (no offsets or views)".into());
    }
    let mut chunk = Chunk { _array: array, layout, len, offset, validity, has_nulls, index, data };
    if has_nulls && chunk._array.null_count < 0 {
        // unknown null count: look
        has_nulls = (0..len).any(|i| !chunk.is_valid(i));
        chunk.has_nulls = has_nulls;
    }
    Ok(chunk)
}

// ------------------------------------------------------------------------------- writing
/// A string or binary view column being built, exported by [`Output::into_ffi`].
pub struct Output {
    len: usize,
    views: Vec<u128>,
    buffers: Vec<Vec<u8>>,
    validity: Option<Vec<u8>>,
    null_count: usize,
    utf8: bool,
}

/// Largest data buffer (a view's offset is a u32; stay well inside i32 for every consumer).
const MAX_BUFFER: usize = 1 << 30;

#[derive(Clone, Copy)]
struct SendPtr(*mut u8);
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

/// Values per parallel task.
pub const BLOCK: usize = 2048;

impl Output {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Lay out one output value per input value and fill them in parallel.
    ///
    /// `out_len(input)` gives the output length of a non-null input; `fill(state, input, out)`
    /// writes it into `out` (exactly that long) and returns `false` on failure (counted, the
    /// value is left as it is). Nulls stay null. `init` makes one mutable state per task.
    /// Returns the column and the number of failures.
    pub fn map<S, I, L, F>(column: &Column, utf8: bool, out_len: L, init: I, fill: F) -> (Self, usize)
    where
        I: Fn() -> S + Sync + Send,
        L: Fn(&[u8]) -> usize + Sync,
        F: Fn(&mut S, &[u8], &mut [u8]) -> bool + Sync + Send,
    {
        let n = column.len();
        let nulls = column.has_nulls();
        // pass 1 (sequential, no hashing): lengths, data buffer places, validity
        let mut views: Vec<u128> = vec![0; n];
        let mut sizes: Vec<usize> = vec![0];
        let mut validity = if nulls { Some(vec![0u8; n.div_ceil(8)]) } else { None };
        let mut null_count = 0;
        let mut g = 0;
        for chunk in &column.chunks {
            for i in 0..chunk.len() {
                if !chunk.is_valid(i) {
                    null_count += 1;
                    g += 1;
                    continue;
                }
                if let Some(bits) = validity.as_mut() {
                    bits[g >> 3] |= 1 << (g & 7);
                }
                let m = out_len(chunk.value(i));
                let mut view = m as u128;
                if m > 12 {
                    let mut b = sizes.len() - 1;
                    if sizes[b] + m > MAX_BUFFER {
                        sizes.push(0);
                        b += 1;
                    }
                    view |= ((b as u128) << 64) | ((sizes[b] as u128) << 96);
                    sizes[b] += m;
                }
                views[g] = view;
                g += 1;
            }
        }
        let mut buffers: Vec<Vec<u8>> = sizes.iter().map(|&s| vec![0u8; s]).collect();
        if buffers.len() == 1 && buffers[0].is_empty() {
            buffers.clear();
        }
        let bases: Vec<SendPtr> = buffers.iter_mut().map(|b| SendPtr(b.as_mut_ptr())).collect();
        // pass 2 (parallel): every value into its own place
        let failures = std::sync::atomic::AtomicUsize::new(0);
        let mut start = 0;
        for chunk in &column.chunks {
            let part = &mut views[start..start + chunk.len()];
            part.par_chunks_mut(BLOCK).enumerate().for_each_init(&init, |state, (j, block)| {
                let mut failed = 0;
                for (k, view) in block.iter_mut().enumerate() {
                    let i = j * BLOCK + k;
                    if !chunk.is_valid(i) {
                        continue;
                    }
                    let input = chunk.value(i);
                    let m = (*view as u32) as usize;
                    let ok = if m <= 12 {
                        let mut inline = [0u8; 12];
                        let ok = fill(state, input, &mut inline[..m]);
                        let mut bytes = [0u8; 16];
                        bytes[..4].copy_from_slice(&(m as u32).to_le_bytes());
                        bytes[4..].copy_from_slice(&inline);
                        *view = u128::from_le_bytes(bytes);
                        ok
                    } else {
                        let b = ((*view >> 64) as u32) as usize;
                        let off = ((*view >> 96) as u32) as usize;
                        // SAFETY: pass 1 gave this value [off, off + m) of buffer b, to it alone
                        let out = unsafe { std::slice::from_raw_parts_mut(bases[b].0.add(off), m) };
                        let ok = fill(state, input, out);
                        let prefix = u32::from_le_bytes([out[0], out[1], out[2], out[3]]) as u128;
                        *view = (*view & !(0xffff_ffffu128 << 32)) | (prefix << 32);
                        ok
                    };
                    failed += usize::from(!ok);
                }
                if failed > 0 {
                    failures.fetch_add(failed, std::sync::atomic::Ordering::Relaxed);
                }
            });
            start += chunk.len();
        }
        let output = Self { len: n, views, buffers, validity, null_count, utf8 };
        (output, failures.into_inner())
    }

    /// Like [`Output::map`] for outputs of one fixed width (more than 12 bytes) that cannot
    /// fail: no layout pass, every view and value is written by the task that owns it.
    pub fn map_fixed<S, I, F>(column: &Column, utf8: bool, width: usize, init: I, fill: F) -> Self
    where
        I: Fn() -> S + Sync + Send,
        F: Fn(&mut S, &[u8], &mut [u8]) + Sync + Send,
    {
        assert!(width > 12 && width <= MAX_BUFFER);
        let n = column.len();
        // values per data buffer, a whole number of blocks
        let per_buffer = (MAX_BUFFER / width / BLOCK).max(1) * BLOCK;
        // Allocated, not zeroed: the tasks below initialise every byte (zeroing ~50 bytes per
        // value up front would be a sequential pass over the whole output).
        let sizes: Vec<usize> = (0..n.div_ceil(per_buffer)).map(|b| width * per_buffer.min(n - b * per_buffer)).collect();
        let mut buffers: Vec<Vec<u8>> = sizes.iter().map(|&size| Vec::with_capacity(size)).collect();
        let mut views: Vec<u128> = Vec::with_capacity(n);
        let mut validity = None;
        let mut null_count = 0;
        if column.has_nulls() {
            let mut bits = vec![0u8; n.div_ceil(8)];
            let mut g = 0;
            for chunk in &column.chunks {
                for i in 0..chunk.len() {
                    if chunk.is_valid(i) {
                        bits[g >> 3] |= 1 << (g & 7);
                    } else {
                        null_count += 1;
                    }
                    g += 1;
                }
            }
            validity = Some(bits);
        }
        // (view block, data block) pairs in global order: blocks never straddle a data buffer
        type Task<'a> = (usize, &'a mut [MaybeUninit<u128>], &'a mut [MaybeUninit<u8>]);
        let mut tasks: Vec<Task> = Vec::with_capacity(n.div_ceil(BLOCK));
        let mut rest_views: &mut [MaybeUninit<u128>] = &mut views.spare_capacity_mut()[..n];
        let mut global = 0;
        for (buffer, &size) in buffers.iter_mut().zip(&sizes) {
            for data in buffer.spare_capacity_mut()[..size].chunks_mut(width * BLOCK) {
                let count = data.len() / width;
                let (head, tail) = std::mem::take(&mut rest_views).split_at_mut(count);
                rest_views = tail;
                tasks.push((global, head, data));
                global += count;
            }
        }
        let starts: Vec<usize> = column
            .chunks
            .iter()
            .scan(0, |s, c| {
                let start = *s;
                *s += c.len();
                Some(start)
            })
            .collect();
        let per_buffer_u = per_buffer;
        tasks.into_par_iter().for_each_init(&init, |state, (first, views, data)| {
            // initialise this task's part of the output (in cache, on this thread)
            for v in views.iter_mut() {
                v.write(0);
            }
            for b in data.iter_mut() {
                b.write(0);
            }
            // SAFETY: every element was just initialised; MaybeUninit<T> has T's layout
            let views = unsafe { &mut *(views as *mut [MaybeUninit<u128>] as *mut [u128]) };
            let data = unsafe { &mut *(data as *mut [MaybeUninit<u8>] as *mut [u8]) };
            // the chunk holding the task's first value; a task may run into the next chunks
            let mut c = starts.partition_point(|&s| s <= first).saturating_sub(1);
            for (k, (view, out)) in views.iter_mut().zip(data.chunks_mut(width)).enumerate() {
                let g = first + k;
                while g >= starts[c] + column.chunks[c].len() {
                    c += 1;
                }
                let chunk = &column.chunks[c];
                let i = g - starts[c];
                if !chunk.is_valid(i) {
                    continue;
                }
                fill(state, chunk.value(i), out);
                let prefix = u32::from_le_bytes([out[0], out[1], out[2], out[3]]) as u128;
                let b = (g / per_buffer_u) as u128;
                let off = ((g % per_buffer_u) * width) as u128;
                *view = (width as u128) | (prefix << 32) | (b << 64) | (off << 96);
            }
        });
        // SAFETY: the tasks covered [0, n) of views and [0, size) of every buffer, and
        // initialised all of it
        unsafe {
            views.set_len(n);
            for (buffer, &size) in buffers.iter_mut().zip(&sizes) {
                buffer.set_len(size);
            }
        }
        Self { len: n, views, buffers, validity, null_count, utf8 }
    }

    /// Export as C data interface structs; the buffers are freed by the consumer's release.
    pub fn into_ffi(self) -> (ArrowSchema, ArrowArray) {
        let format = CString::new(if self.utf8 { "vu" } else { "vz" }).unwrap();
        let schema_private = Box::new(SchemaPrivate { format, name: CString::new("").unwrap() });
        let schema = ArrowSchema {
            format: schema_private.format.as_ptr(),
            name: schema_private.name.as_ptr(),
            metadata: ptr::null(),
            flags: 2, // ARROW_FLAG_NULLABLE
            n_children: 0,
            children: ptr::null_mut(),
            dictionary: ptr::null_mut(),
            release: Some(release_schema),
            private_data: Box::into_raw(schema_private) as *mut c_void,
        };
        let len = self.len as i64;
        let null_count = self.null_count as i64;
        let mut private = Box::new(ArrayPrivate {
            sizes: self.buffers.iter().map(|b| b.len() as i64).collect(),
            output: self,
            pointers: Vec::new(),
        });
        let mut pointers: Vec<*const c_void> = Vec::with_capacity(private.output.buffers.len() + 3);
        pointers.push(match &private.output.validity {
            Some(bits) => bits.as_ptr() as *const c_void,
            None => ptr::null(),
        });
        pointers.push(private.output.views.as_ptr() as *const c_void);
        for b in &private.output.buffers {
            pointers.push(b.as_ptr() as *const c_void);
        }
        pointers.push(private.sizes.as_ptr() as *const c_void);
        private.pointers = pointers;
        let array = ArrowArray {
            length: len,
            null_count,
            offset: 0,
            n_buffers: private.pointers.len() as i64,
            n_children: 0,
            buffers: private.pointers.as_mut_ptr(),
            children: ptr::null_mut(),
            dictionary: ptr::null_mut(),
            release: Some(release_array),
            private_data: Box::into_raw(private) as *mut c_void,
        };
        (schema, array)
    }
}

struct SchemaPrivate {
    format: CString,
    name: CString,
}

struct ArrayPrivate {
    output: Output,
    sizes: Vec<i64>,
    pointers: Vec<*const c_void>,
}

unsafe extern "C" fn release_schema(schema: *mut ArrowSchema) {
    if schema.is_null() || (*schema).release.is_none() {
        return;
    }
    drop(Box::from_raw((*schema).private_data as *mut SchemaPrivate));
    (*schema).release = None;
}

unsafe extern "C" fn release_array(array: *mut ArrowArray) {
    if array.is_null() || (*array).release.is_none() {
        return;
    }
    drop(Box::from_raw((*array).private_data as *mut ArrayPrivate));
    (*array).release = None;
}

// --------------------------------------------------------------------------- test helper
/// A column of the given values (`None` = null), built and read back through the interface.
pub fn column_of(values: &[Option<&[u8]>], utf8: bool) -> Column {
    let owned: Vec<Vec<u8>> = values.iter().map(|v| v.unwrap_or(b"").to_vec()).collect();
    // a plain `z` array with 64-bit offsets, built by hand, is the input of the conversion
    let mut offsets: Vec<i64> = vec![0];
    let mut data: Vec<u8> = Vec::new();
    let mut bits = vec![0u8; values.len().div_ceil(8)];
    for (i, v) in owned.iter().enumerate() {
        data.extend_from_slice(v);
        offsets.push(data.len() as i64);
        if values[i].is_some() {
            bits[i >> 3] |= 1 << (i & 7);
        }
    }
    let nulls = values.iter().filter(|v| v.is_none()).count();
    let keep = Box::new((offsets, data, bits, Vec::<*const c_void>::new()));
    let raw = Box::into_raw(keep);
    unsafe {
        let (offsets, data, bits, pointers) = &mut *raw;
        let validity = if nulls > 0 { bits.as_ptr() as *const c_void } else { ptr::null() };
        pointers.extend([validity, offsets.as_ptr() as *const c_void, data.as_ptr() as *const c_void]);
        unsafe extern "C" fn release(array: *mut ArrowArray) {
            drop(Box::from_raw(
                (*array).private_data as *mut (Vec<i64>, Vec<u8>, Vec<u8>, Vec<*const c_void>),
            ));
            (*array).release = None;
        }
        let array = ArrowArray {
            length: values.len() as i64,
            null_count: nulls as i64,
            offset: 0,
            n_buffers: 3,
            n_children: 0,
            buffers: pointers.as_mut_ptr(),
            children: ptr::null_mut(),
            dictionary: ptr::null_mut(),
            release: Some(release),
            private_data: raw as *mut c_void,
        };
        let format = if utf8 { c"U" } else { c"Z" };
        let schema = ArrowSchema { format: format.as_ptr(), ..ArrowSchema::empty() };
        Column::from_array(schema, array).expect("a valid array")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(values: &[Option<&[u8]>]) -> Vec<Option<Vec<u8>>> {
        let column = column_of(values, false);
        // identity map through an Output, then read the exported views back
        let (out, failures) = Output::map(&column, false, |v| v.len(), || (), |_, v, o| {
            o.copy_from_slice(v);
            true
        });
        assert_eq!(failures, 0);
        let (schema, array) = out.into_ffi();
        let back = unsafe { Column::from_array(schema, array) }.unwrap();
        let mut got = Vec::new();
        for chunk in &back.chunks {
            for i in 0..chunk.len() {
                got.push(chunk.is_valid(i).then(|| chunk.value(i).to_vec()));
            }
        }
        got
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
}
