//! A table that gives each distinct function it is shown a slot of its own, for wrappers that
//! must call the function they stand in front of without a per-call record of which one it
//! is: each slot has a wrapper of its own that knows its slot.
//!
//! Filled as functions are met and never emptied; meant to be one process's (one nginx
//! worker's), by one thread. Equal addresses are the same code, so comparing them is sound
//! even where a linker merges identical functions.

use core::sync::atomic::{AtomicUsize, Ordering};

/// A function pointer type, as an address and back.
pub trait Function: Copy {
    fn address(self) -> usize;

    /// # Safety
    /// `address` must be `address()` of a value of this same type.
    unsafe fn from_address(address: usize) -> Self;
}

/// Up to `N` originals, each at its slot, and the wrapper of each slot.
pub struct SlotTable<F: Function, const N: usize> {
    // Atomic only to make a static table `Sync`: one thread uses it, so relaxed accesses
    // (plain loads and stores) are all it needs. 0: free.
    held: [AtomicUsize; N],
    wrappers: [F; N],
}

impl<F: Function, const N: usize> SlotTable<F, N> {
    pub const fn new(wrappers: [F; N]) -> SlotTable<F, N> {
        SlotTable {
            held: [const { AtomicUsize::new(0) }; N],
            wrappers,
        }
    }

    /// The wrapper to stand in front of `original`, whose slot is given the first time it is
    /// met. `None` if `original` is a wrapper itself, or if every slot holds another original
    /// (which [`SlotTable::is_wrapper`] tells apart).
    #[inline(always)]
    pub fn wrapper_for(&self, original: F) -> Option<F> {
        let address = original.address();
        for (slot, held) in self.held.iter().enumerate() {
            let held = held.load(Ordering::Relaxed);
            if held == address {
                return Some(self.wrappers[slot]);
            }
            if held == 0 {
                return self.fill(slot, address);
            }
        }
        None
    }

    #[cold]
    #[inline(never)]
    fn fill(&self, slot: usize, address: usize) -> Option<F> {
        if self.wrappers.iter().any(|w| w.address() == address) {
            return None;
        }
        self.held[slot].store(address, Ordering::Relaxed);
        Some(self.wrappers[slot])
    }

    /// Whether `f` is one of the table's wrappers.
    pub fn is_wrapper(&self, f: F) -> bool {
        self.wrappers.iter().any(|w| w.address() == f.address())
    }

    /// The original at `SLOT`, for its wrapper, which `wrapper_for` gives out only once the
    /// slot is filled. `None` before.
    #[inline(always)]
    pub fn original<const SLOT: usize>(&self) -> Option<F> {
        match self.held[SLOT].load(Ordering::Relaxed) {
            0 => None,
            // SAFETY: only `fill` writes a slot, with the address of an `F`.
            address => Some(unsafe { F::from_address(address) }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Callback = fn(u32) -> u32;

    impl Function for Callback {
        fn address(self) -> usize {
            self as usize
        }
        unsafe fn from_address(address: usize) -> Self {
            // SAFETY: as the caller promises.
            unsafe { core::mem::transmute::<usize, Callback>(address) }
        }
    }

    // Distinct bodies, so that no two are merged into one address.
    fn a(x: u32) -> u32 {
        x + 1
    }
    fn b(x: u32) -> u32 {
        x * 3
    }
    fn c(x: u32) -> u32 {
        x ^ 0x55
    }
    fn wrapper_0(x: u32) -> u32 {
        x.rotate_left(1)
    }
    fn wrapper_1(x: u32) -> u32 {
        x.rotate_left(2)
    }

    fn table() -> SlotTable<Callback, 2> {
        SlotTable::new([wrapper_0 as Callback, wrapper_1 as Callback])
    }

    #[test]
    fn each_function_gets_its_slot_once() {
        let t = table();
        assert_eq!(t.original::<0>().map(|f| f(1)), None);
        assert_eq!(t.wrapper_for(a).map(|w| w(1)), Some(wrapper_0(1)));
        assert_eq!(t.wrapper_for(b).map(|w| w(1)), Some(wrapper_1(1)));
        assert_eq!(t.wrapper_for(a).map(|w| w(1)), Some(wrapper_0(1)));
        assert_eq!(t.original::<0>().map(|f| f(7)), Some(a(7)));
        assert_eq!(t.original::<1>().map(|f| f(7)), Some(b(7)));
    }

    #[test]
    fn a_wrapper_is_never_an_original() {
        let t = table();
        assert!(t.wrapper_for(wrapper_1).is_none());
        assert!(t.is_wrapper(wrapper_1));
        assert_eq!(t.original::<0>().map(|f| f(1)), None);
        assert!(t.wrapper_for(a).is_some());
        assert!(!t.is_wrapper(a));
        assert!(t.wrapper_for(wrapper_0).is_none());
    }

    #[test]
    fn a_full_table_keeps_its_slots() {
        let t = table();
        assert!(t.wrapper_for(a).is_some());
        assert!(t.wrapper_for(b).is_some());
        assert!(t.wrapper_for(c).is_none());
        assert!(!t.is_wrapper(c));
        assert_eq!(t.wrapper_for(b).map(|w| w(5)), Some(wrapper_1(5)));
        assert_eq!(t.original::<1>().map(|f| f(5)), Some(b(5)));
    }
}
