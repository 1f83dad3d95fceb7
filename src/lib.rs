//! dmoe: distributed learning of Mixtures of Experts (Chamroukhi & Pham, arXiv 2312.09877).
//!
//! The crate follows the pipeline of a distributed fit, one folder per stage:
//! - `numeric`: the model, EM, and the mathematics shared by the reduction and the metrics;
//! - `data`: CSV files, synthetic data, train/test split and machine shards;
//! - `reduce`: the server's MM reduction, its outlier screening, and the baselines;
//! - `distributed`: the protocol every front end shares (a machine's local fit, the server's
//!   aggregation, scoring), and the MPI backend;
//! - `cluster`: the actor simulator with its network, machines and clocks;
//! - `study`: scenario files and the runner of their sweeps;
//! - `report`: results.csv, run.json, plots and traces;
//! - `cli`: the command line.
//!
//! Dependencies point one way, down this list. See `docs/README.md` for the map.

pub mod cli;
pub mod cluster;
pub mod data;
pub mod distributed;
pub mod numeric;
pub mod reduce;
pub mod report;
pub mod study;
