//! An exponential for nonpositive arguments (softmax terms `exp(v - max v)`) that the compiler can
//! vectorise, where the C library's `exp` is one call per value: pooling M K local gates at S
//! supporting points takes S M K of them.
//!
//! `exp(x) = 2^n exp(r)` with `n = round(x / ln 2)` and `r = x - n ln 2` (Cody-Waite: `n ln2_hi` is
//! exact, `|r| <= ln 2 / 2`), `exp(r)` by its Taylor series to degree 13 (truncation below
//! `0.347^14 / 14! = 5e-18`), `2^n` written into the exponent bits. Plain IEEE operations in a fixed
//! order (no fused multiply-add), so the value is the same bits on every processor; within 2 ulp of
//! the exact value (tested against the C library's).

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

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in units in the last place between two positive finite values.
    fn ulps(a: f64, b: f64) -> u64 {
        a.to_bits().abs_diff(b.to_bits())
    }

    #[test]
    fn it_is_within_two_ulp_of_the_c_library_on_the_whole_range() {
        let mut worst = (0, 0.0);
        for i in 0..=2_000_000u32 {
            let x = SMALLEST * f64::from(i) / 2_000_000.0;
            let d = ulps(exp_nonpositive(x), x.exp());
            if d > worst.0 {
                worst = (d, x);
            }
        }
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
}
