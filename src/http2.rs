//! HTTP/2 frames (RFC 9113, section 4.1) as the proxy module's HTTP/2 upstream (nginx 1.29.4+)
//! leaves them in its buffers: the frames read after a response's HEADERS, and the
//! request's own frames.

/// A frame's 9-byte header: length (24 bits), type, flags, stream identifier (31 bits).
const HEADER: usize = 9;
/// What an HTTP/2 connection starts with, before its first frame.
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const RST_STREAM: u8 = 0x3;
pub const PUSH_PROMISE: u8 = 0x5;
pub const CONTINUATION: u8 = 0x9;

pub const END_STREAM: u8 = 0x1;
pub const PADDED: u8 = 0x8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: &'a [u8],
}

/// The whole frames at the start of `bytes`, in order; a frame cut off by the end of
/// `bytes` ends them.
pub fn frames(mut bytes: &[u8]) -> impl Iterator<Item = Frame<'_>> {
    core::iter::from_fn(move || {
        let (h, rest) = bytes.split_first_chunk::<HEADER>()?;
        let len = usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]);
        let payload = rest.get(..len)?;
        bytes = &rest[len..];
        Some(Frame {
            kind: h[3],
            flags: h[4],
            stream: u32::from_be_bytes([h[5] & 0x7f, h[6], h[7], h[8]]),
            payload,
        })
    })
}

/// A DATA frame's data, without its padding; `None` if the padding is malformed.
pub fn unpadded<'a>(frame: &Frame<'a>) -> Option<&'a [u8]> {
    if frame.flags & PADDED == 0 {
        return Some(frame.payload);
    }
    let (&pad, data) = frame.payload.split_first()?;
    Some(&data[..data.len().checked_sub(usize::from(pad))?])
}

/// Puts the stream identifier of every stream frame of a request that starts with the
/// connection preface back to 1, the stream a request has on a new connection.
///
/// The proxy module writes the request's frames once, for stream 1, and renumbers them in
/// place when it sends them on a kept-alive connection (stream 3, 5, ...). It does not
/// number them back when the next try then goes out on a new connection, whose server sees
/// stream 3 as its first stream and answers on it, which nginx rejects ("upstream sent
/// frame for unknown stream 3"). Returns whether `request` was such a request.
pub fn renumber_for_new_connection(request: &mut [u8]) -> bool {
    if !request.starts_with(PREFACE) {
        return false;
    }
    let mut at = PREFACE.len();
    loop {
        let Some(frame) = frames(&request[at..]).next() else {
            break;
        };
        let (stream, len) = (frame.stream, HEADER + frame.payload.len());
        if stream != 0 {
            request[at + 5..at + HEADER].copy_from_slice(&1u32.to_be_bytes());
        }
        at += len;
    }
    true
}

/// The stream a request's frames are written for (by nginx: 1 on a new connection, the
/// next odd number on a kept-alive one): that of the first frame after the preface that has
/// one. `None` if the bytes are not a request's frames.
pub fn request_stream(request: &[u8]) -> Option<u32> {
    let frames_sent = request.strip_prefix(PREFACE)?;
    frames(frames_sent)
        .map(|frame| frame.stream)
        .find(|&stream| stream != 0)
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// An HTTP/2 frame: type, flags, stream, payload.
    pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len().to_be_bytes();
        let mut f = vec![len[5], len[6], len[7], kind, flags];
        f.extend(stream.to_be_bytes());
        f.extend(payload);
        f
    }

    #[test]
    fn walks_whole_frames() {
        let bytes = [
            frame(0x4, 0, 0, &[0; 6]),
            frame(DATA, END_STREAM, 3, b"abc"),
        ]
        .concat();
        let kinds: Vec<_> = frames(&bytes)
            .map(|f| (f.kind, f.stream, f.payload))
            .collect();
        assert_eq!(kinds, [(0x4, 0, &[0u8; 6][..]), (DATA, 3, &b"abc"[..])]);
        assert_eq!(frames(&bytes[..bytes.len() - 1]).count(), 1, "cut off");
        assert_eq!(frames(&bytes[..4]).count(), 0, "cut off header");
        let reserved = frame(DATA, 0, 0x8000_0005, b"");
        assert_eq!(frames(&reserved).next().map(|f| f.stream), Some(5));
    }

    #[test]
    fn padding() {
        let f = |flags, payload: &'static [u8]| Frame {
            kind: DATA,
            flags,
            stream: 1,
            payload,
        };
        assert_eq!(unpadded(&f(0, b"abc")), Some(&b"abc"[..]));
        assert_eq!(unpadded(&f(PADDED, b"\x02abcxy")), Some(&b"abc"[..]));
        assert_eq!(unpadded(&f(PADDED, b"\x00")), Some(&b""[..]));
        assert_eq!(unpadded(&f(PADDED, b"\x03ab")), None);
        assert_eq!(unpadded(&f(PADDED, b"")), None);
    }

    #[test]
    fn the_request_stream() {
        let settings = frame(0x4, 0, 0, &[0, 3, 0, 0, 0, 100]);
        let sent = |stream| {
            [
                PREFACE.to_vec(),
                settings.clone(),
                frame(HEADERS, 0x4, stream, b"\x82"),
            ]
            .concat()
        };
        assert_eq!(request_stream(&sent(1)), Some(1));
        assert_eq!(request_stream(&sent(7)), Some(7));
        assert_eq!(
            request_stream(&sent(1)[PREFACE.len()..]),
            None,
            "no preface"
        );
        assert_eq!(
            request_stream(&[PREFACE, &settings[..]].concat()),
            None,
            "no stream frame"
        );
    }

    #[test]
    fn renumbers_stream_frames_only() {
        let settings = frame(0x4, 0, 0, &[0, 3, 0, 0, 0, 100]);
        let window = frame(0x8, 0, 0, &[0, 0, 0x10, 0]);
        let sent = |stream| {
            [
                PREFACE.to_vec(),
                settings.clone(),
                window.clone(),
                frame(HEADERS, 0, stream, b"\x82\x84"),
                frame(CONTINUATION, 0x4, stream, b"\x86"),
                frame(DATA, END_STREAM, stream, b"body"),
            ]
            .concat()
        };
        let mut request = sent(7);
        assert!(renumber_for_new_connection(&mut request));
        assert_eq!(request, sent(1));
        assert!(renumber_for_new_connection(&mut request), "again");
        assert_eq!(request, sent(1));

        let mut cut = sent(3);
        cut.truncate(cut.len() - 2);
        assert!(renumber_for_new_connection(&mut cut));
        assert_eq!(
            cut[..cut.len() - 13],
            sent(1)[..cut.len() - 13],
            "whole frames renumbered"
        );

        let mut http1 = b"GET / HTTP/1.1\r\n\r\n".to_vec();
        assert!(!renumber_for_new_connection(&mut http1));
        assert_eq!(http1, b"GET / HTTP/1.1\r\n\r\n");
    }
}
