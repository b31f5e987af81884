//! The module's variables, for `log_format`, `add_header`, `map`:
//!
//! - `$next_upstream_status_passed`: how many times the request was passed on after a listed
//!   status (`0` when never);
//! - `$next_upstream_status_kept`: the status of the kept answer sent instead of nginx's own
//!   error, empty otherwise.
//!
//! Both read the request's context (`ctx::RequestCtx`), so they cost nothing until a
//! configuration uses them.

use core::ptr;

use ngx::ffi::{
    ngx_conf_t, ngx_http_add_variable, ngx_http_request_t, ngx_http_variable_value_t, ngx_int_t,
    ngx_str_t, NGX_ERROR, NGX_HTTP_VAR_NOCACHEABLE, NGX_OK,
};
use ngx::ngx_string;

use crate::nginx::bitfields;
use crate::nginx::ctx::{request_ctx, KeptAnswer, RequestCtx, Serving};

type GetVariable = unsafe extern "C" fn(
    *mut ngx_http_request_t,
    *mut ngx_http_variable_value_t,
    usize,
) -> ngx_int_t;

const VARIABLES: [(ngx_str_t, GetVariable); 2] = [
    (ngx_string!("next_upstream_status_passed"), passed_variable),
    (ngx_string!("next_upstream_status_kept"), kept_variable),
];

/// Preconfiguration: declares the variables.
///
/// # Safety
/// `cf` must be the http block's configuration being read by nginx.
pub unsafe fn add_variables(cf: *mut ngx_conf_t) -> ngx_int_t {
    for (name, get) in VARIABLES {
        let mut name = name;
        // By hand: `ngx` 0.5.1 has no call to declare a variable.
        // SAFETY: `cf` is valid; nginx copies the name into the configuration pool.
        let var = unsafe { ngx_http_add_variable(cf, &mut name, NGX_HTTP_VAR_NOCACHEABLE as _) };
        // SAFETY: null, or the variable nginx just declared.
        let Some(var) = (unsafe { var.as_mut() }) else {
            return NGX_ERROR as ngx_int_t;
        };
        var.get_handler = Some(get);
        var.data = 0;
    }
    NGX_OK as ngx_int_t
}

/// The request's counts, if it was ever passed on.
fn ctx<'a>(r: *mut ngx_http_request_t) -> Option<&'a mut RequestCtx> {
    // SAFETY: nginx evaluates variables with a valid request.
    unsafe { request_ctx(r) }
}

/// Sets `v` to `digits` (in the request pool); an empty value if `digits` is empty.
fn set_value(
    r: *mut ngx_http_request_t,
    v: *mut ngx_http_variable_value_t,
    digits: &[u8],
) -> ngx_int_t {
    let data = if digits.is_empty() {
        ptr::null_mut()
    } else {
        // SAFETY: the request's pool is valid while its variables are evaluated.
        match unsafe { ngx_str_t::from_bytes((*r).pool, digits) } {
            Some(copy) => copy.data,
            None => return NGX_ERROR as ngx_int_t,
        }
    };
    // SAFETY: nginx passes a valid value to fill in.
    bitfields::set_variable(unsafe { &mut *v }, data, digits.len());
    NGX_OK as ngx_int_t
}

/// `$next_upstream_status_passed`.
unsafe extern "C" fn passed_variable(
    r: *mut ngx_http_request_t,
    v: *mut ngx_http_variable_value_t,
    _data: usize,
) -> ngx_int_t {
    let passed = ctx(r).map_or(0, |ctx| ctx.passed);
    set_value(r, v, passed.to_string().as_bytes())
}

/// `$next_upstream_status_kept`.
unsafe extern "C" fn kept_variable(
    r: *mut ngx_http_request_t,
    v: *mut ngx_http_variable_value_t,
    _data: usize,
) -> ngx_int_t {
    let status = ctx(r).and_then(|ctx| match ctx.serving {
        Serving::HeaderSent | Serving::BodySent => ctx.kept().map(KeptAnswer::status),
        _ => None,
    });
    match status {
        Some(status) => set_value(r, v, status.to_string().as_bytes()),
        None => set_value(r, v, b""),
    }
}
