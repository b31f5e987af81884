//! The upstream module's own `process_header` and `reinit_request` that the module's wrappers
//! stand in front of, kept without a per-request record of them.
//!
//! A wrapper must call the function it replaced, and the proxy module changes its
//! `process_header` in the middle of a request (status line, then headers). Rather than keep
//! the current one in a per-request context (an allocation on every request), each distinct
//! original gets a slot in a table, and each slot a wrapper of its own that knows it
//! (`upstream::process_header_via::<SLOT>`): what `u->process_header` holds then says which
//! original comes next. The proxy module has three parsers and two `reinit_request`s (HTTP/1
//! and HTTP/2), so four slots are room to spare.
//!
//! The table is the worker's own: it is filled as callbacks are met, after the fork. The
//! addresses are nginx's functions, the same for the life of the process. Equal addresses are
//! the same code, so comparing them is sound even where a linker merges identical functions.

use core::mem;
use core::sync::atomic::{AtomicPtr, Ordering};

use crate::nginx::ctx::RequestCallback;

/// Slots per table: more than any upstream module uses. A power of two (see [`Slot`]).
pub const SLOTS: usize = 4;

/// An index into a table, below [`SLOTS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot(usize);

impl Slot {
    /// The wrapper of this slot among `wrappers`. (The mask keeps the index in range without
    /// a branch.)
    #[inline(always)]
    pub fn of(self, wrappers: &[RequestCallback; SLOTS]) -> RequestCallback {
        wrappers[self.0 & (SLOTS - 1)]
    }
}

/// One kind of callback's originals, each at its slot.
pub struct Callbacks {
    // Atomic only to make the static `Sync`: a worker is one thread, so relaxed accesses
    // (plain loads and stores) are all it needs.
    slots: [AtomicPtr<()>; SLOTS],
    /// The wrappers of the slots, which never become originals themselves.
    wrappers: [RequestCallback; SLOTS],
}

/// Why a callback gets no wrapper.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoSlot {
    /// It is one of the module's own wrappers already.
    Wrapper,
    /// Every slot holds another original.
    Full,
}

impl Callbacks {
    pub const fn new(wrappers: [RequestCallback; SLOTS]) -> Callbacks {
        Callbacks {
            slots: [const { AtomicPtr::new(core::ptr::null_mut()) }; SLOTS],
            wrappers,
        }
    }

    /// The wrapper to stand in front of `original`, whose slot is given the first time it is
    /// met.
    #[inline(always)]
    pub fn wrapper_for(&self, original: RequestCallback) -> Result<RequestCallback, NoSlot> {
        let address = original as *mut ();
        for (slot, held) in self.slots.iter().enumerate() {
            let held = held.load(Ordering::Relaxed);
            if held == address {
                return Ok(Slot(slot).of(&self.wrappers));
            }
            if held.is_null() {
                return self.fill(Slot(slot), address);
            }
        }
        Err(NoSlot::Full)
    }

    #[cold]
    #[inline(never)]
    fn fill(&self, slot: Slot, address: *mut ()) -> Result<RequestCallback, NoSlot> {
        if self.wrappers.iter().any(|&w| w as *mut () == address) {
            return Err(NoSlot::Wrapper);
        }
        self.slots[slot.0].store(address, Ordering::Relaxed);
        Ok(slot.of(&self.wrappers))
    }

    /// The original at `SLOT`, which `wrapper_for` filled before installing its wrapper.
    #[inline(always)]
    pub fn original<const SLOT: usize>(&self) -> RequestCallback {
        let address = self.slots[SLOT].load(Ordering::Relaxed);
        // SAFETY: a wrapper for `SLOT` is installed only after `wrapper_for` stored a
        // `RequestCallback` there, and slots are never cleared.
        unsafe { mem::transmute::<*mut (), RequestCallback>(address) }
    }
}
