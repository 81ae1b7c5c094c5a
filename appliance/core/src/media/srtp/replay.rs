//! Per-SSRC packet indices: rollover-counter estimation (RFC 3711 §3.3.1, Appendix A) and the
//! sliding replay window (RFC 3711 §3.3.2).

use super::SrtpError;

/// The highest index accepted so far and which of the `64 * WORDS` indices up to it were seen.
///
/// The bitmap is a ring: index `i` lives at bit `i mod (64 * WORDS)`, so moving forward clears
/// only the bits that leave the window instead of shifting the whole map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ReplayWindow<const WORDS: usize> {
    highest: u64,
    seen: [u64; WORDS],
}

impl<const WORDS: usize> ReplayWindow<WORDS> {
    /// Indices the window spans.
    pub(super) const SIZE: u64 = 64 * WORDS as u64;

    /// A window whose first accepted packet has `index`.
    pub(super) fn new(index: u64) -> Self {
        let mut window = Self {
            highest: index,
            seen: [0; WORDS],
        };
        window.set(index);
        window
    }

    /// The highest index accepted so far.
    pub(super) fn highest(&self) -> u64 {
        self.highest
    }

    /// Whether a packet with `index` may still be accepted. Changes nothing.
    pub(super) fn check(&self, index: u64) -> Result<(), SrtpError> {
        if index > self.highest {
            return Ok(());
        }
        if self.highest - index >= Self::SIZE {
            return Err(SrtpError::TooOld);
        }
        if self.is_set(index) {
            return Err(SrtpError::Replayed);
        }
        Ok(())
    }

    /// Records `index` as accepted; call only after the packet authenticated and
    /// [`Self::check`] allowed it.
    pub(super) fn mark(&mut self, index: u64) {
        if index > self.highest {
            let advance = index - self.highest;
            if advance >= Self::SIZE {
                self.seen = [0; WORDS];
            } else {
                for skipped in self.highest + 1..=index {
                    self.clear(skipped);
                }
            }
            self.highest = index;
        }
        self.set(index);
    }

    fn position(index: u64) -> (usize, u64) {
        let bit = index % Self::SIZE;
        // The quotient is below WORDS, so it fits in usize.
        ((bit / 64) as usize, 1 << (bit % 64))
    }

    fn is_set(&self, index: u64) -> bool {
        let (word, mask) = Self::position(index);
        self.seen[word] & mask != 0
    }

    fn set(&mut self, index: u64) {
        let (word, mask) = Self::position(index);
        self.seen[word] |= mask;
    }

    fn clear(&mut self, index: u64) {
        let (word, mask) = Self::position(index);
        self.seen[word] &= !mask;
    }
}

/// The 48-bit SRTP index (rollover counter and sequence number) of a packet with sequence number
/// `seq`, given the highest index accepted so far on its SSRC (RFC 3711 Appendix A).
///
/// Fails with [`SrtpError::TooOld`] for a packet that would lie before the first rollover, and
/// with [`SrtpError::KeyExhausted`] past the last one.
pub(super) fn estimate_index(highest: u64, seq: u16) -> Result<u64, SrtpError> {
    let roc = i64::try_from(highest >> 16).map_err(|_| SrtpError::KeyExhausted)?;
    let s_l = i64::from(highest as u16);
    let seq_i = i64::from(seq);
    let guess = if s_l < 0x8000 {
        if seq_i - s_l > 0x8000 { roc - 1 } else { roc }
    } else if s_l - 0x8000 > seq_i {
        roc + 1
    } else {
        roc
    };
    if guess < 0 {
        return Err(SrtpError::TooOld);
    }
    let guess = u32::try_from(guess).map_err(|_| SrtpError::KeyExhausted)?;
    Ok(index_of(guess, seq))
}

/// The SRTP index of rollover counter `roc` and sequence number `seq`.
pub(super) fn index_of(roc: u32, seq: u16) -> u64 {
    (u64::from(roc) << 16) | u64::from(seq)
}

/// The rollover counter part of an SRTP index.
pub(super) fn roc_of(index: u64) -> u32 {
    // An index is built by `index_of`, so it has at most 48 bits.
    (index >> 16) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    type Window = ReplayWindow<2>;

    #[test]
    fn window_accepts_each_index_once() {
        let mut window = Window::new(1000);
        assert_eq!(window.check(1000), Err(SrtpError::Replayed));
        assert_eq!(window.check(1001), Ok(()));
        assert_eq!(window.check(999), Ok(()));
        window.mark(999);
        assert_eq!(window.check(999), Err(SrtpError::Replayed));
        window.mark(1005);
        assert_eq!(window.highest(), 1005);
        for skipped in 1001..1005 {
            assert_eq!(window.check(skipped), Ok(()), "{skipped}");
        }
        assert_eq!(window.check(1005), Err(SrtpError::Replayed));
    }

    #[test]
    fn window_edge_is_exact() {
        let mut window = Window::new(500);
        window.mark(500 + Window::SIZE - 1);
        // 500 is still the oldest index inside the window and was seen.
        assert_eq!(window.check(500), Err(SrtpError::Replayed));
        assert_eq!(window.check(499), Err(SrtpError::TooOld));
        window.mark(500 + Window::SIZE);
        assert_eq!(window.check(500), Err(SrtpError::TooOld));
        assert_eq!(window.check(501), Ok(()));
    }

    #[test]
    fn large_jump_clears_the_window() {
        let mut window = Window::new(7);
        window.mark(7 + 10 * Window::SIZE);
        for index in 7 + 9 * Window::SIZE + 1..7 + 10 * Window::SIZE {
            assert_eq!(window.check(index), Ok(()), "{index}");
        }
    }

    #[test]
    fn estimate_follows_rfc3711_appendix_a() {
        // Same cycle.
        assert_eq!(
            estimate_index(index_of(3, 100), 200),
            Ok(index_of(3, 100 + 100))
        );
        // Forward across the wrap.
        assert_eq!(estimate_index(index_of(3, 65_530), 2), Ok(index_of(4, 2)));
        // Late packet from before the wrap.
        assert_eq!(
            estimate_index(index_of(4, 2), 65_530),
            Ok(index_of(3, 65_530))
        );
        // Before the first cycle: cannot exist.
        assert_eq!(
            estimate_index(index_of(0, 2), 65_530),
            Err(SrtpError::TooOld)
        );
        // Past the last cycle.
        assert_eq!(
            estimate_index(index_of(u32::MAX, 65_530), 2),
            Err(SrtpError::KeyExhausted)
        );
        assert_eq!(roc_of(index_of(7, 9)), 7);
    }
}
