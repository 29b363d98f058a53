//! Python's random numbers, bit for bit: the Mersenne Twister (MT19937) as CPython's `random`
//! module and NumPy's legacy `np.random` (`RandomState`) use it.
//!
//! Reference tools draw their workloads with these generators (`sglang.bench_serving` seeds
//! `random.seed(seed)` and `np.random.seed(seed)`, then draws lengths with `np.random.randint`
//! and shuffles ShareGPT with `random.shuffle`; evalscope shuffles GPQA options with
//! `random.shuffle`). Reproducing them exactly is what makes "the same `--seed` gives the same
//! workload" true. Written from the published algorithms (Matsumoto & Nishimura's MT19937
//! reference, CPython's `_randommodule.c`/`random.py` and NumPy's `distributions.c` semantics);
//! checked against Python's own modules in the unit tests below and in `tests/compat/`.

use sha2::{Digest, Sha512};

const N: usize = 624;
const M: usize = 397;
const MATRIX_A: u32 = 0x9908_b0df;
const UPPER_MASK: u32 = 0x8000_0000;
const LOWER_MASK: u32 = 0x7fff_ffff;

/// The MT19937 generator state (624 words and a position).
#[derive(Clone)]
pub struct Mt19937 {
    mt: [u32; N],
    index: usize,
}

impl std::fmt::Debug for Mt19937 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mt19937")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl Mt19937 {
    /// `init_genrand(seed)`: NumPy's legacy `np.random.seed(int)` uses this.
    pub fn from_u32(seed: u32) -> Self {
        let mut mt = [0u32; N];
        mt[0] = seed;
        for i in 1..N {
            let prev = mt[i - 1];
            mt[i] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(i as u32);
        }
        Self { mt, index: N }
    }

    /// `init_by_array(key)`: CPython's `random.seed(...)` uses this.
    pub fn from_key(key: &[u32]) -> Self {
        let mut s = Self::from_u32(19_650_218);
        let mt = &mut s.mt;
        let key: &[u32] = if key.is_empty() { &[0] } else { key };
        let (mut i, mut j) = (1usize, 0usize);
        for _ in 0..N.max(key.len()) {
            let prev = mt[i - 1];
            mt[i] = (mt[i] ^ (prev ^ (prev >> 30)).wrapping_mul(1_664_525))
                .wrapping_add(key[j])
                .wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= N {
                mt[0] = mt[N - 1];
                i = 1;
            }
            if j >= key.len() {
                j = 0;
            }
        }
        for _ in 0..N - 1 {
            let prev = mt[i - 1];
            mt[i] =
                (mt[i] ^ (prev ^ (prev >> 30)).wrapping_mul(1_566_083_941)).wrapping_sub(i as u32);
            i += 1;
            if i >= N {
                mt[0] = mt[N - 1];
                i = 1;
            }
        }
        mt[0] = 0x8000_0000;
        s
    }

    fn twist(&mut self) {
        for k in 0..N {
            let y = (self.mt[k] & UPPER_MASK) | (self.mt[(k + 1) % N] & LOWER_MASK);
            let mag = if y & 1 == 1 { MATRIX_A } else { 0 };
            self.mt[k] = self.mt[(k + M) % N] ^ (y >> 1) ^ mag;
        }
        self.index = 0;
    }

    /// `genrand_uint32()`: the next 32-bit output.
    pub fn next_u32(&mut self) -> u32 {
        if self.index >= N {
            self.twist();
        }
        let mut y = self.mt[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }
}

/// CPython's `random.Random`.
#[derive(Clone, Debug)]
pub struct PyRandom {
    mt: Mt19937,
}

/// A seed as Python's `random.seed(a)` takes it (version 2).
#[derive(Clone, Copy, Debug)]
pub enum PySeed<'a> {
    Int(i128),
    Str(&'a str),
    Bytes(&'a [u8]),
}

impl PyRandom {
    /// `random.Random(a)` / `random.seed(a)`.
    pub fn new(seed: PySeed<'_>) -> Self {
        let key = match seed {
            PySeed::Int(n) => words_of_int(n.unsigned_abs()),
            PySeed::Str(s) => words_of_bytes_with_digest(s.as_bytes()),
            PySeed::Bytes(b) => words_of_bytes_with_digest(b),
        };
        Self {
            mt: Mt19937::from_key(&key),
        }
    }

    /// `random.seed(n)` for an integer seed.
    pub fn from_int(n: i128) -> Self {
        Self::new(PySeed::Int(n))
    }

    /// `random.random()`: a float in [0, 1) with 53 random bits.
    pub fn random(&mut self) -> f64 {
        let a = (self.mt.next_u32() >> 5) as f64;
        let b = (self.mt.next_u32() >> 6) as f64;
        (a * 67_108_864.0 + b) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// `random.getrandbits(k)` for k ≤ 64.
    pub fn getrandbits(&mut self, k: u32) -> u64 {
        assert!(k <= 64, "getrandbits is implemented up to 64 bits");
        if k == 0 {
            return 0;
        }
        if k <= 32 {
            return u64::from(self.mt.next_u32() >> (32 - k));
        }
        let low = u64::from(self.mt.next_u32());
        let high = u64::from(self.mt.next_u32() >> (64 - k));
        low | (high << 32)
    }

    /// `random._randbelow(n)` (the getrandbits rejection rule): an int in [0, n), n > 0.
    pub fn randbelow(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        let k = 64 - n.leading_zeros();
        loop {
            let r = self.getrandbits(k);
            if r < n {
                return r;
            }
        }
    }

    /// `random.shuffle(x)` in place.
    pub fn shuffle<T>(&mut self, x: &mut [T]) {
        for i in (1..x.len()).rev() {
            let j = self.randbelow(i as u64 + 1) as usize;
            x.swap(i, j);
        }
    }

    /// `random.randint(a, b)`: an int in [a, b] (= `randrange(a, b + 1)`).
    pub fn randint(&mut self, a: i64, b: i64) -> i64 {
        let width = (b as i128 - a as i128 + 1).max(1) as u64;
        a.wrapping_add(self.randbelow(width) as i64)
    }

    /// `random.choice(seq)`'s index for a sequence of length `len` > 0.
    pub fn choice_index(&mut self, len: usize) -> usize {
        self.randbelow(len as u64) as usize
    }
}

/// The little-endian 32-bit words of |n| (at least one), as CPython's `random_seed` builds its key.
fn words_of_int(n: u128) -> Vec<u32> {
    let mut words = Vec::with_capacity(4);
    let mut v = n;
    loop {
        words.push(v as u32);
        v >>= 32;
        if v == 0 {
            break;
        }
    }
    words
}

/// Version-2 seeding of str/bytes: `int.from_bytes(a + sha512(a).digest(), 'big')`, then its words.
fn words_of_bytes_with_digest(a: &[u8]) -> Vec<u32> {
    let mut bytes = a.to_vec();
    bytes.extend_from_slice(&Sha512::digest(a));
    // Big-endian integer → little-endian 32-bit words: walk from the least significant byte.
    let mut words: Vec<u32> = bytes
        .rchunks(4)
        .map(|chunk| chunk.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)))
        .collect();
    while words.len() > 1 && words.last() == Some(&0) {
        words.pop();
    }
    words
}

/// NumPy's legacy global generator (`np.random.seed`, `np.random.randint`).
#[derive(Clone, Debug)]
pub struct NumpyLegacy {
    mt: Mt19937,
}

impl NumpyLegacy {
    /// `np.random.seed(seed)` with an integer seed (NumPy accepts 0 ≤ seed < 2³²).
    pub fn seed(seed: u32) -> Self {
        Self {
            mt: Mt19937::from_u32(seed),
        }
    }

    /// `np.random.randint(low, high, size=n).tolist()` (int64, high exclusive), or `None`
    /// where NumPy raises (`low >= high`).
    pub fn randint(&mut self, low: i64, high: i64, n: usize) -> Option<Vec<i64>> {
        if low >= high {
            return None;
        }
        let rng = (high as i128 - 1 - low as i128) as u64;
        Some(
            (0..n)
                .map(|_| low.wrapping_add(self.bounded(rng) as i64))
                .collect(),
        )
    }

    /// A value in [0, rng] by NumPy's masked rejection rule (the one `RandomState` keeps).
    fn bounded(&mut self, rng: u64) -> u64 {
        if rng == 0 {
            return 0;
        }
        if rng == u64::from(u32::MAX) {
            return u64::from(self.mt.next_u32());
        }
        let mask = mask_for(rng);
        if rng < u64::from(u32::MAX) {
            loop {
                let v = u64::from(self.mt.next_u32()) & mask;
                if v <= rng {
                    return v;
                }
            }
        }
        loop {
            let v = self.next_u64() & mask;
            if v <= rng {
                return v;
            }
        }
    }

    fn next_u64(&mut self) -> u64 {
        let hi = u64::from(self.mt.next_u32());
        let lo = u64::from(self.mt.next_u32());
        (hi << 32) | lo
    }
}

/// The smallest all-ones bit mask ≥ max.
fn mask_for(max: u64) -> u64 {
    let mut m = max;
    m |= m >> 1;
    m |= m >> 2;
    m |= m >> 4;
    m |= m >> 8;
    m |= m >> 16;
    m |= m >> 32;
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values printed by CPython 3.11 and NumPy 1.26/2.x (see tests/compat/ for the
    // thousands-of-seeds comparison against the live modules).

    #[test]
    fn mt19937_reference_output() {
        // The MT19937 reference: init_by_array({0x123, 0x234, 0x345, 0x456}) → 1067595299 ...
        let mut mt = Mt19937::from_key(&[0x123, 0x234, 0x345, 0x456]);
        let first: Vec<u32> = (0..5).map(|_| mt.next_u32()).collect();
        assert_eq!(
            first,
            [
                1_067_595_299,
                955_945_823,
                477_289_528,
                4_107_218_783,
                4_228_976_476
            ]
        );
    }

    #[test]
    fn python_random_seeded_with_ints() {
        // python3 -c 'import random; random.seed(42); print(random.random())'
        let mut r = PyRandom::from_int(42);
        assert_eq!(r.random(), 0.6394267984578837);
        let mut r = PyRandom::from_int(0);
        assert_eq!(r.random(), 0.8444218515250481);
        let mut r = PyRandom::from_int(1);
        assert_eq!(r.random(), 0.13436424411240122);
    }

    #[test]
    fn python_shuffle_seed_42() {
        // random.seed(42); x = list(range(10)); random.shuffle(x); print(x)
        let mut r = PyRandom::from_int(42);
        let mut x: Vec<u32> = (0..10).collect();
        r.shuffle(&mut x);
        assert_eq!(x, [7, 3, 2, 8, 5, 6, 9, 4, 0, 1]);
    }

    #[test]
    fn numpy_legacy_randint() {
        let mut np = NumpyLegacy::seed(0);
        assert_eq!(np.randint(0, 10, 5).unwrap(), [5, 0, 3, 3, 7]);
        let mut np = NumpyLegacy::seed(1);
        assert_eq!(np.randint(0, 100, 3).unwrap(), [37, 12, 72]);
        assert!(NumpyLegacy::seed(1).randint(5, 5, 1).is_none());
        // A range of one value consumes no draw.
        let mut a = NumpyLegacy::seed(3);
        assert_eq!(a.randint(7, 8, 2).unwrap(), [7, 7]);
        assert_eq!(a.randint(0, 10, 1), NumpyLegacy::seed(3).randint(0, 10, 1));
    }

    #[test]
    fn str_and_bytes_seeds_agree() {
        let a = PyRandom::new(PySeed::Str("abc")).random();
        let b = PyRandom::new(PySeed::Bytes(b"abc")).random();
        assert_eq!(a, b);
        assert_eq!(a, 0.7720246314157545);
    }

    #[test]
    fn sglang_seed_workload_draw() {
        // sglang.bench_serving 5600/1400, ratio 0.8, 1 prompt, seed 1: inputs, then outputs.
        let mut np = NumpyLegacy::seed(1);
        assert_eq!(np.randint(4480, 5601, 1).unwrap(), [5541]);
        assert_eq!(np.randint(1120, 1401, 1).unwrap(), [1355]);
    }
}
