//! Verdicts for the examples of the grading issue, both modes, time bound, and property tests.

use std::time::Duration;

use proptest::prelude::*;

use super::*;

fn sb(pred: &str, gold: &str) -> Verdict {
    grade(pred, gold, &GradeOptions::default())
}

fn qw(pred: &str, gold: &str) -> Verdict {
    grade(
        pred,
        gold,
        &GradeOptions {
            mode: GraderMode::Qwen,
            ..GradeOptions::default()
        },
    )
}

#[track_caller]
fn yes(pred: &str, gold: &str) {
    let v = sb(pred, gold);
    assert!(v.equal, "{pred:?} should equal {gold:?}: {v:?}");
}

#[track_caller]
fn no(pred: &str, gold: &str) {
    let v = sb(pred, gold);
    assert!(!v.equal, "{pred:?} should not equal {gold:?}: {v:?}");
}

#[test]
fn issue_examples() {
    assert_eq!(sb("14/3", "\\frac{14}{3}"), Verdict::yes("exact_value"));
    assert_eq!(
        sb("(3,\\frac{\\pi}{2})", "\\left( 3, \\frac{\\pi}{2} \\right)"),
        Verdict::yes("exact")
    );
    assert_eq!(sb("90", "90^\\circ"), Verdict::yes("exact"));
    assert_eq!(sb("Evelyn", "\\text{Evelyn}"), Verdict::yes("exact"));
    assert_eq!(sb("\\frac12", "0.5"), Verdict::yes("numeric"));
    assert_eq!(sb("[2,5)", "x \\in [2, 5)"), Verdict::yes("equation_rhs"));
    assert_eq!(sb("\\sqrt{117}", "3\\sqrt{13}"), Verdict::yes("numeric"));
    assert_eq!(sb("0.1", "10\\%"), Verdict::yes("numeric"));
    assert_eq!(sb("10", "10\\%"), Verdict::yes("percent"));
    yes(
        "\\begin{bmatrix}1\\\\2\\end{bmatrix}",
        "\\begin{pmatrix}1\\\\2\\end{pmatrix}",
    );
    yes("(1, 2)", "\\begin{pmatrix}1\\\\2\\end{pmatrix}");
    no(
        "\\begin{pmatrix}2\\\\1\\end{pmatrix}",
        "\\begin{pmatrix}1\\\\2\\end{pmatrix}",
    );
    yes("\\dfrac{3}{4}", "\\tfrac34");
    yes("1,000", "1000");
    yes("11111111100", "11,\\! 111,\\! 111,\\! 100");
    yes("5", "5\\text{ cm}");
    yes("12 inches", "12");
    yes("\\$18.90", "18.90");
    assert_eq!(sb("5", "x=5"), Verdict::yes("equation_rhs"));
    yes("x=5", "5");
}

#[test]
fn strict_where_reference_graders_are_lenient() {
    // a gold written in base 8 accepts its digits without the subscript (issue 11), not the decimal value
    yes("52", "52_8");
    no("42", "52_8");
    yes("52_{8}", "52_8");
    no("(2,1)", "(1,2)");
    no("[2,5]", "[2,5)");
    no("11111111101", "11111111100");
    no("x+y=5", "5");
    no("3.14", "\\pi");
    no("(1,000)", "1000");
    no("0.333", "\\frac13");
    no("Emily", "\\text{Evelyn}");
}

#[test]
fn forgiving_on_notation() {
    yes("sqrt(3)", "\\sqrt{3}");
    yes("3*sqrt(13)", "3\\sqrt{13}");
    yes("(3, pi/2)", "(3,\\frac{\\pi}{2})");
    yes("2^{1/3}", "\\sqrt[3]{2}");
    yes("\\{2,1\\}", "\\{1,2\\}");
    yes("1, -2", "-2, 1");
    yes("\\frac{x}{7}+\\frac{2}{7}", "\\frac{x+2}{7}");
    yes("(x+1)^2", "x^2+2x+1");
    no("y^2+2y+1", "x^2+2x+1");
    yes("y=3+2x", "y = 2x + 3");
    yes("2x - y + 3 = 0", "y = 2x + 3");
    yes("\\frac{7}{3}", "2\\frac{1}{3}");
    yes("120000", "1.2e5");
    yes("120000", "1.2\\times 10^{5}");
    yes("x \\le 3", "(-\\infty, 3]");
    yes("(0, 36) \\setminus \\{9\\}", "(0,9) \\cup (9,36)");
    yes("1+\\sqrt{19}, 1-\\sqrt{19}", "1 \\pm \\sqrt{19}");
    yes("4i+3", "3+4i");
    yes("B", "\\text{(B)}");
    yes("0.\\overline{3}", "\\frac13");
    yes("12^{\\mathrm{th}} grade", "12");
    yes("\\left[ -0.5,1 \\right)", "[-\\frac{1}{2}, 1)");
}

#[test]
fn qwen_mode_quirks() {
    // Qwen's LaTeX-only symbolic step reads `sqrt(3)` as s·q·r·t·3
    assert!(!qw("sqrt(3)", "\\sqrt{3}").equal);
    assert!(sb("sqrt(3)", "\\sqrt{3}").equal);
    // percent accepted for any pair of numbers
    assert!(qw("10", "0.1").equal);
    assert!(!sb("10", "0.1").equal);
    // tolerance even between integers
    assert!(qw("11111111101", "11111111100").equal);
    // interval brackets ignored
    assert!(qw("(-\\infty, 0)", "(-\\infty, 0]").equal);
    assert!(!sb("(-\\infty, 0)", "(-\\infty, 0]").equal);
    // base subscript kept: 52 vs 52_8 differ in both
    assert!(!qw("52", "52_8").equal);
    // shared behaviour
    assert!(qw("14/3", "\\frac{14}{3}").equal);
    assert!(qw("90", "90^\\circ").equal);
    assert!(qw("\\frac{x}{7}+\\frac{2}{7}", "\\frac{x+2}{7}").equal);
    assert!(!qw("6", "7").equal);
    // sympy's readings (docs/grading.md, each checked against the real Qwen)
    assert!(qw("1", "1,-2").equal);
    assert!(qw("4210", "4210_{5}").equal);
    assert!(!qw("15\\frac{39}{40}", "\\frac{639}{40}").equal);
    assert!(!qw("pi", "\\pi").equal);
    assert!(qw("(a + 5)(b + 2)", "(a+5)(b+2)").equal);
    assert!(!qw("3\\pm2\\sqrt{2}", "3 \\pm 2 \\sqrt{2}").equal);
    assert!(qw("3 \\pm 2 \\sqrt{2}", "3 \\pm 2 \\sqrt{2}").equal);
    assert!(qw("+\\infty", "\\infty").equal);
}

#[test]
fn timeout_is_reported_as_not_equal() {
    let opts = GradeOptions {
        timeout: Duration::ZERO,
        ..GradeOptions::default()
    };
    let v = grade("0.33333", "\\frac{1}{3}", &opts);
    assert_eq!(
        v,
        Verdict {
            equal: false,
            rule: "timeout",
            timeout: true
        }
    );
    // an identical string needs no evaluation
    assert!(grade("5", "5", &opts).equal);
}

#[test]
fn responses_choices_and_numbers() {
    let opts = GradeOptions::default();
    let (ans, v) = grade_response(
        "<think>maybe 3</think>So $\\boxed{\\dfrac{14}{3}}$.",
        "\\frac{14}{3}",
        &opts,
    );
    assert_eq!(ans.as_deref(), Some("\\dfrac{14}{3}"));
    assert!(v.equal);
    let (ans, v) = grade_response("I could not finish", "5", &opts);
    assert_eq!((ans, v.rule), (None, "no_answer"));
    assert_eq!(
        grade_choice("\\boxed{\\text{(B)}}", 'B'),
        Verdict::yes("choice")
    );
    assert_eq!(grade_choice("B) 42", 'b'), Verdict::yes("choice"));
    assert_eq!(grade_choice("(C)", 'B'), Verdict::no("choice"));
    assert_eq!(
        grade_choice("A long explanation where the answer is C, clearly.", 'C'),
        Verdict::yes("choice")
    );
    assert_eq!(
        grade_choice("no letter here", 'C'),
        Verdict::no("no_answer")
    );
    assert_eq!(numeric_equal("$1,234.00", "1234"), Verdict::yes("numeric"));
    assert_eq!(numeric_equal("18 dollars", "18"), Verdict::yes("numeric"));
    assert_eq!(numeric_equal("17.99", "18"), Verdict::no("numeric"));
    assert_eq!(numeric_equal("eighteen", "18").rule, "not_a_number");
}

/// 400 cases by default; `PROPTEST_CASES` raises it for a longer fuzzing run.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400)
}

fn latex_noise() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,40}",
        "[\\\\{}()\\[\\]a-zA-Z0-9 ^_+*/,.=<>!%$&|-]{0,40}",
        prop::collection::vec(
            prop::sample::select(vec![
                "\\frac",
                "\\sqrt",
                "{",
                "}",
                "(",
                ")",
                "[",
                "]",
                "\\left",
                "\\right",
                "^",
                "_",
                "\\pi",
                "x",
                "1",
                "23",
                ",",
                "\\pm",
                "\\cup",
                "\\infty",
                "\\begin{pmatrix}",
                "\\end{pmatrix}",
                "\\\\",
                "&",
                "\\text{",
                "=",
                "\\le",
                "-",
                "/",
                "\\%",
                "e",
                "i",
                ".",
                "\\{",
                "\\}",
                "\\boxed{",
                "|",
                "!",
                "\\log_",
                "\\sin",
                "0.",
                "\\overline",
                "1,000",
                "2e3",
                "e",
                "\\log",
                "boxed",
                "he answer is",
            ]),
            0..30,
        )
        .prop_map(|v| v.concat()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), rng_algorithm: proptest::test_runner::RngAlgorithm::ChaCha, rng_seed: proptest::test_runner::RngSeed::Fixed(0x5e7e_be4c), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn never_panics(a in latex_noise(), b in latex_noise()) {
        let _ = grade(&a, &b, &GradeOptions::default());
        let _ = grade(&a, &b, &GradeOptions { mode: GraderMode::Qwen, ..GradeOptions::default() });
        let _ = grade_response(&a, &b, &GradeOptions::default());
        let _ = grade_response(&a, &b, &GradeOptions { mode: GraderMode::Qwen, ..GradeOptions::default() });
        let _ = qwen_math_equal(&a, &b, &GradeOptions::default());
        let _ = grade_choice(&a, 'A');
        let _ = numeric_equal(&a, &b);
        let _ = crate::extract::extract_math_answer(&a);
        let _ = crate::extract::extract_choice(&a);
        let _ = crate::extract::strip_reasoning(&a);
    }

    #[test]
    fn slash_equals_frac(n in -500i64..500, d in 1i64..500) {
        let v = sb(&format!("{}/{}", n, d), &format!("\\frac{{{}}}{{{}}}", n, d));
        prop_assert!(v.equal, "{:?}", v);
    }

    #[test]
    fn decimal_equals_fraction(n in -2000i64..2000, d in prop::sample::select(vec![1i64, 2, 4, 5, 8, 10, 20, 25, 40])) {
        let decimal = format!("{}", n as f64 / d as f64);
        let v = sb(&decimal, &format!("\\frac{{{}}}{{{}}}", n, d));
        prop_assert!(v.equal, "{} vs {}/{}: {:?}", decimal, n, d, v);
    }

    #[test]
    fn commuted_sums_are_equal(a in 1i64..50, b in -50i64..50, c in -9i64..9) {
        let gold = format!("{}x^2 + {}x + {}", a, b, c);
        let pred = format!("{} + {}x + {}x^2", c, b, a).replace("+ -", "- ");
        prop_assert!(sb(&pred, &gold).equal, "{} vs {}", pred, gold);
    }

    #[test]
    fn left_right_and_spaces_do_not_matter(a in -99i64..99, b in 1i64..99, c in 1i64..99) {
        let gold = format!("(\\frac{{{}}}{{{}}},\\sqrt{{{}}})", a, b, c);
        let pred = format!("\\left( \\dfrac{{ {} }}{{ {} }} ,\\, \\sqrt{{ {} }} \\right)", a, b, c);
        prop_assert!(sb(&pred, &gold).equal);
    }

    #[test]
    fn a_changed_number_is_not_equal(a in -10_000i64..10_000, b in 1i64..500, delta in 1i64..5) {
        let frac = sb(&format!("\\frac{{{}}}{{{}}}", a + delta, b), &format!("\\frac{{{}}}{{{}}}", a, b));
        let int = sb(&format!("{}", a + delta), &format!("{}", a));
        let tuple = sb(&format!("({}, {})", a, b + delta), &format!("({}, {})", a, b));
        // irrational values compare with relative tolerance 1e-4: keep the change above it
        let small = a % 4000;
        let surd = sb(&format!("{}\\sqrt{{{}}}", small + delta, b), &format!("{}\\sqrt{{{}}}", small, b));
        prop_assert!(!frac.equal, "frac {:?}", frac);
        prop_assert!(!int.equal, "int {:?}", int);
        prop_assert!(!tuple.equal, "tuple {:?}", tuple);
        prop_assert!(!surd.equal, "surd {:?}", surd);
    }
}

#[test]
fn long_and_repetitive_inputs_are_graded() {
    let opts = GradeOptions::default();
    let qwen = GradeOptions {
        mode: GraderMode::Qwen,
        ..GradeOptions::default()
    };
    for unit in [
        ",\\!1",
        "\\text{cm}",
        "\\mbox{x}",
        "(",
        "{",
        "\\frac",
        "x^",
        "\\sqrt",
        "1,",
        "\\pm",
    ] {
        let long = unit.repeat(9_000 / unit.len());
        assert!(!grade(&long, "5", &opts).equal, "{unit}");
        assert!(!grade("5", &long, &qwen).equal, "{unit}");
        // `\boxed{{{{…}` never closes: no answer; otherwise the identical answer is equal
        let (ans, v) = grade_response(&format!("\\boxed{{{long}}}"), &long, &opts);
        assert_eq!(v.equal, ans.is_some(), "{unit}: {v:?}");
    }
    assert_eq!(grade(&"7".repeat(20_000), "7", &opts).rule, "too_long");
}

/// Issue 11 item 8: the default grader's three errors.
#[test]
fn decimals_claim_their_written_precision() {
    no("9999.857142857143", "10{,}000");
    no("9999.857142857143", "10000");
    yes("10000.0", "10{,}000");
    yes("0.33333", "\\frac13");
    no("0.333", "\\frac13");
    // truncated or rounded to the last written digit
    yes("1.7320", "\\sqrt{3}");
    yes("1.7321", "\\sqrt{3}");
    yes("3.14159", "\\pi");
    no("1.73", "\\sqrt{3}");
    // both decimals: the coarser one decides
    yes("0.33333", "0.3333");
    yes("3.5", "3.50");
    no("2.0001", "2");
    yes("-0.5", "-\\frac{1}{2}");
}

#[test]
fn signed_infinity_is_infinity() {
    yes("+\\infty", "\\infty");
    yes("\\boxed{+\\infty}", "\\infty");
    no("-\\infty", "\\infty");
    yes("(-\\infty, +\\infty)", "(-\\infty,\\infty)");
}

#[test]
fn base_digits_for_a_gold_in_base_b() {
    yes("4210", "4210_{5}");
    yes("52", "52_8");
    yes("4210_5", "4210_{5}");
    // the decimal value is another answer to "write it in base 5"
    no("555", "4210_{5}");
    no("4211", "4210_{5}");
    // keyed on the gold's form only: a prediction in another base is another number
    no("52_8", "52");
    no("-4210", "4210_{5}");
}
