//! Sending the answer kept from a passed-over server when no later server answers.
//!
//! When a pass on is staged, the answer is copied into the request pool ([`KeptAnswer::capture`]).
//! If the request then ends with nginx's own 5xx before anything was sent
//! (the upstream hooks' finalize wrapper marks it due), nginx goes on to send its error page;
//! this module's header and body filters, first in nginx's chains, replace that page's status,
//! headers and body with the kept answer. Everything nginx does for any response (add_header,
//! the access log, keepalive to the client) then applies as usual.

use core::ptr;

use ngx::core::Pool;
use ngx::ffi::{
    ngx_alloc_chain_link, ngx_buf_t, ngx_chain_t, ngx_hash_find, ngx_http_output_body_filter_pt,
    ngx_http_output_header_filter_pt, ngx_http_request_t, ngx_http_top_body_filter,
    ngx_http_top_header_filter, ngx_http_upstream_header_t, ngx_int_t, ngx_list_part_t,
    ngx_list_push, ngx_list_t, ngx_str_t, ngx_table_elt_t, ngx_uint_t, NGX_ERROR, NGX_OK,
};
use ngx::http::{HttpModuleMainConf, NgxHttpUpstreamModule};

use crate::metrics::Family;
use crate::nginx::bitfields;
use crate::nginx::counters;
use crate::nginx::ctx::{request_ctx, KeptAnswer, Serving};
use crate::nginx::log::{log_debug, log_warn};

static mut NEXT_HEADER_FILTER: ngx_http_output_header_filter_pt = None;
static mut NEXT_BODY_FILTER: ngx_http_output_body_filter_pt = None;

/// Puts the filters at the top of nginx's chains. A dynamic module is configured after every
/// built-in filter, so they run first: before `add_header`, charset and chunked encoding.
///
/// # Safety
/// Only from postconfiguration, which nginx runs on one thread while no request is served.
pub unsafe fn install_filters() {
    // By hand: `ngx` 0.5.1 has no call to join nginx's filter chains.
    // SAFETY: as the caller promises, nothing else reads or writes the chains now.
    unsafe {
        NEXT_HEADER_FILTER = ngx_http_top_header_filter;
        ngx_http_top_header_filter = Some(header_filter);
        NEXT_BODY_FILTER = ngx_http_top_body_filter;
        ngx_http_top_body_filter = Some(body_filter);
    }
}

unsafe extern "C" fn header_filter(r: *mut ngx_http_request_t) -> ngx_int_t {
    // Every response passes here: only an error page nginx makes itself (`err_status` set)
    // is looked at further, out of line, so the common path is a test and a jump.
    // SAFETY: nginx calls header filters with a valid request.
    if unsafe { (*r).err_status } != 0 {
        // SAFETY: a valid request whose header is being sent, as the callee needs.
        return unsafe { header_filter_own_error(r) };
    }
    // SAFETY: calling the next filter, saved from nginx's chain at configuration.
    unsafe { next_header_filter(r) }
}

/// # Safety
/// `r` must be a valid request whose header is being sent.
#[cold]
#[inline(never)]
unsafe fn header_filter_own_error(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: the caller promises a valid request.
    let Some(ctx) = (unsafe { request_ctx(r) }) else {
        // SAFETY: passing on the valid request the caller gave.
        return unsafe { next_header_filter(r) };
    };
    if let (Serving::Due { failure }, Some(kept)) = (ctx.serving, ctx.kept()) {
        // SAFETY: a valid request; the only other live reference, `ctx`, is to the
        // context in its pool, not into the request.
        let request = unsafe { &mut *r };
        // Only nginx's own page for that failure, not some other response.
        if request.headers_out.status == failure as ngx_uint_t {
            if set_headers_as_upstream_answer(request, kept).is_err() {
                return NGX_ERROR as ngx_int_t;
            }
            ctx.serving = Serving::HeaderSent;
            let status = kept.status();
            log_debug!(request.connection, "kept answer {} sent", status);
            // SAFETY: the request's upstream outlives its finalization.
            let upstream =
                unsafe { request.upstream.as_ref() }.map_or(ptr::null_mut(), |u| u.upstream);
            counters::count(request, upstream, Family::Kept, status, ngx_str_t::empty());
            let (without_body, why) = kept
                .dropped
                .map_or(("", ""), |why| (" without its body: ", why.reason()));
            log_warn!(
                request.connection,
                "no later server gave an answer ({}), sending the {} answered by \"{}\"{}{}",
                failure,
                status,
                kept.peer,
                without_body,
                why
            );
        }
    }
    // SAFETY: passing on the valid request the caller gave; `request` is no longer used.
    unsafe { next_header_filter(r) }
}

/// # Safety
/// `r` must be a valid request whose header is being sent.
#[inline(always)]
unsafe fn next_header_filter(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: the next filter was saved from nginx's chain at configuration; nginx only
    // calls this module's filters after that.
    match unsafe { NEXT_HEADER_FILTER } {
        // SAFETY: calling the next filter with the caller's request.
        Some(next) => unsafe { next(r) },
        None => NGX_ERROR as ngx_int_t,
    }
}

/// Turns nginx's error page into the kept answer, as nginx turns a server's answer into the
/// client's (`ngx_http_upstream_process_headers()`, static in nginx): the kept header goes
/// back into `u->headers_in`, and each of its lines through the location's
/// `proxy_hide_header` and the upstream module's handler for it (which sets the typed
/// header, and applies `proxy_redirect` and `proxy_cookie_*`), or is copied as it is.
/// What nginx's error page set first (`ngx_http_send_special_response()`) is undone.
fn set_headers_as_upstream_answer(r: &mut ngx_http_request_t, kept: &KeptAnswer) -> Result<(), ()> {
    // SAFETY: the request's upstream outlives its finalization; its conf is the location's
    // (restored when the request ended).
    let u = unsafe { r.upstream.as_mut() }.ok_or(())?;
    let umcf = NgxHttpUpstreamModule::main_conf(r).ok_or(())?;
    let headers_in_hash = ptr::from_ref(&umcf.headers_in_hash).cast_mut();
    // SAFETY: as above.
    let hide_headers_hash = unsafe { ptr::addr_of_mut!((*u.conf).hide_headers_hash) };
    u.headers_in = kept.headers_in;

    let out = &mut r.headers_out;
    out.content_type = ngx_str_t::empty();
    out.content_type_len = 0;
    out.content_type_hash = 0;
    out.content_type_lowcase = ptr::null_mut();

    let mut result = Ok(());
    for_each_header(&u.headers_in.headers, |h| {
        // SAFETY: a line of the kept header list; nginx's handlers only read it.
        let (hash, key, len) = unsafe { ((*h).hash, (*h).lowcase_key, (*h).key.len) };
        if result.is_err() || hash == 0 {
            return;
        }
        // SAFETY: both hashes are nginx's, built at configuration; a parsed line has a valid
        // lowercase key of its key's length.
        let (hidden, handler) = unsafe {
            (
                !ngx_hash_find(hide_headers_hash, hash, key, len).is_null(),
                ngx_hash_find(headers_in_hash, hash, key, len)
                    .cast::<ngx_http_upstream_header_t>()
                    .as_ref(),
            )
        };
        if hidden {
            return;
        }
        let rc = match handler.and_then(|hh| hh.copy_handler.map(|copy| (copy, hh.conf))) {
            // SAFETY: nginx's own handler for this line, called as nginx calls it.
            Some((copy, conf)) => unsafe { copy(r, h, conf) },
            None => copy_header_line(r, h),
        };
        if rc != NGX_OK as ngx_int_t {
            result = Err(());
        }
    });
    result?;

    let out = &mut r.headers_out;
    // A Server or Date line a handler left without a value is not sent (as nginx does).
    for typed in [out.server, out.date] {
        // SAFETY: null, or a line of the request's output header list.
        if let Some(h) = unsafe { typed.as_mut() } {
            if h.value.data.is_null() {
                h.hash = 0;
            }
        }
    }
    let headers_in = &u.headers_in;
    r.err_status = headers_in.status_n; // $status reads it first
    out.status = headers_in.status_n;
    out.status_line = headers_in.status_line;
    out.content_length_n = headers_in.content_length_n;
    bitfields::set_upstream_answer_flags(r, u);
    Ok(())
}

/// A line no handler knows goes to the client as it came (`ngx_http_upstream_copy_header_line`,
/// static in nginx).
fn copy_header_line(r: &mut ngx_http_request_t, h: *mut ngx_table_elt_t) -> ngx_int_t {
    // SAFETY: the request's own output header list.
    let out = unsafe { ngx_list_push(&mut r.headers_out.headers) }.cast::<ngx_table_elt_t>();
    if out.is_null() {
        return NGX_ERROR as ngx_int_t;
    }
    // SAFETY: `out` is a fresh entry of the right type, `h` a parsed line.
    unsafe { out.write(*h) };
    NGX_OK as ngx_int_t
}

/// By hand: `ngx::http::list_iterator` yields only names and values, and the filter hands each
/// entry itself to nginx's handlers.
fn for_each_header(list: &ngx_list_t, mut f: impl FnMut(*mut ngx_table_elt_t)) {
    let mut part: *const ngx_list_part_t = &list.part;
    // SAFETY: a list's parts form a null-terminated chain of arrays of `nelts` entries each.
    while let Some(p) = unsafe { part.as_ref() } {
        if p.nelts > 0 {
            // SAFETY: this part's array holds `nelts` initialised entries (the chain's rule).
            let first = p.elts.cast::<ngx_table_elt_t>();
            // SAFETY: within this part's array, as just said.
            (0..p.nelts).for_each(|i| f(unsafe { first.add(i) }));
        }
        part = p.next;
    }
}

unsafe extern "C" fn body_filter(r: *mut ngx_http_request_t, input: *mut ngx_chain_t) -> ngx_int_t {
    // Every buffer of every response passes here: only one whose status is nginx's own
    // (`err_status`, which the header filter also sets for a kept answer) is looked at
    // further, out of line.
    // SAFETY: nginx calls body filters with a valid request.
    if unsafe { (*r).err_status } != 0 {
        // SAFETY: a valid request whose body is being sent, as the callee needs.
        return unsafe { body_filter_own_error(r, input) };
    }
    // SAFETY: calling the next filter, saved from nginx's chain at configuration.
    unsafe { next_body_filter(r, input) }
}

/// # Safety
/// `r` must be a valid request whose body is being sent.
#[cold]
#[inline(never)]
unsafe fn body_filter_own_error(r: *mut ngx_http_request_t, input: *mut ngx_chain_t) -> ngx_int_t {
    // SAFETY: the caller promises a valid request.
    let ctx = unsafe { request_ctx(r) };
    let input = match ctx {
        Some(ctx) => match (ctx.serving, ctx.kept()) {
            (Serving::HeaderSent, Some(kept)) => {
                ctx.serving = Serving::BodySent;
                // SAFETY: a valid request; `ctx` and `kept` are in its pool's context,
                // not inside the request.
                match kept_body(unsafe { &mut *r }, kept) {
                    Some(chain) => chain,
                    None => return NGX_ERROR as ngx_int_t,
                }
            }
            // The error page's own buffers are dropped; calls without data still flush.
            (Serving::BodySent, _) => ptr::null_mut(),
            _ => input,
        },
        None => input,
    };
    // SAFETY: passing on the valid request the caller gave, with a valid chain or none.
    unsafe { next_body_filter(r, input) }
}

/// # Safety
/// `r` must be a valid request whose body is being sent.
#[inline(always)]
unsafe fn next_body_filter(r: *mut ngx_http_request_t, input: *mut ngx_chain_t) -> ngx_int_t {
    // SAFETY: the next filter was saved from nginx's chain at configuration; nginx only
    // calls this module's filters after that.
    match unsafe { NEXT_BODY_FILTER } {
        // SAFETY: calling the next filter with the caller's arguments.
        Some(next) => unsafe { next(r, input) },
        None => NGX_ERROR as ngx_int_t,
    }
}

/// The kept body as one in-memory buffer that ends the response.
fn kept_body(r: &mut ngx_http_request_t, kept: &KeptAnswer) -> Option<*mut ngx_chain_t> {
    let main = ptr::eq(r, r.main);
    // SAFETY: a request's pool is valid while the request is.
    let pool = unsafe { Pool::from_ngx_pool(r.pool) };
    // A zeroed buffer is an empty one.
    let b = pool.calloc_type::<ngx_buf_t>();
    // SAFETY: the request pool is valid. (`ngx` has no call for a chain link: nginx's own
    // reuses the pool's free links.)
    let cl = unsafe { ngx_alloc_chain_link(pool.as_ptr()) };
    if b.is_null() || cl.is_null() {
        return None;
    }
    // SAFETY: `b` and `cl` are fresh; the body lives in the request pool.
    unsafe {
        let buf = &mut *b;
        if kept.body.len > 0 {
            buf.pos = kept.body.data;
            buf.last = kept.body.data.add(kept.body.len);
        }
        bitfields::set_last_of_response(buf, main);
        (*cl).buf = b;
        (*cl).next = ptr::null_mut();
    }
    Some(cl)
}
