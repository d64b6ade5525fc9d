//! `socialsearch.crypto._native`: the crypto kernels of socialsearch, over whole Arrow columns.
//!
//! * [`kernels`]: batch HMAC-SHA256 pseudonyms and AES-SIV (RFC 5297), parallel with rayon;
//! * [`arrow`]: the Arrow C data/stream interface, to take Polars columns and give them back
//!   without copies;
//! * `python` (feature `python`): the PyO3 module; see `src/socialsearch/crypto/_native.pyi`.

pub mod arrow;
pub mod kernels;

#[cfg(feature = "python")]
mod python;
