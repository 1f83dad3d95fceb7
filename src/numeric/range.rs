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
    /// `low <= x <= high`, or `low < x <= high` when `open_low`.
    Between { low: f64, high: f64, open_low: bool },
}

/// Longest time any simulated duration may be (a million seconds, about 11.6 days): larger values
/// only overflow the clock's arithmetic and the plots' axes.
pub const MAX_SECONDS: f64 = 1e6;

impl Range {
    /// A duration in seconds, 0 allowed.
    pub const SECONDS: Range = Range::Between { low: 0.0, high: MAX_SECONDS, open_low: false };
    /// A duration in seconds, above 0.
    pub const POSITIVE_SECONDS: Range = Range::Between { low: 0.0, high: MAX_SECONDS, open_low: true };
    /// A bandwidth in bytes per second, from 1 byte/s to 1 PB/s.
    pub const BANDWIDTH: Range = Range::Between { low: 1.0, high: 1e15, open_low: false };
    /// A log-scale spread (lognormal sigma): exp(10 Z) already spans 1e-17 to 1e17 at 4 sd.
    pub const SPREAD: Range = Range::Between { low: 0.0, high: 10.0, open_low: false };
    /// A log-likelihood budget per row (nats), `--budget`.
    pub const NATS_PER_ROW: Range = Range::Between { low: 0.0, high: 1e3, open_low: false };
    /// A cost-model constant, seconds per unit of work.
    pub const UNIT_COST: Range = Range::Between { low: 0.0, high: 1.0, open_low: true };
    /// A slowdown factor.
    pub const SLOWDOWN: Range = Range::Between { low: 1.0, high: 1e6, open_low: false };
    /// The separation of a random true model's experts (noise variance 3 / s^2).
    pub const SEPARATION: Range = Range::Between { low: 1e-3, high: 1e3, open_low: false };
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
            Range::Between { low, high, open_low } => {
                format!("a number in {}{}, {}]", if open_low { "(" } else { "[" }, show(low), show(high))
            }
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
                Range::Between { low, high, open_low } => (x > low || (!open_low && x == low)) && x <= high,
            }
    }

    /// `x` itself when it lies in the range, else the error.
    pub fn check(self, x: f64) -> Result<f64, RangeError> {
        if self.contains(x) { Ok(x) } else { Err(RangeError { expected: self.expected(), got: show(x) }) }
    }
}

/// A number as a user would write it: `1e308`, not 309 digits.
pub fn show(x: f64) -> String {
    if x != 0.0 && x.is_finite() && !(1e-4..1e15).contains(&x.abs()) { format!("{x:e}") } else { x.to_string() }
}

/// `n` itself when it is at least `min`, else the error ("expected a whole number >= 1, got 0").
pub fn at_least(n: usize, min: usize) -> Result<usize, RangeError> {
    if n >= min { Ok(n) } else { Err(RangeError { expected: format!("a whole number >= {min}"), got: n.to_string() }) }
}

/// `n` itself when it is in `[min, max]`, else the error ("expected a whole number in [1, 10000], got 0").
pub fn within(n: usize, min: usize, max: usize) -> Result<usize, RangeError> {
    match (min..=max).contains(&n) {
        true => Ok(n),
        false if max == usize::MAX => at_least(n, min),
        false => Err(RangeError { expected: format!("a whole number in [{min}, {max}]"), got: n.to_string() }),
    }
}

/// Most repetitions of a scenario's cells: far more than any study needs (see also
/// [`MAX_CLUSTER_RUNS`]).
pub const MAX_REPETITIONS: usize = 10_000;

/// Most cluster runs (cells x repetitions) of one scenario: a day of work at a second each, and few
/// enough that `check` (which draws the shard sizes of every run) ends in seconds.
pub const MAX_CLUSTER_RUNS: usize = 100_000;

/// Most worker threads of one simulated cluster: well above any core count, below the point where
/// the operating system refuses to start them.
pub const MAX_THREADS: usize = 1024;

/// Most components of a model (fitted or true): far beyond any mixture one can estimate, and
/// small enough that the gate's K (K-1) / 2 weight columns stay a bounded cost.
pub const MAX_COMPONENTS: usize = 1000;

/// Most EM starts of one fit.
pub const MAX_RESTARTS: usize = 1000;

/// Most iterations of one EM run or one MM reduction (warm-ups included): a cap, not a target, so
/// that a tolerance of 0 cannot keep a fit running for ever.
pub const MAX_ITERATIONS: usize = 1_000_000;

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
        assert!(Range::POSITIVE_SECONDS.check(0.0).is_err() && Range::SECONDS.check(0.0).is_ok());
        assert_eq!(
            Range::SECONDS.check(1e308).unwrap_err().to_string(),
            "expected a number in [0, 1000000], got 1e308"
        );
        assert!(Range::BANDWIDTH.check(5e-324).is_err() && Range::UNIT_COST.check(1e308).is_err());
    }
}
