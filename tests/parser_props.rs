//! Property-based tests of the directive's argument parser (`directive::parse`), the one
//! piece of the module that reads operator input.
//!
//! The properties compare the parser with a reference model written here from the README's
//! description of the directive, independently of `src/directive.rs`:
//!
//! - `never_panics_and_every_answer_is_justified`: any argument list, from arbitrary bytes to
//!   near-misses of valid tokens, gives `Ok` or `Err` without panicking; `Ok` exactly when the
//!   model accepts the list, with the model's statuses, methods and switch; every `Err` names
//!   one of the input tokens byte for byte (or is one of the two messages without a token) and
//!   is justified by that token.
//! - `valid_lists_denote_the_union_of_their_tokens`: lists generated from the model (disjoint
//!   codes, ranges and classes, parameters anywhere) are accepted with exactly the union of
//!   what their tokens denote.
//! - `one_bad_token_is_named`: a valid list with one bad token inserted is rejected with an
//!   error that names that token.
//! - `off_alone_is_off`: `Ok(Directive::Off)` exactly for the single argument `off`.
//! - `render_then_parse_is_identity`, `any_status_set_round_trips`: a rule rendered back to
//!   tokens (in a random but equivalent spelling) parses to the same rule.
//!
//! `cargo test` runs each property with proptest's default number of cases. `PROPTEST_CASES=N`
//! runs N cases per property (`make fuzz` runs FUZZ_CASES per property and prints the total).
//! A failing case is shrunk and saved under `tests/proptest-regressions/`, which is replayed
//! first on later runs.

use std::collections::BTreeSet;

use ngx_http_next_upstream_status_module::directive::{parse, Directive, ParseError, Rule, Token};
use ngx_http_next_upstream_status_module::methods::Method;
use proptest::prelude::*;
use proptest::sample::{select, subsequence};

const LOWEST: u16 = 300;
const HIGHEST: u16 = 599;
const METHOD_NAMES: [&str; 14] = [
    "GET",
    "HEAD",
    "POST",
    "PUT",
    "DELETE",
    "MKCOL",
    "COPY",
    "MOVE",
    "OPTIONS",
    "PROPFIND",
    "PROPPATCH",
    "LOCK",
    "UNLOCK",
    "PATCH",
];

// ---------------------------------------------------------------------------------------------
// The reference model.

/// What the model makes of an argument list that it accepts.
#[derive(Debug, PartialEq, Eq)]
enum Model {
    Off,
    On {
        statuses: BTreeSet<u16>,
        methods: BTreeSet<&'static str>,
        keep_answer: bool,
    },
}

/// The statuses a status token spells, unchecked: `Some((first, last))` for three digits,
/// three digits, a dash and three digits, or a digit followed by two `x` in either case.
fn spelled_range(token: &[u8]) -> Option<(u16, u16)> {
    let text = std::str::from_utf8(token).ok()?;
    let three_digits = |s: &str| -> Option<u16> {
        (s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().unwrap())
    };
    if let [class, rest @ ..] = token {
        if rest.eq_ignore_ascii_case(b"xx") {
            let first = three_digits(&format!("{}00", char::from(*class)))?;
            return Some((first, first + 99));
        }
    }
    match text.split_once('-') {
        Some((a, b)) => Some((three_digits(a)?, three_digits(b)?)),
        None => three_digits(text).map(|c| (c, c)),
    }
}

/// The statuses a status token denotes, if it is a valid one.
fn denoted(token: &[u8]) -> Option<(u16, u16)> {
    let (first, last) = spelled_range(token)?;
    let in_range = |s| (LOWEST..=HIGHEST).contains(&s);
    (in_range(first) && in_range(last) && first <= last).then_some((first, last))
}

fn method_named(name: &[u8]) -> Option<&'static str> {
    METHOD_NAMES.into_iter().find(|m| m.as_bytes() == name)
}

/// The directive as the README describes it; `None` when it is to be rejected.
fn model(args: &[Vec<u8>]) -> Option<Model> {
    if args.iter().any(|a| a == b"off") {
        return (args.len() == 1).then_some(Model::Off);
    }
    let mut statuses = BTreeSet::new();
    let mut methods = None;
    let mut keep_answer = None;
    for arg in args {
        if let Some(list) = arg.strip_prefix(b"methods=") {
            if methods.is_some() || list.is_empty() {
                return None;
            }
            let mut set = BTreeSet::new();
            for name in list.split(|&b| b == b',') {
                if !set.insert(method_named(name)?) {
                    return None;
                }
            }
            methods = Some(set);
        } else if let Some(value) = arg.strip_prefix(b"keep_answer=") {
            if keep_answer.is_some() {
                return None;
            }
            keep_answer = Some(match value {
                b"on" => true,
                b"off" => false,
                _ => return None,
            });
        } else {
            let (first, last) = denoted(arg)?;
            for status in first..=last {
                if !statuses.insert(status) {
                    return None;
                }
            }
        }
    }
    if statuses.is_empty() {
        return None;
    }
    Some(Model::On {
        statuses,
        methods: methods.unwrap_or_else(|| ["GET", "HEAD"].into()),
        keep_answer: keep_answer.unwrap_or(true),
    })
}

/// The parser's answer in the model's terms.
fn as_model(directive: &Directive) -> Model {
    match directive {
        Directive::Off => Model::Off,
        Directive::On(rule) => Model::On {
            statuses: rule.statuses.iter().collect(),
            methods: rule.methods.iter().map(Method::name).collect(),
            keep_answer: rule.keep_answer,
        },
    }
}

fn run(args: &[Vec<u8>]) -> Result<Directive, ParseError> {
    parse(args.iter().map(Vec::as_slice))
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Checks that a rejection names an input token (or is one of the two token-less errors) and
/// that the token deserves it. Returns the token named, if any.
fn check_rejection(args: &[Vec<u8>], err: &ParseError) -> Result<Option<Vec<u8>>, String> {
    let message = err.to_string();
    let token = match err {
        ParseError::OffWithOthers => {
            if !(args.len() > 1 && args.iter().any(|a| a == b"off")) {
                return Err(format!("{message}: but the list is {args:?}"));
            }
            return Ok(None);
        }
        ParseError::NoStatus => {
            let has_status = args.iter().any(|a| {
                !a.starts_with(b"methods=") && !a.starts_with(b"keep_answer=") && a != b"off"
            });
            if has_status {
                return Err(format!("{message}: but {args:?} has a status token"));
            }
            return Ok(None);
        }
        ParseError::InvalidStatus(t)
        | ParseError::OutOfRange(t)
        | ParseError::ReversedRange(t)
        | ParseError::DuplicateStatus { token: t, .. }
        | ParseError::EmptyMethods(t)
        | ParseError::UnknownMethod { token: t, .. }
        | ParseError::DuplicateMethod { token: t, .. }
        | ParseError::DuplicateParameter(t)
        | ParseError::InvalidSwitch(t) => t,
    };
    let Token(bytes) = token;
    if !args.contains(bytes) {
        return Err(format!("{message}: {bytes:?} is not one of the arguments"));
    }
    if !message.contains(&format!("\"{}\"", lossy(bytes))) {
        return Err(format!("message {message:?} does not quote the token"));
    }
    let is_param = bytes.starts_with(b"methods=") || bytes.starts_with(b"keep_answer=");
    let methods = || bytes.strip_prefix(b"methods=");
    let justified = match err {
        ParseError::InvalidStatus(_) => !is_param && spelled_range(bytes).is_none(),
        ParseError::OutOfRange(_) => {
            !is_param
                && spelled_range(bytes)
                    .is_some_and(|(a, b)| ![a, b].iter().all(|s| (LOWEST..=HIGHEST).contains(s)))
        }
        ParseError::ReversedRange(_) => {
            !is_param && spelled_range(bytes).is_some_and(|(a, b)| a > b)
        }
        ParseError::DuplicateStatus { status, .. } => {
            // The status is in this token and in another status token (or this one twice).
            let holds = |t: &Vec<u8>| denoted(t).is_some_and(|(a, b)| (a..=b).contains(status));
            holds(bytes) && args.iter().filter(|t| holds(t)).count() >= 2
        }
        ParseError::EmptyMethods(_) => methods() == Some(&[][..]),
        ParseError::UnknownMethod { method, .. } => methods().is_some_and(|list| {
            method_named(&method.0).is_none() && list.split(|&b| b == b',').any(|m| m == method.0)
        }),
        ParseError::DuplicateMethod { method, .. } => methods().is_some_and(|list| {
            list.split(|&b| b == b',')
                .filter(|m| *m == method.0)
                .count()
                >= 2
        }),
        ParseError::DuplicateParameter(_) => {
            let prefix_len = bytes.iter().position(|&b| b == b'=').map_or(0, |i| i + 1);
            is_param
                && args
                    .iter()
                    .filter(|a| a.starts_with(&bytes[..prefix_len]))
                    .count()
                    >= 2
        }
        ParseError::InvalidSwitch(_) => bytes
            .strip_prefix(b"keep_answer=")
            .is_some_and(|v| v != b"on" && v != b"off"),
        ParseError::OffWithOthers | ParseError::NoStatus => unreachable!(),
    };
    if !justified {
        return Err(format!("{message}: not justified by the list {args:?}"));
    }
    Ok(Some(bytes.clone()))
}

// ---------------------------------------------------------------------------------------------
// Generators.

/// A three-digit code, most of them near the interesting bounds.
fn code() -> impl Strategy<Value = u16> {
    prop_oneof![
        3 => LOWEST..=HIGHEST,
        1 => 0u16..=999,
        1 => select(vec![0, 199, 200, 299, 300, 301, 399, 400, 499, 500, 598, 599, 600, 999]),
        // Few values, so that two tokens of a list often share a status.
        2 => select(vec![300, 403, 404, 410, 429, 499, 500, 502, 503, 504, 599]),
    ]
}

/// Arguments that look like the directive's tokens, and near misses of them.
fn tokenish() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![3 => plausible(), 1 => near_miss(plausible())]
}

/// Tokens of the directive's shapes, valid or not.
fn plausible() -> impl Strategy<Value = Vec<u8>> {
    let method_name = prop_oneof![
        4 => select(METHOD_NAMES.to_vec()).prop_map(String::from),
        1 => select(vec!["", "get", "Get", "FETCH", "TRACE", "CONNECT", "GETX", " GET"])
            .prop_map(String::from),
    ];
    prop_oneof![
        // Arbitrary bytes, including invalid UTF-8 and NUL.
        2 => proptest::collection::vec(any::<u8>(), 0..10),
        2 => "[0-9xX-]{0,8}".prop_map(String::into_bytes),
        4 => code().prop_map(|c| format!("{c:03}").into_bytes()),
        3 => (code(), code()).prop_map(|(a, b)| format!("{a:03}-{b:03}").into_bytes()),
        2 => (0u8..=9, select(vec!["xx", "XX", "xX", "Xx", "x", "xxx", "xy"]))
            .prop_map(|(c, x)| format!("{c}{x}").into_bytes()),
        1 => select(vec!["off", "on", "OFF", "methods", "keep_answer", "=", ""])
            .prop_map(|s| s.as_bytes().to_vec()),
        2 => proptest::collection::vec(method_name, 0..4)
            .prop_map(|names| format!("methods={}", names.join(",")).into_bytes()),
        1 => select(vec!["on", "off", "", "yes", "ON", "on,off", "1"])
            .prop_map(|v| format!("keep_answer={v}").into_bytes()),
    ]
}

/// A byte to put into a token: mostly those the directive's syntax is made of.
fn byte() -> impl Strategy<Value = u8> {
    prop_oneof![select(b"0123456789xX-,=o ".to_vec()), any::<u8>()]
}

/// `token` with one byte replaced (op 0), removed (op 1) or inserted (op 2).
fn mutate(mut token: Vec<u8>, op: u8, at: usize, byte: u8) -> Vec<u8> {
    match op % 3 {
        0 if !token.is_empty() => {
            let i = at % token.len();
            token[i] = byte;
        }
        1 if !token.is_empty() => {
            token.remove(at % token.len());
        }
        _ => token.insert(at % (token.len() + 1), byte),
    }
    token
}

fn near_miss(tokens: impl Strategy<Value = Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    (tokens, any::<u8>(), any::<usize>(), byte())
        .prop_map(|(token, op, at, byte)| mutate(token, op, at, byte))
}

/// Argument lists: tokens drawn independently (mostly rejected), and valid lists as they are,
/// with one token changed by a byte or with one more token (often accepted), so that both
/// sides of every rule are reached.
fn arg_list() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let edited = (
        valid_list(),
        any::<u8>(),
        any::<usize>(),
        byte(),
        tokenish(),
    )
        .prop_map(|(list, op, at, byte, extra)| {
            let mut args = list.args;
            match op % 5 {
                4 => args.insert(at % (args.len() + 1), extra),
                3 => {} // as generated
                _ => {
                    let i = at % args.len();
                    args[i] = mutate(std::mem::take(&mut args[i]), op, at >> 8, byte);
                }
            }
            args
        });
    prop_oneof![
        1 => proptest::collection::vec(tokenish(), 0..7),
        1 => edited,
    ]
}

/// A status token of a valid list, and the statuses it denotes.
#[derive(Clone, Debug)]
enum Item {
    Code(u16),
    Range(u16, u16),
    /// Class digit and the spelling of its `xx`.
    Class(u16, &'static str),
}

impl Item {
    fn span(&self) -> (u16, u16) {
        match *self {
            Item::Code(c) => (c, c),
            Item::Range(a, b) => (a, b),
            Item::Class(c, _) => (c * 100, c * 100 + 99),
        }
    }

    fn token(&self) -> Vec<u8> {
        match self {
            Item::Code(c) => format!("{c}"),
            Item::Range(a, b) => format!("{a}-{b}"),
            Item::Class(c, xx) => format!("{c}{xx}"),
        }
        .into_bytes()
    }
}

fn item() -> impl Strategy<Value = Item> {
    prop_oneof![
        5 => (LOWEST..=HIGHEST).prop_map(Item::Code),
        1 => select(vec![403, 404, 410, 429, 500, 502, 503]).prop_map(Item::Code),
        3 => (LOWEST..=HIGHEST, 0u16..40).prop_map(|(a, len)| Item::Range(a, (a + len).min(HIGHEST))),
        1 => (LOWEST..=HIGHEST, LOWEST..=HIGHEST)
            .prop_map(|(a, b)| Item::Range(a.min(b), a.max(b))),
        1 => (3u16..=5, select(vec!["xx", "XX", "xX", "Xx"])).prop_map(|(c, x)| Item::Class(c, x)),
    ]
}

/// A valid argument list and what it must parse to.
#[derive(Debug)]
struct ValidList {
    args: Vec<Vec<u8>>,
    statuses: BTreeSet<u16>,
    methods: Option<Vec<&'static str>>,
    keep_answer: Option<bool>,
}

fn valid_list() -> impl Strategy<Value = ValidList> {
    (
        proptest::collection::vec(item(), 1..8),
        proptest::option::of(
            subsequence(METHOD_NAMES.to_vec(), 1..=METHOD_NAMES.len()).prop_shuffle(),
        ),
        proptest::option::of(any::<bool>()),
    )
        .prop_flat_map(|(items, methods, keep_answer)| {
            // Keep the items that do not overlap an earlier one (the first always stays).
            let mut statuses = BTreeSet::new();
            let mut args = Vec::new();
            for item in items {
                let (a, b) = item.span();
                if (a..=b).all(|s| !statuses.contains(&s)) {
                    statuses.extend(a..=b);
                    args.push(item.token());
                }
            }
            if let Some(m) = &methods {
                args.push(format!("methods={}", m.join(",")).into_bytes());
            }
            if let Some(k) = keep_answer {
                args.push(format!("keep_answer={}", if k { "on" } else { "off" }).into_bytes());
            }
            Just(args).prop_shuffle().prop_map(move |args| ValidList {
                args,
                statuses: statuses.clone(),
                methods: methods.clone(),
                keep_answer,
            })
        })
}

/// A small deterministic generator for choices derived from one proptest-drawn seed.
struct Choices(u64);

impl Choices {
    fn next(&mut self, bound: usize) -> usize {
        // xorshift64*; bound is small, the modulo bias does not matter here.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % bound.max(1)
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.next(i + 1));
        }
    }
}

/// A token that is bad in every valid list, with the error it must be rejected with.
#[derive(Clone, Debug)]
enum Bad {
    InvalidStatus,
    OutOfRange,
    ReversedRange,
    Duplicate,
    UnknownMethod,
    DuplicateMethod,
    EmptyMethods,
    InvalidSwitch,
    DuplicateParameter,
}

fn bad_token() -> impl Strategy<Value = (Bad, Vec<u8>)> {
    let invalid = prop_oneof![
        "[0-9]{1,2}|[0-9]{4,6}",
        "[0-9]{3}-",
        "-[0-9]{3}",
        "[0-9]{3}-[0-9]{3}-[0-9]{3}",
        "[a-np-z][a-z]{0,5}", // not "off"
        "[0-9][x]{0,1}|[0-9]xxx",
    ]
    .prop_map(|s| (Bad::InvalidStatus, s.into_bytes()));
    let out_of_range = prop_oneof![
        (0u16..LOWEST).prop_map(|c| format!("{c:03}")),
        (HIGHEST + 1..=999).prop_map(|c| format!("{c:03}")),
        (0u16..LOWEST, 0u16..=999).prop_map(|(a, b)| format!("{a:03}-{b:03}")),
        (0u16..=999, HIGHEST + 1..=999).prop_map(|(a, b)| format!("{a:03}-{b:03}")),
        select(vec!["0xx", "1xx", "2xx", "6XX", "9xx"]).prop_map(String::from),
    ]
    .prop_map(|s| (Bad::OutOfRange, s.into_bytes()));
    let reversed = (LOWEST + 1..=HIGHEST)
        .prop_flat_map(|a| (Just(a), LOWEST..a))
        .prop_map(|(a, b)| (Bad::ReversedRange, format!("{a}-{b}").into_bytes()));
    let unknown_method = (
        subsequence(METHOD_NAMES.to_vec(), 0..3),
        select(vec!["", "get", "FETCH", "TRACE", "HEAD "]),
    )
        .prop_map(|(mut names, bad)| {
            let kind = if names.is_empty() && bad.is_empty() {
                Bad::EmptyMethods // "methods=" itself
            } else {
                Bad::UnknownMethod
            };
            names.push(bad);
            (kind, format!("methods={}", names.join(",")).into_bytes())
        });
    let duplicate_method = select(METHOD_NAMES.to_vec()).prop_map(|m| {
        (
            Bad::DuplicateMethod,
            format!("methods={m},{m}").into_bytes(),
        )
    });
    let switch = select(vec!["", "yes", "no", "ON", "Off", "on ", "1"])
        .prop_map(|v| (Bad::InvalidSwitch, format!("keep_answer={v}").into_bytes()));
    // A valid parameter, given twice.
    let second_parameter = prop_oneof![
        subsequence(METHOD_NAMES.to_vec(), 1..4).prop_map(|m| format!("methods={}", m.join(","))),
        select(vec!["keep_answer=on", "keep_answer=off"]).prop_map(String::from),
    ]
    .prop_map(|p| (Bad::DuplicateParameter, p.into_bytes()));
    prop_oneof![
        invalid,
        out_of_range,
        reversed,
        Just((Bad::Duplicate, Vec::new())), // filled in from the list
        unknown_method,
        duplicate_method,
        Just((Bad::EmptyMethods, b"methods=".to_vec())),
        switch,
        second_parameter,
    ]
}

/// A rule's spelling: its statuses cut into random runs, each written as a code, a range
/// or (a whole class) a class; the parameters written or left at their defaults; all shuffled.
fn render(rule: &Rule, seed: u64) -> Vec<Vec<u8>> {
    let mut choices = Choices(seed | 1);
    let statuses: Vec<u16> = rule.statuses.iter().collect();
    let mut runs: Vec<(u16, u16)> = Vec::new();
    for &s in &statuses {
        match runs.last_mut() {
            // Continue a run, unless the choice cuts it here.
            Some((_, last)) if *last + 1 == s && choices.next(8) != 0 => *last = s,
            _ => runs.push((s, s)),
        }
    }
    let mut args: Vec<Vec<u8>> = runs
        .into_iter()
        .map(|(a, b)| {
            let whole_class = a % 100 == 0 && b == a + 99;
            match choices.next(3) {
                0 if whole_class => format!("{}{}", a / 100, ["xx", "XX", "xX"][choices.next(3)]),
                1 if a == b => format!("{a}"),
                _ => format!("{a}-{b}"),
            }
            .into_bytes()
        })
        .collect();
    let methods: Vec<&str> = rule.methods.iter().map(Method::name).collect();
    if methods != ["GET", "HEAD"] || choices.next(2) == 0 {
        let mut names = methods;
        choices.shuffle(&mut names);
        args.push(format!("methods={}", names.join(",")).into_bytes());
    }
    if !rule.keep_answer || choices.next(2) == 0 {
        args.push(
            format!(
                "keep_answer={}",
                if rule.keep_answer { "on" } else { "off" }
            )
            .into_bytes(),
        );
    }
    choices.shuffle(&mut args);
    args
}

// ---------------------------------------------------------------------------------------------
// The properties.

proptest! {
    #[test]
    fn never_panics_and_every_answer_is_justified(args in arg_list()) {
        let got = run(&args);
        match (&got, model(&args)) {
            (Ok(directive), Some(want)) => prop_assert_eq!(as_model(directive), want),
            (Ok(directive), None) => {
                prop_assert!(false, "{:?} accepted as {:?}, the model rejects it", args, directive)
            }
            (Err(err), Some(want)) => {
                prop_assert!(false, "{:?} rejected ({}), the model accepts it as {:?}", args, err, want)
            }
            (Err(err), None) => {
                check_rejection(&args, err).map_err(TestCaseError::fail)?;
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(args in proptest::collection::vec(
        proptest::collection::vec(any::<u8>(), 0..16), 0..10)) {
        match run(&args) {
            Ok(directive) => prop_assert_eq!(Some(as_model(&directive)), model(&args)),
            Err(err) => {
                check_rejection(&args, &err).map_err(TestCaseError::fail)?;
            }
        }
    }

    #[test]
    fn valid_lists_denote_the_union_of_their_tokens(list in valid_list()) {
        let directive = run(&list.args)
            .map_err(|e| TestCaseError::fail(format!("{:?}: {e}", list.args)))?;
        let Directive::On(rule) = directive else {
            return Err(TestCaseError::fail(format!("{:?} parsed as off", list.args)));
        };
        prop_assert_eq!(rule.statuses.iter().collect::<BTreeSet<_>>(), list.statuses);
        let mut want_methods: Vec<&str> = list.methods.unwrap_or(vec!["GET", "HEAD"]);
        want_methods.sort_unstable();
        let mut got_methods: Vec<&str> = rule.methods.iter().map(Method::name).collect();
        got_methods.sort_unstable();
        prop_assert_eq!(got_methods, want_methods);
        prop_assert_eq!(rule.keep_answer, list.keep_answer.unwrap_or(true));
    }

    #[test]
    fn one_bad_token_is_named(list in valid_list(), (kind, bad) in bad_token(), at in any::<u64>()) {
        let mut args = list.args.clone();
        let bad = match kind {
            // A status already listed, alone, in a range or in its class.
            Bad::Duplicate => {
                let listed: Vec<u16> = list.statuses.iter().copied().collect();
                let status = listed[(at % listed.len() as u64) as usize];
                let (below, above) = ((at >> 20) % 5, (at >> 30) % 5);
                match (at >> 40) % 3 {
                    0 => format!("{status}"),
                    1 => format!(
                        "{}-{}",
                        (status - below as u16).max(LOWEST),
                        (status + above as u16).min(HIGHEST)
                    ),
                    _ => format!("{}xx", status / 100),
                }
                .into_bytes()
            }
            _ => bad,
        };
        let prefix = [&b"methods="[..], b"keep_answer="]
            .into_iter()
            .find(|p| bad.starts_with(p));
        if let Some(prefix) = prefix {
            if matches!(kind, Bad::DuplicateParameter) {
                // Make sure the parameter is there once already.
                if !args.iter().any(|a| a.starts_with(prefix)) {
                    args.push(bad.clone());
                }
            } else {
                // A bad parameter next to a good one could be reported as a duplicate
                // first: replace the good one.
                args.retain(|a| !a.starts_with(prefix));
            }
        }
        args.insert((at % (args.len() as u64 + 1)) as usize, bad.clone());

        let err = match run(&args) {
            Ok(d) => return Err(TestCaseError::fail(format!("{args:?} accepted as {d:?}"))),
            Err(err) => err,
        };
        let named = check_rejection(&args, &err).map_err(TestCaseError::fail)?;
        let kind_matches = matches!(
            (&kind, &err),
            (Bad::InvalidStatus, ParseError::InvalidStatus(_))
                | (Bad::OutOfRange, ParseError::OutOfRange(_))
                | (Bad::ReversedRange, ParseError::ReversedRange(_))
                | (Bad::Duplicate, ParseError::DuplicateStatus { .. })
                | (Bad::UnknownMethod, ParseError::UnknownMethod { .. })
                | (Bad::DuplicateMethod, ParseError::DuplicateMethod { .. })
                | (Bad::EmptyMethods, ParseError::EmptyMethods(_))
                | (Bad::InvalidSwitch, ParseError::InvalidSwitch(_))
                | (Bad::DuplicateParameter, ParseError::DuplicateParameter(_))
        );
        prop_assert!(kind_matches, "{:?} in {:?}: {}", kind, args, err);
        // A duplicate is reported at its second occurrence, which may be the listed one.
        if !matches!(kind, Bad::Duplicate | Bad::DuplicateParameter) {
            prop_assert_eq!(named, Some(bad));
        }
    }

    #[test]
    fn off_alone_is_off(args in prop_oneof![
        arg_list(),
        arg_list().prop_map(|mut v| { v.push(b"off".to_vec()); v }),
        Just(vec![b"off".to_vec()]),
    ]) {
        let is_off = matches!(run(&args), Ok(Directive::Off));
        prop_assert_eq!(is_off, args == [b"off".to_vec()], "{:?}", args);
        if args.len() > 1 && args.iter().any(|a| a == b"off") {
            prop_assert_eq!(run(&args), Err(ParseError::OffWithOthers));
        }
    }

    #[test]
    fn render_then_parse_is_identity(list in valid_list(), seed in any::<u64>()) {
        let Ok(Directive::On(rule)) = run(&list.args) else {
            return Err(TestCaseError::fail(format!("{:?} not accepted", list.args)));
        };
        let spelled = render(&rule, seed);
        prop_assert_eq!(run(&spelled), Ok(Directive::On(rule)), "{:?}", spelled.iter().map(|a| lossy(a)).collect::<Vec<_>>());
    }

    #[test]
    fn any_status_set_round_trips(
        (statuses, args) in (
            proptest::collection::btree_set(LOWEST..=HIGHEST, 1..300),
            subsequence(METHOD_NAMES.to_vec(), 1..=METHOD_NAMES.len()),
            any::<bool>(),
        ).prop_flat_map(|(statuses, methods, keep_answer)| {
            // Written one code per token: the parser must give back exactly this set.
            let mut args: Vec<Vec<u8>> =
                statuses.iter().map(|s| s.to_string().into_bytes()).collect();
            args.push(format!("methods={}", methods.join(",")).into_bytes());
            args.push(format!("keep_answer={}", if keep_answer { "on" } else { "off" }).into_bytes());
            (Just(statuses), Just(args).prop_shuffle())
        }),
        seed in any::<u64>(),
    ) {
        let Ok(Directive::On(rule)) = run(&args) else {
            return Err(TestCaseError::fail(format!("{args:?} not accepted")));
        };
        prop_assert_eq!(&rule.statuses.iter().collect::<BTreeSet<_>>(), &statuses);
        // And in a random other spelling, to the very same rule.
        prop_assert_eq!(run(&render(&rule, seed.rotate_left(17))), Ok(Directive::On(rule)));
    }
}
