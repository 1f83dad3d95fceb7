//! dmoe: distributed learning of Mixtures of Experts (Chamroukhi & Pham, arXiv 2312.09877).
//!
//! The numeric core (`model`, `em`, `gate`, `linalg`, `kmeans`, `matching`, `information`) is plain
//! functions on ndarray data: no actors, no files, no clocks beyond a fit's own CPU time. `data` and
//! `synthetic` make data sets; `sharding` and `distributed` split a fit over machines; `cluster` is the
//! actor simulator; `cli` and `bench` are the command line.

pub mod baselines;
pub mod bench;
pub mod cli;
pub mod cluster;
pub mod cputime;
pub mod data;
pub mod distributed;
pub mod em;
pub mod gate;
pub mod information;
pub mod kmeans;
pub mod linalg;
pub mod matching;
pub mod metrics;
pub mod model;
#[cfg(feature = "mpi")]
pub mod mpi_backend;
pub mod progress;
pub mod reduction;
pub mod report;
pub mod rng;
pub mod scaling;
pub mod scenario;
pub mod sharding;
pub mod study;
pub mod synthetic;
pub mod transport;
