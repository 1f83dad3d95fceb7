//! Run-time choice of the widest vector instructions for a hot loop.
//!
//! The crate is compiled for the baseline x86-64 (2-wide SSE2 vectors), so that one binary runs on
//! every processor. [`widest!`] compiles a loop a second and a third time with AVX2 (4-wide) and
//! AVX-512F (8-wide) enabled and picks, at run time, the widest the processor has. Rust never fuses
//! a multiply and an add unless asked to, so the three versions do the same IEEE operations in the
//! same order: the results are the same bits on every processor, only the speed differs (each
//! user's tests check this on the widths the processor has).

/// A vector width the loops of [`widest!`] are compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Width {
    /// The baseline x86-64 instructions (SSE2), or the target's own on other processors.
    Baseline,
    /// AVX2: 4 doubles per vector.
    Avx2,
    /// AVX-512F: 8 doubles per vector.
    Avx512,
}

impl Width {
    /// Every width this processor can run, the baseline first (the tests compare them all).
    #[cfg(test)]
    pub fn available() -> Vec<Width> {
        let mut widths = vec![Width::Baseline];
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx2") {
                widths.push(Width::Avx2);
            }
            if std::is_x86_feature_detected!("avx512f") {
                widths.push(Width::Avx512);
            }
        }
        widths
    }

    /// The widest this processor can run (the detection is cached by the standard library).
    pub fn widest() -> Width {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx512f") {
                return Width::Avx512;
            }
            if std::is_x86_feature_detected!("avx2") {
                return Width::Avx2;
            }
        }
        Width::Baseline
    }
}

/// `widest! { fn name(args) -> ret { body } }` defines `fn name(width: Width, args) -> ret`, which
/// runs `body` (written so that the compiler vectorises it) compiled for `width`: [`Width::widest`]
/// in use, any of the widths the processor has in tests. The body becomes an `#[inline(always)]`
/// function, `widest_body`, that each width's `#[target_feature]` copy inlines; it must be portable
/// Rust (no instruction-set intrinsics), since the baseline runs it as it is.
macro_rules! widest {
    (
        $(#[$meta:meta])*
        fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block
    ) => {
        $(#[$meta])*
        fn $name(width: $crate::numeric::simd::Width, $($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn widest_body($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                unsafe fn avx512($($arg: $ty),*) $(-> $ret)? {
                    widest_body($($arg),*)
                }
                #[target_feature(enable = "avx2")]
                unsafe fn avx2($($arg: $ty),*) $(-> $ret)? {
                    widest_body($($arg),*)
                }
                match width {
                    $crate::numeric::simd::Width::Avx512 => {
                        assert!(std::is_x86_feature_detected!("avx512f"), "AVX-512F is not available");
                        // SAFETY: the processor supports AVX-512F, checked just above.
                        return unsafe { avx512($($arg),*) };
                    }
                    $crate::numeric::simd::Width::Avx2 => {
                        assert!(std::is_x86_feature_detected!("avx2"), "AVX2 is not available");
                        // SAFETY: the processor supports AVX2, checked just above.
                        return unsafe { avx2($($arg),*) };
                    }
                    $crate::numeric::simd::Width::Baseline => {}
                }
            }
            #[cfg(not(target_arch = "x86_64"))]
            assert_eq!(width, $crate::numeric::simd::Width::Baseline, "only the baseline width exists here");
            widest_body($($arg),*)
        }
    };
}

pub(crate) use widest;
