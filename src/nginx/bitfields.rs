//! The bitfields of nginx structures the module uses, read and written by C (`bitfields.c`):
//! bindgen's accessors for `ngx_http_request_t`'s bitfields are off by two bits on nginx
//! 1.29.3 and later (see the C file), so none of its bitfield accessors is used.

use ngx::ffi::{
    ngx_buf_t, ngx_connection_t, ngx_http_request_t, ngx_http_upstream_t, ngx_slab_pool_t,
    ngx_uint_t, ngx_variable_value_t,
};

mod c {
    use super::*;

    extern "C" {
        pub fn ngx_http_next_upstream_status_request_body_no_buffering(
            r: *const ngx_http_request_t,
        ) -> ngx_uint_t;
        pub fn ngx_http_next_upstream_status_request_cached(
            r: *const ngx_http_request_t,
        ) -> ngx_uint_t;
        pub fn ngx_http_next_upstream_status_request_set_error_page(r: *mut ngx_http_request_t);
        pub fn ngx_http_next_upstream_status_connection_error(
            c: *const ngx_connection_t,
        ) -> ngx_uint_t;
        pub fn ngx_http_next_upstream_status_upstream_request_sent(
            u: *const ngx_http_upstream_t,
        ) -> ngx_uint_t;
        pub fn ngx_http_next_upstream_status_upstream_header_sent(
            u: *const ngx_http_upstream_t,
        ) -> ngx_uint_t;
        pub fn ngx_http_next_upstream_status_upstream_cache_status(
            u: *const ngx_http_upstream_t,
        ) -> ngx_uint_t;
        pub fn ngx_http_next_upstream_status_upstream_set_uncacheable(u: *mut ngx_http_upstream_t);
        pub fn ngx_http_next_upstream_status_variable_set(
            v: *mut ngx_variable_value_t,
            data: *mut u8,
            len: usize,
        );
        pub fn ngx_http_next_upstream_status_slab_set_log_nomem(
            pool: *mut ngx_slab_pool_t,
            log_nomem: ngx_uint_t,
        );
        pub fn ngx_http_next_upstream_status_buf_set_end(
            b: *mut ngx_buf_t,
            in_memory: ngx_uint_t,
            last_buf: ngx_uint_t,
            sync: ngx_uint_t,
        );
        pub fn ngx_http_next_upstream_status_set_upstream_answer_flags(
            r: *mut ngx_http_request_t,
            u: *const ngx_http_upstream_t,
        );
    }
}

/// `r->request_body_no_buffering`: the body is streamed to the server as it comes.
pub fn request_body_no_buffering(r: &ngx_http_request_t) -> bool {
    // SAFETY: `r` is a live request (a reference); the C function reads one bitfield of it.
    unsafe { c::ngx_http_next_upstream_status_request_body_no_buffering(r) != 0 }
}

/// `r->cached`: the response comes from the cache.
pub fn request_cached(r: &ngx_http_request_t) -> bool {
    // SAFETY: `r` is a live request (a reference); the C function reads one bitfield of it.
    unsafe { c::ngx_http_next_upstream_status_request_cached(r) != 0 }
}

/// Sets `r->error_page`: an error page is being sent, so no `error_page` redirect applies.
pub fn set_error_page(r: &mut ngx_http_request_t) {
    // SAFETY: `r` is a live request (a reference); the C function writes one bitfield of it.
    unsafe { c::ngx_http_next_upstream_status_request_set_error_page(r) }
}

/// `c->error`: the connection failed (the client went away).
pub fn connection_error(c: &ngx_connection_t) -> bool {
    // SAFETY: `c` is a live connection (a reference); the C function reads one bitfield of it.
    unsafe { c::ngx_http_next_upstream_status_connection_error(c) != 0 }
}

/// `u->request_sent`: (part of) the request went to the current server.
pub fn request_sent(u: &ngx_http_upstream_t) -> bool {
    // SAFETY: `u` is a live upstream (a reference); the C function reads one bitfield of it.
    unsafe { c::ngx_http_next_upstream_status_upstream_request_sent(u) != 0 }
}

/// `u->header_sent`: the response header went to the client.
pub fn header_sent(u: &ngx_http_upstream_t) -> bool {
    // SAFETY: `u` is a live upstream (a reference); the C function reads one bitfield of it.
    unsafe { c::ngx_http_next_upstream_status_upstream_header_sent(u) != 0 }
}

/// `u->cache_status` (`NGX_HTTP_CACHE_*`; 0 without the cache).
pub fn cache_status(u: &ngx_http_upstream_t) -> ngx_uint_t {
    // SAFETY: `u` is a live upstream (a reference); the C function reads one bitfield of it.
    unsafe { c::ngx_http_next_upstream_status_upstream_cache_status(u) }
}

/// Clears `u->cacheable`: nothing of this request is stored in the cache.
pub fn set_uncacheable(u: &mut ngx_http_upstream_t) {
    // SAFETY: `u` is a live upstream (a reference); the C function writes one bitfield of it.
    unsafe { c::ngx_http_next_upstream_status_upstream_set_uncacheable(u) }
}

/// Marks `b`, the last buffer a handler sends, as nginx's own handlers mark theirs: in memory
/// if it has data; the last of the response in the main request, only the last of the
/// chain in a subrequest (whose response is part of another); an empty one `sync`, as
/// `ngx_http_send_special()` marks it (else nginx finds a zero-size buffer in its output).
pub fn set_last_of_response(b: &mut ngx_buf_t, main_request: bool) {
    let has_data = b.last > b.pos;
    let sync = !has_data && !main_request;
    // SAFETY: `b` is a live buffer (a reference); the C function writes its bitfields.
    unsafe {
        c::ngx_http_next_upstream_status_buf_set_end(
            b,
            has_data.into(),
            main_request.into(),
            sync.into(),
        );
    }
}

/// What nginx sets of the request's bit fields when a server's answer becomes the client's
/// (`ngx_http_upstream_process_headers()`): `disable_not_modified` from the answer's
/// cacheability, and the ranges `proxy_force_ranges` allows.
pub fn set_upstream_answer_flags(r: &mut ngx_http_request_t, u: &ngx_http_upstream_t) {
    // SAFETY: `r` and `u` are a live request and its upstream (references); the C function
    // reads and writes their bitfields.
    unsafe { c::ngx_http_next_upstream_status_set_upstream_answer_flags(r, u) }
}

/// Fills in a variable's value: `len` bytes at `data` (in the request pool), valid, not
/// cached (it changes as the request goes on).
pub fn set_variable(v: &mut ngx_variable_value_t, data: *mut u8, len: usize) {
    // SAFETY: `v` is a live variable value (a reference); the C function writes its data
    // pointer and bitfields.
    unsafe { c::ngx_http_next_upstream_status_variable_set(v, data, len) }
}

/// Whether the slab allocator logs each failed allocation ("ngx_slab_alloc() failed").
pub fn set_slab_log_nomem(pool: &mut ngx_slab_pool_t, log_nomem: bool) {
    // SAFETY: `pool` is a live slab pool (a reference); the C function writes one bitfield
    // of it.
    unsafe { c::ngx_http_next_upstream_status_slab_set_log_nomem(pool, log_nomem.into()) }
}
