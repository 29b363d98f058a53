//! Number formatting for files (plain, exact) and for tables and charts (rounded).

/// A number written plainly and exactly: the shortest text that reads back as the same f64,
/// never in exponent form (`3500`, `0.7`, `1234.5678`); ±∞ as `inf`/`-inf`; NaN as empty.
pub fn plain(v: f64) -> String {
    if v.is_nan() {
        String::new()
    } else if v == f64::INFINITY {
        "inf".to_string()
    } else if v == f64::NEG_INFINITY {
        "-inf".to_string()
    } else if v == 0.0 {
        // Avoids "-0".
        "0".to_string()
    } else {
        // Rust's Display for f64 is shortest-round-trip and never uses an exponent.
        format!("{v}")
    }
}

/// An optional number for a CSV cell: missing → empty.
pub fn cell(v: Option<f64>) -> String {
    v.map(plain).unwrap_or_default()
}

/// A number for a human table: `decimals` places, thousands separated by commas
/// (`12,345.68`); integers-valued inputs with `decimals == 0` as integers; missing → `–`.
pub fn display(v: Option<f64>, decimals: usize) -> String {
    match v {
        None => "–".to_string(),
        Some(x) if x.is_nan() => "–".to_string(),
        Some(x) if x.is_infinite() => if x > 0.0 { "∞" } else { "−∞" }.to_string(),
        Some(x) => group_thousands(&format!("{:.*}", decimals, x)),
    }
}

/// Adds comma separators to the integer part of a formatted number.
fn group_thousands(s: &str) -> String {
    let (sign, rest) = match s.strip_prefix('-') {
        Some(r) => ("−", r),
        None => ("", s),
    };
    let (int, frac) = match rest.find('.') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let mut grouped = String::with_capacity(int.len() + int.len() / 3);
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    // "-0.00" reads as zero.
    let sign = if grouped.chars().all(|c| c == '0' || c == ',')
        && frac.chars().skip(1).all(|c| c == '0')
    {
        ""
    } else {
        sign
    };
    format!("{sign}{grouped}{frac}")
}

/// Decimals that show a value with about three significant digits in a table.
pub fn auto_decimals(v: f64) -> usize {
    let a = v.abs();
    if a >= 100.0 || a == 0.0 {
        1
    } else if a >= 10.0 {
        2
    } else {
        3
    }
}

/// A tick label: up to 2 decimals, trailing zeros dropped, thousands grouped.
pub fn tick(v: f64) -> String {
    let a = v.abs();
    let decimals = if a >= 100.0 {
        0
    } else if a >= 1.0 {
        1
    } else {
        2
    };
    let s = group_thousands(&format!("{:.*}", decimals, v));
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A signed number with an explicit `+` or `−` sign and `decimals` places (`+0.8`, `−1.6`).
pub fn signed(v: f64, decimals: usize) -> String {
    let rounded = format!("{:.*}", decimals, v.abs());
    let is_zero = rounded.chars().all(|c| c == '0' || c == '.');
    if is_zero {
        return rounded;
    }
    if v < 0.0 {
        format!("−{rounded}")
    } else {
        format!("+{rounded}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_never_uses_exponents() {
        assert_eq!(plain(3500.0), "3500");
        assert_eq!(plain(0.7), "0.7");
        assert_eq!(plain(1e21), "1000000000000000000000");
        assert_eq!(plain(1.5e-7), "0.00000015");
        assert_eq!(plain(-0.0), "0");
        assert_eq!(plain(f64::INFINITY), "inf");
        assert_eq!(plain(f64::NAN), "");
        assert_eq!(cell(None), "");
        assert_eq!(cell(Some(12.25)), "12.25");
    }

    #[test]
    fn display_groups_and_rounds() {
        assert_eq!(display(Some(12345.678), 2), "12,345.68");
        assert_eq!(display(Some(999.0), 0), "999");
        assert_eq!(display(Some(-1234.5), 1), "−1,234.5");
        assert_eq!(display(Some(-0.001), 2), "0.00");
        assert_eq!(display(None, 2), "–");
        assert_eq!(display(Some(f64::INFINITY), 2), "∞");
    }

    #[test]
    fn ticks_and_signs() {
        assert_eq!(tick(2000.0), "2,000");
        assert_eq!(tick(2.5), "2.5");
        assert_eq!(tick(0.25), "0.25");
        assert_eq!(tick(40.0), "40");
        assert_eq!(signed(0.8, 1), "+0.8");
        assert_eq!(signed(-1.6, 1), "−1.6");
        assert_eq!(signed(-0.04, 1), "0.0");
        assert_eq!(auto_decimals(1234.0), 1);
        assert_eq!(auto_decimals(12.0), 2);
        assert_eq!(auto_decimals(1.2), 3);
    }
}
