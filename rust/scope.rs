//! HMAC-SHA256 with a key per row: the recipient-scoped pseudonyms of every municipality in
//! one pass. Row `i` is MAC-ed under `keys[index[i]]` and written as `prefixes[index[i]]`
//! followed by the encoding, exactly what [`crate::kernels::hmac_column`] writes for the rows
//! of one key.

use std::sync::Arc;

use arrow_array::builder::{BinaryBuilder, StringBuilder};
use rayon::prelude::*;

use crate::arrow::{Column, Output};
use crate::kernels::{Encoding, HmacSha256};

/// `prefixes[index[i]]` + the encoded HMAC-SHA256 under `keys[index[i]]` of every value `i`;
/// nulls stay null. A string column for the text encodings (whose prefixes must be ASCII), a
/// binary one for [`Encoding::Raw`].
pub fn hmac_keyed(
    keys: &[Vec<u8>],
    prefixes: &[Vec<u8>],
    index: &[u32],
    column: &Column,
    encoding: Encoding,
) -> Result<Output, String> {
    let text = encoding != Encoding::Raw;
    if keys.len() != prefixes.len() {
        return Err("one prefix per key".into());
    }
    if index.len() != column.len() {
        return Err("one key index per value".into());
    }
    if index.iter().any(|&k| k as usize >= keys.len()) {
        return Err("a key index is out of range".into());
    }
    if text && prefixes.iter().any(|p| !p.is_ascii()) {
        return Err("a text pseudonym's prefix must be ASCII".into());
    }
    let keyed: Vec<HmacSha256> = keys.iter().map(|k| HmacSha256::new(k)).collect();
    let rows: Vec<(usize, usize)> =
        column.chunks().iter().enumerate().flat_map(|(c, chunk)| (0..chunk.len()).map(move |i| (c, i))).collect();
    let digests: Vec<Option<[u8; 32]>> = rows
        .par_iter()
        .zip(index.par_iter())
        .map(|(&(c, i), &k)| {
            let chunk = &column.chunks()[c];
            if !chunk.is_valid(i) {
                return Ok(None);
            }
            let value = chunk.get(i).ok_or("a malformed column")?;
            Ok(Some(keyed[k as usize].mac(value)))
        })
        .collect::<Result<_, String>>()?;
    let width = encoding.width();
    let fill = |k: u32, digest: &[u8; 32], buf: &mut Vec<u8>| {
        buf.clear();
        buf.extend_from_slice(&prefixes[k as usize]);
        let start = buf.len();
        buf.resize(start + width, 0);
        encoding.write(digest, &mut buf[start..]);
    };
    let mut buf = Vec::with_capacity(64);
    Ok(if text {
        let mut out = StringBuilder::with_capacity(digests.len(), digests.len() * (width + 8));
        for (digest, &k) in digests.iter().zip(index) {
            match digest {
                Some(d) => {
                    fill(k, d, &mut buf);
                    // the prefix is ASCII (checked above) and the text encodings write ASCII
                    out.append_value(std::str::from_utf8(&buf).map_err(|e| e.to_string())?);
                }
                None => out.append_null(),
            }
        }
        Output::from_array(Arc::new(out.finish()))
    } else {
        let mut out = BinaryBuilder::with_capacity(digests.len(), digests.len() * (width + 8));
        for (digest, &k) in digests.iter().zip(index) {
            match digest {
                Some(d) => {
                    fill(k, d, &mut buf);
                    out.append_value(&buf);
                }
                None => out.append_null(),
            }
        }
        Output::from_array(Arc::new(out.finish()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arrow::import::column_of;
    use crate::arrow::import::read_ffi;
    use crate::kernels::hmac_column;

    #[test]
    fn each_row_equals_its_keys_column_kernel() {
        let values: Vec<Option<&[u8]>> =
            vec![Some(b"a"), None, Some(b"bb"), Some(b""), Some(&[b'x'; 80]), Some(b"a")];
        let keys = vec![b"k1".to_vec(), vec![7u8; 100], b"k3".to_vec()];
        let prefixes = vec![b"101.".to_vec(), b"851.e.".to_vec(), Vec::new()];
        let index = [0u32, 1, 2, 1, 0, 2];
        for encoding in [Encoding::Base64Url16, Encoding::Hex8, Encoding::Raw] {
            let got = read_ffi(hmac_keyed(&keys, &prefixes, &index, &column_of(&values), encoding).unwrap());
            for (i, value) in values.iter().enumerate() {
                let k = index[i] as usize;
                let one = read_ffi(hmac_column(&keys[k], &column_of(&[*value]), &prefixes[k], encoding).unwrap());
                assert_eq!(got[i], one[0], "row {i}, {encoding:?}");
            }
        }
    }

    #[test]
    fn refuses_what_does_not_fit() {
        let column = column_of(&[Some(b"a")]);
        let keys = vec![b"k".to_vec()];
        assert!(hmac_keyed(&keys, &[b"p".to_vec()], &[1], &column, Encoding::Hex8).is_err());
        assert!(hmac_keyed(&keys, &[b"p".to_vec()], &[0, 0], &column, Encoding::Hex8).is_err());
        assert!(hmac_keyed(&keys, &[], &[0], &column, Encoding::Hex8).is_err());
        assert!(hmac_keyed(&keys, &["æ".as_bytes().to_vec()], &[0], &column, Encoding::Hex8).is_err());
    }
}
