//! Data sets: CSV files (`csv_file`), synthetic data from a known MoE (`synthetic`) and the split of
//! the rows into a test set and machine shards (`sharding`); the memory they need (`memory`).

mod csv_file;
pub mod memory;
pub mod sharding;
pub mod synthetic;

pub use csv_file::{ColumnExpr, CsvFile, DataError, Dataset, MAX_LABELS, TRUTH_COLUMN, load_dataset};
