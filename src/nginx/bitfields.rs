//! The bit fields of nginx structures the module uses, read and written inline at the
//! offsets and masks the C compiler gave them in the nginx tree the module is built against
//! (`bitfields.c`, run by build.rs). bindgen's accessors are off by two bits in
//! `ngx_http_request_t` on nginx 1.29.3 and later (see the C file), so none is used.
//! `tests/bitfields.rs` compares every function here with the C compiler's own `r->field`.

use core::marker::PhantomData;
use core::mem;
use core::ptr;

use ngx::ffi::{
    ngx_buf_t, ngx_connection_t, ngx_http_request_t, ngx_http_upstream_t, ngx_slab_pool_t,
    ngx_uint_t, ngx_variable_value_t,
};

/// Where the C compiler put the bit fields (`pub const NAME: Field<T>`, one per field).
mod layout {
    use super::*;

    include!(concat!(env!("OUT_DIR"), "/bitfields.rs"));
}

/// A bit field of a `T`: its bits `mask` in the `width` bytes at `offset`, read in the
/// host's byte order.
struct Field<T> {
    offset: usize,
    width: usize,
    mask: u32,
    of: PhantomData<fn(T)>,
}

// Not derived: a field is copied whether or not its structure is.
impl<T> Clone for Field<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Field<T> {}

impl<T> Field<T> {
    /// A field measured in a C structure of `size` bytes. Checked when the module is
    /// compiled: the C structure and Rust's are the same size (else the build fails), and
    /// the field's unit lies inside it, so reading it never leaves the `T`.
    const fn new(size: usize, offset: usize, width: usize, mask: u32) -> Self {
        assert!(
            size == mem::size_of::<T>(),
            "nginx's structure and bindgen's differ in size"
        );
        assert!(width == 1 || width == 2 || width == 4);
        assert!(offset + width <= size);
        assert!(mask != 0 && (width == 4 || mask >> (8 * width) == 0));
        Self {
            offset,
            width,
            mask,
            of: PhantomData,
        }
    }

    /// The field's value.
    #[inline(always)]
    fn get(self, s: &T) -> u32 {
        let unit = ptr::from_ref(s).cast::<u8>();
        // SAFETY: `new` checked that the `width` bytes at `offset` lie inside a `T`; any
        // bytes are a valid integer, and the reads are unaligned ones.
        let bits = unsafe {
            let unit = unit.add(self.offset);
            match self.width {
                1 => u32::from(unit.read()),
                2 => u32::from(unit.cast::<u16>().read_unaligned()),
                _ => unit.cast::<u32>().read_unaligned(),
            }
        };
        (bits & self.mask) >> self.mask.trailing_zeros()
    }

    /// Sets the field to `value`, cut to its width as C does; the other bits of its unit
    /// stay as they are.
    #[inline(always)]
    fn set(self, s: &mut T, value: u32) {
        let bits = (value << self.mask.trailing_zeros()) & self.mask;
        let unit = ptr::from_mut(s).cast::<u8>();
        // SAFETY: as in `get`; `s` is borrowed mutably, so nothing else reads the unit.
        unsafe {
            let unit = unit.add(self.offset);
            match self.width {
                1 => unit.write((unit.read() & !self.mask as u8) | bits as u8),
                2 => {
                    let unit = unit.cast::<u16>();
                    unit.write_unaligned((unit.read_unaligned() & !self.mask as u16) | bits as u16);
                }
                _ => {
                    let unit = unit.cast::<u32>();
                    unit.write_unaligned((unit.read_unaligned() & !self.mask) | bits);
                }
            }
        }
    }
}

/// `r->request_body_no_buffering`: the body is streamed to the server as it comes.
#[inline]
pub fn request_body_no_buffering(r: &ngx_http_request_t) -> bool {
    layout::REQUEST_BODY_NO_BUFFERING.get(r) != 0
}

/// `r->cached`: the response comes from the cache (never without the cache).
#[inline]
pub fn request_cached(r: &ngx_http_request_t) -> bool {
    layout::REQUEST_CACHED.is_some_and(|cached| cached.get(r) != 0)
}

/// Sets `r->error_page`: an error page is being sent, so no `error_page` redirect applies.
#[inline]
pub fn set_error_page(r: &mut ngx_http_request_t) {
    layout::REQUEST_ERROR_PAGE.set(r, 1);
}

/// `c->error`: the connection failed (the client went away).
#[inline]
pub fn connection_error(c: &ngx_connection_t) -> bool {
    layout::CONNECTION_ERROR.get(c) != 0
}

/// `u->request_sent`: (part of) the request went to the current server.
#[inline]
pub fn request_sent(u: &ngx_http_upstream_t) -> bool {
    layout::UPSTREAM_REQUEST_SENT.get(u) != 0
}

/// `u->header_sent`: the response header went to the client.
#[inline]
pub fn header_sent(u: &ngx_http_upstream_t) -> bool {
    layout::UPSTREAM_HEADER_SENT.get(u) != 0
}

/// `u->cache_status` (`NGX_HTTP_CACHE_*`; 0 without the cache).
#[cfg_attr(not(ngx_feature = "http_cache"), allow(dead_code))] // only asked with the cache
#[inline]
pub fn cache_status(u: &ngx_http_upstream_t) -> ngx_uint_t {
    layout::UPSTREAM_CACHE_STATUS.map_or(0, |status| status.get(u) as ngx_uint_t)
}

/// Clears `u->cacheable`: nothing of this request is stored in the cache (nothing to do
/// without the cache, as in nginx's own code).
#[inline]
pub fn set_uncacheable(u: &mut ngx_http_upstream_t) {
    if layout::HTTP_CACHE {
        layout::UPSTREAM_CACHEABLE.set(u, 0);
    }
}

/// Marks `b`, the last buffer a handler sends, as nginx's own handlers mark theirs: in memory
/// if it has data; the last of the response in the main request, only the last of the
/// chain in a subrequest (whose response is part of another); an empty one `sync`, as
/// `ngx_http_send_special()` marks it (else nginx finds a zero-size buffer in its output).
#[inline]
pub fn set_last_of_response(b: &mut ngx_buf_t, main_request: bool) {
    let has_data = b.last > b.pos;
    layout::BUF_MEMORY.set(b, has_data.into());
    layout::BUF_LAST_BUF.set(b, main_request.into());
    layout::BUF_LAST_IN_CHAIN.set(b, 1);
    layout::BUF_SYNC.set(b, (!has_data && !main_request).into());
}

/// What nginx sets of the request's bit fields when a server's answer becomes the client's
/// (`ngx_http_upstream_process_headers()`): `disable_not_modified` from the answer's
/// cacheability, and the ranges `proxy_force_ranges` allows.
#[inline]
pub fn set_upstream_answer_flags(r: &mut ngx_http_request_t, u: &ngx_http_upstream_t) {
    let cacheable = layout::UPSTREAM_CACHEABLE.get(u) != 0;
    layout::REQUEST_DISABLE_NOT_MODIFIED.set(r, (!cacheable).into());
    // SAFETY: an upstream being answered has its configuration.
    if unsafe { (*u.conf).force_ranges } != 0 {
        layout::REQUEST_ALLOW_RANGES.set(r, 1);
        layout::REQUEST_SINGLE_RANGE.set(r, (!request_cached(r)).into());
    }
}

/// Fills in a variable's value: `len` bytes at `data` (in the request pool), valid, not
/// cached (it changes as the request goes on).
#[inline]
pub fn set_variable(v: &mut ngx_variable_value_t, data: *mut u8, len: usize) {
    v.data = data;
    layout::VARIABLE_LEN.set(v, len as u32); // `len:28`: cut to 28 bits, as in C
    layout::VARIABLE_VALID.set(v, 1);
    layout::VARIABLE_NO_CACHEABLE.set(v, 1);
    layout::VARIABLE_NOT_FOUND.set(v, 0);
}

/// Whether the slab allocator logs each failed allocation ("ngx_slab_alloc() failed").
#[inline]
pub fn set_slab_log_nomem(pool: &mut ngx_slab_pool_t, log_nomem: bool) {
    layout::SLAB_LOG_NOMEM.set(pool, log_nomem.into());
}
