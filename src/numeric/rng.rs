//! Reproducible random streams. Every draw in dmoe comes from a generator seeded from a user seed and
//! a path of stream indices (e.g. cell, repetition, machine), so a result never depends on which
//! thread ran first.

use rand::SeedableRng;

/// The generator used everywhere: xoshiro256++, a fixed published algorithm (unlike `StdRng`, whose
/// algorithm may change between rand versions), so seeds reproduce across builds.
pub type Rng = rand::rngs::Xoshiro256PlusPlus;

/// SplitMix64 finaliser: a bijective mix that turns nearby integers into unrelated ones.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A generator for the stream `(seed, path[0], path[1], ...)`: distinct paths give independent-looking
/// streams, equal paths give identical ones.
pub fn stream(seed: u64, path: &[u64]) -> Rng {
    let key = path.iter().fold(mix(seed), |acc, &p| mix(acc ^ mix(p.wrapping_add(1))));
    Rng::seed_from_u64(key)
}

/// The stream `(seed, path..., tail...)`: a stream under the run's path, e.g. one machine's.
pub fn substream(seed: u64, path: &[u64], tail: &[u64]) -> Rng {
    stream(seed, &[path, tail].concat())
}

#[cfg(test)]
mod tests {
    use rand::RngExt;

    #[test]
    fn same_path_same_stream_other_path_other_stream() {
        let a: u64 = super::stream(7, &[1, 2]).random();
        let b: u64 = super::stream(7, &[1, 2]).random();
        let c: u64 = super::stream(7, &[2, 1]).random();
        let d: u64 = super::stream(8, &[1, 2]).random();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
    }
}
