//! Parsing `proxy_next_upstream_status off | STATUS ... [methods=METHOD,...] [keep_answer=on|off]`.
//!
//! Pure: takes the directive's arguments as bytes and knows nothing of nginx, so that every
//! malformed use can be tested without starting one.

use std::fmt;

use thiserror::Error;

use crate::methods::{Method, MethodSet};
use crate::statuses::{StatusSet, HIGHEST, LOWEST};

/// What one location says about passing requests on after a status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Directive {
    /// `off`: cancels a list inherited from an outer level.
    Off,
    On(Rule),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    pub statuses: StatusSet,
    pub methods: MethodSet,
    /// When no later server gives an answer of its own, send the client the listed-status
    /// answer already received instead of nginx's 502/504 (see `kept_answer`).
    pub keep_answer: bool,
}

/// An argument as the operator wrote it, shown lossily if it is not UTF-8.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token(pub Vec<u8>);

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.0))
    }
}

/// Each message names the offending argument; nginx appends "in FILE:LINE".
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("invalid status \"{0}\"")]
    InvalidStatus(Token),
    #[error(
        "status \"{0}\" is out of range: nginx passes a request on only after a status \
         from {LOWEST} to {HIGHEST}"
    )]
    OutOfRange(Token),
    #[error("invalid range \"{0}\": the first status is greater than the last")]
    ReversedRange(Token),
    #[error("duplicate status {status} in \"{token}\"")]
    DuplicateStatus { status: u16, token: Token },
    #[error("\"off\" cannot be combined with other parameters")]
    OffWithOthers,
    #[error("no status is listed")]
    NoStatus,
    #[error("empty method list in \"{0}\"")]
    EmptyMethods(Token),
    #[error("unknown method \"{method}\" in \"{token}\"")]
    UnknownMethod { method: Token, token: Token },
    #[error("duplicate method \"{method}\" in \"{token}\"")]
    DuplicateMethod { method: Token, token: Token },
    #[error("duplicate parameter \"{0}\"")]
    DuplicateParameter(Token),
    #[error("invalid value \"{0}\": it must be \"on\" or \"off\"")]
    InvalidSwitch(Token),
}

const METHODS_PREFIX: &[u8] = b"methods=";
const KEEP_ANSWER_PREFIX: &[u8] = b"keep_answer=";

/// Parses the arguments that follow the directive's name.
pub fn parse<'a>(args: impl IntoIterator<Item = &'a [u8]>) -> Result<Directive, ParseError> {
    let args: Vec<&[u8]> = args.into_iter().collect();

    if args.contains(&&b"off"[..]) {
        return match args.len() {
            1 => Ok(Directive::Off),
            _ => Err(ParseError::OffWithOthers),
        };
    }

    let mut statuses = StatusSet::default();
    let mut methods = None;
    let mut keep_answer = None;

    for &arg in &args {
        let token = || Token(arg.to_vec());

        if let Some(list) = arg.strip_prefix(METHODS_PREFIX) {
            if methods.is_some() {
                return Err(ParseError::DuplicateParameter(token()));
            }
            methods = Some(parse_methods(list, token)?);
            continue;
        }

        if let Some(switch) = arg.strip_prefix(KEEP_ANSWER_PREFIX) {
            if keep_answer.is_some() {
                return Err(ParseError::DuplicateParameter(token()));
            }
            keep_answer = Some(match switch {
                b"on" => true,
                b"off" => false,
                _ => return Err(ParseError::InvalidSwitch(token())),
            });
            continue;
        }

        let (first, last) =
            parse_statuses(arg).ok_or_else(|| ParseError::InvalidStatus(token()))?;
        if !(LOWEST..=HIGHEST).contains(&first) || !(LOWEST..=HIGHEST).contains(&last) {
            return Err(ParseError::OutOfRange(token()));
        }
        if first > last {
            return Err(ParseError::ReversedRange(token()));
        }
        for status in first..=last {
            if !statuses.insert(status) {
                return Err(ParseError::DuplicateStatus {
                    status,
                    token: token(),
                });
            }
        }
    }

    if statuses.is_empty() {
        return Err(ParseError::NoStatus);
    }

    Ok(Directive::On(Rule {
        statuses,
        methods: methods.unwrap_or(MethodSet::DEFAULT),
        keep_answer: keep_answer.unwrap_or(true),
    }))
}

/// `404` → (404, 404); `500-504` → (500, 504); `4xx` → (400, 499). Bounds are not checked here.
fn parse_statuses(arg: &[u8]) -> Option<(u16, u16)> {
    if let [class @ b'0'..=b'9', b'x' | b'X', b'x' | b'X'] = *arg {
        let first = u16::from(class - b'0') * 100;
        return Some((first, first + 99));
    }
    match arg.iter().position(|&b| b == b'-') {
        Some(dash) => Some((parse_code(&arg[..dash])?, parse_code(&arg[dash + 1..])?)),
        None => parse_code(arg).map(|code| (code, code)),
    }
}

/// A status code is exactly three digits (RFC 9110, section 15).
fn parse_code(digits: &[u8]) -> Option<u16> {
    match *digits {
        [a, b, c] if digits.iter().all(u8::is_ascii_digit) => Some(
            [a, b, c]
                .iter()
                .fold(0, |n, d| n * 10 + u16::from(d - b'0')),
        ),
        _ => None,
    }
}

fn parse_methods(list: &[u8], token: impl Fn() -> Token) -> Result<MethodSet, ParseError> {
    if list.is_empty() {
        return Err(ParseError::EmptyMethods(token()));
    }
    let mut methods = MethodSet::default();
    for name in list.split(|&b| b == b',') {
        let method = Method::from_name(name).ok_or_else(|| ParseError::UnknownMethod {
            method: Token(name.to_vec()),
            token: token(),
        })?;
        if !methods.insert(method) {
            return Err(ParseError::DuplicateMethod {
                method: Token(name.to_vec()),
                token: token(),
            });
        }
    }
    Ok(methods)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(line: &str) -> Result<Directive, String> {
        parse(line.split_whitespace().map(str::as_bytes)).map_err(|e| e.to_string())
    }

    fn statuses(d: &Directive) -> Vec<u16> {
        match d {
            Directive::On(rule) => rule.statuses.iter().collect(),
            Directive::Off => vec![],
        }
    }

    fn methods(d: &Directive) -> Vec<&'static str> {
        match d {
            Directive::On(rule) => rule.methods.iter().map(Method::name).collect(),
            Directive::Off => vec![],
        }
    }

    #[test]
    fn accepted() {
        let range = |a: u16, b: u16| (a..=b).collect::<Vec<_>>();
        let cases: &[(&str, Vec<u16>, &[&str])] = &[
            ("404", vec![404], &["GET", "HEAD"]),
            ("404 403", vec![403, 404], &["GET", "HEAD"]),
            ("300 599", vec![300, 599], &["GET", "HEAD"]),
            ("500-504", range(500, 504), &["GET", "HEAD"]),
            ("404-404", vec![404], &["GET", "HEAD"]),
            ("4xx", range(400, 499), &["GET", "HEAD"]),
            (
                "3XX 5xx",
                [range(300, 399), range(500, 599)].concat(),
                &["GET", "HEAD"],
            ),
            ("410 methods=GET", vec![410], &["GET"]),
            ("methods=PUT,GET 404", vec![404], &["GET", "PUT"]),
            (
                "404 methods=POST,PATCH,LOCK",
                vec![404],
                &["POST", "LOCK", "PATCH"],
            ),
        ];
        for (line, want_statuses, want_methods) in cases {
            let d = run(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!(&statuses(&d), want_statuses, "{line}");
            assert_eq!(&methods(&d), want_methods, "{line}");
        }
        assert_eq!(run("off"), Ok(Directive::Off));
    }

    #[test]
    fn keep_answer_switch() {
        let keep = |line: &str| match run(line) {
            Ok(Directive::On(rule)) => rule.keep_answer,
            other => panic!("{line}: {other:?}"),
        };
        assert!(keep("404"));
        assert!(keep("404 keep_answer=on"));
        assert!(!keep("keep_answer=off 404 methods=GET"));
    }

    #[test]
    fn rejected() {
        let out_of_range = |t: &str| {
            format!(
                "status \"{t}\" is out of range: nginx passes a request on only after a status \
                 from 300 to 599"
            )
        };
        let cases: &[(&str, String)] = &[
            ("", "no status is listed".into()),
            ("methods=GET", "no status is listed".into()),
            ("abc", "invalid status \"abc\"".into()),
            ("40", "invalid status \"40\"".into()),
            ("4040", "invalid status \"4040\"".into()),
            ("+404", "invalid status \"+404\"".into()),
            ("404-", "invalid status \"404-\"".into()),
            ("-404", "invalid status \"-404\"".into()),
            ("400-410-420", "invalid status \"400-410-420\"".into()),
            ("4x", "invalid status \"4x\"".into()),
            ("4xxx", "invalid status \"4xxx\"".into()),
            ("x04", "invalid status \"x04\"".into()),
            ("on", "invalid status \"on\"".into()),
            ("200", out_of_range("200")),
            ("299", out_of_range("299")),
            ("600", out_of_range("600")),
            ("000", out_of_range("000")),
            ("2xx", out_of_range("2xx")),
            ("6xx", out_of_range("6xx")),
            ("200-404", out_of_range("200-404")),
            ("500-600", out_of_range("500-600")),
            (
                "504-500",
                "invalid range \"504-500\": the first status is greater than the last".into(),
            ),
            ("404 404", "duplicate status 404 in \"404\"".into()),
            ("4xx 404", "duplicate status 404 in \"404\"".into()),
            ("404 400-410", "duplicate status 404 in \"400-410\"".into()),
            ("500-504 5xx", "duplicate status 500 in \"5xx\"".into()),
            (
                "off 404",
                "\"off\" cannot be combined with other parameters".into(),
            ),
            (
                "404 off",
                "\"off\" cannot be combined with other parameters".into(),
            ),
            (
                "off off",
                "\"off\" cannot be combined with other parameters".into(),
            ),
            ("404 methods=", "empty method list in \"methods=\"".into()),
            (
                "404 methods=get",
                "unknown method \"get\" in \"methods=get\"".into(),
            ),
            (
                "404 methods=GET,",
                "unknown method \"\" in \"methods=GET,\"".into(),
            ),
            (
                "404 methods=GET,,HEAD",
                "unknown method \"\" in \"methods=GET,,HEAD\"".into(),
            ),
            (
                "404 methods=FETCH",
                "unknown method \"FETCH\" in \"methods=FETCH\"".into(),
            ),
            (
                "404 methods=GET,GET",
                "duplicate method \"GET\" in \"methods=GET,GET\"".into(),
            ),
            (
                "404 methods=GET methods=HEAD",
                "duplicate parameter \"methods=HEAD\"".into(),
            ),
            ("404 method=GET", "invalid status \"method=GET\"".into()),
            (
                "404 keep_answer=yes",
                "invalid value \"keep_answer=yes\": it must be \"on\" or \"off\"".into(),
            ),
            (
                "404 keep_answer=",
                "invalid value \"keep_answer=\": it must be \"on\" or \"off\"".into(),
            ),
            (
                "404 keep_answer=on keep_answer=off",
                "duplicate parameter \"keep_answer=off\"".into(),
            ),
            ("keep_answer=off", "no status is listed".into()),
        ];
        for (line, want) in cases {
            assert_eq!(run(line).as_ref(), Err(want), "{line:?}");
        }
    }

    #[test]
    fn non_utf8_token_is_shown_lossily() {
        let err = parse([&b"4\xff4"[..]]).unwrap_err().to_string();
        assert_eq!(err, "invalid status \"4\u{fffd}4\"");
    }
}
