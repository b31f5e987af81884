//! The answer kept from a server that was passed over, for when no later server answers.
//!
//! Stock nginx sends its own 502/504 when the next server cannot be reached, even though an
//! earlier server gave a real answer. For a registry client a 404 on a blob check means
//! "upload it" and a 502 means "fail the push", so the module keeps the last answer it passed
//! over and sends that instead. These are the rules for what is kept and when it is sent.

use crate::http2;

/// How the bytes read with the answer's header are framed: an HTTP/1 body follows the header
/// as it is; from an HTTP/2 server (`proxy_http_version 2`) the buffer holds the frames that
/// followed the HEADERS frame, the body inside DATA frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    Http1,
    Http2,
}

/// What is kept of the answer's body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeptBody<'a> {
    /// The whole body was read with the header.
    Whole(Body<'a>),
    /// Too large for the buffer the header was read into, or of unknown length (chunked, or
    /// delimited by the connection closing; from HTTP/2, no end of stream seen, or trailers):
    /// only status and headers are kept.
    Dropped,
}

/// A whole body inside the bytes read with the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Body<'a> {
    framing: Framing,
    read: &'a [u8],
    len: usize,
}

impl<'a> Body<'a> {
    const EMPTY: Body<'static> = Body {
        framing: Framing::Http1,
        read: &[],
        len: 0,
    };

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The body's bytes, in the pieces they were read in: one for HTTP/1, the DATA frames'
    /// payloads for HTTP/2.
    pub fn pieces(&self) -> impl Iterator<Item = &'a [u8]> {
        let (http1, http2) = match self.framing {
            Framing::Http1 => (Some(&self.read[..self.len]), None),
            Framing::Http2 => {
                let data = http2_data(self.read).map_while(Result::ok);
                (None, Some(data.map(|(data, _)| data)))
            }
        };
        http1.into_iter().chain(http2.into_iter().flatten())
    }
}

/// `declared` is the answer's Content-Length (-1 if none), `read` the bytes read after the
/// header. A response to HEAD (or a 304) has no body, whatever its Content-Length says.
pub fn body_to_keep(framing: Framing, declared: i64, read: &[u8], bodiless: bool) -> KeptBody<'_> {
    if bodiless || declared == 0 {
        return KeptBody::Whole(Body::EMPTY);
    }
    let len = match framing {
        Framing::Http1 => usize::try_from(declared)
            .ok()
            .filter(|&len| len <= read.len()),
        Framing::Http2 => {
            http2_data_len(read).filter(|&len| declared < 0 || usize::try_from(declared) == Ok(len))
        }
    };
    match len {
        Some(len) => KeptBody::Whole(Body { framing, read, len }),
        None => KeptBody::Dropped,
    }
}

/// The length of the body carried by the DATA frames in `frames`, if they end the stream.
fn http2_data_len(frames: &[u8]) -> Option<usize> {
    let mut len = 0;
    for piece in http2_data(frames) {
        let (data, ends_stream) = piece.ok()?;
        len += data.len();
        if ends_stream {
            return Some(len);
        }
    }
    None
}

/// Something in the frames that a whole body read with the header cannot have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct NotWhole;

/// The data of the response stream's DATA frames, each with whether it ends the stream, up
/// to the one that does. Connection frames (SETTINGS, PING, WINDOW_UPDATE, ...) give no data;
/// trailers, a reset, DATA of another stream or bad padding give `NotWhole`.
fn http2_data(frames: &[u8]) -> impl Iterator<Item = Result<(&[u8], bool), NotWhole>> + '_ {
    let mut stream = None;
    let mut ended = false;
    http2::frames(frames).map_while(move |frame| {
        if ended {
            return None;
        }
        let ours = frame.stream != 0 && *stream.get_or_insert(frame.stream) == frame.stream;
        Some(match frame.kind {
            http2::DATA if ours => {
                ended = frame.flags & http2::END_STREAM != 0;
                http2::unpadded(&frame)
                    .map(|data| (data, ended))
                    .ok_or(NotWhole)
            }
            http2::DATA
            | http2::HEADERS
            | http2::CONTINUATION
            | http2::RST_STREAM
            | http2::PUSH_PROMISE
                if frame.stream != 0 =>
            {
                Err(NotWhole)
            }
            _ => Ok((&[][..], false)),
        })
    })
}

/// Whether the request's end with `rc` is nginx's own failure page that the kept answer
/// replaces: a 5xx nginx generated (502, 504, ...) while nothing has been sent to the client.
/// A client that went away (499) or timed out (408) is left alone.
pub fn replaces_failure(rc: isize, header_sent: bool) -> bool {
    !header_sent && (500..=599).contains(&rc)
}

/// Headers that describe the upstream connection or the body's framing, not the answer.
/// nginx sets its own for the client's connection.
pub fn is_connection_header(lowercase_name: &[u8]) -> bool {
    matches!(
        lowercase_name,
        b"connection"
            | b"keep-alive"
            | b"proxy-connection"
            | b"transfer-encoding"
            | b"te"
            | b"trailer"
            | b"upgrade"
            | b"content-length"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http2::tests::frame;

    /// The body kept, or `None` when it is dropped.
    type Expected = Option<&'static [u8]>;

    fn kept(framing: Framing, declared: i64, read: &[u8], bodiless: bool) -> Option<Vec<u8>> {
        match body_to_keep(framing, declared, read, bodiless) {
            KeptBody::Whole(body) => {
                let bytes = body.pieces().collect::<Vec<_>>().concat();
                assert_eq!(bytes.len(), body.len());
                Some(bytes)
            }
            KeptBody::Dropped => None,
        }
    }

    #[test]
    fn http1_body() {
        let read = b"not here\nHTTP/1.1 200 OK";
        #[rustfmt::skip]
        let cases: &[(i64, &[u8], bool, Expected)] = &[
            (9,  read,        false, Some(b"not here\n")),
            (0,  b"",         false, Some(b"")),
            (3,  b"abc",      false, Some(b"abc")),
            (50, read,        false, None),              // larger than what was read
            (-1, read,        false, None),              // chunked or until close
            (-1, b"",         true,  Some(b"")),         // HEAD
            (157, b"",        true,  Some(b"")),
        ];
        for &(declared, read, head, expected) in cases {
            assert_eq!(
                kept(Framing::Http1, declared, read, head).as_deref(),
                expected,
                "{declared} {read:?} {head}"
            );
        }
    }

    #[test]
    fn http2_body() {
        const END: u8 = 0x1;
        const PADDED: u8 = 0x8;
        let data = |flags, payload: &[u8]| frame(0x0, flags, 1, payload);
        let settings = frame(0x4, 0, 0, &[0, 3, 0, 0, 0, 100]);
        let window = frame(0x8, 0, 0, &[0, 0, 0x10, 0]);
        let trailers = frame(0x1, 0x4 | END, 1, b"\x88");
        let reset = frame(0x3, 0, 1, &[0, 0, 0, 8]);
        let whole = data(END, b"not on a\n");
        #[rustfmt::skip]
        let cases: &[(&str, i64, Vec<u8>, Expected)] = &[
            ("one frame",             9, whole.clone(),                                Some(b"not on a\n")),
            ("no length declared",   -1, whole.clone(),                                Some(b"not on a\n")),
            ("two frames",           -1, [data(0, b"not "), data(END, b"on a\n")].concat(), Some(b"not on a\n")),
            ("control frames between", 9, [settings.clone(), data(0, b"not "), window.clone(),
                                          data(END, b"on a\n")].concat(),          Some(b"not on a\n")),
            ("padded",                9, data(END | PADDED, b"\x03not on a\nxyz"), Some(b"not on a\n")),
            ("empty data, end",      -1, data(END, b""),                               Some(b"")),
            ("nothing read, length 0", 0, vec![],                                      Some(b"")),
            ("nothing read",         -1, vec![],                                       None),
            ("no end of stream",     -1, data(0, b"not on a\n"),                       None),
            ("cut off frame",         9, whole[..12].to_vec(),                         None),
            ("cut off header",        9, whole[..5].to_vec(),                          None),
            ("length disagrees",      4, whole.clone(),                                None),
            ("trailers",             -1, [data(0, b"abc"), trailers].concat(),         None),
            ("reset",                -1, [data(0, b"abc"), reset].concat(),            None),
            ("another stream",       -1, [data(0, b"abc"), frame(0x0, END, 3, b"x")].concat(), None),
            ("data on stream 0",     -1, frame(0x0, END, 0, b"x"),                     None),
            ("padding too long",     -1, data(END | PADDED, b"\x09abc"),               None),
            ("padded, empty",        -1, data(END | PADDED, b""),                      None),
            ("frames after the end", -1, [whole.clone(), settings].concat(),           Some(b"not on a\n")),
        ];
        for (name, declared, read, expected) in cases {
            assert_eq!(
                kept(Framing::Http2, *declared, read, false).as_deref(),
                *expected,
                "{name}"
            );
        }
        assert_eq!(
            kept(Framing::Http2, 9, &whole, true).as_deref(),
            Some(&b""[..]),
            "HEAD"
        );
    }

    #[test]
    fn failures_replaced() {
        let cases: &[(isize, bool, bool)] = &[
            (502, false, true),
            (504, false, true),
            (500, false, true),
            (503, false, true),
            (502, true, false),
            (499, false, false),
            (408, false, false),
            (404, false, false),
            (0, false, false),
            (-1, false, false),
        ];
        for &(rc, header_sent, expected) in cases {
            assert_eq!(
                replaces_failure(rc, header_sent),
                expected,
                "{rc} {header_sent}"
            );
        }
    }

    #[test]
    fn connection_headers() {
        for name in [
            "connection",
            "keep-alive",
            "transfer-encoding",
            "content-length",
        ] {
            assert!(is_connection_header(name.as_bytes()), "{name}");
        }
        for name in [
            "content-type",
            "docker-distribution-api-version",
            "x-backend",
            "etag",
        ] {
            assert!(!is_connection_header(name.as_bytes()), "{name}");
        }
    }
}
