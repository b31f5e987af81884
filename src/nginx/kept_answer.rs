//! Sending the answer kept from a passed-over server when no later server answers.
//!
//! When a retry is staged, the answer is copied into the request pool ([`KeptAnswer::capture`]).
//! If the request then ends with nginx's own 5xx before anything was sent
//! (the upstream hooks' finalize wrapper marks it due), nginx goes on to send its error page;
//! this module's header and body filters, first in nginx's chains, replace that page's status,
//! headers and body with the kept answer. Everything nginx does for any response (add_header,
//! the access log, keepalive to the client) then applies as usual.

use core::{ptr, slice};

use ngx::core::Pool;
use ngx::ffi::{
    ngx_alloc_chain_link, ngx_buf_t, ngx_chain_t, ngx_hash_find, ngx_http_output_body_filter_pt,
    ngx_http_output_header_filter_pt, ngx_http_request_t, ngx_http_top_body_filter,
    ngx_http_top_header_filter, ngx_int_t, ngx_list_part_t, ngx_list_push, ngx_list_t, ngx_str_t,
    ngx_table_elt_t, ngx_uint_t, NGX_ERROR,
};

use crate::kept_answer::is_connection_header;
use crate::metrics::Family;
use crate::nginx::bitfields;
use crate::nginx::ctx::{request_ctx, KeptAnswer, RequestCtx, Serving};
use crate::nginx::log::{log_debug, log_warn};
use crate::nginx::metrics;

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
    let Some(retried) = unsafe { request_ctx(r) }.and_then(RequestCtx::retried) else {
        // SAFETY: passing on the valid request the caller gave.
        return unsafe { next_header_filter(r) };
    };
    if let (Serving::Due { failure }, Some(kept)) = (retried.serving, retried.kept.as_ref()) {
        // SAFETY: a valid request; the only other live reference, `retried`, is to the
        // context in its pool, not into the request.
        let rr = unsafe { &mut *r };
        // Only nginx's own page for that failure, not some other response.
        if rr.headers_out.status == failure as ngx_uint_t {
            if replace_headers(rr, kept).is_err() {
                return NGX_ERROR as ngx_int_t;
            }
            retried.serving = Serving::HeaderSent;
            log_debug!(rr.connection, "kept answer {} sent", kept.status);
            // SAFETY: the request's upstream outlives its finalization.
            let upstream = unsafe { rr.upstream.as_ref() }.map_or(ptr::null_mut(), |u| u.upstream);
            metrics::count(rr, upstream, Family::Kept, kept.status, ngx_str_t::empty());
            log_warn!(
                rr.connection,
                "no later server gave an answer ({}), sending the {} answered by \"{}\"{}",
                failure,
                kept.status,
                kept.peer,
                if kept.body_dropped {
                    " without its body, which was larger than proxy_buffer_size or of \
                     unknown length"
                } else {
                    ""
                }
            );
        }
    }
    // SAFETY: passing on the valid request the caller gave; `rr` is no longer used.
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

/// Turns nginx's error page into the kept answer: status, then the server's headers except
/// those nginx hides (`proxy_hide_header`) or sets itself for the client connection.
/// Headers already added by the location (before the filters) stay.
fn replace_headers(r: &mut ngx_http_request_t, kept: &KeptAnswer) -> Result<(), ()> {
    r.err_status = kept.status; // what $status reports
    r.headers_out.status = kept.status;
    r.headers_out.status_line = kept.status_line;
    r.headers_out.content_length_n = kept.content_length;
    r.headers_out.content_length = ptr::null_mut();
    r.headers_out.content_type = ngx_str_t::empty();
    r.headers_out.content_type_len = 0;
    r.headers_out.content_type_lowcase = ptr::null_mut();

    // SAFETY: the request's upstream outlives its finalization; its conf is the location's.
    let hide = unsafe {
        r.upstream
            .as_ref()
            .map(|u| &mut (*u.conf).hide_headers_hash)
    };
    let mut result = Ok(());
    for_each_header(&kept.headers, |h| {
        // SAFETY: header entries from the upstream's parser have a valid lowercase key.
        let lowercase = unsafe { slice::from_raw_parts(h.lowcase_key, h.key.len) };
        if h.hash == 0 || is_connection_header(lowercase) {
            return;
        }
        if let Some(hide) = hide.as_deref() {
            // SAFETY: the hash and the key are valid; a hit means the header is hidden.
            let hidden = unsafe {
                ngx_hash_find(
                    ptr::from_ref(hide).cast_mut(),
                    h.hash,
                    h.lowcase_key,
                    h.key.len,
                )
            };
            if !hidden.is_null() {
                return;
            }
        }
        if lowercase == b"content-type" {
            r.headers_out.content_type = h.value;
            r.headers_out.content_type_len = h.value.len;
            return;
        }
        // By hand: `Request::add_header_out` makes a header from two strings and hashes it
        // again; this copies the server's entry with its hash and lowercase key.
        // SAFETY: the list is the request's own header list.
        let elt = unsafe { ngx_list_push(&mut r.headers_out.headers) }.cast::<ngx_table_elt_t>();
        if elt.is_null() {
            result = Err(());
            return;
        }
        // SAFETY: `elt` is a fresh, aligned entry; zeroing covers fields some versions add.
        unsafe {
            ptr::write_bytes(elt, 0, 1);
            (*elt).hash = h.hash;
            (*elt).key = h.key;
            (*elt).value = h.value;
            (*elt).lowcase_key = h.lowcase_key;
        }
    });
    result
}

/// By hand: `ngx::http::list_iterator` yields only names and values, and the filter needs each
/// entry's hash and lowercase key.
fn for_each_header(list: &ngx_list_t, mut f: impl FnMut(&ngx_table_elt_t)) {
    let mut part: *const ngx_list_part_t = &list.part;
    // SAFETY: a list's parts form a null-terminated chain of arrays of `nelts` entries each.
    while let Some(p) = unsafe { part.as_ref() } {
        if p.nelts > 0 {
            // SAFETY: this part's array holds `nelts` initialised entries (the chain's rule).
            let entries =
                unsafe { slice::from_raw_parts(p.elts.cast::<ngx_table_elt_t>(), p.nelts) };
            entries.iter().for_each(&mut f);
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
    let retried = unsafe { request_ctx(r) }.and_then(RequestCtx::retried);
    let input = match retried {
        Some(retried) => match (retried.serving, retried.kept.as_ref()) {
            (Serving::HeaderSent, Some(kept)) => {
                retried.serving = Serving::BodySent;
                // SAFETY: a valid request; `retried` and `kept` are in its pool's context,
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
        bitfields::set_last_buf(buf, kept.body.len > 0, main);
        (*cl).buf = b;
        (*cl).next = ptr::null_mut();
    }
    Some(cl)
}
