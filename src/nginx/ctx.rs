//! The state of a request passed on: what it keeps between nginx's callbacks once one of its
//! answers is passed on (the upstream hooks write it, the filters and the variables read it),
//! and the facts about its upstream that several of them ask. Below every callback that uses
//! it.

use core::ffi::c_void;
use core::ptr::{self, NonNull};
use core::{mem, slice};

use ngx::ffi::{
    ngx_http_request_t, ngx_http_upstream_conf_t, ngx_http_upstream_headers_in_t,
    ngx_http_upstream_t, ngx_int_t, ngx_module_t, ngx_palloc, ngx_pnalloc, ngx_str_t, ngx_uint_t,
    NGX_HTTP_HEAD, NGX_HTTP_NOT_MODIFIED, NGX_HTTP_NO_CONTENT,
};
use ngx::http::HttpModule;

use crate::http2;
use crate::kept_answer::{Arrived, Body, Framing, WhyDropped};
use crate::nginx::conf::Module;
use crate::slots::Function;

/// nginx's `ngx_int_t (*)(ngx_http_request_t *r)`: an upstream's `process_header` and
/// `reinit_request`.
pub type RequestCallback = unsafe extern "C" fn(*mut ngx_http_request_t) -> ngx_int_t;

impl Function for RequestCallback {
    fn address(self) -> usize {
        self as usize
    }

    unsafe fn from_address(address: usize) -> RequestCallback {
        // SAFETY: as the caller promises, the address of a `RequestCallback`.
        unsafe { mem::transmute::<usize, RequestCallback>(address) }
    }
}

pub type FinalizeRequest = unsafe extern "C" fn(*mut ngx_http_request_t, ngx_int_t);

extern "C" {
    /// The proxy module: its tag on the upstream's output tells the HTTP/1 framing from the
    /// HTTP/2 one, and its location conf's first field tells a `proxy_pass` request from a
    /// fastcgi/uwsgi/scgi/grpc one (see `upstream::hook_request`).
    pub static ngx_http_proxy_module: ngx_module_t;
}

/// What a request keeps between nginx's callbacks once one of its answers had a listed status
/// that nginx can pass on: made then, so that every other request allocates nothing.
/// `Copy`, so that it goes into the request pool without a cleanup handler (nothing to drop).
#[derive(Clone, Copy)]
pub struct RequestCtx {
    /// The upstream it is about: a request that starts another one (an `error_page` to a
    /// proxied location) starts afresh.
    pub upstream: *mut ngx_http_upstream_t,
    /// The upstream module's own; the wrapper restores what a staged pass changed first.
    pub finalize_request: Option<FinalizeRequest>,
    /// A listed answer is to be passed over once its body has arrived (see
    /// `upstream::process_header_via`).
    pub awaiting_body: bool,
    pub staged: Option<Staged>,
    /// The last answer passed over, while `keep_answer` is on: in `kept_memory`.
    pub kept: Option<NonNull<KeptAnswer>>,
    /// Room for a kept answer in the request pool, made with the context when answers are
    /// kept and written over by each pass (the last answer is what counts).
    pub kept_memory: Option<NonNull<KeptAnswer>>,
    pub serving: Serving,
    /// How many times the request was passed on after a listed status.
    pub passed: usize,
    /// The current attempt's server gave an answer that nginx takes as final: if nginx then
    /// ends the request with a 5xx, it is that answer's own (`proxy_intercept_errors`), not a
    /// failure the kept answer may replace.
    pub server_answered: bool,
}

impl RequestCtx {
    /// The kept answer: in the request pool, apart from this context, so not borrowed from it.
    pub fn kept<'a>(&self) -> Option<&'a KeptAnswer> {
        // SAFETY: a `KeptAnswer` in this request's pool, written whole by `capture`.
        self.kept.map(|p| unsafe { p.as_ref() })
    }
}

/// Whether the kept answer replaces nginx's error page, and how far that has got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Serving {
    No,
    /// The request ended with nginx's own `failure` status; its page is about to be sent.
    Due {
        failure: ngx_int_t,
    },
    HeaderSent,
    BodySent,
}

/// A pass on nginx is taking for a status shown to it as 404.
#[derive(Clone, Copy)]
pub struct Staged {
    pub conf: *mut ngx_http_upstream_conf_t,
    /// An index, not a pointer: `r->upstream_states` may grow and move.
    pub state: usize,
    pub status: ngx_uint_t,
}

/// The request's context, if one of the answers of its current upstream was passed on (or
/// waits to be). A context left by an earlier upstream of the request (which nginx does not
/// make without clearing `r->ctx`, but which must never be taken for this one's) is none.
///
/// Read by hand: `ngx::http::Request::get_module_ctx` gives only a shared reference, and the
/// wrappers write to the context.
///
/// # Safety
/// `r` must be a valid request, and no other reference to its context may be live.
#[inline(always)]
pub unsafe fn request_ctx<'a>(r: *mut ngx_http_request_t) -> Option<&'a mut RequestCtx> {
    // SAFETY: `r->ctx` has a slot for every http module; ours holds null or a `RequestCtx`
    // from this request's pool, written by `new_request_ctx`.
    let ctx = unsafe { (*ctx_slot(r)).cast::<RequestCtx>().as_mut() }?;
    // SAFETY: `r` is valid.
    (ctx.upstream == unsafe { (*r).upstream }).then_some(ctx)
}

/// The module's slot in `r->ctx`.
///
/// # Safety
/// `r` must be a valid request.
#[inline(always)]
unsafe fn ctx_slot(r: *mut ngx_http_request_t) -> *mut *mut c_void {
    // SAFETY: `r->ctx` has a slot for every http module, this one's at its index.
    unsafe { (*r).ctx.add(Module::module().ctx_index) }
}

/// Puts `ctx` in the request pool and in the module's slot of `r->ctx`, with room for a kept
/// answer after it if `with_kept_memory` (one allocation); `None` without memory.
pub fn new_request_ctx<'a>(
    r: &mut ngx_http_request_t,
    mut ctx: RequestCtx,
    with_kept_memory: bool,
) -> Option<&'a mut RequestCtx> {
    let size = mem::size_of::<RequestCtx>()
        + if with_kept_memory {
            mem::size_of::<KeptAnswer>()
        } else {
            0
        };
    // SAFETY: a request's pool is valid while the request is.
    let p = unsafe { ngx_palloc(r.pool, size) }.cast::<RequestCtx>();
    if p.is_null() {
        return None;
    }
    const _: () = assert!(mem::align_of::<KeptAnswer>() <= mem::align_of::<RequestCtx>());
    if with_kept_memory {
        // The room right after the context: `RequestCtx`'s size is a multiple of its
        // alignment, which is enough for a `KeptAnswer` (asserted above).
        ctx.kept_memory = NonNull::new(p.wrapping_add(1).cast::<KeptAnswer>());
    }
    // SAFETY: `p` is fresh, sized and aligned for a `RequestCtx` (pool allocations are aligned
    // to a pointer); `r` is valid and the slot is the module's own.
    unsafe {
        p.write(ctx);
        *ctx_slot(r) = p.cast::<c_void>();
        Some(&mut *p)
    }
}

/// The server the current attempt went to, as `$upstream_addr` names it.
pub fn peer_name(u: &ngx_http_upstream_t) -> ngx_str_t {
    // SAFETY: `peer.name` is null or set by the balancer for the current attempt, and lives
    // as long as the request (nginx keeps it for `$upstream_addr`).
    unsafe { u.peer.name.as_ref() }
        .copied()
        .unwrap_or(ngx_str_t::empty())
}

/// How the response bytes in `u->buffer` are framed: the proxy module tags its HTTP/1
/// upstream's output with itself, its HTTP/2 sibling (`proxy_http_version 2`, nginx
/// 1.29.4+) with its own. Only asked of `proxy_pass` requests.
pub fn framing(u: &ngx_http_upstream_t) -> Framing {
    if ptr::eq(
        u.output.tag.cast_const(),
        ptr::addr_of!(ngx_http_proxy_module).cast(),
    ) {
        Framing::Http1
    } else {
        Framing::Http2
    }
}

/// What has arrived of the answer `u` has just parsed: its header's facts about the body, and
/// the bytes read after the header in `u->buffer`.
pub fn arrived<'a>(r: &ngx_http_request_t, u: &'a ngx_http_upstream_t) -> Arrived<'a> {
    let status = u.headers_in.status_n;
    // SAFETY: after the header is parsed, `u->buffer` holds what was read after it between
    // `pos` and `last`, and has room up to `end`.
    let (read, room) = unsafe {
        let b = &u.buffer;
        (bytes(b.pos, b.last), bytes(b.last, b.end).len())
    };
    let framing = framing(u);
    Arrived {
        framing,
        declared: u.headers_in.content_length_n,
        chunked: framing == Framing::Http1 && is_chunked(u),
        stream: if framing == Framing::Http2 {
            request_stream(u)
        } else {
            0
        },
        bodiless: r.method == NGX_HTTP_HEAD as ngx_uint_t
            || status == NGX_HTTP_NO_CONTENT as ngx_uint_t
            || status == NGX_HTTP_NOT_MODIFIED as ngx_uint_t,
        read,
        room,
    }
}

/// `Transfer-Encoding: chunked`, read from the header line (nginx 1.23+ also sets a bit for
/// it; 1.22 does not have that bit).
fn is_chunked(u: &ngx_http_upstream_t) -> bool {
    // SAFETY: null, or the parsed header line in the request pool.
    unsafe { u.headers_in.transfer_encoding.as_ref() }.is_some_and(|h| {
        // SAFETY: a header line's value is `len` valid bytes.
        let value = unsafe { bytes(h.value.data, h.value.data.add(h.value.len)) };
        value.eq_ignore_ascii_case(b"chunked")
    })
}

/// The stream of an HTTP/2 request: that of the frames the proxy module wrote (and renumbered
/// for a kept-alive connection) at the start of the request's first buffer.
fn request_stream(u: &ngx_http_upstream_t) -> u32 {
    // SAFETY: `request_bufs` is null or the request's chain; its first buffer holds the
    // preface and the request's frames between `start` and `last`.
    let written = unsafe {
        u.request_bufs
            .as_ref()
            .and_then(|cl| cl.buf.as_ref())
            .map_or(&[][..], |b| bytes(b.start, b.last))
    };
    http2::request_stream(written).unwrap_or(1)
}

/// A passed-over answer, copied where the next try cannot overwrite it.
#[derive(Clone, Copy)]
pub struct KeptAnswer {
    /// The upstream's parsed header, by value: its header list and the typed fields that
    /// point into it (nginx starts a new list for the next attempt; the entries, with their
    /// names and values, live in the request pool). Its length is what the client is told:
    /// the body's, the one declared for a response to HEAD, -1 for chunked, 0 for a body
    /// not kept.
    pub headers_in: ngx_http_upstream_headers_in_t,
    pub body: ngx_str_t,
    pub dropped: Option<WhyDropped>,
    pub peer: ngx_str_t,
}

impl KeptAnswer {
    /// Copies the answer `u` has just parsed, with its settled body (what of it is kept, or
    /// why none is), into the request pool: into `reuse`, an earlier pass's, if there is one
    /// (in place: the header is a few hundred bytes, copied once). `None` if the pool is
    /// exhausted (the request is then passed on without a kept answer, as in stock nginx).
    pub fn capture(
        r: &ngx_http_request_t,
        u: &ngx_http_upstream_t,
        body: Result<Body, WhyDropped>,
        reuse: Option<NonNull<KeptAnswer>>,
    ) -> Option<NonNull<KeptAnswer>> {
        let (body, dropped) = match body {
            Ok(body) => (pool_copy(r, body)?, None),
            Err(why) => (ngx_str_t::empty(), Some(why)),
        };
        let p = match reuse {
            Some(p) => p,
            None => {
                // SAFETY: a request's pool is valid while the request is.
                let fresh = unsafe { ngx_palloc(r.pool, mem::size_of::<KeptAnswer>()) };
                NonNull::new(fresh.cast::<KeptAnswer>())?
            }
        };
        let kept = p.as_ptr();
        // SAFETY: `kept` is sized and aligned for a `KeptAnswer` (pool allocations are
        // aligned to a pointer), fresh or a forgotten earlier answer (`Copy`: nothing to
        // drop); every field is written before it is read.
        unsafe {
            ptr::addr_of_mut!((*kept).headers_in).write(u.headers_in);
            if dropped.is_some() {
                (*kept).headers_in.content_length_n = 0;
            }
            ptr::addr_of_mut!((*kept).body).write(body);
            ptr::addr_of_mut!((*kept).dropped).write(dropped);
            // nginx keeps the peer's name for `$upstream_addr`, in the request pool too.
            ptr::addr_of_mut!((*kept).peer).write(peer_name(u));
        }
        Some(p)
    }

    pub fn status(&self) -> ngx_uint_t {
        self.headers_in.status_n
    }
}

/// # Safety
/// `start..end` must be null or a valid range of initialised bytes.
unsafe fn bytes<'a>(start: *const u8, end: *const u8) -> &'a [u8] {
    if start.is_null() || end <= start {
        return &[];
    }
    // SAFETY: the caller promises a valid range.
    unsafe { slice::from_raw_parts(start, end as usize - start as usize) }
}

/// The body's pieces copied into one buffer of the request pool, out of the upstream buffer
/// the next attempt reuses. (`ngx_str_t::from_bytes` copies one slice; a body over HTTP/2 is
/// several frames' payloads.)
fn pool_copy(r: &ngx_http_request_t, body: Body) -> Option<ngx_str_t> {
    if body.is_empty() {
        return Some(ngx_str_t::empty());
    }
    // SAFETY: a request's pool is valid while the request is. (`ngx_pnalloc` by hand, on
    // every pass: `Pool::alloc_unaligned` is not inlined across crates.)
    let p = unsafe { ngx_pnalloc(r.pool, body.len()) }.cast::<u8>();
    if p.is_null() {
        return None;
    }
    let mut at = 0;
    for piece in body.pieces() {
        // SAFETY: the pieces add up to `body.len()` bytes, the room at `p`; they lie in the
        // upstream buffer, which does not overlap a fresh pool allocation.
        unsafe { ptr::copy_nonoverlapping(piece.as_ptr(), p.add(at), piece.len()) };
        at += piece.len();
    }
    Some(ngx_str_t {
        len: body.len(),
        data: p,
    })
}
