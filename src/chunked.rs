//! HTTP/1.1 chunked transfer coding (RFC 9112, section 7.1), as an answer's body arrives in
//! the buffer after its header.

/// Why the bytes read so far are not a whole chunked body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotWhole {
    /// More bytes are needed.
    Incomplete,
    /// Not chunked coding (nginx would fail the answer's body).
    Malformed,
}

/// The largest chunk size taken: a body kept from the buffer is far smaller.
const MAX_CHUNK: usize = 1 << 40;

/// The data of each chunk, in order, up to the last chunk and the trailer section after it;
/// `Err` ends the pieces when the bytes stop early or are not chunked coding.
pub fn pieces(mut bytes: &[u8]) -> impl Iterator<Item = Result<&[u8], NotWhole>> {
    let mut done = false;
    core::iter::from_fn(move || {
        if done {
            return None;
        }
        let next = chunk(bytes);
        match next {
            Ok((data, rest)) => {
                bytes = rest;
                if data.is_empty() {
                    done = true;
                    return trailer_section(bytes).err().map(Err);
                }
                Some(Ok(data))
            }
            Err(why) => {
                done = true;
                Some(Err(why))
            }
        }
    })
}

/// The length of the whole body, once the bytes hold all of it.
pub fn body_len(bytes: &[u8]) -> Result<usize, NotWhole> {
    pieces(bytes).try_fold(0, |len, piece| piece.map(|data| len + data.len()))
}

/// One chunk: its data (empty for the last chunk) and the bytes after it.
fn chunk(bytes: &[u8]) -> Result<(&[u8], &[u8]), NotWhole> {
    let (size_line, rest) = line(bytes)?;
    let digits = size_line
        .iter()
        .position(|&b| !b.is_ascii_hexdigit())
        .unwrap_or(size_line.len());
    let extension = &size_line[digits..];
    if digits == 0 || !(extension.is_empty() || matches!(extension[0], b';' | b' ' | b'\t')) {
        return Err(NotWhole::Malformed);
    }
    let mut size = 0usize;
    for &digit in &size_line[..digits] {
        let value = (digit as char).to_digit(16).unwrap_or(0) as usize;
        size = size * 16 + value;
        if size > MAX_CHUNK {
            return Err(NotWhole::Malformed);
        }
    }
    if size == 0 {
        return Ok((&[], rest));
    }
    let data = rest.get(..size).ok_or(NotWhole::Incomplete)?;
    let (end, after) = line(&rest[size..])?;
    if !end.is_empty() {
        return Err(NotWhole::Malformed);
    }
    Ok((data, after))
}

/// The trailer fields after the last chunk, up to the empty line that ends them.
fn trailer_section(mut bytes: &[u8]) -> Result<(), NotWhole> {
    loop {
        let (field, rest) = line(bytes)?;
        if field.is_empty() {
            return Ok(());
        }
        bytes = rest;
    }
}

/// A line without its end (CRLF, or LF alone as nginx also takes it), and what follows.
fn line(bytes: &[u8]) -> Result<(&[u8], &[u8]), NotWhole> {
    let end = bytes
        .iter()
        .position(|&b| b == b'\n')
        .ok_or(NotWhole::Incomplete)?;
    let text = &bytes[..end];
    Ok((text.strip_suffix(b"\r").unwrap_or(text), &bytes[end + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    use NotWhole::{Incomplete, Malformed};

    /// A case: its name, the bytes read, the body they decode to.
    type Case = (&'static str, &'static [u8], Result<&'static [u8], NotWhole>);

    fn decoded(bytes: &[u8]) -> Result<Vec<u8>, NotWhole> {
        pieces(bytes)
            .collect::<Result<Vec<_>, _>>()
            .map(|p| p.concat())
    }

    #[test]
    fn bodies() {
        #[rustfmt::skip]
        let cases: &[Case] = &[
            ("one chunk",          b"5\r\nhello\r\n0\r\n\r\n",                 Ok(b"hello")),
            ("two chunks",         b"3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n",        Ok(b"hello")),
            ("empty body",         b"0\r\n\r\n",                               Ok(b"")),
            ("hex, upper case",    b"A\r\n0123456789\r\n0\r\n\r\n",            Ok(b"0123456789")),
            ("extension",          b"5;name=value\r\nhello\r\n0\r\n\r\n",      Ok(b"hello")),
            ("trailers",           b"5\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n",     Ok(b"hello")),
            ("bare LF",            b"5\nhello\n0\n\n",                         Ok(b"hello")),
            ("bytes after the end", b"0\r\n\r\nHTTP/1.1 200 OK\r\n",           Ok(b"")),
            ("nothing yet",        b"",                                        Err(Incomplete)),
            ("size line cut",      b"5",                                       Err(Incomplete)),
            ("data cut",           b"5\r\nhel",                                Err(Incomplete)),
            ("no last chunk",      b"5\r\nhello\r\n",                          Err(Incomplete)),
            ("no final line",      b"5\r\nhello\r\n0\r\n",                     Err(Incomplete)),
            ("trailer cut",        b"5\r\nhello\r\n0\r\nX-Sum: 1\r\n",         Err(Incomplete)),
            ("not hex",            b"z\r\nhello\r\n0\r\n\r\n",                 Err(Malformed)),
            ("no size",            b"\r\nhello\r\n0\r\n\r\n",                  Err(Malformed)),
            ("data too long",      b"3\r\nhello\r\n0\r\n\r\n",                 Err(Malformed)),
            ("size too large",     b"ffffffffffffffffff\r\n",                  Err(Malformed)),
        ];
        for (name, bytes, expected) in cases {
            assert_eq!(decoded(bytes), expected.map(<[u8]>::to_vec), "{name}");
            assert_eq!(body_len(bytes), expected.map(<[u8]>::len), "{name}");
        }
    }
}
