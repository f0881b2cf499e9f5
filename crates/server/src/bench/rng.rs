//! SplitMix64: a small, fast, seedable generator, so that a workload is the same bytes on every
//! machine and every version of our dependencies. Not for anything secret.

/// Weyl sequence increment of SplitMix64.
const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// The SplitMix64 output function: a bijection that scrambles every bit.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    /// An independent stream for item `stream` of a run seeded with `seed`.
    pub fn for_stream(seed: u64, stream: u64) -> SplitMix64 {
        SplitMix64 { state: mix64(seed ^ mix64(stream.wrapping_add(GOLDEN_GAMMA))) }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        mix64(self.state)
    }

    pub fn nonzero_u64(&mut self) -> u64 {
        loop {
            let value = self.next_u64();
            if value != 0 {
                return value;
            }
        }
    }

    pub fn nonzero_u128(&mut self) -> u128 {
        loop {
            let value = ((self.next_u64() as u128) << 64) | self.next_u64() as u128;
            if value != 0 {
                return value;
            }
        }
    }

    /// Uniform in `0..bound` (`bound` > 0), without modulo bias worth noticing (Lemire's
    /// multiply-shift; the bias is below 2⁻³² for the bounds used here).
    pub fn below(&mut self, bound: u64) -> u64 {
        ((self.next_u64() as u128 * bound as u128) >> 64) as u64
    }

    /// Uniform in `[0, 1)` with 53 bits.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn uniform(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit()
    }

    /// Log-uniform in `[low, high)`: as many values between 1 and 10 ms as between 1 and 10 s.
    pub fn log_uniform(&mut self, low: f64, high: f64) -> f64 {
        (low.ln() + (high.ln() - low.ln()) * self.unit()).exp()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_published_splitmix64_sequence() {
        // First outputs for seed 1234567 of the reference implementation (Vigna, 2015).
        let mut rng = SplitMix64::new(1234567);
        let first: Vec<u64> = (0..3).map(|_| rng.next_u64()).collect();
        assert_eq!(first, [6457827717110365317, 3203168211198807973, 9817491932198370423]);
    }

    #[test]
    fn draws_stay_in_range_and_streams_differ() {
        let mut rng = SplitMix64::new(3);
        for _ in 0..10_000 {
            assert!(rng.below(97) < 97);
            let x = rng.log_uniform(1e6, 1e10);
            assert!((1e6..1e10).contains(&x), "{x}");
        }
        let a = SplitMix64::for_stream(1, 0).next_u64();
        let b = SplitMix64::for_stream(1, 1).next_u64();
        let c = SplitMix64::for_stream(2, 0).next_u64();
        assert!(a != b && a != c && b != c);
    }
}
