//! The counters of `next_upstream_status_zone` and their Prometheus text form.
//!
//! Pure: parsing the zone directive's arguments, naming an upstream block, the key under which
//! a count is kept, and rendering a snapshot of the counters in the Prometheus text exposition
//! format 0.0.4. The shared memory they live in is `nginx::zone`'s business.

use std::borrow::Cow;
use std::fmt::Write as _;

use thiserror::Error;

use crate::directive::Token;

/// The zone's size when the directive gives none.
pub const DEFAULT_ZONE_SIZE: usize = 1024 * 1024;

/// The three things counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Family {
    /// A request was passed on after a server answered a listed status.
    Passed = 0,
    /// A kept answer was sent instead of nginx's own error.
    Kept = 1,
    /// Every server tried answered a listed status; the last one's answer was sent.
    Exhausted = 2,
}

impl Family {
    pub const ALL: [Family; 3] = [Family::Passed, Family::Kept, Family::Exhausted];

    pub fn from_u8(n: u8) -> Option<Family> {
        Family::ALL.into_iter().find(|f| *f as u8 == n)
    }

    /// The metric's name, `_total` included (a counter's samples carry it).
    pub fn name(self) -> &'static str {
        match self {
            Family::Passed => "nginx_next_upstream_status_passed_total",
            Family::Kept => "nginx_next_upstream_status_kept_total",
            Family::Exhausted => "nginx_next_upstream_status_exhausted_total",
        }
    }

    fn help(self) -> &'static str {
        match self {
            Family::Passed => {
                "Requests passed on to the next upstream server after this server answered \
                 this listed status."
            }
            Family::Kept => {
                "Kept answers with this status sent instead of nginx's own error, because no \
                 later server gave an answer."
            }
            Family::Exhausted => {
                "Requests for which every server tried answered a listed status; the last \
                 server's answer with this status was sent."
            }
        }
    }

    /// Whether the samples carry a `server` label.
    fn has_server(self) -> bool {
        self == Family::Passed
    }
}

/// One counter as read from the zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    pub family: Family,
    pub upstream: Vec<u8>,
    /// Empty for the families without a `server` label.
    pub server: Vec<u8>,
    pub status: u16,
    pub count: u64,
}

/// Renders the counters in the Prometheus text format 0.0.4: each family with its `# HELP`
/// and `# TYPE` lines (also when it has no sample yet), samples sorted by their labels.
pub fn render(samples: &[Sample]) -> String {
    let mut sorted: Vec<&Sample> = samples.iter().collect();
    sorted.sort_by(|a, b| {
        (a.family, &a.upstream, &a.server, a.status).cmp(&(
            b.family,
            &b.upstream,
            &b.server,
            b.status,
        ))
    });
    let mut out = String::new();
    for family in Family::ALL {
        let name = family.name();
        // Writing to a String cannot fail.
        let _ = writeln!(out, "# HELP {name} {}", family.help());
        let _ = writeln!(out, "# TYPE {name} counter");
        for s in sorted.iter().filter(|s| s.family == family) {
            out.push_str(name);
            out.push_str("{upstream=\"");
            escape_label_value(&s.upstream, &mut out);
            if family.has_server() {
                out.push_str("\",server=\"");
                escape_label_value(&s.server, &mut out);
            }
            let _ = writeln!(out, "\",status=\"{}\"}} {}", s.status, s.count);
        }
    }
    out
}

/// Writes a label value escaped as the text format requires: `\` as `\\`, `"` as `\"`, a
/// line feed as `\n`. Bytes that are not UTF-8 become U+FFFD.
pub fn escape_label_value(value: &[u8], out: &mut String) {
    for c in String::from_utf8_lossy(value).chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// The `upstream` label: an `upstream {}` block's name (borrowed: no allocation on the
/// path to the next server), or `host:port` for the block that
/// `proxy_pass http://host:port` makes implicitly.
pub fn upstream_label(host: &[u8], port: u16, implicit: bool) -> Cow<'_, [u8]> {
    if !implicit || port == 0 {
        return Cow::Borrowed(host);
    }
    let mut label = host.to_vec();
    label.push(b':');
    label.extend_from_slice(port.to_string().as_bytes());
    Cow::Owned(label)
}

/// The hash under which a counter is filed in the zone. The zone compares whole keys, so the
/// hash only has to spread them over the buckets; it takes the names eight bytes at a time
/// (a multiply-rotate mix), the pass's only loop over them besides that comparison.
pub fn key_hash(family: Family, status: u16, upstream: &[u8], server: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mix = |h: u64, word: u64| (h.rotate_left(5) ^ word).wrapping_mul(K);
    let feed = |mut h: u64, bytes: &[u8]| {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            h = mix(h, u64::from_le_bytes(word));
        }
        let mut last = [0; 8];
        last[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
        mix(h, u64::from_le_bytes(last))
    };
    let head = (family as u64) << 56 | u64::from(status) << 32 | upstream.len() as u64;
    let h = feed(feed(mix(0, head), upstream), server);
    // The multiplications carry entropy upwards; fold it into the low bits buckets use.
    h ^ (h >> 29)
}

/// Whether two names are the same bytes: `a == b`, eight bytes at a time and inline, where
/// `==` on slices calls `memcmp` (a worker's cache checks a hit's server name with this on
/// every count; names are short, a server's `host:port`).
#[inline]
pub fn same_name(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    // The first and the last bytes of a name, which may overlap: a short name costs two
    // comparisons, a longer one a comparison per word more.
    match a.len() {
        0..=3 => a.iter().zip(b).all(|(x, y)| x == y),
        4..=7 => {
            a.first_chunk::<4>() == b.first_chunk::<4>()
                && a.last_chunk::<4>() == b.last_chunk::<4>()
        }
        8..=16 => {
            a.first_chunk::<8>() == b.first_chunk::<8>()
                && a.last_chunk::<8>() == b.last_chunk::<8>()
        }
        _ => {
            let (mut x, mut y) = (a, b);
            while let (Some((p, x_rest)), Some((q, y_rest))) =
                (x.split_first_chunk::<8>(), y.split_first_chunk::<8>())
            {
                if p != q {
                    return false;
                }
                (x, y) = (x_rest, y_rest);
            }
            a.last_chunk::<8>() == b.last_chunk::<8>()
        }
    }
}

/// `next_upstream_status_zone NAME [SIZE]`, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneSpec {
    pub name: Vec<u8>,
    pub size: usize,
}

/// Each message names the offending argument; nginx appends "in FILE:LINE".
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ZoneError {
    #[error("invalid zone name \"{0}\"")]
    InvalidName(Token),
    #[error("invalid zone size \"{0}\"")]
    InvalidSize(Token),
    #[error("zone \"{name}\" is too small: at least {minimum} bytes")]
    TooSmall { name: Token, minimum: usize },
}

/// Parses the arguments that follow the directive's name. `minimum` is the smallest zone
/// nginx's slab allocator can work with (8 pages, as `limit_req_zone` requires).
pub fn parse_zone(args: &[&[u8]], minimum: usize) -> Result<ZoneSpec, ZoneError> {
    let name = args.first().copied().unwrap_or_default();
    let valid_name = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.');
    if name.is_empty() || !name.iter().all(valid_name) {
        return Err(ZoneError::InvalidName(Token(name.to_vec())));
    }
    let size = match args.get(1) {
        None => DEFAULT_ZONE_SIZE,
        Some(arg) => parse_size(arg).ok_or_else(|| ZoneError::InvalidSize(Token(arg.to_vec())))?,
    };
    if size < minimum {
        return Err(ZoneError::TooSmall {
            name: Token(name.to_vec()),
            minimum,
        });
    }
    Ok(ZoneSpec {
        name: name.to_vec(),
        size,
    })
}

/// A size as nginx writes it: digits, optionally followed by `k`/`K` or `m`/`M`.
pub fn parse_size(arg: &[u8]) -> Option<usize> {
    let (digits, unit) = match arg.last()? {
        b'k' | b'K' => (&arg[..arg.len() - 1], 1024),
        b'm' | b'M' => (&arg[..arg.len() - 1], 1024 * 1024),
        _ => (arg, 1),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: usize = std::str::from_utf8(digits).ok()?.parse().ok()?;
    n.checked_mul(unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        let cases: &[(&str, Option<usize>)] = &[
            ("1m", Some(1 << 20)),
            ("1M", Some(1 << 20)),
            ("64k", Some(64 << 10)),
            ("64K", Some(64 << 10)),
            ("32768", Some(32768)),
            ("0", Some(0)),
            ("", None),
            ("k", None),
            ("1g", None),
            ("-1m", None),
            ("1.5m", None),
            ("1mm", None),
            ("99999999999999999999999m", None),
        ];
        for &(arg, expected) in cases {
            assert_eq!(parse_size(arg.as_bytes()), expected, "{arg}");
        }
    }

    #[test]
    fn zone_args() {
        let min = 32768;
        let ok = |name: &str, size| {
            Ok(ZoneSpec {
                name: name.as_bytes().to_vec(),
                size,
            })
        };
        let cases: &[(&[&str], Result<ZoneSpec, ZoneError>)] = &[
            (&["retries"], ok("retries", DEFAULT_ZONE_SIZE)),
            (&["retries", "64k"], ok("retries", 65536)),
            (&["r.2-x_y", "32k"], ok("r.2-x_y", 32768)),
            (
                &["retries", "16k"],
                Err(ZoneError::TooSmall {
                    name: Token(b"retries".to_vec()),
                    minimum: min,
                }),
            ),
            (
                &["retries", "lots"],
                Err(ZoneError::InvalidSize(Token(b"lots".to_vec()))),
            ),
            (
                &["re tries"],
                Err(ZoneError::InvalidName(Token(b"re tries".to_vec()))),
            ),
            (
                &["a\"b"],
                Err(ZoneError::InvalidName(Token(b"a\"b".to_vec()))),
            ),
            (&[""], Err(ZoneError::InvalidName(Token(Vec::new())))),
        ];
        for (args, expected) in cases {
            let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
            assert_eq!(&parse_zone(&args, min), expected, "{args:?}");
        }
        let err = parse_zone(&[b"x", b"4k"], min).unwrap_err();
        assert_eq!(
            err.to_string(),
            "zone \"x\" is too small: at least 32768 bytes"
        );
        let err = parse_zone(&[b"x", b"4q"], min).unwrap_err();
        assert_eq!(err.to_string(), "invalid zone size \"4q\"");
    }

    #[test]
    fn label_escaping() {
        let cases: &[(&[u8], &str)] = &[
            (b"registry_both", "registry_both"),
            (b"127.0.0.1:5000", "127.0.0.1:5000"),
            (b"unix:/run/a.sock", "unix:/run/a.sock"),
            (b"a\"b", "a\\\"b"),
            (b"a\\b", "a\\\\b"),
            (b"a\nb", "a\\nb"),
            (b"\xff", "\u{fffd}"),
        ];
        for &(value, expected) in cases {
            let mut out = String::new();
            escape_label_value(value, &mut out);
            assert_eq!(out, expected, "{value:?}");
        }
    }

    #[test]
    fn upstream_labels() {
        let cases: &[(&str, u16, bool, &str)] = &[
            ("registry_both", 0, false, "registry_both"),
            ("127.0.0.1", 5000, true, "127.0.0.1:5000"),
            ("backend", 80, true, "backend:80"),
            ("unix:/run/a.sock", 0, true, "unix:/run/a.sock"),
        ];
        for &(host, port, implicit, expected) in cases {
            assert_eq!(
                &upstream_label(host.as_bytes(), port, implicit)[..],
                expected.as_bytes(),
                "{host}"
            );
        }
    }

    #[test]
    fn keys() {
        let base = key_hash(Family::Passed, 404, b"u", b"a:1");
        assert_eq!(base, key_hash(Family::Passed, 404, b"u", b"a:1"));
        for other in [
            key_hash(Family::Kept, 404, b"u", b"a:1"),
            key_hash(Family::Passed, 410, b"u", b"a:1"),
            key_hash(Family::Passed, 404, b"v", b"a:1"),
            key_hash(Family::Passed, 404, b"u", b"a:2"),
            key_hash(Family::Passed, 404, b"ua", b":1"),
        ] {
            assert_ne!(base, other);
        }
        // Servers of one upstream, as they differ in practice, spread over 128 buckets.
        let buckets: std::collections::HashSet<u64> = (0..64)
            .map(|i| {
                key_hash(
                    Family::Passed,
                    404,
                    b"registry_both",
                    format!("10.0.0.{i}:5000").as_bytes(),
                ) % 128
            })
            .collect();
        assert!(buckets.len() > 32, "{}", buckets.len());
        for f in Family::ALL {
            assert_eq!(Family::from_u8(f as u8), Some(f));
        }
        assert_eq!(Family::from_u8(3), None);
    }

    #[test]
    fn names() {
        let cases: &[(&[u8], &[u8], bool)] = &[
            (b"", b"", true),
            (b"a", b"a", true),
            (b"a", b"b", false),
            (b"a", b"ab", false),
            (b"1234567", b"1234567", true),
            (b"1234567", b"1235567", false),
            (b"1234", b"1234", true),
            (b"1234", b"1235", false),
            (b"123", b"124", false),
            (b"12345678", b"12345678", true),
            (b"12345678", b"12345679", false),
            (b"127.0.0.1:8081", b"127.0.0.1:8081", true),
            (b"127.0.0.1:8081", b"127.0.0.1:8082", false),
            (b"127.0.0.1:8081", b"128.0.0.1:8081", false),
            (b"127.0.0.1:8081", b"127.0.0.2:8081", false),
            (b"10.0.0.1:80", b"10.0.0.1:8", false),
            (b"0123456789abcdef", b"0123456789abcdef", true),
            (b"0123456789abcdef", b"0123456789abcdeF", false),
            (b"0123456789abcdefg", b"0123456789abcdefg", true),
            (b"0123456789abcdefg", b"0123456789abcdeFg", false),
        ];
        for &(a, b, same) in cases {
            assert_eq!(same_name(a, b), same, "{a:?} {b:?}");
            assert_eq!(same_name(b, a), same, "{b:?} {a:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn names_as_eq(a in proptest::collection::vec(0u8..4, 0..40), flip in 0usize..48) {
            let mut b = a.clone();
            if let Some(byte) = b.get_mut(flip) {
                *byte ^= 1;
            }
            proptest::prop_assert_eq!(same_name(&a, &b), a == b);
            proptest::prop_assert!(same_name(&a, &a));
        }
    }

    #[test]
    fn rendering() {
        let sample = |family, upstream: &str, server: &str, status, count| Sample {
            family,
            upstream: upstream.as_bytes().to_vec(),
            server: server.as_bytes().to_vec(),
            status,
            count,
        };
        let text = render(&[
            sample(Family::Kept, "u", "", 404, 2),
            sample(Family::Passed, "u", "127.0.0.1:2", 404, 1),
            sample(Family::Passed, "u", "127.0.0.1:1", 410, 7),
            sample(Family::Passed, "u", "127.0.0.1:1", 404, 5),
            sample(Family::Passed, "a\"b", "x", 404, 1),
        ]);
        let expected = "\
# HELP nginx_next_upstream_status_passed_total Requests passed on to the next upstream server after this server answered this listed status.
# TYPE nginx_next_upstream_status_passed_total counter
nginx_next_upstream_status_passed_total{upstream=\"a\\\"b\",server=\"x\",status=\"404\"} 1
nginx_next_upstream_status_passed_total{upstream=\"u\",server=\"127.0.0.1:1\",status=\"404\"} 5
nginx_next_upstream_status_passed_total{upstream=\"u\",server=\"127.0.0.1:1\",status=\"410\"} 7
nginx_next_upstream_status_passed_total{upstream=\"u\",server=\"127.0.0.1:2\",status=\"404\"} 1
# HELP nginx_next_upstream_status_kept_total Kept answers with this status sent instead of nginx's own error, because no later server gave an answer.
# TYPE nginx_next_upstream_status_kept_total counter
nginx_next_upstream_status_kept_total{upstream=\"u\",status=\"404\"} 2
# HELP nginx_next_upstream_status_exhausted_total Requests for which every server tried answered a listed status; the last server's answer with this status was sent.
# TYPE nginx_next_upstream_status_exhausted_total counter
";
        assert_eq!(text, expected);
        assert_eq!(render(&[]).lines().count(), 6);
    }
}
