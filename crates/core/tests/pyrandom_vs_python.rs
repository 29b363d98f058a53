//! `pyrandom::PyRandom` against CPython's own `random` module on thousands of seeds: integer seeds (small,
//! negative, above 2^32), str seeds (ASCII and not) and bytes seeds; `random()`, `getrandbits(32)`,
//! `shuffle` of a 10-list, `randint`. Needs `python3` on PATH (CI and every developer machine have it);
//! NumPy's legacy generator is checked against NumPy itself in `tests/compat/sglang_workload.sh`.

use servebench_core::pyrandom::{PyRandom, PySeed};
use std::process::Command;

const SCRIPT: &str = r#"
import random, sys
def seeds():
    for i in range(1500):
        yield ("int", i)
    for i in (-1, -12345, 2**32, 2**32 + 7, 2**63 - 1, 2**64 + 3, -(2**70)):
        yield ("int", i)
    for i in range(400):
        yield ("str", "q%d: Which option is correct?" % i)
    for s in ("", "é", "日本語の質問", " leading space"):
        yield ("str", s)
    for i in range(200):
        yield ("bytes", bytes([(i * 7 + k) % 256 for k in range(i % 40)]))
for kind, s in seeds():
    r = random.Random(s)
    x = list(range(10))
    a = r.random()
    b = r.getrandbits(32)
    r.shuffle(x)
    c = r.randint(0, 1000)
    key = s.hex() if kind == "bytes" else s
    print(kind, repr(a), b, ",".join(map(str, x)), c, key, sep="\t")
"#;

#[test]
fn pyrandom_equals_cpython_on_thousands_of_seeds() {
    let out = Command::new("python3")
        .args(["-c", SCRIPT])
        .output()
        .expect("python3 is needed for this test (CPython's random is the reference)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut n = 0;
    for line in text.lines() {
        let f: Vec<&str> = line.splitn(6, '\t').collect();
        let (kind, key) = (f[0], f[5]);
        let bytes: Vec<u8>;
        let mut r = match kind {
            "int" => PyRandom::new(PySeed::Int(key.parse::<i128>().unwrap())),
            "str" => PyRandom::new(PySeed::Str(key)),
            _ => {
                bytes = (0..key.len() / 2)
                    .map(|i| u8::from_str_radix(&key[2 * i..2 * i + 2], 16).unwrap())
                    .collect();
                PyRandom::new(PySeed::Bytes(&bytes))
            }
        };
        let a = r.random();
        assert_eq!(
            a,
            f[1].parse::<f64>().unwrap(),
            "random() for {kind} {key:?}"
        );
        assert_eq!(
            r.getrandbits(32).to_string(),
            f[2],
            "getrandbits for {kind} {key:?}"
        );
        let mut x: Vec<u32> = (0..10).collect();
        r.shuffle(&mut x);
        let shown: Vec<String> = x.iter().map(u32::to_string).collect();
        assert_eq!(shown.join(","), f[3], "shuffle for {kind} {key:?}");
        assert_eq!(
            r.randint(0, 1000).to_string(),
            f[4],
            "randint for {kind} {key:?}"
        );
        n += 1;
    }
    assert_eq!(n, 1500 + 7 + 400 + 4 + 200);
}
