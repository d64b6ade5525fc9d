//! Columns in and out through the Arrow C data and C stream interfaces
//! (<https://arrow.apache.org/docs/format/CDataInterface.html>), with arrow-rs's FFI structs
//! (`arrow_array::ffi`, `arrow_array::ffi_stream`):
//!
//! * [`import`]: a column of strings or binaries (`Utf8`, `LargeUtf8`, `Binary`, `LargeBinary`,
//!   `Utf8View`, `BinaryView`) read in place, one [`Chunk`] per array of the stream, with
//!   bounds-checked accessors;
//! * [`export`]: a string or binary *view* column (what Polars uses inside) filled in parallel
//!   and handed over without a copy.

pub mod export;
pub mod import;

pub use export::{Output, BLOCK};
pub use import::{Chunk, Column};
