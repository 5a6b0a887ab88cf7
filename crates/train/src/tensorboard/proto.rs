//! The few protocol-buffer rules the event files need, written out by hand: varints,
//! fixed-width numbers and length-delimited fields (the wire format of
//! <https://protobuf.dev/programming-guides/encoding/>), an encoder for the messages we
//! write and a decoder that refuses anything malformed with the byte offset.

/// Builds one message's bytes, field after field.
#[derive(Default)]
pub(crate) struct Encoder {
    pub(crate) buf: Vec<u8>,
}

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

impl Encoder {
    fn key(&mut self, field: u32, wire: u8) {
        put_varint(&mut self.buf, (u64::from(field) << 3) | u64::from(wire));
    }

    /// An integer field (int32, int64, enum, bool) — negative values as 10-byte varints,
    /// as protobuf's int64 does.
    pub(crate) fn int(&mut self, field: u32, v: i64) -> &mut Self {
        self.key(field, 0);
        put_varint(&mut self.buf, v as u64);
        self
    }

    /// A `double` field.
    pub(crate) fn double(&mut self, field: u32, v: f64) -> &mut Self {
        self.key(field, 1);
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// A `float` field.
    pub(crate) fn float(&mut self, field: u32, v: f32) -> &mut Self {
        self.key(field, 5);
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// A `bytes` or `string` field.
    pub(crate) fn bytes(&mut self, field: u32, v: &[u8]) -> &mut Self {
        self.key(field, 2);
        put_varint(&mut self.buf, v.len() as u64);
        self.buf.extend_from_slice(v);
        self
    }

    /// An embedded message, built by `f`.
    pub(crate) fn message(&mut self, field: u32, f: impl FnOnce(&mut Encoder)) -> &mut Self {
        let mut inner = Encoder::default();
        f(&mut inner);
        self.bytes(field, &inner.buf)
    }

    /// A packed `repeated double` field.
    pub(crate) fn packed_doubles(&mut self, field: u32, v: &[f64]) -> &mut Self {
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.bytes(field, &bytes)
    }
}

/// One decoded field's value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Wire<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1.
    Fixed64(u64),
    /// Wire type 2.
    Bytes(&'a [u8]),
    /// Wire type 5.
    Fixed32(u32),
}

impl<'a> Wire<'a> {
    pub(crate) fn as_f64(self) -> Option<f64> {
        match self {
            Wire::Fixed64(b) => Some(f64::from_bits(b)),
            _ => None,
        }
    }
    pub(crate) fn as_f32(self) -> Option<f32> {
        match self {
            Wire::Fixed32(b) => Some(f32::from_bits(b)),
            _ => None,
        }
    }
    pub(crate) fn as_int(self) -> Option<i64> {
        match self {
            Wire::Varint(v) => Some(v as i64),
            _ => None,
        }
    }
    pub(crate) fn as_bytes(self) -> Option<&'a [u8]> {
        match self {
            Wire::Bytes(b) => Some(b),
            _ => None,
        }
    }
}

/// Reads the fields of one message; an error is `(offset in the message, what is wrong)`.
pub(crate) struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Decoder { buf, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64, (usize, String)> {
        let start = self.pos;
        let mut v = 0u64;
        for shift in (0..70).step_by(7) {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err((start, "a varint runs past the end".into()));
            };
            self.pos += 1;
            if shift == 63 && b > 1 {
                return Err((start, "a varint longer than 64 bits".into()));
            }
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err((start, "a varint longer than 10 bytes".into()))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], (usize, String)> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let Some(end) = end else {
            return Err((self.pos, format!("a field of {n} bytes runs past the end")));
        };
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// The next field: `(number, value, offset of its key)`, or `None` at the end.
    #[allow(clippy::type_complexity)]
    pub(crate) fn next_field(&mut self) -> Result<Option<(u32, Wire<'a>, usize)>, (usize, String)> {
        if self.pos == self.buf.len() {
            return Ok(None);
        }
        let at = self.pos;
        let key = self.varint()?;
        let field = u32::try_from(key >> 3)
            .ok()
            .filter(|&f| f > 0)
            .ok_or((at, format!("field number {} is not valid", key >> 3)))?;
        let value = match key & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => Wire::Fixed64(u64::from_le_bytes(
                self.take(8)?.try_into().expect("8 bytes"),
            )),
            2 => {
                let n = self.varint()?;
                let n = usize::try_from(n).map_err(|_| (at, format!("a length of {n}")))?;
                Wire::Bytes(self.take(n)?)
            }
            5 => Wire::Fixed32(u32::from_le_bytes(
                self.take(4)?.try_into().expect("4 bytes"),
            )),
            w => return Err((at, format!("wire type {w} is not used by these messages"))),
        };
        Ok(Some((field, value, at)))
    }
}

/// The doubles of a packed `repeated double` field.
pub(crate) fn unpack_doubles(b: &[u8]) -> Option<Vec<f64>> {
    (b.len() % 8 == 0).then(|| {
        b.chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip() {
        let mut e = Encoder::default();
        e.int(1, 150)
            .double(2, -0.5)
            .float(3, 1.25)
            .bytes(4, b"tag")
            .int(5, -1);
        e.message(6, |m| {
            m.int(1, 7);
        });
        e.packed_doubles(7, &[1.0, 2.0]);
        // 150 is the protobuf guide's example: 08 96 01.
        assert_eq!(&e.buf[..3], &[0x08, 0x96, 0x01]);
        let mut d = Decoder::new(&e.buf);
        let mut got = vec![];
        while let Some((f, v, _)) = d.next_field().unwrap() {
            got.push((f, v));
        }
        assert_eq!(got[0], (1, Wire::Varint(150)));
        assert_eq!(got[1].1.as_f64(), Some(-0.5));
        assert_eq!(got[2].1.as_f32(), Some(1.25));
        assert_eq!(got[3].1.as_bytes(), Some(&b"tag"[..]));
        assert_eq!(got[4].1.as_int(), Some(-1));
        assert_eq!(got[5].1.as_bytes(), Some(&[0x08, 7][..]));
        assert_eq!(
            unpack_doubles(got[6].1.as_bytes().unwrap()),
            Some(vec![1.0, 2.0])
        );
    }

    #[test]
    fn malformed_input_is_an_error_with_its_offset() {
        let bad = |b: &[u8], want: &str| {
            let mut d = Decoder::new(b);
            let e = loop {
                match d.next_field() {
                    Ok(Some(_)) => continue,
                    Ok(None) => panic!("{b:?} decoded"),
                    Err(e) => break e,
                }
            };
            assert!(e.1.contains(want), "{e:?} (want {want})");
        };
        bad(&[0x08], "varint runs past the end");
        bad(
            &[
                0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
            ],
            "longer than 64 bits",
        );
        bad(&[0x12, 0x05, 1, 2], "runs past the end");
        bad(&[0x0b], "wire type 3");
        bad(&[0x00], "field number 0");
        bad(
            &[0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
            "runs past the end",
        );
    }
}
