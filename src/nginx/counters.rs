//! The counters as the request path sees them: counting an event for a request
//! ([`count`]), and the location that answers with them (`next_upstream_status_metrics`).
//! The shared memory they live in is [`super::zone`]'s.

use core::ffi::{c_char, c_void};
use core::ptr;

use ngx::core::{Status, NGX_CONF_ERROR};
use ngx::ffi::{
    ngx_buf_t, ngx_chain_t, ngx_command_t, ngx_conf_t, ngx_http_request_t,
    ngx_http_upstream_srv_conf_t, ngx_int_t, ngx_str_t, ngx_uint_t, NGX_ERROR, NGX_HTTP_GET,
    NGX_HTTP_HEAD, NGX_HTTP_INTERNAL_SERVER_ERROR, NGX_HTTP_NOT_ALLOWED, NGX_HTTP_OK, NGX_OK,
};
use ngx::http::{HttpModuleLocationConf, HttpModuleMainConf, NgxHttpCoreModule, Request};

use crate::metrics::{render, Family};
use crate::nginx::bitfields;
use crate::nginx::conf::Module;
use crate::nginx::log::log_debug;
use crate::nginx::zone::Zone;

/// The zone of the request's http block, when one is configured and initialised.
fn zone_of(r: &ngx_http_request_t) -> Option<&'static Zone> {
    Module::main_conf(r)?.zone()
}

/// Counts one event for the request's upstream block. `server` is the peer's name for
/// [`Family::Passed`], empty otherwise.
///
/// Inlined: without a zone, counting costs its callers a test, not a call; with one, a count
/// that the worker's cache finds costs no call either (see [`Zone::count`]).
#[inline]
pub fn count(
    r: &ngx_http_request_t,
    us: *const ngx_http_upstream_srv_conf_t,
    family: Family,
    status: ngx_uint_t,
    server: ngx_str_t,
) {
    // SAFETY: a request's upstream block is in the configuration, which outlives requests.
    if let (Some(zone), Some(us)) = (zone_of(r), unsafe { us.as_ref() }) {
        zone.count(r.connection, us, family, status, server);
    }
}

/// Handles `next_upstream_status_metrics` in a location: the location answers with the
/// counters.
///
/// # Safety
/// Called by nginx with a valid `cf` in a location's context.
pub unsafe extern "C" fn set_next_upstream_status_metrics(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    _conf: *mut c_void,
) -> *mut c_char {
    // SAFETY: `cf` is an http location's configuration context while this directive is read.
    let cf_ref = unsafe { &*cf };
    let (Some(clcf), Some(mcf)) = (
        NgxHttpCoreModule::location_conf_mut(cf_ref),
        Module::main_conf_mut(cf_ref),
    ) else {
        return NGX_CONF_ERROR;
    };
    clcf.handler = Some(metrics_handler);
    mcf.metrics_used = true;
    ptr::null_mut()
}

const CONTENT_TYPE: &[u8] = b"text/plain; version=0.0.4";

/// The content handler of a `next_upstream_status_metrics` location.
unsafe extern "C" fn metrics_handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: nginx calls content handlers with a valid request; `Request` is a transparent
    // wrapper of it, and this handler holds the only reference.
    let request = unsafe { Request::from_ngx_http_request(r) };
    let method = request.as_ref().method;
    if method & (NGX_HTTP_GET | NGX_HTTP_HEAD) as ngx_uint_t == 0 {
        return NGX_HTTP_NOT_ALLOWED as ngx_int_t;
    }
    let rc = request.discard_request_body();
    if rc != Status::NGX_OK {
        return rc.0;
    }
    let Some(zone) = zone_of(request.as_ref()) else {
        return NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t;
    };
    let text = render(&zone.snapshot());
    log_debug!(request.connection(), "metrics: {} bytes", text.len());

    let pool = request.pool();
    // SAFETY: the request pool is valid.
    let body = unsafe { ngx_str_t::from_bytes(pool.as_ptr(), text.as_bytes()) };
    let b = pool.calloc_type::<ngx_buf_t>();
    let Some(body) = body.filter(|_| !b.is_null()) else {
        return NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t;
    };

    let headers = &mut request.as_mut().headers_out;
    headers.status = NGX_HTTP_OK as ngx_uint_t;
    headers.content_length_n = text.len() as i64;
    headers.content_type = ngx_str_t {
        len: CONTENT_TYPE.len(),
        data: CONTENT_TYPE.as_ptr().cast_mut(),
    };
    headers.content_type_len = CONTENT_TYPE.len();
    headers.content_type_lowcase = ptr::null_mut();
    let rc = request.send_header().0;
    // HEAD by its method, not the request's bit field (whose place the bindings must match).
    if rc == NGX_ERROR as ngx_int_t
        || rc > NGX_OK as ngx_int_t
        || method == NGX_HTTP_HEAD as ngx_uint_t
    {
        return rc;
    }
    // SAFETY: `b` is a fresh zeroed buffer.
    let buf = unsafe { &mut *b };
    buf.pos = body.data;
    // SAFETY: the body's `len` bytes are in the request pool from `data` on.
    buf.last = unsafe { body.data.add(body.len) };
    bitfields::set_last_of_response(buf, ptr::eq(r, request.as_ref().main));
    let mut out = ngx_chain_t {
        buf: b,
        next: ptr::null_mut(),
    };
    request.output_filter(&mut out).0
}
