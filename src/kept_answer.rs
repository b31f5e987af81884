//! The answer kept from a server that was passed over, for when no later server answers.
//!
//! Stock nginx sends its own 502/504 when the next server cannot be reached, even though an
//! earlier server gave a real answer. For a registry client a 404 on a blob check means
//! "upload it" and a 502 means "fail the push", so the module keeps the last answer it passed
//! over and sends that instead. These are the rules for what is kept and when it is sent.

/// What is kept of the answer's body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeptBody {
    /// The whole body, `n` bytes, was read with the header.
    Whole(usize),
    /// Too large for the buffer the header was read into, or of unknown length (chunked, or
    /// delimited by the connection closing): only status and headers are kept.
    Dropped,
}

/// `declared` is the answer's Content-Length (-1 if none), `available` the body bytes read
/// with the header. A response to HEAD has no body, whatever its Content-Length says.
pub fn body_to_keep(declared: i64, available: usize, head: bool) -> KeptBody {
    if head {
        return KeptBody::Whole(0);
    }
    match usize::try_from(declared) {
        Ok(len) if len <= available => KeptBody::Whole(len),
        _ => KeptBody::Dropped,
    }
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

    #[test]
    fn body() {
        let cases: &[(i64, usize, bool, KeptBody)] = &[
            (157, 157, false, KeptBody::Whole(157)),
            (0, 0, false, KeptBody::Whole(0)),
            (10, 4096, false, KeptBody::Whole(10)),
            (5000, 4000, false, KeptBody::Dropped),
            (-1, 100, false, KeptBody::Dropped),
            (-1, 0, true, KeptBody::Whole(0)),
            (157, 0, true, KeptBody::Whole(0)),
        ];
        for &(declared, available, head, expected) in cases {
            assert_eq!(
                body_to_keep(declared, available, head),
                expected,
                "{declared} {available}"
            );
        }
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
