//! Whether a response with a listed status passes the request on to the next server.
//!
//! The module makes nginx pass the request on by nginx's own path
//! (`ngx_http_upstream_test_next()`), so this must hold exactly when nginx would pass on a
//! status it knows: if the two drifted, a response staged to be passed over would fall
//! through to the client instead. Every field below
//! is one condition of `test_next` (nginx 1.22 to 1.28 agree on them), plus the module's own
//! (the rule's statuses and methods, and never a cached response).

use crate::statuses::StatusSet;

/// What nginx knows about the response just received.
#[derive(Clone, Copy, Debug, Default)]
pub struct Attempt {
    /// `u->headers_in.status_n`.
    pub status: usize,
    /// The request's method is one the rule lists.
    pub method_listed: bool,
    /// A POST, LOCK or PATCH that was already sent: nginx passes those on only when
    /// `proxy_next_upstream` has `non_idempotent`.
    pub non_idempotent_sent: bool,
    /// `proxy_next_upstream` has `non_idempotent`.
    pub non_idempotent_allowed: bool,
    /// `u->peer.tries`: this attempt and those still allowed after it.
    pub tries_left: usize,
    /// The request body was streamed to this server (`proxy_request_buffering off`) and cannot
    /// be sent again.
    pub body_streamed: bool,
    /// `proxy_next_upstream_timeout` has passed since the first attempt.
    pub timed_out: bool,
    /// The response comes from the cache, not from a server.
    pub from_cache: bool,
    /// A 304 that revalidates an expired cache entry (`proxy_cache_revalidate`): nginx serves
    /// the cached response then, so it is an answer, not a status to pass on.
    pub revalidates_cache: bool,
}

/// What decided about a response: passed on, or the first condition that kept it from that.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    PassOn,
    NotListed,
    MethodNotListed,
    FromCache,
    RevalidatesCache,
    NoTriesLeft,
    NonIdempotentSent,
    BodyStreamed,
    TimedOut,
}

impl Verdict {
    /// How the debug trace names the condition.
    pub fn reason(self) -> &'static str {
        match self {
            Verdict::PassOn => "passing on",
            Verdict::NotListed => "not passing on: status not listed",
            Verdict::MethodNotListed => "not passing on: method not listed",
            Verdict::FromCache => "not passing on: response from cache",
            Verdict::RevalidatesCache => "not passing on: 304 revalidates the cache",
            Verdict::NoTriesLeft => "not passing on: no tries left",
            Verdict::NonIdempotentSent => {
                "not passing on: non-idempotent request sent, no \"non_idempotent\""
            }
            Verdict::BodyStreamed => "not passing on: request body streamed",
            Verdict::TimedOut => "not passing on: proxy_next_upstream_timeout passed",
        }
    }
}

/// The decision with its reason, conditions in the order `test_next` and the module test them.
pub fn verdict(statuses: &StatusSet, a: &Attempt) -> Verdict {
    if !statuses.contains(a.status) {
        Verdict::NotListed
    } else if !a.method_listed {
        Verdict::MethodNotListed
    } else if a.from_cache {
        Verdict::FromCache
    } else if a.revalidates_cache {
        Verdict::RevalidatesCache
    } else if a.tries_left <= 1 {
        Verdict::NoTriesLeft
    } else if a.non_idempotent_sent && !a.non_idempotent_allowed {
        Verdict::NonIdempotentSent
    } else if a.body_streamed {
        Verdict::BodyStreamed
    } else if a.timed_out {
        Verdict::TimedOut
    } else {
        Verdict::PassOn
    }
}

/// Whether a listed answer that was not passed on ends a request on which every server tried
/// answered a listed status: it was kept from that only by the tries or the time used up, the
/// request was passed on before, and every earlier attempt was such a pass.
pub fn exhausted(verdict: Verdict, passed: usize, earlier_attempts: usize) -> bool {
    matches!(verdict, Verdict::NoTriesLeft | Verdict::TimedOut)
        && passed > 0
        && passed == earlier_attempts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directive::{parse, Directive};

    #[test]
    fn each_condition_is_needed() {
        let Ok(Directive::On(rule)) = parse([&b"404"[..], b"5xx"]) else {
            panic!("parse")
        };
        let go = Attempt {
            status: 404,
            method_listed: true,
            tries_left: 2,
            ..Default::default()
        };

        #[rustfmt::skip]
        let cases: &[(&str, Attempt, bool)] = &[
            ("listed status",             go,                                              true),
            ("class member",              Attempt { status: 503, ..go },                   true),
            ("unlisted status",           Attempt { status: 410, ..go },                   false),
            ("success",                   Attempt { status: 200, ..go },                   false),
            ("method not listed",         Attempt { method_listed: false, ..go },          false),
            ("from cache",                Attempt { from_cache: true, ..go },              false),
            ("revalidates the cache",     Attempt { revalidates_cache: true, ..go },       false),
            ("last try",                  Attempt { tries_left: 1, ..go },                 false),
            ("no tries",                  Attempt { tries_left: 0, ..go },                 false),
            ("many tries",                Attempt { tries_left: 8, ..go },                 true),
            ("POST sent",                 Attempt { non_idempotent_sent: true, ..go },     false),
            ("POST sent, non_idempotent", Attempt { non_idempotent_sent: true,
                                                    non_idempotent_allowed: true, ..go }, true),
            ("non_idempotent on, GET",    Attempt { non_idempotent_allowed: true, ..go },  true),
            ("body streamed",             Attempt { body_streamed: true, ..go },           false),
            ("timed out",                 Attempt { timed_out: true, ..go },               false),
        ];
        for (name, attempt, expected) in cases {
            let passes_on = verdict(&rule.statuses, attempt) == Verdict::PassOn;
            assert_eq!(passes_on, *expected, "{name}");
        }
    }

    #[test]
    fn verdicts_name_the_deciding_condition() {
        let Ok(Directive::On(rule)) = parse([&b"404"[..]]) else {
            panic!("parse")
        };
        let go = Attempt {
            status: 404,
            method_listed: true,
            tries_left: 2,
            ..Default::default()
        };
        #[rustfmt::skip]
        let cases: &[(Attempt, Verdict)] = &[
            (go,                                                   Verdict::PassOn),
            (Attempt { status: 200, ..go },                        Verdict::NotListed),
            (Attempt { method_listed: false, ..go },               Verdict::MethodNotListed),
            (Attempt { from_cache: true, ..go },                   Verdict::FromCache),
            (Attempt { revalidates_cache: true, ..go },            Verdict::RevalidatesCache),
            (Attempt { tries_left: 1, ..go },                      Verdict::NoTriesLeft),
            (Attempt { non_idempotent_sent: true, ..go },          Verdict::NonIdempotentSent),
            (Attempt { body_streamed: true, ..go },                Verdict::BodyStreamed),
            (Attempt { timed_out: true, ..go },                    Verdict::TimedOut),
            (Attempt { tries_left: 1, timed_out: true, ..go },     Verdict::NoTriesLeft),
            (Attempt { status: 200, tries_left: 1, ..go },         Verdict::NotListed),
        ];
        for (attempt, expected) in cases {
            assert_eq!(verdict(&rule.statuses, attempt), *expected, "{attempt:?}");
        }
    }

    #[test]
    fn exhaustion() {
        #[rustfmt::skip]
        let cases: &[(Verdict, usize, usize, bool)] = &[
            (Verdict::NoTriesLeft,     1, 1, true),
            (Verdict::TimedOut,   2, 2, true),
            (Verdict::NoTriesLeft,     0, 0, false), // never passed on: a single server
            (Verdict::NoTriesLeft,     1, 2, false), // an earlier attempt failed otherwise
            (Verdict::PassOn,    1, 1, false),
            (Verdict::MethodNotListed,    1, 1, false),
            (Verdict::NotListed, 1, 1, false),
        ];
        for &(v, passed, earlier, expected) in cases {
            assert_eq!(
                exhausted(v, passed, earlier),
                expected,
                "{v:?} {passed} {earlier}"
            );
        }
    }
}
