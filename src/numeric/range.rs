//! The ranges a numeric setting may lie in, stated once and used by every front end (the library's
//! validators, scenario files, command-line flags), so that one rule always gives one message.

/// A setting outside its range: what was expected, in plain words, and what was given.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("expected {expected}, got {got}")]
pub struct RangeError {
    /// The range in words, e.g. "a number in (0, 1)".
    pub expected: String,
    /// The value given.
    pub got: String,
}

/// A range for a real-valued setting. Every range excludes NaN and the infinities.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Range {
    /// `x > 0`.
    Positive,
    /// `x >= 0`.
    NonNegative,
    /// `0 <= x <= 1`.
    Probability,
    /// `0 <= x < 1`.
    ProbabilityBelowOne,
    /// `0 < x < 1`.
    OpenUnit,
    /// `x >= bound`.
    AtLeast(f64),
}

impl Range {
    /// The range in words.
    pub fn expected(self) -> String {
        match self {
            Range::Positive => "a number > 0".into(),
            Range::NonNegative => "a number >= 0".into(),
            Range::Probability => "a probability in [0, 1]".into(),
            Range::ProbabilityBelowOne => "a probability in [0, 1)".into(),
            Range::OpenUnit => "a number in (0, 1)".into(),
            Range::AtLeast(b) => format!("a number >= {b}"),
        }
    }

    /// Whether `x` lies in the range.
    pub fn contains(self, x: f64) -> bool {
        x.is_finite()
            && match self {
                Range::Positive => x > 0.0,
                Range::NonNegative => x >= 0.0,
                Range::Probability => (0.0..=1.0).contains(&x),
                Range::ProbabilityBelowOne => (0.0..1.0).contains(&x),
                Range::OpenUnit => x > 0.0 && x < 1.0,
                Range::AtLeast(b) => x >= b,
            }
    }

    /// `x` itself when it lies in the range, else the error.
    pub fn check(self, x: f64) -> Result<f64, RangeError> {
        if self.contains(x) { Ok(x) } else { Err(RangeError { expected: self.expected(), got: x.to_string() }) }
    }
}

/// `n` itself when it is at least `min`, else the error ("expected a whole number >= 1, got 0").
pub fn at_least(n: usize, min: usize) -> Result<usize, RangeError> {
    if n >= min { Ok(n) } else { Err(RangeError { expected: format!("a whole number >= {min}"), got: n.to_string() }) }
}

/// Checks setting `name` against `range`: ``Err("`name`: expected ..., got ...")``.
pub fn field(name: &str, range: Range, x: f64) -> Result<(), String> {
    range.check(x).map(|_| ()).map_err(|e| format!("`{name}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_exclude_their_bounds_as_stated_and_never_accept_nan() {
        assert!(Range::OpenUnit.check(0.0).is_err() && Range::OpenUnit.check(0.5).is_ok());
        assert!(Range::ProbabilityBelowOne.check(1.0).is_err() && Range::Probability.check(1.0).is_ok());
        assert!(Range::NonNegative.check(0.0).is_ok() && Range::Positive.check(0.0).is_err());
        for r in [Range::Positive, Range::NonNegative, Range::Probability, Range::AtLeast(1.0)] {
            assert!(r.check(f64::NAN).is_err() && r.check(f64::INFINITY).is_err());
        }
        assert_eq!(Range::OpenUnit.check(2.0).unwrap_err().to_string(), "expected a number in (0, 1), got 2");
        assert_eq!(at_least(0, 1).unwrap_err().to_string(), "expected a whole number >= 1, got 0");
    }
}
