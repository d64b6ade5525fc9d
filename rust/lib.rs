//! `socialsearch.crypto._native`: the crypto kernels of socialsearch, over whole Arrow columns.
//!
//! * [`kernels`]: batch HMAC-SHA256 pseudonyms and AES-SIV (RFC 5297), parallel with rayon;
//! * [`arrow`]: columns in and out through the Arrow C data/stream interfaces (arrow-rs's FFI),
//!   taking Polars columns and giving them back without copies;
//! * [`resolve`]: the station's register index for resolution (distinct hashes, counting sorts, near-day pairs);
//! * `python` (feature `python`): the PyO3 module; see `src/socialsearch/crypto/_native.pyi`.
//!
//! Every `unsafe` block states the invariant it relies on in a `// SAFETY:` comment.
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod arrow;
pub mod kernels;
pub mod resolve;
pub mod scope;
pub mod validate;

#[cfg(feature = "python")]
mod python;
