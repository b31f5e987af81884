//! The hooks into nginx's upstream machinery.
//!
//! nginx decides whether to try the next server in the static `ngx_http_upstream_test_next()`,
//! and only for a fixed list of statuses. Without patching nginx, the module steers that
//! decision from the outside:
//!
//! 1. At configuration time every upstream block's `peer.init` is wrapped (which composes with
//!    whatever balancer set it: round robin, keepalive, hash, ...).
//! 2. Per request, in a location where the directive is on, the wrapper wraps the upstream's
//!    `process_header` and `reinit_request` (a wrapper per original function: see
//!    [`PROCESS_HEADER`]).
//! 3. When a parsed response has a listed status and nginx would be able to pass it on, the
//!    status is shown to nginx as 404 and `u->conf` is pointed at a copy of the location's
//!    configuration that has `http_404` in `next_upstream` (made once per worker). nginx then
//!    takes its own path to the next server: the peer is freed as `NGX_PEER_NEXT` (no `max_fails`
//!    accounting), tries and timeouts are honoured, the request body is replayed.
//! 4. When the next attempt starts (`reinit_request`), or the request ends before it could
//!    (`finalize_request`), the real configuration and the real status in `$upstream_status`
//!    are put back.
//! 5. If the request ends with nginx's own 5xx because no later server answered, the answer
//!    passed over is sent instead, by the filters in `filters.rs` (registration installs
//!    them beside these hooks).

use core::ffi::c_void;
use core::ptr::{self, NonNull};
use core::{mem, slice};

use ngx::core::Pool;
use ngx::ffi::{
    ngx_conf_t, ngx_cycle, ngx_http_err_page_t, ngx_http_request_t, ngx_http_upstream_conf_t,
    ngx_http_upstream_srv_conf_t, ngx_http_upstream_state_t, ngx_http_upstream_t, ngx_int_t,
    ngx_msec_t, ngx_str_t, ngx_uint_t, NGX_AGAIN, NGX_ERROR, NGX_HTTP_LOCK, NGX_HTTP_NOT_FOUND,
    NGX_HTTP_PATCH, NGX_HTTP_POST, NGX_HTTP_UPSTREAM_FT_HTTP_404,
    NGX_HTTP_UPSTREAM_FT_NON_IDEMPOTENT, NGX_HTTP_UPSTREAM_IGN_XA_REDIRECT, NGX_OK,
};
use ngx::http::{
    HttpModule, HttpModuleConfExt, HttpModuleLocationConf, HttpModuleMainConf, NgxHttpCoreModule,
    NgxHttpUpstreamModule,
};

use crate::decision::{self, Attempt, Verdict};
use crate::http2;
use crate::kept_answer::{self, body_to_keep, Framing, KeptBody};
use crate::metrics::Family;
use crate::nginx::bitfields;
use crate::nginx::conf::{
    original_init, LocConf, Module, Original, PassOnRule, SetupError, SrvConf,
};
use crate::nginx::counters;
use crate::nginx::ctx::{
    arrived, framing, new_request_ctx, ngx_http_proxy_module, peer_name, request_ctx, KeptAnswer,
    RequestCallback, RequestCtx, Serving, Staged,
};
use crate::nginx::log::{debug_enabled, log_alert, log_debug, log_info};
use crate::slots::SlotTable;

/// Postconfiguration: wraps `peer.init` of every upstream block, explicit (`upstream {}`) and
/// implicit (`proxy_pass http://host:port`). By now every block's `init_upstream` has run, so
/// `peer.init` is the balancer's final choice.
///
/// # Safety
/// `cf` must be the http block's configuration being finished by nginx.
pub unsafe fn wrap_upstream_blocks(cf: *mut ngx_conf_t) -> Result<(), SetupError> {
    // SAFETY: `cf` is valid during postconfiguration.
    let cf_ref = unsafe { &*cf };
    let mcf = Module::main_conf_mut(cf_ref).ok_or(SetupError::NoMainConf)?;
    let umcf = NgxHttpUpstreamModule::main_conf(cf_ref).ok_or(SetupError::NoUpstreamConf)?;
    // SAFETY: the upstream module's array of block pointers is fully built by now.
    let blocks = unsafe {
        umcf.upstreams
            .as_slice::<*mut ngx_http_upstream_srv_conf_t>()
    };

    let mut originals = Vec::with_capacity(blocks.len());
    for &us in blocks {
        // SAFETY: each entry is a valid upstream block owned by the configuration.
        let us = unsafe { &mut *us };
        if let Some(init) = us.peer.init {
            if us.srv_conf.is_null() {
                originals.push(Original { upstream: us, init });
            } else {
                // SAFETY: an explicit block's srv confs hold this module's, made by its
                // `create_srv_conf`, valid for the configuration's lifetime.
                let conf =
                    unsafe { *us.srv_conf.add(Module::module().ctx_index) }.cast::<SrvConf>();
                // SAFETY: as above.
                let conf = unsafe { conf.as_mut() }.ok_or(SetupError::NoMainConf)?;
                conf.original = Some(init);
            }
            us.peer.init = Some(init_peer_with_pass_on);
        }
    }
    originals.sort_unstable_by_key(|e| e.upstream);
    mcf.originals = originals.into_boxed_slice();
    Ok(())
}

/// Wraps an upstream block's `peer.init`: hooks the request in if its location has the
/// directive on, then runs the block's own. (Hooking first lets the original be the last call:
/// if it fails, nginx ends the request, and the wrappers are never called.)
unsafe extern "C" fn init_peer_with_pass_on(
    r: *mut ngx_http_request_t,
    us: *mut ngx_http_upstream_srv_conf_t,
) -> ngx_int_t {
    // SAFETY: nginx calls peer.init with a valid request whose configuration holds `us`, and
    // `r->upstream` set up by the upstream module (its callbacks and conf).
    let request = unsafe { &mut *r };
    let Some(original) = original_init(request, us) else {
        log_alert!(request.connection, "peer.init of upstream block not found");
        return NGX_ERROR as ngx_int_t;
    };
    if Module::location_conf(request).is_some_and(|lcf| lcf.pass_on_rule().is_some()) {
        hook_request(request);
    }
    // SAFETY: the block's own peer.init, with the arguments nginx gave us; `request` is no
    // longer used.
    unsafe { original(r, us) }
}

/// Puts the wrappers in front of the request's `process_header` and `reinit_request`, for a
/// `proxy_pass` request. Allocates nothing: a request gets a context only once an answer of
/// it is passed on.
#[inline(always)]
fn hook_request(r: &mut ngx_http_request_t) {
    // SAFETY: peer.init is called from ngx_http_upstream_init_request, with r->upstream set.
    let u = unsafe { &mut *r.upstream };
    // SAFETY: the proxy module is in every nginx this module loads into (it is needed to
    // build it); its location conf starts with its `ngx_http_upstream_conf_t`.
    let proxy_conf =
        unsafe { r.http_location_conf_unchecked::<c_void>(&*ptr::addr_of!(ngx_http_proxy_module)) }
            .map_or(ptr::null_mut(), NonNull::as_ptr);
    if u.conf.cast::<c_void>() != proxy_conf {
        return;
    }
    let (Some(process_header), Some(reinit_request)) = (u.process_header, u.reinit_request) else {
        return;
    };
    let Some(process_header_wrapper) = PROCESS_HEADER.wrapper_for(process_header) else {
        return not_hooked(r, PROCESS_HEADER.is_wrapper(process_header));
    };
    let Some(reinit_request_wrapper) = REINIT_REQUEST.wrapper_for(reinit_request) else {
        return not_hooked(r, REINIT_REQUEST.is_wrapper(reinit_request));
    };
    u.process_header = Some(process_header_wrapper);
    u.reinit_request = Some(reinit_request_wrapper);
    if debug_enabled(r.connection) {
        trace_hooked(r);
    }
}

/// Out of line, so that the line's formatting takes no room in peer.init's frame (which then
/// ends with a jump to the block's own peer.init).
#[cold]
#[inline(never)]
fn trace_hooked(r: &ngx_http_request_t) {
    // SAFETY: a request's upstream and its block are valid while it is processed.
    let us = unsafe { r.upstream.as_ref() }.and_then(|u| unsafe { u.upstream.as_ref() });
    log_debug!(r.connection, "hooked request, upstream \"{}\"", {
        us.map_or(ngx_str_t::empty(), |us| us.host)
    });
}

/// Peer.init ran again for an upstream already hooked, or (which must not happen) the table
/// has no slot left.
#[cold]
fn not_hooked(r: &ngx_http_request_t, hooked_already: bool) {
    if !hooked_already {
        log_alert!(
            r.connection,
            "too many upstream callbacks, request not hooked"
        );
    }
}

/// The upstream module's `process_header`s and `reinit_request`s met by this worker, and the
/// wrapper of each. A wrapper must call the function it replaced, and the proxy module changes
/// its `process_header` in the middle of a request (status line, then headers): rather than
/// keep the current one in a per-request context (an allocation on every request), each
/// distinct original has a slot and a wrapper of its own, so what `u->process_header` holds
/// says which original comes next. The proxy module has three parsers and two
/// `reinit_request`s (HTTP/1 and HTTP/2): four slots are room to spare.
static PROCESS_HEADER: SlotTable<RequestCallback, 4> = SlotTable::new([
    process_header_via::<0>,
    process_header_via::<1>,
    process_header_via::<2>,
    process_header_via::<3>,
]);
static REINIT_REQUEST: SlotTable<RequestCallback, 4> = SlotTable::new([
    reinit_request_via::<0>,
    reinit_request_via::<1>,
    reinit_request_via::<2>,
    reinit_request_via::<3>,
]);

/// Runs the upstream module's `process_header` at `SLOT`, then decides on a complete header.
/// A listed answer that is to be passed over and kept waits for its body first (see
/// [`consider_passing_on`]): until it is whole, nginx is told the header is incomplete, reads on
/// into the same buffer and calls this again, which then only looks at the body.
///
/// The original may put another parser in `u->process_header` (the proxy module's status-line
/// parser hands over to its header parser, and back after a 103 Early Hints). A wrapper goes
/// back in front of it unless the header is complete (`NGX_OK`): nginx does not call the
/// parser again in this attempt then, unless the module waits for the body (which puts one
/// back), and a next attempt starts with `reinit_request`, whose wrapper puts one back.
unsafe extern "C" fn process_header_via<const SLOT: usize>(
    r: *mut ngx_http_request_t,
) -> ngx_int_t {
    // SAFETY: nginx calls this with a valid request in upstream processing.
    let ctx = unsafe { request_ctx(r) }.map(ptr::from_mut);
    // SAFETY: null or the request's context, which no other reference reaches now.
    let awaiting_body = ctx.is_some_and(|ctx| unsafe { (*ctx).awaiting_body });
    if !awaiting_body {
        let Some(original) = PROCESS_HEADER.original::<SLOT>() else {
            return NGX_ERROR as ngx_int_t;
        };
        // SAFETY: `r->upstream` is valid during upstream processing, and reached through a
        // raw pointer only: the original writes `u->process_header` itself (the proxy module
        // moves from its status-line parser to its header parser inside this call).
        let rc = unsafe {
            let u = (*r).upstream;
            (*u).process_header = Some(original);
            original(r)
        };
        if rc != NGX_OK as ngx_int_t {
            // SAFETY: as above.
            unsafe { rewrap_process_header((*r).upstream) };
            return rc;
        }
    }
    // SAFETY: `r->upstream` is valid during upstream processing; the original has returned.
    let (request, u) = unsafe { (&mut *r, &mut *(*r).upstream) };
    // The hook was made for a location with a rule, which a request keeps with its upstream.
    let Some(rule) = Module::location_conf(request).and_then(LocConf::pass_on_rule) else {
        return NGX_OK as ngx_int_t;
    };
    // The common answer is not listed: decided here, the rest out of line.
    if awaiting_body || rule.statuses.contains(u.headers_in.status_n) {
        return consider_passing_on(request, u, rule);
    }
    trace_verdict(request, u, Verdict::NotListed);
    if let Some(ctx) = ctx {
        // SAFETY: as above.
        answered_by_server(unsafe { &mut *ctx });
    }
    NGX_OK as ngx_int_t
}

unsafe extern "C" fn reinit_request_via<const SLOT: usize>(
    r: *mut ngx_http_request_t,
) -> ngx_int_t {
    let Some(original) = REINIT_REQUEST.original::<SLOT>() else {
        return NGX_ERROR as ngx_int_t;
    };
    // SAFETY: nginx calls this with a valid request in upstream processing; the original at
    // `SLOT` is the upstream module's `reinit_request`.
    unsafe { reinit_request_with_pass_on(r, original) }
}

/// Puts a wrapper in front of the `process_header` the upstream module has left in `u`, unless
/// it is a wrapper already.
///
/// # Safety
/// `u` must be a valid upstream, reached through no live reference.
#[inline(always)]
unsafe fn rewrap_process_header(u: *mut ngx_http_upstream_t) {
    // SAFETY: as the caller promises.
    let Some(current) = (unsafe { (*u).process_header }) else {
        return;
    };
    match PROCESS_HEADER.wrapper_for(current) {
        // SAFETY: as above.
        Some(wrapper) => unsafe { (*u).process_header = Some(wrapper) },
        None if PROCESS_HEADER.is_wrapper(current) => {}
        // SAFETY: as above.
        None => unsafe { parser_not_wrapped(u) },
    }
}

/// # Safety
/// `u` must be a valid upstream.
#[cold]
unsafe fn parser_not_wrapped(u: *mut ngx_http_upstream_t) {
    // SAFETY: as the caller promises; the peer's log is the request's while it is in use.
    let log = unsafe { (*u).peer.log };
    ngx::ngx_log_error!(
        ngx::ffi::NGX_LOG_ALERT,
        log,
        "next_upstream_status: too many upstream callbacks, answer not looked at"
    );
}

/// The current server's answer goes to nginx as it is (see [`RequestCtx::server_answered`]).
fn answered_by_server(ctx: &mut RequestCtx) {
    ctx.awaiting_body = false;
    ctx.server_answered = true;
}

/// The status seen and what was decided, in one debug line.
fn trace_verdict(r: &ngx_http_request_t, u: &ngx_http_upstream_t, verdict: Verdict) {
    log_debug!(
        r.connection,
        "upstream answered {}, peer: \"{}\": {}",
        u.headers_in.status_n,
        peer_name(u),
        verdict.reason()
    );
}

/// A listed answer: passes the request on if nginx can, once the answer's body, if it is to
/// be kept, has arrived. `NGX_AGAIN` while waiting for it.
#[cold]
#[inline(never)]
fn consider_passing_on(
    r: &mut ngx_http_request_t,
    u: &mut ngx_http_upstream_t,
    rule: &PassOnRule,
) -> ngx_int_t {
    // Asked again after each read while waiting: the time allowed may have run out.
    let verdict = decision::verdict(&rule.statuses, &attempt(r, u, rule));
    trace_verdict(r, u, verdict);
    if verdict != Verdict::PassOn {
        // SAFETY: a valid request; no other reference to its context is live.
        let ctx = unsafe { request_ctx(r) };
        let passed = ctx.map_or(0, |ctx| {
            answered_by_server(ctx);
            ctx.passed
        });
        if decision::exhausted(verdict, passed, earlier_attempts(r, u)) {
            log_debug!(r.connection, "every server tried answered a listed status");
            let status = u.headers_in.status_n;
            counters::count(r, u.upstream, Family::Exhausted, status, ngx_str_t::empty());
        }
        return NGX_OK as ngx_int_t;
    }
    // Without memory, nginx handles the response as it would without the module.
    let Some(ctx) = request_ctx_made(r, u, rule) else {
        return NGX_OK as ngx_int_t;
    };
    let kept = match answer_to_keep(r, u, rule) {
        Ok(KeptBody::Incomplete) => {
            ctx.awaiting_body = true;
            // SAFETY: a valid upstream, reached through `u` only.
            unsafe { rewrap_process_header(ptr::from_mut(u)) };
            log_debug!(r.connection, "waiting for the rest of the answer's body");
            return NGX_AGAIN as ngx_int_t;
        }
        Ok(KeptBody::Whole(body)) => {
            KeptAnswer::capture(r, u, Ok(body), ctx.kept_memory).ok_or("out of memory")
        }
        Ok(KeptBody::Dropped(why)) => {
            KeptAnswer::capture(r, u, Err(why), ctx.kept_memory).ok_or("out of memory")
        }
        Err(why) => Err(why),
    };
    ctx.awaiting_body = false;
    stage_pass_on(r, u, ctx, rule, kept);
    NGX_OK as ngx_int_t
}

/// The request's context, made (with the finalize wrapper it needs) the first time one of its
/// answers is to be passed on. `None` without memory.
fn request_ctx_made<'a>(
    r: &mut ngx_http_request_t,
    u: &mut ngx_http_upstream_t,
    rule: &PassOnRule,
) -> Option<&'a mut RequestCtx> {
    // SAFETY: a valid request; no other reference to its context is live.
    if let Some(ctx) = unsafe { request_ctx(r) } {
        return Some(ctx);
    }
    let ctx = new_request_ctx(
        r,
        RequestCtx {
            upstream: r.upstream,
            finalize_request: u.finalize_request,
            awaiting_body: false,
            staged: None,
            kept: None,
            kept_memory: None,
            serving: Serving::No,
            passed: 0,
            server_answered: false,
        },
        rule.keep_answer,
    )?;
    u.finalize_request = Some(finalize_request_with_pass_on);
    Some(ctx)
}

/// Whether the answer is kept and what of its body, or why it is not kept.
fn answer_to_keep<'a>(
    r: &ngx_http_request_t,
    u: &'a ngx_http_upstream_t,
    rule: &PassOnRule,
) -> Result<KeptBody<'a>, &'static str> {
    if !rule.keep_answer {
        Err("keep_answer=off")
    } else if intercepted(r, u, u.headers_in.status_n) {
        Err("an error_page intercepts it")
    } else if redirects(u) {
        Err("X-Accel-Redirect: nginx would redirect, not send it")
    } else {
        Ok(body_to_keep(&arrived(r, u)))
    }
}

/// An answer nginx would follow to another location instead of sending it.
fn redirects(u: &ngx_http_upstream_t) -> bool {
    // SAFETY: `u->conf` is the location's upstream configuration.
    let ignored =
        unsafe { (*u.conf).ignore_headers } & NGX_HTTP_UPSTREAM_IGN_XA_REDIRECT as ngx_uint_t;
    !u.headers_in.x_accel_redirect.is_null() && ignored == 0
}

/// How many attempts of this upstream came before the current one: the states before it in
/// `$upstream_status` back to the start or to the separator (no peer) an earlier upstream of
/// the same request left.
fn earlier_attempts(r: &ngx_http_request_t, u: &ngx_http_upstream_t) -> usize {
    // SAFETY: `upstream_states` is a valid array of states that holds `u->state`.
    let states = unsafe { (*r.upstream_states).as_slice::<ngx_http_upstream_state_t>() };
    let current = state_index(r, u).min(states.len());
    states[..current]
        .iter()
        .rev()
        .take_while(|state| !state.peer.is_null())
        .count()
}

/// The facts `ngx_http_upstream_test_next()` looks at, read the way it reads them.
fn attempt(r: &ngx_http_request_t, u: &ngx_http_upstream_t, rule: &PassOnRule) -> Attempt {
    // SAFETY: `u->conf` is the location's upstream configuration.
    let conf = unsafe { &*u.conf };
    let timeout = conf.next_upstream_timeout;
    // SAFETY: nginx's clock is only written by this worker's event loop, which runs us.
    let now: ngx_msec_t = unsafe { ptr::read_volatile(ptr::addr_of!(ngx::ffi::ngx_current_msec)) };
    let sent = bitfields::request_sent(u);
    Attempt {
        status: u.headers_in.status_n,
        method_listed: r.method & rule.methods != 0,
        non_idempotent_sent: sent
            && r.method & (NGX_HTTP_POST | NGX_HTTP_LOCK | NGX_HTTP_PATCH) as ngx_uint_t != 0,
        non_idempotent_allowed: conf.next_upstream
            & NGX_HTTP_UPSTREAM_FT_NON_IDEMPOTENT as ngx_uint_t
            != 0,
        tries_left: u.peer.tries,
        body_streamed: sent && bitfields::request_body_no_buffering(r),
        timed_out: timeout != 0 && now.wrapping_sub(u.peer.start_time) >= timeout,
        from_cache: bitfields::request_cached(r),
        revalidates_cache: revalidates_cache(u),
    }
}

/// The same test `ngx_http_upstream_test_next()` makes before serving a revalidated entry.
#[cfg(ngx_feature = "http_cache")]
fn revalidates_cache(u: &ngx_http_upstream_t) -> bool {
    // SAFETY: `u->conf` is the location's upstream configuration.
    let revalidate = unsafe { (*u.conf).cache_revalidate } != 0;
    u.headers_in.status_n == ngx::ffi::NGX_HTTP_NOT_MODIFIED as ngx_uint_t
        && bitfields::cache_status(u) == ngx::ffi::NGX_HTTP_CACHE_EXPIRED as ngx_uint_t
        && revalidate
}

#[cfg(not(ngx_feature = "http_cache"))]
fn revalidates_cache(_u: &ngx_http_upstream_t) -> bool {
    false
}

/// Whether nginx would have handed this answer to an `error_page` instead of sending it
/// (`ngx_http_upstream_intercept_errors()`): such an answer is not kept for the client.
fn intercepted(r: &ngx_http_request_t, u: &ngx_http_upstream_t, status: ngx_uint_t) -> bool {
    // SAFETY: `u->conf` is the location's upstream configuration.
    let conf = unsafe { &*u.conf };
    if conf.intercept_errors == 0 {
        return false;
    }
    let Some(clcf) = NgxHttpCoreModule::location_conf(r) else {
        return false;
    };
    // SAFETY: `error_pages` is null or an array of `ngx_http_err_page_t` in the configuration.
    let pages = match unsafe { clcf.error_pages.as_ref() } {
        // SAFETY: `error_pages` holds `ngx_http_err_page_t` entries (`error_page` fills it).
        Some(array) => unsafe { array.as_slice::<ngx_http_err_page_t>() },
        None => &[],
    };
    pages.iter().any(|page| page.status == status as ngx_int_t)
}

/// Shows the response to nginx as a 404 that its configuration passes on, with the answer
/// kept, or why it is not.
fn stage_pass_on(
    r: &mut ngx_http_request_t,
    u: &mut ngx_http_upstream_t,
    ctx: &mut RequestCtx,
    rule: &PassOnRule,
    kept: Result<NonNull<KeptAnswer>, &'static str>,
) {
    // Without memory, nginx handles the response as it would without the module.
    let Some(conf_passing_404) = conf_passing_404(r, u.conf, rule) else {
        answered_by_server(ctx);
        return;
    };

    let status = u.headers_in.status_n;
    log_info!(
        r.connection,
        "upstream answered {}, passing request to the next server, peer: \"{}\"",
        status,
        peer_name(u)
    );
    // A new pass forgets the answer kept from an earlier one: the last is what counts.
    match kept {
        Ok(kept) => {
            log_debug!(r.connection, "answer kept");
            ctx.kept = Some(kept);
        }
        Err(why) => {
            log_debug!(r.connection, "answer not kept: {}", why);
            ctx.kept = None;
        }
    }
    ctx.passed += 1;
    ctx.staged = Some(Staged {
        conf: u.conf,
        state: state_index(r, u),
        status,
    });
    u.conf = conf_passing_404;
    u.headers_in.status_n = NGX_HTTP_NOT_FOUND as ngx_uint_t;
    log_debug!(
        r.connection,
        "pass on staged: {} shown to nginx as 404",
        status
    );
    counters::count(r, u.upstream, Family::Passed, status, peer_name(u));
}

/// An upstream configuration like `conf` that passes a 404 on: `conf` itself if it already
/// does, else a copy. Configuration does not change while a worker runs, so the copy is made
/// once per worker and location, in the cycle's pool; a request whose location does not
/// match the cached one gets its own copy.
fn conf_passing_404(
    r: &ngx_http_request_t,
    conf: *mut ngx_http_upstream_conf_t,
    rule: &PassOnRule,
) -> Option<*mut ngx_http_upstream_conf_t> {
    const FT_404: ngx_uint_t = NGX_HTTP_UPSTREAM_FT_HTTP_404 as ngx_uint_t;
    // SAFETY: `conf` is the location's upstream configuration.
    if unsafe { (*conf).next_upstream } & FT_404 != 0 {
        return Some(conf);
    }
    let (source, copy) = rule.conf_passing_404.get();
    if source == conf && !copy.is_null() {
        return Some(copy);
    }
    let cache = source.is_null();
    // SAFETY: in a worker, `ngx_cycle` is the running cycle, whose pool lives as long as the
    // configuration does; a request's pool lives as long as the request.
    let pool = unsafe { Pool::from_ngx_pool(if cache { (*ngx_cycle).pool } else { r.pool }) };
    let copy = pool.alloc_type::<ngx_http_upstream_conf_t>();
    if copy.is_null() {
        return None;
    }
    // SAFETY: `copy` is fresh and large enough; `conf` is valid.
    unsafe {
        copy.write(*conf);
        (*copy).next_upstream |= FT_404;
    }
    if cache {
        rule.conf_passing_404.set((conf, copy));
    }
    Some(copy)
}

fn state_index(r: &ngx_http_request_t, u: &ngx_http_upstream_t) -> usize {
    // SAFETY: `u->state` is an element of `r->upstream_states`, pushed for this attempt.
    let first = unsafe { (*r.upstream_states).elts }.cast::<ngx_http_upstream_state_t>();
    (u.state as usize - first as usize) / mem::size_of::<ngx_http_upstream_state_t>()
}

/// Puts back what a staged pass changed: the real configuration, and the real status in
/// `$upstream_status` (nginx wrote the 404 it was shown).
fn restore(r: &mut ngx_http_request_t, u: &mut ngx_http_upstream_t, ctx: &mut RequestCtx) {
    let Some(staged) = ctx.staged.take() else {
        return;
    };
    u.conf = staged.conf;
    // SAFETY: `upstream_states` is a valid array of states; the index was taken from it and
    // the array only grows.
    let states = unsafe { (*r.upstream_states).as_slice_mut::<ngx_http_upstream_state_t>() };
    if let Some(state) = states.get_mut(staged.state) {
        state.status = staged.status;
    }
    log_debug!(
        r.connection,
        "configuration and status {} restored",
        staged.status
    );
}

/// Runs the upstream module's `reinit_request`, `original`, before the next attempt, with
/// what a staged pass changed put back first.
///
/// # Safety
/// `r` must be a valid request in upstream processing, `original` its upstream module's.
#[inline(always)]
unsafe fn reinit_request_with_pass_on(
    r: *mut ngx_http_request_t,
    original: RequestCallback,
) -> ngx_int_t {
    // SAFETY: `r->upstream` is valid during upstream processing.
    let (request, u) = unsafe { (&mut *r, &mut *(*r).upstream) };
    // SAFETY: a valid request; no other reference to its context is live.
    if let Some(ctx) = unsafe { request_ctx(r) } {
        restore(request, u, ctx);
        // A new attempt: its server has not answered yet.
        ctx.awaiting_body = false;
        ctx.server_answered = false;
    }
    if framing(u) == Framing::Http2 {
        renumber_http2_request(u);
    }
    // SAFETY: the original, called with the request nginx gave us; `u` is reached through the
    // raw pointer again, as the original writes `u->process_header` (the proxy module starts
    // over with its status-line parser).
    unsafe {
        let u = (*r).upstream;
        let rc = original(r);
        rewrap_process_header(u);
        rc
    }
}

/// Before the next try over HTTP/2 (after a listed status, an error, or the extra try nginx
/// makes when a kept-alive connection fails): the request's frames as they were written,
/// for stream 1, so that a new connection gets them right (nginx numbers them for a
/// kept-alive one itself); see [`http2::renumber_for_new_connection`].
fn renumber_http2_request(u: &mut ngx_http_upstream_t) {
    // SAFETY: `request_bufs` is null or the request's chain; its first buffer is the one
    // the proxy module wrote the connection preface and the request's frames into, in
    // memory between `start` and `last`.
    let Some(first) = (unsafe { u.request_bufs.as_ref() }).and_then(|cl| {
        // SAFETY: a chain link's `buf` is null or a valid buffer.
        unsafe { cl.buf.as_ref() }
    }) else {
        return;
    };
    if first.start.is_null() || first.last < first.start {
        return;
    }
    // SAFETY: `start..last` is the memory the proxy module wrote the frames into (checked
    // ordered above); nothing else reads or writes it while nginx reinitialises.
    let written = unsafe {
        slice::from_raw_parts_mut(first.start, first.last as usize - first.start as usize)
    };
    http2::renumber_for_new_connection(written);
}

unsafe extern "C" fn finalize_request_with_pass_on(r: *mut ngx_http_request_t, rc: ngx_int_t) {
    // SAFETY: nginx calls this with a valid request in upstream processing; the wrapper is
    // installed with the context, which holds the original.
    let Some(ctx) = (unsafe { request_ctx(r) }) else {
        // SAFETY: as above.
        let connection = unsafe { (*r).connection };
        log_alert!(
            connection,
            "finalize_request wrapped, but no request context"
        );
        return;
    };
    // SAFETY: `r->upstream` is valid until the upstream is finalized, which is now.
    let (request, u) = unsafe { (&mut *r, &mut *(*r).upstream) };
    restore(request, u, ctx);
    // SAFETY: the request's connection is valid while the request is.
    let client_gone = bitfields::connection_error(unsafe { &*request.connection });
    if ctx.kept.is_some()
        && !client_gone
        && kept_answer::replaces_failure(rc, bitfields::header_sent(u), ctx.server_answered)
    {
        ctx.serving = Serving::Due { failure: rc };
        log_debug!(
            request.connection,
            "request ends with {}: kept answer due",
            rc
        );
        // nginx must not store its own 502/504 for a request whose client got the kept
        // answer (`proxy_cache_valid` for errors).
        bitfields::set_uncacheable(u);
        // The client is to get the kept answer, as if the server had just sent it, so an
        // `error_page` for nginx's 502/504 does not apply (nginx's own flag for "an error
        // page is being sent" keeps it from redirecting, which would lose the context).
        bitfields::set_error_page(request);
    }
    if ctx.serving == Serving::No {
        log_debug!(
            request.connection,
            "request ends with {}: answer not sent, {}",
            rc,
            if ctx.kept.is_none() {
                "none kept"
            } else if client_gone {
                "client gone"
            } else if ctx.server_answered {
                "the server's own answer"
            } else {
                "not nginx's own error before the header"
            }
        );
    }
    if let Some(original) = ctx.finalize_request {
        // SAFETY: calling the saved original with the arguments nginx gave us.
        unsafe { original(r, rc) };
    }
}
