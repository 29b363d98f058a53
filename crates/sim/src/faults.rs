//! Seeded per-request fault decisions (`--fail-rate`, `--disconnect-rate`, `--malformed-rate`, and the fault
//! matrix: `--fault NAME[=RATE]` or the request header `x-sim-fault: NAME[,NAME…]`).
//!
//! Each decision is a hash of (global seed, fault kind, request number), where the request number is the one in
//! `x-sim-request-id` (assigned in arrival order), so a run at concurrency 1 injects the same faults every time.
//! A request's `x-sim-fault` header, when present, replaces the drawn matrix faults for that request (so one
//! run can mix them).

use crate::config::FaultConfig;
use crate::rng::{combine, unit_f64};
use crate::SimError;

/// Request header naming the faults of one request (comma-separated [`Fault`] names).
pub const FAULT_HEADER: &str = "x-sim-fault";

/// Number of [`Fault`]s.
pub const FAULT_COUNT: usize = 22;

/// One fault of the matrix. Names (for `--fault` and `x-sim-fault`) are [`Fault::name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// HTTP 500 with an OpenAI-style error body.
    Http500,
    /// HTTP 503 with `Retry-After: 1`.
    Http503,
    /// HTTP 429 with `Retry-After: 1`.
    Http429,
    /// HTTP 404: the model does not exist (vLLM's body).
    Http404Model,
    /// The connection is closed after the request is read, before any response byte.
    ResetBeforeHeaders,
    /// The connection is closed in the middle of the stream (after about half the chunks).
    ResetMidStream,
    /// The stream's head is sent, then nothing (no first token).
    StallFirst,
    /// The first event is sent, then nothing.
    StallMid,
    /// After the first event, `data: {"error": …}` and `[DONE]`.
    ErrorEvent,
    /// One truncated JSON event after the first chunk.
    MalformedJson,
    /// Every byte of the body in its own HTTP chunk (no pauses).
    SplitBytes,
    /// Text with two-byte UTF-8 characters, each split across two reads (5 ms apart).
    Utf8Split,
    /// An event whose JSON holds invalid UTF-8.
    InvalidUtf8,
    /// The first event carries 10 MB of text.
    BigEvent,
    /// No `data: [DONE]` (the body still ends properly).
    NoDone,
    /// `: ping` comment lines before every event.
    Ping,
    /// CRLF line ends.
    Crlf,
    /// `data:` lines ended by a single `\n` (no blank line between events).
    SingleNewline,
    /// A UTF-8 byte-order mark before the first event.
    Bom,
    /// A streamed request is answered with one `application/json` body (as a server that ignores `stream`).
    WrongContentType,
    /// Every byte of the body in its own HTTP chunk, 1 ms apart (one byte per client read).
    BytePerRead,
    /// After `[DONE]` the body never ends (no chunked terminator, connection kept open).
    NoEndAfterDone,
}

impl Fault {
    pub const ALL: [Fault; FAULT_COUNT] = [
        Fault::Http500,
        Fault::Http503,
        Fault::Http429,
        Fault::Http404Model,
        Fault::ResetBeforeHeaders,
        Fault::ResetMidStream,
        Fault::StallFirst,
        Fault::StallMid,
        Fault::ErrorEvent,
        Fault::MalformedJson,
        Fault::SplitBytes,
        Fault::Utf8Split,
        Fault::InvalidUtf8,
        Fault::BigEvent,
        Fault::NoDone,
        Fault::Ping,
        Fault::Crlf,
        Fault::SingleNewline,
        Fault::Bom,
        Fault::WrongContentType,
        Fault::BytePerRead,
        Fault::NoEndAfterDone,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fault::Http500 => "http_500",
            Fault::Http503 => "http_503",
            Fault::Http429 => "http_429",
            Fault::Http404Model => "http_404_model",
            Fault::ResetBeforeHeaders => "reset_before_headers",
            Fault::ResetMidStream => "reset_mid_stream",
            Fault::StallFirst => "stall_first",
            Fault::StallMid => "stall_mid",
            Fault::ErrorEvent => "error_event",
            Fault::MalformedJson => "malformed_json",
            Fault::SplitBytes => "split_bytes",
            Fault::Utf8Split => "utf8_split",
            Fault::InvalidUtf8 => "invalid_utf8",
            Fault::BigEvent => "big_event",
            Fault::NoDone => "no_done",
            Fault::Ping => "ping",
            Fault::Crlf => "crlf",
            Fault::SingleNewline => "single_newline",
            Fault::Bom => "bom",
            Fault::WrongContentType => "wrong_content_type",
            Fault::BytePerRead => "byte_per_read",
            Fault::NoEndAfterDone => "no_end_after_done",
        }
    }

    pub fn parse(name: &str) -> Result<Fault, SimError> {
        let name = name.trim();
        Fault::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                let all: Vec<&str> = Fault::ALL.iter().map(|f| f.name()).collect();
                SimError::Config(format!(
                    "unknown fault {name:?}: use one of {}",
                    all.join(", ")
                ))
            })
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// A set of [`Fault`]s (those of one request).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FaultSet(u32);

impl FaultSet {
    pub fn has(self, f: Fault) -> bool {
        self.0 & f.bit() != 0
    }

    pub fn insert(&mut self, f: Fault) {
        self.0 |= f.bit();
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Parses an `x-sim-fault` value (comma-separated names).
    pub fn parse(list: &str) -> Result<FaultSet, SimError> {
        let mut set = FaultSet::default();
        for name in list.split(',').filter(|n| !n.trim().is_empty()) {
            set.insert(Fault::parse(name)?);
        }
        Ok(set)
    }
}

const SALT_MATRIX: u64 = 0xF417_0000;

/// The matrix faults of request `request_no`: its `x-sim-fault` header when it has one, else those drawn from
/// the configured rates.
pub(crate) fn matrix(
    cfg: &FaultConfig,
    seed: u64,
    request_no: u64,
    header: Option<&str>,
) -> Result<FaultSet, SimError> {
    if let Some(h) = header {
        return FaultSet::parse(h);
    }
    let mut set = FaultSet::default();
    for f in Fault::ALL {
        let rate = cfg.rates[f as usize];
        if rate > 0.0 {
            let draw = combine(combine(seed, SALT_MATRIX + f as u64), request_no);
            if unit_f64(draw) < rate {
                set.insert(f);
            }
        }
    }
    Ok(set)
}

/// What goes wrong with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct FaultPlan {
    /// Answer HTTP 500 instead of generating.
    pub(crate) fail: bool,
    /// Drop the connection after this many text chunks (1..=chunks; at `chunks` the final `[DONE]` is withheld).
    pub(crate) disconnect_after: Option<u32>,
    /// Insert a malformed event before this chunk (0-based).
    pub(crate) malformed_at: Option<u32>,
}

const SALT_FAIL: u64 = 0xFA11;
const SALT_DISCONNECT: u64 = 0xD15C;
const SALT_MALFORMED: u64 = 0xBAD0;

pub(crate) fn decide(cfg: &FaultConfig, seed: u64, request_no: u64, chunks: u32) -> FaultPlan {
    let draw = |salt: u64| combine(combine(seed, salt), request_no);
    let hit = |salt: u64, rate: f64| rate > 0.0 && unit_f64(draw(salt)) < rate;
    let chunks = chunks.max(1);
    let pick = |salt: u64| (combine(draw(salt), 1) % u64::from(chunks)) as u32;
    FaultPlan {
        fail: hit(SALT_FAIL, cfg.fail_rate),
        disconnect_after: hit(SALT_DISCONNECT, cfg.disconnect_rate)
            .then(|| 1 + pick(SALT_DISCONNECT)),
        malformed_at: hit(SALT_MALFORMED, cfg.malformed_rate).then(|| pick(SALT_MALFORMED)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_zero_and_one() {
        let none = FaultConfig::default();
        for n in 0..100 {
            assert_eq!(decide(&none, 1, n, 10), FaultPlan::default());
        }
        let all = FaultConfig {
            fail_rate: 1.0,
            disconnect_rate: 1.0,
            malformed_rate: 1.0,
            ..FaultConfig::default()
        };
        for n in 0..100 {
            let f = decide(&all, 1, n, 10);
            assert!(f.fail);
            assert!((1..=10).contains(&f.disconnect_after.unwrap()));
            assert!(f.malformed_at.unwrap() < 10);
        }
    }

    #[test]
    fn matrix_names_round_trip_and_the_header_wins() {
        for f in Fault::ALL {
            assert_eq!(Fault::parse(f.name()).unwrap(), f);
        }
        assert!(Fault::parse("nope")
            .unwrap_err()
            .to_string()
            .contains("http_429"));
        let mut cfg = FaultConfig::default();
        cfg.rates[Fault::Ping as usize] = 1.0;
        let drawn = matrix(&cfg, 1, 7, None).unwrap();
        assert!(drawn.has(Fault::Ping) && !drawn.has(Fault::Crlf));
        let named = matrix(&cfg, 1, 7, Some("crlf, bom")).unwrap();
        assert!(named.has(Fault::Crlf) && named.has(Fault::Bom) && !named.has(Fault::Ping));
        assert!(matrix(&cfg, 1, 7, Some("")).unwrap().is_empty());
        cfg.rates[Fault::Ping as usize] = 0.5;
        let hits = (0..2000)
            .filter(|&n| matrix(&cfg, 3, n, None).unwrap().has(Fault::Ping))
            .count();
        assert!((900..1100).contains(&hits), "{hits}");
    }

    #[test]
    fn rate_is_respected_and_deterministic() {
        let half = FaultConfig {
            fail_rate: 0.25,
            ..FaultConfig::default()
        };
        let hits = (0..4000).filter(|&n| decide(&half, 5, n, 1).fail).count();
        assert!((900..1100).contains(&hits), "{hits}");
        assert_eq!(decide(&half, 5, 17, 3), decide(&half, 5, 17, 3));
    }
}
