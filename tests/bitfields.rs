//! nginx's bit fields as the module reads and writes them (`src/nginx/bitfields.rs`: inline,
//! at the offsets and masks build.rs measured) against the C compiler's own `r->field`
//! (`tests/bitfields.c`, compiled by build.rs against the same nginx tree): over random bytes
//! of each structure, every function must read what C reads and leave the bytes C leaves.
//! A wrong offset, unit or mask fails it. It needs the nginx tree
//! (`make test-bitfields`, run for every nginx of the version matrix).

#[path = "../src/nginx/bitfields.rs"]
mod bitfields;

use std::marker::PhantomData;
use std::mem;

use ngx::ffi::{
    ngx_buf_t, ngx_connection_t, ngx_http_request_t, ngx_http_upstream_conf_t, ngx_http_upstream_t,
    ngx_slab_pool_t, ngx_uint_t, ngx_variable_value_t,
};

#[link(
    name = "ngx_http_next_upstream_status_bitfields_check",
    kind = "static"
)]
extern "C" {
    fn ngx_http_next_upstream_status_request_body_no_buffering(
        r: *mut ngx_http_request_t,
    ) -> ngx_uint_t;
    fn ngx_http_next_upstream_status_request_cached(r: *mut ngx_http_request_t) -> ngx_uint_t;
    fn ngx_http_next_upstream_status_request_set_error_page(r: *mut ngx_http_request_t);
    fn ngx_http_next_upstream_status_connection_error(c: *mut ngx_connection_t) -> ngx_uint_t;
    fn ngx_http_next_upstream_status_upstream_request_sent(
        u: *mut ngx_http_upstream_t,
    ) -> ngx_uint_t;
    fn ngx_http_next_upstream_status_upstream_header_sent(
        u: *mut ngx_http_upstream_t,
    ) -> ngx_uint_t;
    fn ngx_http_next_upstream_status_upstream_cache_status(
        u: *mut ngx_http_upstream_t,
    ) -> ngx_uint_t;
    fn ngx_http_next_upstream_status_upstream_set_uncacheable(u: *mut ngx_http_upstream_t);
    fn ngx_http_next_upstream_status_set_last_of_response(b: *mut ngx_buf_t, main: ngx_uint_t);
    fn ngx_http_next_upstream_status_set_upstream_answer_flags(
        r: *mut ngx_http_request_t,
        u: *mut ngx_http_upstream_t,
    );
    fn ngx_http_next_upstream_status_variable_set(
        v: *mut ngx_variable_value_t,
        data: *mut u8,
        len: usize,
    );
    fn ngx_http_next_upstream_status_slab_set_log_nomem(
        pool: *mut ngx_slab_pool_t,
        log_nomem: ngx_uint_t,
    );
}

/// Byte patterns per function: all zeros, all ones, then random ones. Each bit of a unit is
/// set in about half of them, so a bit read or written in the wrong place shows in the
/// first few.
const PATTERNS: usize = 2000;

/// xorshift64*: the same bytes on every run, no crate needed.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// A `T` made of arbitrary bytes (8-byte aligned, as nginx's structures need at most).
/// nginx's structures as bindgen gives them are integers, raw pointers and optional
/// function pointers: any bytes are a valid value, once a null is not a non-null pointer.
struct Bytes<T> {
    words: Vec<u64>,
    of: PhantomData<T>,
}

impl<T> Bytes<T> {
    fn new(pattern: usize, random: &mut Random) -> Self {
        assert!(mem::align_of::<T>() <= mem::align_of::<u64>());
        let words = mem::size_of::<T>().div_ceil(8);
        let words = match pattern {
            0 => vec![0; words],
            1 => vec![u64::MAX; words],
            _ => (0..words).map(|_| random.next()).collect(),
        };
        Self {
            words,
            of: PhantomData,
        }
    }

    fn get(&mut self) -> &mut T {
        // SAFETY: the words are as large and as aligned as a `T`, and any bytes are a `T`
        // (see above).
        unsafe { &mut *self.words.as_mut_ptr().cast::<T>() }
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: the words' own bytes, the first `size_of::<T>()` of them.
        unsafe { std::slice::from_raw_parts(self.words.as_ptr().cast(), mem::size_of::<T>()) }
    }

    fn duplicate(&self) -> Self {
        Self {
            words: self.words.clone(),
            of: PhantomData,
        }
    }
}

/// For every pattern: Rust's `read` and C's `c_read` give the same value.
fn check_read<T>(
    name: &str,
    read: impl Fn(&T) -> u64,
    c_read: unsafe extern "C" fn(*mut T) -> ngx_uint_t,
) {
    let mut random = Random(0x6e67_696e_785f_6269);
    for pattern in 0..PATTERNS {
        let mut s = Bytes::<T>::new(pattern, &mut random);
        let rust = read(s.get());
        // SAFETY: the C function reads one field of a `T`.
        let c = unsafe { c_read(s.get()) } as u64;
        assert_eq!(
            rust, c,
            "{name}: pattern {pattern}: Rust read {rust}, C {c}"
        );
    }
}

/// For every pattern, and the extra arguments `args` draws for it: Rust's `write` and C's
/// `c_write` leave the same bytes.
fn check_write<T, A: Copy + std::fmt::Debug>(
    name: &str,
    args: impl Fn(&mut Random) -> A,
    write: impl Fn(&mut T, A),
    c_write: impl Fn(*mut T, A),
) {
    let mut random = Random(0x6269_7466_6965_6c64);
    for pattern in 0..PATTERNS {
        let mut rust = Bytes::<T>::new(pattern, &mut random);
        let mut c = rust.duplicate();
        let a = args(&mut random);
        write(rust.get(), a);
        c_write(c.get(), a);
        if let Some(at) = first_difference(rust.bytes(), c.bytes()) {
            panic!(
                "{name} with {a:?}: pattern {pattern}: byte {at} is {:#04x} written by Rust, {:#04x} by C",
                rust.bytes()[at],
                c.bytes()[at]
            );
        }
    }
}

fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter().zip(b).position(|(a, b)| a != b)
}

fn bit(random: &mut Random) -> bool {
    random.next() & 1 == 1
}

#[test]
fn request_body_no_buffering() {
    check_read(
        "request_body_no_buffering",
        |r| bitfields::request_body_no_buffering(r).into(),
        ngx_http_next_upstream_status_request_body_no_buffering,
    );
}

#[test]
fn request_cached() {
    check_read(
        "request_cached",
        |r| bitfields::request_cached(r).into(),
        ngx_http_next_upstream_status_request_cached,
    );
}

#[test]
fn set_error_page() {
    check_write(
        "set_error_page",
        |_| (),
        |r, ()| bitfields::set_error_page(r),
        // SAFETY: a `T` of arbitrary bytes; the function writes one bit field.
        |r, ()| unsafe { ngx_http_next_upstream_status_request_set_error_page(r) },
    );
}

#[test]
fn connection_error() {
    check_read(
        "connection_error",
        |c| bitfields::connection_error(c).into(),
        ngx_http_next_upstream_status_connection_error,
    );
}

#[test]
fn request_sent() {
    check_read(
        "request_sent",
        |u| bitfields::request_sent(u).into(),
        ngx_http_next_upstream_status_upstream_request_sent,
    );
}

#[test]
fn header_sent() {
    check_read(
        "header_sent",
        |u| bitfields::header_sent(u).into(),
        ngx_http_next_upstream_status_upstream_header_sent,
    );
}

#[test]
fn cache_status() {
    check_read(
        "cache_status",
        |u| bitfields::cache_status(u) as u64,
        ngx_http_next_upstream_status_upstream_cache_status,
    );
}

#[test]
fn set_uncacheable() {
    check_write(
        "set_uncacheable",
        |_| (),
        |u, ()| bitfields::set_uncacheable(u),
        // SAFETY: as in `set_error_page`.
        |u, ()| unsafe { ngx_http_next_upstream_status_upstream_set_uncacheable(u) },
    );
}

#[test]
fn set_last_of_response() {
    check_write(
        "set_last_of_response",
        bit,
        bitfields::set_last_of_response,
        // SAFETY: as in `set_error_page`; the function compares two of its pointers, and
        // writes its bit fields.
        |b, main| unsafe { ngx_http_next_upstream_status_set_last_of_response(b, main.into()) },
    );
}

#[test]
fn set_upstream_answer_flags() {
    let mut conf: ngx_http_upstream_conf_t =
        // SAFETY: integers, pointers and optional function pointers: zeroes are valid.
        unsafe { mem::zeroed() };
    let mut random = Random(0x7570_7374_7265_616d);
    for pattern in 0..PATTERNS {
        let mut rust = Bytes::<ngx_http_request_t>::new(pattern, &mut random);
        let mut c = rust.duplicate();
        // The answer flags read the upstream and its configuration: the same for both.
        let mut u = Bytes::<ngx_http_upstream_t>::new(pattern, &mut random);
        conf.force_ranges = bit(&mut random).into();
        u.get().conf = &mut conf;
        bitfields::set_upstream_answer_flags(rust.get(), u.get());
        // SAFETY: a request and an upstream of arbitrary bytes, the upstream's `conf` a
        // configuration.
        unsafe { ngx_http_next_upstream_status_set_upstream_answer_flags(c.get(), u.get()) };
        if let Some(at) = first_difference(rust.bytes(), c.bytes()) {
            panic!(
                "set_upstream_answer_flags: pattern {pattern}: byte {at} of the request is \
                 {:#04x} written by Rust, {:#04x} by C",
                rust.bytes()[at],
                c.bytes()[at]
            );
        }
    }
}

#[test]
fn set_variable() {
    check_write(
        "set_variable",
        |random| (random.next() as usize as *mut u8, random.next() as usize),
        |v, (data, len)| bitfields::set_variable(v, data, len),
        // SAFETY: as in `set_error_page`; the function writes the data pointer it is given.
        |v, (data, len)| unsafe { ngx_http_next_upstream_status_variable_set(v, data, len) },
    );
}

#[test]
fn set_slab_log_nomem() {
    check_write(
        "set_slab_log_nomem",
        bit,
        bitfields::set_slab_log_nomem,
        // SAFETY: as in `set_error_page`.
        |pool, on| unsafe { ngx_http_next_upstream_status_slab_set_log_nomem(pool, on.into()) },
    );
}
