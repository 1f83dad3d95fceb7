//! The numeric core: the mixture of experts, its EM fit and the mathematics the reduction and the
//! metrics share. Plain functions on ndarray data: no actor, clock or file type appears here. A fit
//! may split its passes over the rows across scoped threads (`blocks`), with results that do not
//! depend on the number of threads. Every layer above calls into this one; nothing in it
//! calls out. The formulas are in `docs/model.md`, `docs/em.md` and `docs/metrics.md`.

pub mod blocks;
pub mod cputime;
pub mod elementary;
pub mod em;
pub mod gate;
pub mod information;
pub mod kmeans;
pub mod linalg;
pub mod matching;
pub mod metrics;
pub mod model;
pub mod range;
pub mod rng;
pub mod scaling;
pub mod simd;
pub mod softmax;
pub mod transport;
