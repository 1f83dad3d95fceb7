//! An exponential and a logarithm that the compiler can vectorise, where the C library's are one
//! call per value: pooling M K local gates at S supporting points takes S M K exponentials, and every
//! softmax of EM (gate probabilities, responsibilities) K exponentials and one logarithm per row.
//! Plain IEEE operations in a fixed order (no fused multiply-add), so a value is the same bits on
//! every processor and at every vector width.
//!
//! `exp(x) = 2^n exp(r)` with `n = round(x / ln 2)` and `r = x - n ln 2` (Cody-Waite: `n ln2_hi` is
//! exact, `|r| <= ln 2 / 2`), `exp(r)` by its Taylor series to degree 13 (truncation below
//! `0.347^14 / 14! = 5e-18`), `2^n` written into the exponent bits; within 2 ulp of the exact value.
//!
//! `ln(x) = k ln 2 + ln(1 + f)` with `x = 2^k (1 + f)`, `1 + f` in `[sqrt(2)/2, sqrt(2))`, and
//! `ln(1 + f) = 2 atanh(s) = 2 s + 2 s^3/3 + ...` with `s = f / (2 + f)`, `|s| <= 0.1716`: the
//! reduction of Sun's fdlibm (`e_log.c`), its minimax polynomial in `s^2` and its arrangement
//! `f - (hfsq - s (hfsq + R))` that keeps the rounding below 1 ulp. Both are tested against the C
//! library's.

/// `ln 2` rounded to 32 significant bits (0.693147180369...), so that `n * LN2_HI` is exact for
/// `|n| < 2^11` (fdlibm's split).
const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
/// `ln 2 - LN2_HI` (1.9082149292705877e-10).
const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
/// `1.5 * 2^52`: adding it rounds to the nearest integer, which the low bits then hold.
const ROUND: f64 = 6_755_399_441_055_744.0;
/// Below this the result is returned as 0: the exact value is under `exp(-707) = 9e-308` times the
/// largest term of the softmax, which is 1.
const SMALLEST: f64 = -707.0;
/// Taylor coefficients `1 / i!`, highest degree first (Horner).
const TAYLOR: [f64; 14] = [
    1.0 / 6_227_020_800.0,
    1.0 / 479_001_600.0,
    1.0 / 39_916_800.0,
    1.0 / 3_628_800.0,
    1.0 / 362_880.0,
    1.0 / 40_320.0,
    1.0 / 5_040.0,
    1.0 / 720.0,
    1.0 / 120.0,
    1.0 / 24.0,
    1.0 / 6.0,
    0.5,
    1.0,
    1.0,
];

/// `exp(x)` for `x <= 0` (0 below `SMALLEST`; a NaN stays NaN), branch-free.
#[inline(always)]
pub fn exp_nonpositive(x: f64) -> f64 {
    let clamped = if x < SMALLEST { SMALLEST } else { x };
    let shifted = clamped * std::f64::consts::LOG2_E + ROUND;
    let n = shifted - ROUND;
    let r = (clamped - n * LN2_HI) - n * LN2_LO;
    let mut p = TAYLOR[0];
    for &c in &TAYLOR[1..] {
        p = p * r + c;
    }
    // The low 32 bits of `shifted` hold n (two's complement): 2^n has exponent field n + 1023.
    let n_bits = (shifted.to_bits() as u32 as i32) as i64;
    let scale = f64::from_bits(((n_bits + 1023) as u64) << 52);
    if x < SMALLEST { 0.0 } else { p * scale }
}

/// fdlibm's minimax coefficients of `(ln(1 + f) - 2 s) / s = 2 s^2/3 + 2 s^4/5 + ...` in `z = s^2`
/// (`R(z) = LG[0] z + LG[1] z^2 + ... + LG[6] z^7`, error below `2^-58.45`), by their bits.
const LG: [f64; 7] = [
    f64::from_bits(0x3fe55555_55555593), // 6.666666666666735130e-01
    f64::from_bits(0x3fd99999_9997fa04), // 3.999999999940941908e-01
    f64::from_bits(0x3fd24924_94229359), // 2.857142874366239149e-01
    f64::from_bits(0x3fcc71c5_1d8e78af), // 2.222219843214978396e-01
    f64::from_bits(0x3fc74664_96cb03de), // 1.818357216161805012e-01
    f64::from_bits(0x3fc39a09_d078c69f), // 1.531383769920937332e-01
    f64::from_bits(0x3fc2f112_df3e5244), // 1.479819860511658591e-01
];
/// The mantissa bits of `sqrt(2)` (and of `sqrt(2)/2`), exponent field zero: `x = 2^e 1.m` with its
/// mantissa bits at or above these is halved to `m' = 1.m / 2` in `[sqrt(2)/2, 1)` with `k = e + 1`;
/// below them `m' = 1.m` in `[1, sqrt(2))` with `k = e`.
const HALF_SQRT2_MANTISSA: u64 = 0x0006_a09e_667f_3bcd;
/// Mask of a double's 52 mantissa bits.
const MANTISSA: u64 = (1 << 52) - 1;

/// `ln(x)` for positive normal `x` (a softmax's sum of exponentials, which is at least 1); NaN for a
/// NaN or an infinite `x`. Branch-free. Zero, negative and subnormal `x` are outside its domain and
/// give meaningless finite values (debug builds check).
#[inline(always)]
pub fn ln_positive(x: f64) -> f64 {
    debug_assert!(x.is_nan() || x >= f64::MIN_POSITIVE, "ln_positive({x}) is outside its domain");
    let bits = x.to_bits();
    // x = 2^k m, m in [sqrt(2)/2, sqrt(2)): m's exponent is -1 when its mantissa bits reach
    // sqrt(2)/2's, else 0.
    let high = (bits & MANTISSA >= HALF_SQRT2_MANTISSA) as u64;
    let k = ((bits >> 52) as i64 - 1023 + high as i64) as f64;
    let m = f64::from_bits((bits & MANTISSA) | ((1023 - high) << 52));
    let f = m - 1.0;
    let hfsq = 0.5 * f * f;
    let s = f / (2.0 + f);
    let z = s * s;
    let w = z * z;
    let t1 = w * (LG[1] + w * (LG[3] + w * LG[5]));
    let t2 = z * (LG[0] + w * (LG[2] + w * (LG[4] + w * LG[6])));
    let r = t2 + t1;
    let ln = k * LN2_HI - ((hfsq - (s * (hfsq + r) + k * LN2_LO)) - f);
    if x.is_finite() { ln } else { f64::NAN }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The largest distance, in units in the last place, between `f(x)` and the C library's
    /// `reference(x)` over `xs` (values of one sign), and where it is.
    fn worst_ulps(xs: impl Iterator<Item = f64>, f: fn(f64) -> f64, reference: fn(f64) -> f64) -> (u64, f64) {
        xs.map(|x| (f(x).to_bits().abs_diff(reference(x).to_bits()), x))
            .fold((0, 0.0), |a, b| if b.0 > a.0 { b } else { a })
    }

    #[test]
    fn it_is_within_two_ulp_of_the_c_library_on_the_whole_range() {
        let xs = (0..=2_000_000u32).map(|i| SMALLEST * f64::from(i) / 2_000_000.0);
        let worst = worst_ulps(xs, exp_nonpositive, f64::exp);
        assert!(worst.0 <= 2, "{} ulp at x = {}", worst.0, worst.1);
    }

    #[test]
    fn exact_points_limits_and_nan() {
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert_eq!(exp_nonpositive(-0.0), 1.0);
        assert_eq!(exp_nonpositive(-std::f64::consts::LN_2), 0.5);
        assert_eq!(exp_nonpositive(-708.0), 0.0);
        assert_eq!(exp_nonpositive(f64::NEG_INFINITY), 0.0);
        assert!(exp_nonpositive(f64::NAN).is_nan());
        assert!(exp_nonpositive(SMALLEST) > 0.0 && exp_nonpositive(SMALLEST).is_normal());
    }

    #[test]
    fn ln_is_within_one_ulp_of_the_c_library() {
        // Softmax sums (1 to 64), then a wide logarithmic sweep of positive normal values.
        let sums = (0..=1_000_000u32).map(|i| 1.0 + 63.0 * f64::from(i) / 1_000_000.0);
        let wide = (0..=1_000_000u32).map(|i| 10f64.powf(-300.0 + 600.0 * f64::from(i) / 1_000_000.0));
        let worst = worst_ulps(sums.chain(wide), ln_positive, f64::ln);
        assert!(worst.0 <= 1, "{} ulp at x = {}", worst.0, worst.1);
    }

    #[test]
    fn ln_exact_points_and_non_finite() {
        assert_eq!(ln_positive(1.0), 0.0);
        assert_eq!(ln_positive(2.0), std::f64::consts::LN_2);
        assert_eq!(ln_positive(std::f64::consts::E), 1.0);
        assert!(ln_positive(f64::NAN).is_nan());
        assert!(ln_positive(f64::INFINITY).is_nan());
    }
}
