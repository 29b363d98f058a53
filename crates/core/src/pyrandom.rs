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

/// NumPy's legacy global generator (`np.random.seed`, `randint`, `random_sample`, `exponential`,
/// `standard_normal`, `gamma`), draw for draw as `RandomState` (numpy/random/src/legacy/legacy-distributions.c).
#[derive(Clone, Debug)]
pub struct NumpyLegacy {
    mt: Mt19937,
    /// The second value of the last polar Box–Muller pair (`has_gauss`/`gauss` of the C state).
    gauss: Option<f64>,
}

impl NumpyLegacy {
    /// `np.random.seed(seed)` with an integer seed (NumPy accepts 0 ≤ seed < 2³²).
    pub fn seed(seed: u32) -> Self {
        Self {
            mt: Mt19937::from_u32(seed),
            gauss: None,
        }
    }

    /// `np.random.random_sample()`: 53 random bits, in [0, 1).
    pub fn random_sample(&mut self) -> f64 {
        let a = self.mt.next_u32() >> 5;
        let b = self.mt.next_u32() >> 6;
        (f64::from(a) * 67_108_864.0 + f64::from(b)) / 9_007_199_254_740_992.0
    }

    /// `np.random.standard_exponential()`: −ln(1 − U).
    pub fn standard_exponential(&mut self) -> f64 {
        -(1.0 - self.random_sample()).ln()
    }

    /// `np.random.exponential(scale)`.
    pub fn exponential(&mut self, scale: f64) -> f64 {
        scale * self.standard_exponential()
    }

    /// `np.random.standard_normal()`: the legacy polar method, which keeps the pair's second value.
    pub fn standard_normal(&mut self) -> f64 {
        if let Some(g) = self.gauss.take() {
            return g;
        }
        loop {
            let x1 = 2.0 * self.random_sample() - 1.0;
            let x2 = 2.0 * self.random_sample() - 1.0;
            let r2 = x1 * x1 + x2 * x2;
            if r2 < 1.0 && r2 != 0.0 {
                let f = (-2.0 * r2.ln() / r2).sqrt();
                self.gauss = Some(f * x1);
                return f * x2;
            }
        }
    }

    /// `np.random.standard_gamma(shape)` (shape ≥ 0): exponential at 1, Johnk-style rejection below 1,
    /// Marsaglia–Tsang above.
    pub fn standard_gamma(&mut self, shape: f64) -> f64 {
        if shape == 1.0 {
            return self.standard_exponential();
        }
        if shape == 0.0 {
            return 0.0;
        }
        if shape < 1.0 {
            loop {
                let u = self.random_sample();
                let v = self.standard_exponential();
                if u <= 1.0 - shape {
                    let x = u.powf(1.0 / shape);
                    if x <= v {
                        return x;
                    }
                } else {
                    let y = -((1.0 - u) / shape).ln();
                    let x = (1.0 - shape + shape * y).powf(1.0 / shape);
                    if x <= v + y {
                        return x;
                    }
                }
            }
        }
        let b = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * b).sqrt();
        loop {
            let (x, mut v) = loop {
                let x = self.standard_normal();
                let v = 1.0 + c * x;
                if v > 0.0 {
                    break (x, v);
                }
            };
            v = v * v * v;
            let u = self.random_sample();
            if u < 1.0 - 0.0331 * (x * x) * (x * x) {
                return b * v;
            }
            if u.ln() < 0.5 * x * x + b * (1.0 - v + v.ln()) {
                return b * v;
            }
        }
    }

    /// `np.random.gamma(shape, scale)`.
    pub fn gamma(&mut self, shape: f64, scale: f64) -> f64 {
        scale * self.standard_gamma(shape)
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
    fn numpy_legacy_continuous_draws() {
        // np.random.seed(1); np.random.random_sample() twice (NumPy 2.4.6)
        let mut np = NumpyLegacy::seed(1);
        assert_eq!(np.random_sample(), 0.417022004702574);
        assert_eq!(np.random_sample(), 0.7203244934421581);
        // For each seed, printed by NumPy 2.4.6 (legacy RandomState):
        //   np.random.seed(s); [np.random.exponential(0.25) for _ in range(3)]
        //   + [np.random.gamma(k, 2.0) for k in (0.25, 0.5, 2.0, 4.0, 1.0)]
        //   + [np.random.standard_normal() for _ in range(3)] + [np.random.gamma(3.0, 0.1) for _ in range(2)]
        let expected: [(u32, [f64; 13]); 3] = [
            (
                0,
                [
                    0.1989686270407775,
                    0.31398269074145946,
                    0.2308057864510172,
                    0.1762964684755326,
                    0.9045287939194072,
                    7.787598234549136,
                    5.561573068420176,
                    5.196508307850881,
                    0.44386323274542566,
                    0.33367432737426683,
                    1.4940790731576061,
                    0.23454787480047515,
                    0.13853305202379007,
                ],
            ),
            (
                1,
                [
                    0.13490145931479636,
                    0.31853131325332606,
                    2.859533966077148e-05,
                    0.016709742373452612,
                    0.017052832167752503,
                    1.2156038381954046,
                    2.646765554825771,
                    2.3117594194188444,
                    0.31903909605709857,
                    -0.2493703754774101,
                    1.462107937044974,
                    0.051888851208333565,
                    0.369847616489229,
                ],
            ),
            (
                42,
                [
                    0.11731702249421477,
                    0.7525303577293803,
                    0.32918642338636234,
                    0.256889623661706,
                    0.048668580749843884,
                    4.106970871426502,
                    11.923990117717437,
                    7.007114950316624,
                    -0.4694743859349521,
                    0.5425600435859647,
                    -0.46341769281246226,
                    0.19761434133567202,
                    0.027109772220884527,
                ],
            ),
        ];
        for (seed, want) in expected {
            let mut np = NumpyLegacy::seed(seed);
            let mut got: Vec<f64> = (0..3).map(|_| np.exponential(0.25)).collect();
            got.extend([0.25, 0.5, 2.0, 4.0, 1.0].map(|k| np.gamma(k, 2.0)));
            got.extend((0..3).map(|_| np.standard_normal()));
            got.extend((0..2).map(|_| np.gamma(3.0, 0.1)));
            assert_eq!(got, want, "seed {seed}");
        }
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
