//! The counters in shared memory: `next_upstream_status_zone` (http) and
//! `next_upstream_status_metrics` (location).
//!
//! The zone holds a hash table of counters keyed by (what, upstream, server, status), in
//! nginx's slab allocator. Every worker counts into it under the slab pool's mutex, so counts
//! are exact across workers. On `nginx -s reload` nginx hands the new configuration the same
//! zone (same name, size and module) and `init_zone` takes over the old table, so the counts
//! carry on. Counting only happens when a request is passed on, exhausts its servers, or gets
//! a kept answer: a request that is none of these never reaches this file.
//!
//! When the zone is full, counters that exist go on counting; a new one is not created, and
//! the first such miss is logged (once per zone, whichever worker meets it).

use core::alloc::Layout;
use core::ffi::{c_char, c_void};
use core::ptr::{self, NonNull};
use core::{mem, slice};

use ngx::allocator::Allocator;
use ngx::core::{SlabPool, NGX_CONF_ERROR};
use ngx::ffi::{
    ngx_buf_t, ngx_chain_t, ngx_command_t, ngx_conf_t, ngx_http_discard_request_body,
    ngx_http_output_filter, ngx_http_request_t, ngx_http_send_header, ngx_http_upstream_srv_conf_t,
    ngx_int_t, ngx_pagesize, ngx_pcalloc, ngx_pnalloc, ngx_shared_memory_add, ngx_shm_zone_t,
    ngx_str_t, ngx_uint_t, NGX_ERROR, NGX_HTTP_GET, NGX_HTTP_HEAD, NGX_HTTP_INTERNAL_SERVER_ERROR,
    NGX_HTTP_NOT_ALLOWED, NGX_HTTP_OK, NGX_OK,
};
use ngx::http::{HttpModuleLocationConf, HttpModuleMainConf, NgxHttpCoreModule};

use crate::metrics::{key_hash, parse_zone, render, upstream_label, Family, Sample};
use crate::nginx::bitfields;
use crate::nginx::conf::MainConf;
use crate::nginx::log::{log_debug, log_warn};
use crate::nginx::Module;

/// Buckets of the zone's hash table. The keys are few (upstream blocks x servers x listed
/// statuses), so chains stay short.
const BUCKETS: usize = 128;

/// This configuration's view of the zone, in the configuration pool (`shm_zone->data`).
#[derive(Debug)]
pub struct Zone {
    shm_zone: *mut ngx_shm_zone_t,
    /// Set by `init_zone`: the table in the zone, new or taken over from the previous
    /// configuration.
    shared: *mut Shared,
}

/// The table at the start of the zone's slab memory.
#[repr(C)]
struct Shared {
    buckets: [*mut Entry; BUCKETS],
    /// Set once an entry could not be made, so that only the first miss is logged.
    full: usize,
}

/// One counter. Its upstream and server names follow it in the same slab allocation.
#[repr(C)]
struct Entry {
    next: *mut Entry,
    hash: u64,
    count: u64,
    upstream_len: usize,
    server_len: usize,
    status: u16,
    family: u8,
}

impl Entry {
    /// # Safety
    /// `self` must be an entry made by `count`, followed by its names.
    unsafe fn names(&self) -> (&[u8], &[u8]) {
        let start = ptr::from_ref(self)
            .cast::<u8>()
            .wrapping_add(mem::size_of::<Entry>());
        // SAFETY: `count` allocated the entry with room for both names right after it.
        unsafe {
            (
                slice::from_raw_parts(start, self.upstream_len),
                slice::from_raw_parts(start.add(self.upstream_len), self.server_len),
            )
        }
    }
}

/// Handles `next_upstream_status_zone NAME [SIZE]` in the http block.
///
/// # Safety
/// Called by nginx with a valid `cf` whose arguments are the directive's, and `conf` pointing
/// at this module's `MainConf`.
pub unsafe extern "C" fn set_zone(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    // SAFETY: nginx passes this module's main configuration.
    let mcf = unsafe { &mut *conf.cast::<MainConf>() };
    if mcf.zone.is_some() {
        return c"is duplicate".as_ptr().cast_mut();
    }
    // SAFETY: `cf->args` holds the directive's name and arguments, valid `ngx_str_t`s in the
    // configuration pool.
    let args = unsafe { (*(*cf).args).as_slice_mut::<ngx_str_t>() };
    let values: Vec<&[u8]> = args.iter().skip(1).map(|a| a.as_bytes()).collect();
    // SAFETY: nginx sets the page size before it reads any configuration.
    let minimum = 8 * unsafe { ngx_pagesize };
    let spec = match parse_zone(&values, minimum) {
        Ok(spec) => spec,
        Err(err) => {
            ngx::ngx_conf_log_error!(ngx::ffi::NGX_LOG_EMERG, cf, "{err}");
            return NGX_CONF_ERROR;
        }
    };
    // The name as nginx read it: it lives in the configuration pool, as the zone needs.
    let Some(name) = args.get_mut(1).map(ptr::from_mut) else {
        return NGX_CONF_ERROR;
    };
    // SAFETY: `cf` is valid; the module's address is the zone's tag, so that a reload finds
    // the zone again and another module's zone of the same name is refused by nginx.
    let shm_zone = unsafe {
        ngx_shared_memory_add(
            cf,
            name,
            spec.size,
            ptr::addr_of_mut!(super::ngx_http_next_upstream_status_module).cast(),
        )
    };
    if shm_zone.is_null() {
        // nginx has said why (another use of the name, another size).
        return NGX_CONF_ERROR;
    }
    // SAFETY: a zone nginx just returned; `data` is set by whoever declared it first.
    if unsafe { !(*shm_zone).data.is_null() } {
        ngx::ngx_conf_log_error!(
            ngx::ffi::NGX_LOG_EMERG,
            cf,
            "zone \"{}\" is already used by next_upstream_status_zone",
            // SAFETY: as above.
            unsafe { *name }
        );
        return NGX_CONF_ERROR;
    }
    // SAFETY: the configuration pool is valid; pool memory is aligned for pointers.
    let zone = unsafe { ngx_pcalloc((*cf).pool, mem::size_of::<Zone>()) }.cast::<Zone>();
    let Some(zone) = NonNull::new(zone) else {
        return NGX_CONF_ERROR;
    };
    // SAFETY: `zone` is fresh and large enough; `shm_zone` is valid for the configuration.
    unsafe {
        zone.as_ptr().write(Zone {
            shm_zone,
            shared: ptr::null_mut(),
        });
        (*shm_zone).init = Some(init_zone);
        (*shm_zone).data = zone.as_ptr().cast();
    }
    mcf.zone = Some(zone);
    ptr::null_mut()
}

/// Handles `next_upstream_status_metrics` in a location: the location answers with the
/// counters.
///
/// # Safety
/// Called by nginx with a valid `cf` in a location's context.
pub unsafe extern "C" fn set_metrics(
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

/// Postconfiguration: the metrics location needs a zone to read.
pub fn check_configuration(mcf: &MainConf) -> Result<(), &'static str> {
    if mcf.metrics_used && mcf.zone.is_none() {
        return Err(
            "\"next_upstream_status_metrics\" needs \"next_upstream_status_zone\" \
                    in the http block",
        );
    }
    Ok(())
}

/// Makes the table in a new zone, or takes over the previous configuration's (`data`) after
/// a reload that kept the zone.
unsafe extern "C" fn init_zone(shm_zone: *mut ngx_shm_zone_t, data: *mut c_void) -> ngx_int_t {
    // SAFETY: nginx calls this with the zone `set_zone` declared, whose data is its `Zone`,
    // and with null or the previous configuration's `Zone` of the same zone.
    let (zone, old) = unsafe { (&mut *(*shm_zone).data.cast::<Zone>(), data.cast::<Zone>()) };
    // SAFETY: as above.
    if let Some(old) = unsafe { old.as_ref() } {
        zone.shared = old.shared;
        return NGX_OK as ngx_int_t;
    }
    // SAFETY: the zone is mapped and its slab pool initialised before `init` is called.
    let Some(mut pool) = (unsafe { SlabPool::from_shm_zone(&*shm_zone) }) else {
        return NGX_ERROR as ngx_int_t;
    };
    // A full zone is logged once by `count`, not by the slab allocator on every miss.
    bitfields::set_slab_log_nomem(pool.as_mut(), false);
    let Ok(shared) = pool.allocate_zeroed(Layout::new::<Shared>()) else {
        return NGX_ERROR as ngx_int_t;
    };
    zone.shared = shared.as_ptr().cast();
    // For nginx's own bookkeeping (and Windows, where a zone may exist already).
    pool.as_mut().data = zone.shared.cast();
    NGX_OK as ngx_int_t
}

/// The zone of the request's http block, when one is configured and initialised.
fn zone_of(r: &ngx_http_request_t) -> Option<&'static Zone> {
    let zone = Module::main_conf(r)?.zone?;
    // SAFETY: the zone's `Zone` is in the configuration pool, which outlives requests.
    let zone = unsafe { zone.as_ref() };
    (!zone.shared.is_null()).then_some(zone)
}

/// Counts one event for the request's upstream block. `server` is the peer's name for
/// [`Family::Passed`], empty otherwise.
#[cold]
#[inline(never)]
pub fn count(
    r: &ngx_http_request_t,
    us: *const ngx_http_upstream_srv_conf_t,
    family: Family,
    status: ngx_uint_t,
    server: ngx_str_t,
) {
    let Some(zone) = zone_of(r) else {
        return;
    };
    // SAFETY: a request's upstream block is in the configuration, which outlives requests.
    let Some(us) = (unsafe { us.as_ref() }) else {
        return;
    };
    let upstream = upstream_label(us.host.as_bytes(), us.port, us.srv_conf.is_null());
    let server = if family == Family::Passed {
        server.as_bytes()
    } else {
        &[]
    };
    let status = u16::try_from(status).unwrap_or(u16::MAX);
    let hash = key_hash(family, status, &upstream, server);

    // SAFETY: workers run with their zones mapped for their whole life.
    let Some(pool) = (unsafe { SlabPool::from_shm_zone(&*zone.shm_zone) }) else {
        return;
    };
    let locked = pool.lock();
    // SAFETY: the table is in the zone; it is read and written only under the slab mutex,
    // held here until `locked` is dropped.
    let shared = unsafe { &mut *zone.shared };
    let bucket = &mut shared.buckets[(hash % BUCKETS as u64) as usize];
    let mut entry = *bucket;
    // SAFETY: each chain holds entries made below, under the same mutex.
    while let Some(e) = unsafe { entry.as_mut() } {
        // SAFETY: as above.
        let names = unsafe { e.names() };
        if e.hash == hash
            && e.family == family as u8
            && e.status == status
            && names == (&upstream[..], server)
        {
            e.count += 1;
            return;
        }
        entry = e.next;
    }
    let layout = Layout::from_size_align(
        mem::size_of::<Entry>() + upstream.len() + server.len(),
        mem::align_of::<Entry>(),
    );
    let Some(new) = layout.ok().and_then(|l| locked.allocate(l).ok()) else {
        let first = shared.full == 0;
        shared.full = 1;
        drop(locked);
        if first {
            log_warn!(
                r.connection,
                "zone \"{}\" is full: counters not yet in it are not counted",
                // SAFETY: the zone's name is in the configuration pool.
                unsafe { (*zone.shm_zone).shm.name }
            );
        }
        return;
    };
    let new = new.as_ptr().cast::<Entry>();
    // SAFETY: `new` is a fresh slab allocation, aligned for `Entry` and large enough for it
    // and both names.
    unsafe {
        new.write(Entry {
            next: *bucket,
            hash,
            count: 1,
            upstream_len: upstream.len(),
            server_len: server.len(),
            status,
            family: family as u8,
        });
        let names = new.cast::<u8>().add(mem::size_of::<Entry>());
        ptr::copy_nonoverlapping(upstream.as_ptr(), names, upstream.len());
        ptr::copy_nonoverlapping(server.as_ptr(), names.add(upstream.len()), server.len());
    }
    *bucket = new;
}

/// Copies the counters out of the zone.
fn snapshot(zone: &Zone) -> Vec<Sample> {
    let mut samples = Vec::new();
    // SAFETY: workers run with their zones mapped for their whole life.
    let Some(pool) = (unsafe { SlabPool::from_shm_zone(&*zone.shm_zone) }) else {
        return samples;
    };
    let _locked = pool.lock();
    // SAFETY: the table is read under the slab mutex, held until `_locked` is dropped.
    let shared = unsafe { &*zone.shared };
    for &head in &shared.buckets {
        let mut entry = head;
        // SAFETY: entries made by `count`, under the same mutex.
        while let Some(e) = unsafe { entry.as_ref() } {
            // SAFETY: as above.
            let (upstream, server) = unsafe { e.names() };
            if let Some(family) = Family::from_u8(e.family) {
                samples.push(Sample {
                    family,
                    upstream: upstream.to_vec(),
                    server: server.to_vec(),
                    status: e.status,
                    count: e.count,
                });
            }
            entry = e.next;
        }
    }
    samples
}

const CONTENT_TYPE: &[u8] = b"text/plain; version=0.0.4";

/// The content handler of a `next_upstream_status_metrics` location.
unsafe extern "C" fn metrics_handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: nginx calls content handlers with a valid request.
    let rr = unsafe { &mut *r };
    if rr.method & (NGX_HTTP_GET | NGX_HTTP_HEAD) as ngx_uint_t == 0 {
        return NGX_HTTP_NOT_ALLOWED as ngx_int_t;
    }
    // SAFETY: as above.
    let rc = unsafe { ngx_http_discard_request_body(r) };
    if rc != NGX_OK as ngx_int_t {
        return rc;
    }
    let Some(zone) = zone_of(rr) else {
        return NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t;
    };
    let text = render(&snapshot(zone));
    log_debug!(rr.connection, "metrics: {} bytes", text.len());

    // SAFETY: the request pool is valid.
    let (body, b) = unsafe {
        (
            ngx_pnalloc(rr.pool, text.len().max(1)).cast::<u8>(),
            ngx_pcalloc(rr.pool, mem::size_of::<ngx_buf_t>()).cast::<ngx_buf_t>(),
        )
    };
    if body.is_null() || b.is_null() {
        return NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t;
    }
    // SAFETY: `body` has room for the text.
    unsafe { ptr::copy_nonoverlapping(text.as_ptr(), body, text.len()) };

    rr.headers_out.status = NGX_HTTP_OK as ngx_uint_t;
    rr.headers_out.content_length_n = text.len() as i64;
    rr.headers_out.content_type = ngx_str_t {
        len: CONTENT_TYPE.len(),
        data: CONTENT_TYPE.as_ptr().cast_mut(),
    };
    rr.headers_out.content_type_len = CONTENT_TYPE.len();
    rr.headers_out.content_type_lowcase = ptr::null_mut();
    // SAFETY: as above.
    let rc = unsafe { ngx_http_send_header(r) };
    // HEAD by its method, not the request's bit field (whose place the bindings must match).
    let head = rr.method == NGX_HTTP_HEAD as ngx_uint_t;
    if rc == NGX_ERROR as ngx_int_t || rc > NGX_OK as ngx_int_t || head {
        return rc;
    }
    let mut out = ngx_chain_t {
        buf: b,
        next: ptr::null_mut(),
    };
    // SAFETY: `b` is a fresh zeroed buffer; the body lives in the request pool.
    unsafe {
        let buf = &mut *b;
        buf.pos = body;
        buf.last = body.add(text.len());
        bitfields::set_last_buf(buf, true, true);
        ngx_http_output_filter(r, &mut out)
    }
}
