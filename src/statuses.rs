//! A set of HTTP status codes that may send a request on to the next server.
//!
//! nginx consults its next-upstream logic only for statuses of 300 and above, and HTTP
//! statuses end at 599, so the set covers exactly 300..=599.

/// The lowest status nginx considers for passing a request on (`NGX_HTTP_SPECIAL_RESPONSE`).
pub const LOWEST: u16 = 300;
/// The highest valid HTTP status.
pub const HIGHEST: u16 = 599;

const WORDS: usize = (HIGHEST - LOWEST) as usize / 64 + 1;

/// A fixed-size bit set: membership is two shifts and a load, with no allocation, so it can
/// live in nginx's configuration memory and be asked on every response.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatusSet {
    bits: [u64; WORDS],
}

impl StatusSet {
    /// Whether `status` is in the set. Any number may be asked; those outside 300..=599 never
    /// are.
    #[inline]
    pub fn contains(&self, status: usize) -> bool {
        match status.checked_sub(usize::from(LOWEST)) {
            Some(i) if i <= usize::from(HIGHEST - LOWEST) => {
                self.bits[i / 64] & (1 << (i % 64)) != 0
            }
            _ => false,
        }
    }

    /// Adds `status`, which must be within 300..=599. Returns `false` if it was already there.
    pub(crate) fn insert(&mut self, status: u16) -> bool {
        debug_assert!((LOWEST..=HIGHEST).contains(&status));
        let i = usize::from(status - LOWEST);
        let bit = 1 << (i % 64);
        let fresh = self.bits[i / 64] & bit == 0;
        self.bits[i / 64] |= bit;
        fresh
    }

    pub fn is_empty(&self) -> bool {
        self.bits.iter().all(|w| *w == 0)
    }

    /// The statuses in the set, in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        (LOWEST..=HIGHEST).filter(|s| self.contains(usize::from(*s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn membership() {
        let mut set = StatusSet::default();
        assert!(set.is_empty());
        for s in [300, 363, 364, 404, 599] {
            assert!(set.insert(s));
            assert!(!set.insert(s), "second insert of {s} reports it as present");
        }
        let cases: &[(usize, bool)] = &[
            (0, false),
            (200, false),
            (299, false),
            (300, true),
            (301, false),
            (363, true),
            (364, true),
            (403, false),
            (404, true),
            (598, false),
            (599, true),
            (600, false),
            (usize::MAX, false),
        ];
        for &(status, expected) in cases {
            assert_eq!(set.contains(status), expected, "status {status}");
        }
        assert_eq!(set.iter().collect::<Vec<_>>(), [300, 363, 364, 404, 599]);
    }
}
