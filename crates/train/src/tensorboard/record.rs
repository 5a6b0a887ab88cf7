//! TFRecord framing, the container of TensorBoard's event files: each record is its length
//! (u64, little-endian), the masked CRC-32C of those 8 bytes, the data, and the masked
//! CRC-32C of the data.

/// TensorFlow's masking of a CRC-32C (`crc32c.h`: rotate right by 15, add a constant), so
/// that a CRC of data that holds CRCs is not degenerate.
pub(crate) fn masked_crc(data: &[u8]) -> u32 {
    let crc = crc32c::crc32c(data);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// Appends one record holding `data` to `out`.
pub(crate) fn frame(data: &[u8], out: &mut Vec<u8>) {
    let len = (data.len() as u64).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
}

/// What reading a file's records found.
#[derive(Debug)]
pub(crate) struct Records<'a> {
    /// `(offset of the record, its data)`, in order.
    pub(crate) records: Vec<(usize, &'a [u8])>,
    /// A last record cut short (a writer stopped mid-write): its offset and what is missing.
    pub(crate) truncated: Option<(usize, String)>,
}

/// Splits `bytes` into records. A last record cut short is reported in `truncated` with the
/// records before it kept; a record whose length or data fails its CRC is an error
/// `(offset, what)`.
pub(crate) fn read_records(bytes: &[u8]) -> Result<Records<'_>, (usize, String)> {
    let mut records = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        let rest = &bytes[at..];
        if rest.len() < 12 {
            return Ok(Records {
                records,
                truncated: Some((
                    at,
                    format!("a record header of {} of its 12 bytes", rest.len()),
                )),
            });
        }
        let len_bytes = &rest[..8];
        let crc = u32::from_le_bytes(rest[8..12].try_into().expect("4 bytes"));
        if masked_crc(len_bytes) != crc {
            return Err((at, "the record's length fails its CRC".into()));
        }
        let len = u64::from_le_bytes(len_bytes.try_into().expect("8 bytes"));
        let need = usize::try_from(len).ok().and_then(|l| l.checked_add(16));
        let Some(need) = need.filter(|&n| n <= rest.len()) else {
            return Ok(Records {
                records,
                truncated: Some((
                    at,
                    format!(
                        "a record of {len} data bytes cut short: {} of its {} bytes are in the file",
                        rest.len(),
                        u128::from(len) + 16
                    ),
                )),
            });
        };
        let data = &rest[12..need - 4];
        let crc = u32::from_le_bytes(rest[need - 4..need].try_into().expect("4 bytes"));
        if masked_crc(data) != crc {
            return Err((at, "the record's data fails its CRC".into()));
        }
        records.push((at, data));
        at += need;
    }
    Ok(Records {
        records,
        truncated: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mask_is_tensorflows() {
        // crc32c("") = 0 → masked 0xa282ead8; crc32c of 32 zero bytes is 0x8a9136aa
        // (RFC 3720's test vector).
        assert_eq!(masked_crc(b""), 0xa282_ead8);
        assert_eq!(crc32c::crc32c(&[0u8; 32]), 0x8a91_36aa);
        assert_eq!(
            masked_crc(&[0u8; 32]),
            0x8a91_36aa_u32.rotate_right(15).wrapping_add(0xa282_ead8)
        );
    }

    #[test]
    fn records_round_trip_and_damage_is_found() {
        let mut file = Vec::new();
        for d in [&b"first"[..], b"", b"third record"] {
            frame(d, &mut file);
        }
        let r = read_records(&file).unwrap();
        assert!(r.truncated.is_none());
        let datas: Vec<&[u8]> = r.records.iter().map(|r| r.1).collect();
        assert_eq!(datas, vec![&b"first"[..], b"", b"third record"]);
        assert_eq!(r.records[1].0, 5 + 16);
        // Every cut inside the last record keeps the first two and reports the third.
        let last = r.records[2].0;
        for cut in last + 1..file.len() {
            let r = read_records(&file[..cut]).unwrap();
            assert_eq!(r.records.len(), 2, "cut at {cut}");
            assert_eq!(r.truncated.as_ref().unwrap().0, last);
        }
        // Every flipped bit is an error at its record's offset, or (in the length) a
        // truncation or an error, never a wrong record.
        for byte in 0..file.len() {
            for bit in 0..8 {
                let mut f = file.clone();
                f[byte] ^= 1 << bit;
                match read_records(&f) {
                    Err((at, _)) => assert!(at <= byte, "byte {byte}: error at {at}"),
                    Ok(r) => panic!(
                        "byte {byte} bit {bit}: accepted {} records",
                        r.records.len()
                    ),
                }
            }
        }
    }
}
