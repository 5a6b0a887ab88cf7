//! A claim an example makes about its measurements, and the table that reports them: the
//! shared form of the experiments' asserted numbers (`examples/init_histograms.rs`,
//! `vanishing_gradients.rs`, `he_init_depth.rs` and their tests).

#![allow(dead_code)] // each example uses part of it

/// One claim: what it says, what was measured, what it is compared with, and whether it
/// holds.
pub struct Claim {
    /// The case and the statement.
    pub what: String,
    /// The measured value.
    pub measured: String,
    /// The published or theoretical value, or the bound, with the tolerance.
    pub expected: String,
    /// Whether the measurement is within the tolerance.
    pub holds: bool,
}

impl Claim {
    /// A claim from its parts.
    pub fn new(
        what: impl Into<String>,
        measured: impl Into<String>,
        expected: impl Into<String>,
        holds: bool,
    ) -> Self {
        Claim {
            what: what.into(),
            measured: measured.into(),
            expected: expected.into(),
            holds,
        }
    }
}

/// Prints the claims as a table (`ok` or `FAIL`, the claim, the measurement, what it is
/// compared with) and panics naming every one that does not hold.
pub fn report(claims: &[Claim]) {
    let w = claims
        .iter()
        .map(|c| c.what.chars().count())
        .max()
        .unwrap_or(0);
    for c in claims {
        let mark = if c.holds { "ok  " } else { "FAIL" };
        let pad = " ".repeat(w - c.what.chars().count());
        println!("{mark} {}{pad}  {}  [{}]", c.what, c.measured, c.expected);
    }
    let failed: Vec<&str> = claims
        .iter()
        .filter(|c| !c.holds)
        .map(|c| c.what.as_str())
        .collect();
    assert!(failed.is_empty(), "claims that do not hold: {failed:?}");
}

/// The median of the values (the mean of the middle two for an even count).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}
