//! Whether a response with a listed status passes the request on to the next server.
//!
//! The module makes nginx retry through nginx's own path (`ngx_http_upstream_test_next()`),
//! so this must hold exactly when nginx would retry a status it knows: if the two drifted, a
//! response staged for a retry would fall through to the client instead. Every field below
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

pub fn passes_on(statuses: &StatusSet, a: &Attempt) -> bool {
    statuses.contains(a.status)
        && a.method_listed
        && !a.from_cache
        && !a.revalidates_cache
        && a.tries_left > 1
        && (!a.non_idempotent_sent || a.non_idempotent_allowed)
        && !a.body_streamed
        && !a.timed_out
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
            assert_eq!(passes_on(&rule.statuses, attempt), *expected, "{name}");
        }
    }
}
