//! The answer kept from a server that was passed over, for when no later server answers.
//!
//! Stock nginx sends its own 502/504 when the next server cannot be reached, even though an
//! earlier server gave a real answer. For a registry client a 404 on a blob check means
//! "upload it" and a 502 means "fail the push", so the module keeps the last answer it passed
//! over and sends that instead, as stock nginx would have sent it had it been the last. These
//! are the rules for its body and for when it is sent.

use crate::{chunked, http2};

/// How the bytes read with the answer's header are framed: an HTTP/1 body follows the header
/// as it is; from an HTTP/2 server (`proxy_http_version 2`) the buffer holds the frames that
/// followed the HEADERS frame, the body inside DATA frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    Http1,
    Http2,
}

/// What has arrived of an answer's body, in the buffer its header was read into.
#[derive(Clone, Copy, Debug)]
pub struct Arrived<'a> {
    pub framing: Framing,
    /// The answer's Content-Length, -1 if it has none.
    pub declared: i64,
    /// HTTP/1: the body comes in chunks (`Transfer-Encoding: chunked`).
    pub chunked: bool,
    /// HTTP/2: the request's stream; frames of other streams fail the answer in nginx.
    pub stream: u32,
    /// The answer has no body: a response to HEAD, a 204 or a 304.
    pub bodiless: bool,
    /// The bytes read after the header.
    pub read: &'a [u8],
    /// How many more bytes the buffer can take.
    pub room: usize,
}

/// What can be kept of the answer's body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeptBody<'a> {
    /// All of it has arrived.
    Whole(Body<'a>),
    /// More is on its way, and fits in the buffer: worth waiting for.
    Incomplete,
    /// Only status and headers can be kept.
    Dropped(WhyDropped),
}

/// Why a body is not kept, as the log line says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WhyDropped {
    TooLarge,
    UntilClose,
    NotWhole,
}

impl WhyDropped {
    pub fn reason(self) -> &'static str {
        match self {
            WhyDropped::TooLarge => "it does not fit in proxy_buffer_size",
            WhyDropped::UntilClose => "its end is the connection's close",
            WhyDropped::NotWhole => {
                "it does not come whole (malformed, trailers, a reset or another stream)"
            }
        }
    }
}

/// How a whole body lies in the bytes read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Coding {
    Plain,
    Chunked,
    Http2 { stream: u32 },
}

/// A whole body inside the bytes read after the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Body<'a> {
    coding: Coding,
    read: &'a [u8],
    len: usize,
}

impl<'a> Body<'a> {
    const EMPTY: Body<'static> = Body {
        coding: Coding::Plain,
        read: &[],
        len: 0,
    };

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The body's bytes, in the pieces they were read in: one for a plain HTTP/1 body, the
    /// chunks' data of a chunked one, the DATA frames' payloads for HTTP/2.
    pub fn pieces(&self) -> impl Iterator<Item = &'a [u8]> {
        let read = self.read;
        let (plain, chunks, frames) = match self.coding {
            Coding::Plain => (Some(&read[..self.len]), None, None),
            Coding::Chunked => (
                None,
                Some(chunked::pieces(read).map_while(Result::ok)),
                None,
            ),
            Coding::Http2 { stream } => {
                let data = http2_data(read, stream).map_while(Result::ok);
                (None, None, Some(data.map(|(data, _)| data)))
            }
        };
        let chunks = chunks.into_iter().flatten();
        plain
            .into_iter()
            .chain(chunks)
            .chain(frames.into_iter().flatten())
    }
}

/// What can be kept of the body that has arrived so far.
pub fn body_to_keep<'a>(arrived: &Arrived<'a>) -> KeptBody<'a> {
    let read = arrived.read;
    if arrived.bodiless || arrived.declared == 0 {
        return KeptBody::Whole(Body::EMPTY);
    }
    let (coding, len) = match arrived.framing {
        Framing::Http2 => {
            let stream = arrived.stream;
            (Coding::Http2 { stream }, http2_data_len(read, stream))
        }
        Framing::Http1 if arrived.chunked => (
            Coding::Chunked,
            chunked::body_len(read).map_err(|why| match why {
                chunked::NotWhole::Incomplete => Missing::Some,
                chunked::NotWhole::Malformed => Missing::Never,
            }),
        ),
        Framing::Http1 => match usize::try_from(arrived.declared) {
            Err(_) => return KeptBody::Dropped(WhyDropped::UntilClose),
            Ok(len) if len <= read.len() => (Coding::Plain, Ok(len)),
            Ok(len) if len - read.len() > arrived.room => {
                return KeptBody::Dropped(WhyDropped::TooLarge)
            }
            Ok(_) => (Coding::Plain, Err(Missing::Some)),
        },
    };
    match len {
        Ok(len) if arrived.declared < 0 || usize::try_from(arrived.declared) == Ok(len) => {
            KeptBody::Whole(Body { coding, read, len })
        }
        Ok(_) | Err(Missing::Never) => KeptBody::Dropped(WhyDropped::NotWhole),
        Err(Missing::Some) if arrived.room > 0 => KeptBody::Incomplete,
        Err(Missing::Some) => KeptBody::Dropped(WhyDropped::TooLarge),
    }
}

/// Why a body's length is not known yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Missing {
    /// Some bytes have not arrived.
    Some,
    /// Never will: what arrived cannot be a whole body.
    Never,
}

/// The length of the body carried by the stream's DATA frames, once they end the stream.
fn http2_data_len(frames: &[u8], stream: u32) -> Result<usize, Missing> {
    let mut len = 0;
    for piece in http2_data(frames, stream) {
        let (data, ends_stream) = piece.map_err(|NotWhole| Missing::Never)?;
        len += data.len();
        if ends_stream {
            return Ok(len);
        }
    }
    Err(Missing::Some)
}

/// Something in the frames that a whole body cannot have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct NotWhole;

/// The data of the stream's DATA frames, each with whether it ends the stream, up to the one
/// that does. Connection frames (stream 0: SETTINGS, PING, WINDOW_UPDATE, ...) give no data;
/// trailers, a reset, a push, bad padding or any frame of another stream (which nginx
/// rejects: "upstream sent frame for unknown stream") give `NotWhole`.
fn http2_data(
    frames: &[u8],
    stream: u32,
) -> impl Iterator<Item = Result<(&[u8], bool), NotWhole>> + '_ {
    let mut ended = false;
    http2::frames(frames).map_while(move |frame| {
        if ended {
            return None;
        }
        Some(match frame.kind {
            _ if frame.stream == 0 => Ok((&[][..], false)),
            _ if frame.stream != stream => Err(NotWhole),
            http2::DATA => {
                ended = frame.flags & http2::END_STREAM != 0;
                http2::unpadded(&frame)
                    .map(|data| (data, ended))
                    .ok_or(NotWhole)
            }
            http2::HEADERS | http2::CONTINUATION | http2::RST_STREAM | http2::PUSH_PROMISE => {
                Err(NotWhole)
            }
            _ => Ok((&[][..], false)),
        })
    })
}

/// Whether the request's end with `rc` is nginx's own failure page that the kept answer
/// replaces: a 5xx nginx generated (502, 504, ...) while nothing has been sent to the client,
/// and not a server's own answer with that status (`proxy_intercept_errors` hands a server's
/// 503 to its `error_page` the same way). A client that went away (499) or timed out (408)
/// is left alone.
pub fn replaces_failure(rc: isize, header_sent: bool, server_answered: bool) -> bool {
    !header_sent && !server_answered && (500..=599).contains(&rc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http2::tests::frame;

    /// The body kept; `Err` when there is none yet or none will be.
    type Expected = Result<&'static [u8], KeptBody<'static>>;
    const WAIT: KeptBody<'static> = KeptBody::Incomplete;
    const TOO_LARGE: KeptBody<'static> = KeptBody::Dropped(WhyDropped::TooLarge);
    const UNTIL_CLOSE: KeptBody<'static> = KeptBody::Dropped(WhyDropped::UntilClose);
    const NOT_WHOLE: KeptBody<'static> = KeptBody::Dropped(WhyDropped::NotWhole);

    fn kept(arrived: Arrived<'_>) -> Result<Vec<u8>, KeptBody<'static>> {
        match body_to_keep(&arrived) {
            KeptBody::Whole(body) => {
                let bytes = body.pieces().collect::<Vec<_>>().concat();
                assert_eq!(bytes.len(), body.len());
                Ok(bytes)
            }
            KeptBody::Incomplete => Err(KeptBody::Incomplete),
            KeptBody::Dropped(why) => Err(KeptBody::Dropped(why)),
        }
    }

    fn http1(declared: i64, chunked: bool, read: &[u8], room: usize) -> Arrived<'_> {
        Arrived {
            framing: Framing::Http1,
            declared,
            chunked,
            stream: 0,
            bodiless: false,
            read,
            room,
        }
    }

    /// An HTTP/1 case: name, Content-Length, chunked, bytes read, room left, body kept.
    type Http1Case = (&'static str, i64, bool, &'static [u8], usize, Expected);

    #[test]
    fn http1_body() {
        let read = b"not here\nHTTP/1.1 200 OK";
        #[rustfmt::skip]
        let cases: &[Http1Case] = &[
            ("length, all read",        9,  false, read,      0,   Ok(b"not here\n")),
            ("length 0",                0,  false, b"",       0,   Ok(b"")),
            ("length, exactly",         3,  false, b"abc",    0,   Ok(b"abc")),
            ("length, rest fits",       50, false, read,      26,  Err(WAIT)),
            ("length, nothing yet",     3,  false, b"",       10,  Err(WAIT)),
            ("length, rest too large",  50, false, read,      25,  Err(TOO_LARGE)),
            ("until close",             -1, false, read,      1000, Err(UNTIL_CLOSE)),
            ("chunked, whole",          -1, true,  b"3\r\nabc\r\n0\r\n\r\n", 0, Ok(b"abc")),
            ("chunked, in two",         -1, true,  b"1\r\na\r\n2\r\nbc\r\n0\r\n\r\n", 0, Ok(b"abc")),
            ("chunked, more to come",   -1, true,  b"3\r\nabc\r\n", 10, Err(WAIT)),
            ("chunked, buffer full",    -1, true,  b"3\r\nabc\r\n", 0, Err(TOO_LARGE)),
            ("chunked, malformed",      -1, true,  b"x\r\n", 10, Err(NOT_WHOLE)),
        ];
        for &(name, declared, chunked, read, room, expected) in cases {
            let expected = expected.map(<[u8]>::to_vec);
            assert_eq!(
                kept(http1(declared, chunked, read, room)),
                expected,
                "{name}"
            );
        }
        for declared in [-1, 157] {
            let head = Arrived {
                bodiless: true,
                ..http1(declared, false, b"", 0)
            };
            assert_eq!(kept(head), Ok(vec![]), "bodiless, length {declared}");
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
        let priority = |stream| frame(0x2, 0, stream, &[0, 0, 0, 0, 16]);
        let whole = data(END, b"not on a\n");
        #[rustfmt::skip]
        let cases: &[(&str, i64, Vec<u8>, Expected)] = &[
            ("one frame",              9, whole.clone(),                                Ok(b"not on a\n")),
            ("no length declared",    -1, whole.clone(),                                Ok(b"not on a\n")),
            ("two frames",            -1, [data(0, b"not "), data(END, b"on a\n")].concat(), Ok(b"not on a\n")),
            ("control frames between", 9, [settings.clone(), data(0, b"not "), window.clone(),
                                          data(END, b"on a\n")].concat(),          Ok(b"not on a\n")),
            ("priority of its stream", 9, [priority(1), whole.clone()].concat(),      Ok(b"not on a\n")),
            ("padded",                 9, data(END | PADDED, b"\x03not on a\nxyz"), Ok(b"not on a\n")),
            ("empty data, end",       -1, data(END, b""),                               Ok(b"")),
            ("nothing read, length 0", 0, vec![],                                       Ok(b"")),
            ("nothing read",          -1, vec![],                                       Err(WAIT)),
            ("no end of stream",      -1, data(0, b"not on a\n"),                       Err(WAIT)),
            ("cut off frame",          9, whole[..12].to_vec(),                         Err(WAIT)),
            ("cut off header",         9, whole[..5].to_vec(),                          Err(WAIT)),
            ("length disagrees",       4, whole.clone(),                                Err(NOT_WHOLE)),
            ("trailers",              -1, [data(0, b"abc"), trailers].concat(),         Err(NOT_WHOLE)),
            ("reset",                 -1, [data(0, b"abc"), reset].concat(),            Err(NOT_WHOLE)),
            ("data of another stream", -1, [data(0, b"abc"), frame(0x0, END, 3, b"x")].concat(), Err(NOT_WHOLE)),
            ("another stream first",  -1, [frame(0x0, END, 3, b"x"), whole.clone()].concat(), Err(NOT_WHOLE)),
            ("priority of another",   -1, [priority(5), whole.clone()].concat(),      Err(NOT_WHOLE)),
            ("padding too long",      -1, data(END | PADDED, b"\x09abc"),               Err(NOT_WHOLE)),
            ("padded, empty",         -1, data(END | PADDED, b""),                      Err(NOT_WHOLE)),
            ("frames after the end",  -1, [whole.clone(), settings].concat(),           Ok(b"not on a\n")),
        ];
        for (name, declared, read, expected) in cases {
            let arrived = Arrived {
                framing: Framing::Http2,
                stream: 1,
                ..http1(*declared, false, read, 100)
            };
            assert_eq!(kept(arrived), expected.map(<[u8]>::to_vec), "{name}");
        }
        let on_stream_3 = frame(0x0, END, 3, b"kept-alive");
        let arrived = Arrived {
            framing: Framing::Http2,
            stream: 3,
            ..http1(-1, false, &on_stream_3, 0)
        };
        assert_eq!(kept(arrived), Ok(b"kept-alive".to_vec()), "stream 3");
        let full = Arrived {
            framing: Framing::Http2,
            stream: 1,
            ..http1(-1, false, &whole[..12], 0)
        };
        assert_eq!(kept(full), Err(TOO_LARGE), "buffer full");
        let head = Arrived {
            framing: Framing::Http2,
            stream: 1,
            bodiless: true,
            ..http1(9, false, &whole, 0)
        };
        assert_eq!(kept(head), Ok(vec![]), "HEAD");
    }

    #[test]
    fn failures_replaced() {
        #[rustfmt::skip]
        let cases: &[(isize, bool, bool, bool)] = &[
            // rc, header sent, a server answered, replaced
            (502, false, false, true),
            (504, false, false, true),
            (500, false, false, true),
            (503, false, false, true),
            (503, false, true,  false),   // a server's own 503 to its error_page
            (502, true,  false, false),
            (499, false, false, false),
            (408, false, false, false),
            (404, false, false, false),
            (0,   false, false, false),
            (-1,  false, false, false),
        ];
        for &(rc, header_sent, answered, expected) in cases {
            assert_eq!(
                replaces_failure(rc, header_sent, answered),
                expected,
                "{rc} {header_sent} {answered}"
            );
        }
    }
}
