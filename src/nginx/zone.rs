//! The counters' shared memory (`next_upstream_status_zone`).
//!
//! The zone holds a hash table of counters keyed by (what, upstream, server, status), in
//! nginx's slab allocator. Entries are made under the slab pool's mutex and never freed; a
//! count is an atomic add on its entry, so counts are exact across workers. On
//! `nginx -s reload` nginx hands the new configuration the same zone (same name, size and
//! module) and `init_zone` takes over the old table, so the counts carry on. Counting only
//! happens when a request is passed on, exhausts its servers, or gets a kept answer: a
//! request that is none of these never reaches this file.
//!
//! Each worker remembers where the entries it counted into are (`Zone::cache`), so that a
//! count in the steady state is a look at one slot, a comparison of the server's name and
//! the add: no hash of the names, no mutex.
//!
//! When the zone is full, counters that exist go on counting; a new one is not created, and
//! the first such miss is logged (once per zone, whichever worker meets it).

use core::alloc::Layout;
use core::cell::Cell;
use core::ffi::c_void;
use core::ptr::{self, NonNull};
#[cfg(target_has_atomic = "64")]
use core::sync::atomic::{AtomicU64, Ordering};
use core::{mem, slice};

use ngx::allocator::Allocator;
use ngx::core::{Pool, SlabPool};
use ngx::ffi::{
    ngx_conf_t, ngx_connection_t, ngx_http_upstream_srv_conf_t, ngx_int_t, ngx_module_t,
    ngx_shared_memory_add, ngx_shm_zone_t, ngx_str_t, ngx_uint_t, NGX_ERROR, NGX_OK,
};
use thiserror::Error;

use crate::metrics::{key_hash, same_name, upstream_label, Family, Sample};
use crate::nginx::bitfields;
use crate::nginx::log::log_warn;

/// Buckets of the zone's hash table. The keys are few (upstream blocks x servers x listed
/// statuses), so chains stay short.
const BUCKETS: usize = 128;

/// Slots of a worker's cache of entries (a power of two). A key that finds its slot taken by
/// another is counted through the table, then takes the slot over: still exact, only slower.
const CACHE_SLOTS: usize = 256;

/// This configuration's view of the zone, in the configuration pool (`shm_zone->data`).
#[derive(Debug)]
pub struct Zone {
    shm_zone: *mut ngx_shm_zone_t,
    /// Set by `init_zone`: the table in the zone, new or taken over from the previous
    /// configuration.
    shared: *mut Shared,
    /// Where the entries of recently counted keys are, by upstream block and server name.
    /// Empty when the master forks the workers; from then on each worker's own copy (the
    /// configuration pool is private memory), filled by that worker alone, one thread. A
    /// reload makes a new configuration, so a new, empty cache; entries it points to are
    /// never freed and stay mapped in a worker as long as it runs. The upstream block's
    /// address identifies its label for as long as the configuration lives; the server's
    /// name's address does not (a `resolve`d server's name is in shared memory that can be
    /// freed and reused), so it only chooses the slot, and a hit compares the name's bytes
    /// with the entry's.
    cache: [Cell<Slot>; CACHE_SLOTS],
}

/// A cached entry and the upstream block it was counted for.
#[derive(Clone, Copy, Debug)]
struct Slot {
    us: *const ngx_http_upstream_srv_conf_t,
    entry: *const Entry,
}

impl Slot {
    const EMPTY: Slot = Slot {
        us: ptr::null(),
        entry: ptr::null(),
    };
}

/// The cache slot of a key: a multiplicative hash of what identifies it without reading
/// a name.
fn slot_index(
    us: &ngx_http_upstream_srv_conf_t,
    server: *const u8,
    family: Family,
    status: u16,
) -> usize {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let key = (ptr::from_ref(us) as usize as u64)
        ^ (server as usize as u64).rotate_left(24)
        ^ u64::from(status) << 48
        ^ (family as u64) << 62;
    (key.wrapping_mul(K) >> (64 - CACHE_SLOTS.trailing_zeros())) as usize
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
    count: Count,
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

    /// Whether the entry counts `key` for the upstream block its cache slot was filled for.
    ///
    /// # Safety
    /// As for [`Entry::names`].
    #[inline]
    unsafe fn counts(&self, family: Family, status: u16, server: &[u8]) -> bool {
        if self.family != family as u8 || self.status != status {
            return false;
        }
        let start = ptr::from_ref(self)
            .cast::<u8>()
            .wrapping_add(mem::size_of::<Entry>() + self.upstream_len);
        // SAFETY: the entry's server name follows its upstream name (see `names`).
        same_name(
            unsafe { slice::from_raw_parts(start, self.server_len) },
            server,
        )
    }
}

/// An entry's count, added to by any worker. Where the target has 64-bit atomics an add is one
/// atomic instruction, without the slab mutex. Elsewhere (armel, 32-bit powerpc) it is made
/// and read under the mutex, like the table.
#[cfg(target_has_atomic = "64")]
#[repr(transparent)]
struct Count(AtomicU64);

#[cfg(target_has_atomic = "64")]
impl Count {
    fn new(n: u64) -> Count {
        Count(AtomicU64::new(n))
    }

    /// Adds one, with or without the slab mutex held.
    #[inline(always)]
    fn add_one(&self, _zone: &Zone) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds one; the caller holds the slab mutex.
    fn add_one_locked(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// The count so far: each add is atomic and a count only grows, so a reader sees a
    /// value it had.
    fn get_locked(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[cfg(not(target_has_atomic = "64"))]
#[repr(transparent)]
struct Count(core::cell::UnsafeCell<u64>);

#[cfg(not(target_has_atomic = "64"))]
impl Count {
    fn new(n: u64) -> Count {
        Count(core::cell::UnsafeCell::new(n))
    }

    /// Adds one under the slab mutex.
    #[inline(never)]
    fn add_one(&self, zone: &Zone) {
        // SAFETY: workers run with their zones mapped for their whole life.
        if let Some(pool) = unsafe { SlabPool::from_shm_zone(&*zone.shm_zone) } {
            let _locked = pool.lock();
            self.add_one_locked();
        }
    }

    /// Adds one; the caller holds the slab mutex.
    fn add_one_locked(&self) {
        // SAFETY: on this target the count is read and written only under the slab mutex.
        unsafe { *self.0.get() += 1 };
    }

    /// The count so far; the caller holds the slab mutex.
    fn get_locked(&self) -> u64 {
        // SAFETY: as in `add_one_locked`.
        unsafe { *self.0.get() }
    }
}

/// Why a zone could not be declared.
#[derive(Debug, Error)]
pub enum AddError {
    /// nginx refused it (another use of the name, another size) and has said why.
    #[error("refused")]
    Refused,
    #[error("zone \"{0}\" is already used by next_upstream_status_zone")]
    Taken(ngx_str_t),
    #[error("out of memory")]
    NoMemory,
}

/// Declares the zone `name` of `size` bytes, tagged with `module` (so that a reload finds it
/// again and another module's zone of the same name is refused by nginx).
///
/// # Safety
/// `cf` must be the configuration being read; `name` must live in its pool.
pub unsafe fn add(
    cf: *mut ngx_conf_t,
    name: &mut ngx_str_t,
    size: usize,
    module: &ngx_module_t,
) -> Result<NonNull<Zone>, AddError> {
    // By hand: `ngx` 0.5.1 can use a zone (`SlabPool::from_shm_zone`) but not declare one.
    // SAFETY: as the caller promises; nginx only compares the tag.
    let shm_zone =
        unsafe { ngx_shared_memory_add(cf, name, size, ptr::from_ref(module).cast_mut().cast()) };
    // SAFETY: null or a zone nginx just returned; `data` is set by whoever declared it first.
    let Some(shm) = (unsafe { shm_zone.as_mut() }) else {
        return Err(AddError::Refused);
    };
    if !shm.data.is_null() {
        return Err(AddError::Taken(*name));
    }
    // SAFETY: the configuration pool is valid while the configuration is read.
    let pool = unsafe { Pool::from_ngx_pool((*cf).pool) };
    // Nothing to drop in a `Zone`: no cleanup handler is needed.
    let zone = Allocator::allocate(&pool, Layout::new::<Zone>())
        .map_err(|_| AddError::NoMemory)?
        .cast::<Zone>();
    // SAFETY: `zone` is fresh, aligned and sized for a `Zone`.
    unsafe {
        zone.as_ptr().write(Zone {
            shm_zone,
            shared: ptr::null_mut(),
            cache: [const { Cell::new(Slot::EMPTY) }; CACHE_SLOTS],
        })
    };
    shm.init = Some(init_zone);
    shm.data = zone.as_ptr().cast();
    Ok(zone)
}

/// Makes the table in a new zone, or takes over the previous configuration's (`data`) after
/// a reload that kept the zone.
unsafe extern "C" fn init_zone(shm_zone: *mut ngx_shm_zone_t, data: *mut c_void) -> ngx_int_t {
    // SAFETY: nginx calls this with the zone `add` declared, whose data is its `Zone`, and
    // with null or the previous configuration's `Zone` of the same zone.
    let (zone, old) = unsafe { (&mut *(*shm_zone).data.cast::<Zone>(), data.cast::<Zone>()) };
    // SAFETY: `data` is null or the `Zone` of the configuration before a reload, in the old
    // configuration's pool, which nginx frees only after this call.
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

impl Zone {
    /// Whether `init_zone` has made or taken over the table.
    pub fn is_ready(&self) -> bool {
        !self.shared.is_null()
    }

    /// Counts one event for the upstream block `us`; `server` counts only for
    /// [`Family::Passed`]. `connection` is whose log hears of a full zone.
    ///
    /// Inline, as `counters::count` is: where the family is known, choosing the server's name
    /// and the cache slot folds into a few instructions. A miss goes out of line.
    #[inline(always)]
    pub fn count(
        &self,
        connection: *mut ngx_connection_t,
        us: &ngx_http_upstream_srv_conf_t,
        family: Family,
        status: ngx_uint_t,
        server: ngx_str_t,
    ) {
        let server = if family == Family::Passed {
            server.as_bytes()
        } else {
            &[]
        };
        let status = u16::try_from(status).unwrap_or(u16::MAX);
        let slot = &self.cache[slot_index(us, server.as_ptr(), family, status)];
        let cached = slot.get();
        // SAFETY: a slot's entry, when there is one, was made in the zone, which stays mapped
        // while the worker runs, and is never freed.
        if let Some(entry) = unsafe { cached.entry.as_ref() } {
            // SAFETY: an entry made by `count_in_table`, followed by its names.
            if ptr::eq(cached.us, us) && unsafe { entry.counts(family, status, server) } {
                entry.count.add_one(self);
                return;
            }
        }
        self.count_missed(slot, connection, us, family, status, server);
    }

    /// Counts one event that the cache missed, and fills its `slot`. Out of line: the callers
    /// keep only the hit path.
    #[cold]
    #[inline(never)]
    fn count_missed(
        &self,
        slot: &Cell<Slot>,
        connection: *mut ngx_connection_t,
        us: &ngx_http_upstream_srv_conf_t,
        family: Family,
        status: u16,
        server: &[u8],
    ) {
        if let Some(entry) = self.count_in_table(connection, us, family, status, server) {
            slot.set(Slot {
                us: ptr::from_ref(us),
                entry,
            });
        }
    }

    /// Counts one event through the table, making its entry if there is none yet, and
    /// returns the entry (none when the zone is full).
    fn count_in_table(
        &self,
        connection: *mut ngx_connection_t,
        us: &ngx_http_upstream_srv_conf_t,
        family: Family,
        status: u16,
        server: &[u8],
    ) -> Option<*const Entry> {
        let upstream = upstream_label(us.host.as_bytes(), us.port, us.srv_conf.is_null());
        let hash = key_hash(family, status, &upstream, server);

        // SAFETY: workers run with their zones mapped for their whole life.
        let pool = unsafe { SlabPool::from_shm_zone(&*self.shm_zone) }?;
        let locked = pool.lock();
        // SAFETY: the table is in the zone; it is read and written only under the slab mutex,
        // held here until `locked` is dropped (entries' counts are added to without it, see
        // `Count`).
        let shared = unsafe { &mut *self.shared };
        let bucket = &mut shared.buckets[(hash % BUCKETS as u64) as usize];
        let mut entry = *bucket;
        // SAFETY: each chain holds entries made below, under the same mutex.
        while let Some(e) = unsafe { entry.as_ref() } {
            // SAFETY: an entry made below, followed by its names.
            let names = unsafe { e.names() };
            if e.hash == hash
                && e.family == family as u8
                && e.status == status
                && names == (&upstream[..], server)
            {
                e.count.add_one_locked();
                return Some(entry);
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
                    connection,
                    "zone \"{}\" is full: counters not yet in it are not counted",
                    // SAFETY: the zone's name is in the configuration pool.
                    unsafe { (*self.shm_zone).shm.name }
                );
            }
            return None;
        };
        let new = new.as_ptr().cast::<Entry>();
        // SAFETY: `new` is a fresh slab allocation, aligned for `Entry` and large enough for
        // it and both names.
        unsafe {
            new.write(Entry {
                next: *bucket,
                hash,
                count: Count::new(1),
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
        Some(new)
    }

    /// Copies the counters out of the zone.
    pub fn snapshot(&self) -> Vec<Sample> {
        let mut samples = Vec::new();
        // SAFETY: workers run with their zones mapped for their whole life.
        let Some(pool) = (unsafe { SlabPool::from_shm_zone(&*self.shm_zone) }) else {
            return samples;
        };
        let _locked = pool.lock();
        // SAFETY: the table is read under the slab mutex, held until `_locked` is dropped.
        let shared = unsafe { &*self.shared };
        for &head in &shared.buckets {
            let mut entry = head;
            // SAFETY: entries made by `count`, under the same mutex.
            while let Some(e) = unsafe { entry.as_ref() } {
                // SAFETY: an entry made by `count`, followed by its names.
                let (upstream, server) = unsafe { e.names() };
                if let Some(family) = Family::from_u8(e.family) {
                    samples.push(Sample {
                        family,
                        upstream: upstream.to_vec(),
                        server: server.to_vec(),
                        status: e.status,
                        count: e.count.get_locked(),
                    });
                }
                entry = e.next;
            }
        }
        samples
    }
}
