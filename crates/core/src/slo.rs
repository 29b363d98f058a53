//! Service-level objectives per request, SLO attainment and goodput.
//!
//! A request is *good* when it succeeded and met every limit given (TTFT, TPOT, E2E, in ms).
//! Attainment is the share of good requests among every request sent in the timed run (a failed
//! request is never good). Goodput is good requests per second of the run's duration, as
//! `vllm bench serve --goodput` defines it (a request with one output token has TPOT 0 there, so it
//! meets any TPOT limit). A run *meets* the SLO when its attainment is at least the target
//! (0.99 by default).

use crate::record::RequestRecord;
use serde::{Deserialize, Serialize};

/// Per-request limits and the share of requests that must meet them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Slo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpot_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e2e_ms: Option<f64>,
    /// The share of requests that must be good for the run to meet the SLO.
    #[serde(default = "default_attainment")]
    pub attainment: f64,
}

/// The default attainment target: 99% of requests.
pub const DEFAULT_ATTAINMENT: f64 = 0.99;

fn default_attainment() -> f64 {
    DEFAULT_ATTAINMENT
}

/// Why an SLO specification was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SloError {
    #[error("SLO term '{0}' is not KEY=VALUE: write e.g. ttft_ms=2000,tpot_ms=100,e2e_ms=60000")]
    NotKeyValue(String),
    #[error("unknown SLO key '{0}': use ttft_ms, tpot_ms or e2e_ms (vLLM's ttft, tpot, e2el are accepted too)")]
    UnknownKey(String),
    #[error("SLO limit {key}={value} must be a finite number of milliseconds above 0")]
    BadLimit { key: String, value: String },
    #[error("SLO attainment target {0} must be a number in (0, 1], e.g. 0.99")]
    BadAttainment(String),
    #[error("SLO key '{0}' is given twice")]
    Repeated(String),
    #[error("an SLO needs at least one limit (ttft_ms, tpot_ms or e2e_ms)")]
    Empty,
}

impl Slo {
    /// Parses `ttft_ms=2000,tpot_ms=100,e2e_ms=60000` (commas or spaces between terms; `:` also
    /// separates key and value, so vLLM's `ttft:2000 tpot:100 e2el:60000` reads the same).
    pub fn parse(spec: &str, attainment: f64) -> Result<Slo, SloError> {
        let mut slo = Slo::with_attainment(attainment)?;
        for term in spec
            .split([',', ' '])
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            let (key, value) = term
                .split_once(['=', ':'])
                .ok_or_else(|| SloError::NotKeyValue(term.to_string()))?;
            let slot = match key.trim() {
                "ttft_ms" | "ttft" => &mut slo.ttft_ms,
                "tpot_ms" | "tpot" => &mut slo.tpot_ms,
                "e2e_ms" | "e2e" | "e2el" | "e2el_ms" => &mut slo.e2e_ms,
                other => return Err(SloError::UnknownKey(other.to_string())),
            };
            if slot.is_some() {
                return Err(SloError::Repeated(key.trim().to_string()));
            }
            *slot = Some(parse_limit(key.trim(), value.trim())?);
        }
        slo.validate()?;
        Ok(slo)
    }

    fn with_attainment(attainment: f64) -> Result<Slo, SloError> {
        if !(attainment.is_finite() && attainment > 0.0 && attainment <= 1.0) {
            return Err(SloError::BadAttainment(attainment.to_string()));
        }
        Ok(Slo {
            ttft_ms: None,
            tpot_ms: None,
            e2e_ms: None,
            attainment,
        })
    }

    /// Checks limits and target (for SLOs read from a plan file).
    pub fn validate(&self) -> Result<(), SloError> {
        Slo::with_attainment(self.attainment)?;
        for (key, v) in [
            ("ttft_ms", self.ttft_ms),
            ("tpot_ms", self.tpot_ms),
            ("e2e_ms", self.e2e_ms),
        ] {
            if let Some(v) = v {
                if !(v.is_finite() && v > 0.0) {
                    return Err(SloError::BadLimit {
                        key: key.into(),
                        value: v.to_string(),
                    });
                }
            }
        }
        if self.ttft_ms.is_none() && self.tpot_ms.is_none() && self.e2e_ms.is_none() {
            return Err(SloError::Empty);
        }
        Ok(())
    }

    /// Did this request succeed and meet every limit?
    pub fn is_good(&self, r: &RequestRecord) -> bool {
        if !r.ok() {
            return false;
        }
        let within = |limit: Option<f64>, value: Option<f64>| match limit {
            None => true,
            Some(l) => value.is_some_and(|v| v <= l),
        };
        // TTFT and TPOT as the result's `*_ttft_ms`/`*_tpot_ms` time them (answer text: sglang's rule),
        // so a run whose p99 TTFT is within the limit has at least 99% of requests within it.
        // vLLM's goodput counts TPOT as 0 for a request with at most one output token.
        let tpot = r.tpot_ms().or(Some(0.0));
        within(self.ttft_ms, r.answer_ttft_ms())
            && within(self.tpot_ms, tpot)
            && within(self.e2e_ms, r.e2e_ms)
    }

    /// Attainment and goodput of a run's records (warm-up excluded) over `duration_s`.
    pub fn evaluate(&self, records: &[RequestRecord], duration_s: f64) -> SloOutcome {
        let timed = records.iter().filter(|r| !r.warmup);
        let (mut sent, mut good) = (0u64, 0u64);
        for r in timed {
            sent += 1;
            good += u64::from(self.is_good(r));
        }
        let attainment = if sent == 0 {
            0.0
        } else {
            good as f64 / sent as f64
        };
        let goodput = if duration_s > 0.0 && duration_s.is_finite() {
            good as f64 / duration_s
        } else {
            0.0
        };
        SloOutcome {
            requests: sent,
            good,
            attainment,
            goodput,
            meets: sent > 0 && attainment >= self.attainment,
        }
    }

    /// The limits in the form [`Slo::parse`] reads back: `ttft_ms=2000,tpot_ms=100`.
    pub fn spec(&self) -> String {
        [
            ("ttft_ms", self.ttft_ms),
            ("tpot_ms", self.tpot_ms),
            ("e2e_ms", self.e2e_ms),
        ]
        .iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k}={}", trim_number(v))))
        .collect::<Vec<_>>()
        .join(",")
    }

    /// The result keys of a run judged against this SLO: `slo` (the limits as [`Slo::spec`]),
    /// `slo_attainment_target`, `slo_attainment` (good / requests), `slo_good_requests`,
    /// `slo_requests`, `goodput` (good requests per second) and `slo_met`.
    pub fn result_keys(&self, o: &SloOutcome) -> serde_json::Map<String, serde_json::Value> {
        use serde_json::json;
        let mut m = serde_json::Map::new();
        m.insert("slo".into(), json!(self.spec()));
        m.insert("slo_attainment_target".into(), json!(self.attainment));
        m.insert("slo_attainment".into(), json!(o.attainment));
        m.insert("slo_good_requests".into(), json!(o.good));
        m.insert("slo_requests".into(), json!(o.requests));
        m.insert("goodput".into(), json!(o.goodput));
        m.insert("slo_met".into(), json!(o.meets));
        m
    }

    /// A short human form: `TTFT ≤ 2000 ms, TPOT ≤ 100 ms for 99% of requests`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        for (name, v) in [
            ("TTFT", self.ttft_ms),
            ("TPOT", self.tpot_ms),
            ("E2E", self.e2e_ms),
        ] {
            if let Some(v) = v {
                parts.push(format!("{name} ≤ {} ms", trim_number(v)));
            }
        }
        format!(
            "{} for {}% of requests",
            parts.join(", "),
            trim_number(self.attainment * 100.0)
        )
    }
}

fn trim_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn parse_limit(key: &str, value: &str) -> Result<f64, SloError> {
    let bad = || SloError::BadLimit {
        key: key.to_string(),
        value: value.to_string(),
    };
    let v: f64 = value.parse().map_err(|_| bad())?;
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(bad())
    }
}

/// What a run achieved against an SLO.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SloOutcome {
    /// Requests of the timed run (failed ones included).
    pub requests: u64,
    /// Requests that succeeded and met every limit.
    pub good: u64,
    /// good / requests.
    pub attainment: f64,
    /// Good requests per second of the run.
    pub goodput: f64,
    /// attainment ≥ the SLO's target.
    pub meets: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(ttft: f64, e2e: f64, out: u64) -> RequestRecord {
        RequestRecord {
            ttft_ms: Some(ttft),
            e2e_ms: Some(e2e),
            output_tokens: Some(out),
            ..Default::default()
        }
    }

    #[test]
    fn parses_both_spellings() {
        let a = Slo::parse("ttft_ms=2000,tpot_ms=100", 0.99).unwrap();
        let b = Slo::parse("ttft:2000 tpot:100", 0.99).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.ttft_ms, Some(2000.0));
        assert_eq!(a.e2e_ms, None);
        let c = Slo::parse("e2el:5000", 0.9).unwrap();
        assert_eq!(c.e2e_ms, Some(5000.0));
        assert_eq!(
            a.describe(),
            "TTFT ≤ 2000 ms, TPOT ≤ 100 ms for 99% of requests"
        );
    }

    #[test]
    fn spec_reads_back_and_result_keys_carry_the_outcome() {
        let slo = Slo::parse("tpot:100.5 ttft:2000", 0.9).unwrap();
        assert_eq!(slo.spec(), "ttft_ms=2000,tpot_ms=100.5");
        assert_eq!(Slo::parse(&slo.spec(), 0.9).unwrap(), slo);
        let recs = [rec(100.0, 1000.0, 10), rec(3000.0, 4000.0, 10)];
        let o = slo.evaluate(&recs, 2.0);
        let k = slo.result_keys(&o);
        assert_eq!(k["slo"], "ttft_ms=2000,tpot_ms=100.5");
        assert_eq!(k["slo_attainment_target"], 0.9);
        assert_eq!(k["slo_attainment"], 0.5);
        assert_eq!(k["slo_good_requests"], 1);
        assert_eq!(k["slo_requests"], 2);
        assert_eq!(k["goodput"], 0.5);
        assert_eq!(k["slo_met"], false);
    }

    #[test]
    fn refuses_bad_specs() {
        assert_eq!(
            Slo::parse("ttft_ms", 0.99),
            Err(SloError::NotKeyValue("ttft_ms".into()))
        );
        assert!(matches!(
            Slo::parse("itl_ms=3", 0.99),
            Err(SloError::UnknownKey(_))
        ));
        for v in ["inf", "nan", "-1", "0", "x"] {
            assert!(
                matches!(
                    Slo::parse(&format!("ttft_ms={v}"), 0.99),
                    Err(SloError::BadLimit { .. })
                ),
                "{v}"
            );
        }
        assert!(matches!(
            Slo::parse("ttft_ms=1,ttft=2", 0.99),
            Err(SloError::Repeated(_))
        ));
        assert_eq!(Slo::parse("", 0.99), Err(SloError::Empty));
        for t in [0.0, 1.5, f64::NAN, -0.1] {
            assert!(
                matches!(Slo::parse("ttft_ms=1", t), Err(SloError::BadAttainment(_))),
                "{t}"
            );
        }
    }

    #[test]
    fn good_requests_and_goodput() {
        let slo = Slo::parse("ttft_ms=100,tpot_ms=10", 0.75).unwrap();
        // TPOT = (e2e - ttft) / (out - 1)
        let good = rec(90.0, 180.0, 10); // tpot 10
        let slow_first = rec(101.0, 150.0, 10);
        let slow_tokens = rec(50.0, 150.0, 10); // tpot 11.1
        let one_token = rec(80.0, 80.0, 1); // tpot 0 as in vLLM
        let failed = RequestRecord {
            error: Some("http_500".into()),
            ..good.clone()
        };
        let warm = RequestRecord {
            warmup: true,
            ..slow_first.clone()
        };
        assert!(slo.is_good(&good) && slo.is_good(&one_token));
        assert!(!slo.is_good(&slow_first) && !slo.is_good(&slow_tokens) && !slo.is_good(&failed));
        let all = [good, slow_first, slow_tokens, one_token, failed, warm];
        let o = slo.evaluate(&all, 2.0);
        assert_eq!((o.requests, o.good), (5, 2));
        assert_eq!(o.attainment, 0.4);
        assert_eq!(o.goodput, 1.0);
        assert!(!o.meets);
        let lenient = Slo {
            attainment: 0.4,
            ..slo
        };
        assert!(lenient.evaluate(&all, 2.0).meets);
        let empty = slo.evaluate(&[], 1.0);
        assert!(!empty.meets && empty.attainment == 0.0);
    }
}
