//! Reading data sets from CSV, with errors that name the file, line and column.
//!
//! A column request is a header name or `log(name)` (natural log, for e.g. log price on log carat).
//! A column counts as numeric when its value on the first data row parses as a number; a used
//! column with a missing, non-numeric or non-finite value anywhere is an error naming the file, line
//! and column. Unused columns (text or not) are never parsed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ndarray::{Array1, Array2};

/// Column name that holds the true component of simulated data: ground truth for metrics, never a
/// default feature.
pub const TRUTH_COLUMN: &str = "z";

/// Why a data file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be opened, read or written.
    #[error("{path}: {}", io_text(source))]
    Io { path: String, source: std::io::Error },
    /// The CSV structure is broken (e.g. a row with a different number of fields).
    #[error("{path}: {message}")]
    Format { path: String, message: String },
    /// A requested column is not in the header.
    #[error("{path}: no column `{column}` (the header has: {available})")]
    MissingColumn { path: String, column: String, available: String },
    /// The target's column is also asked for as a feature (the fit would regress y on itself).
    #[error("{path}: column `{column}` is the target and cannot also be a feature: drop it from the features")]
    TargetAmongFeatures { path: String, column: String },
    /// A value that cannot be used.
    #[error("{path}: line {line}, column `{column}`: {problem}")]
    BadValue { path: String, line: u64, column: String, problem: String },
}

/// An I/O error in words, without the operating system's error number ("(os error 2)").
fn io_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// One requested column: a header name, optionally under `log( )`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnExpr {
    /// The request as written, e.g. `log(price)`; used as the feature or target name.
    pub label: String,
    /// The header column it reads.
    pub column: String,
    /// Whether the natural log is taken.
    pub log: bool,
}

impl ColumnExpr {
    /// Parses `name` or `log(name)` (surrounding spaces ignored).
    pub fn parse(text: &str) -> ColumnExpr {
        let t = text.trim();
        match t.strip_prefix("log(").and_then(|r| r.strip_suffix(')')) {
            Some(inner) => ColumnExpr { label: t.to_string(), column: inner.trim().to_string(), log: true },
            None => ColumnExpr { label: t.to_string(), column: t.to_string(), log: false },
        }
    }
}

/// A CSV file, read once into memory (so a named pipe or `/dev/stdin` works, and the file cannot
/// change between two reads), with its header and which columns look numeric.
#[derive(Debug, Clone)]
pub struct CsvFile {
    path: PathBuf,
    bytes: Arc<[u8]>,
    header: Vec<String>,
    numeric: Vec<bool>,
}

/// Two reads are equal when they are of the same path with the same bytes.
impl PartialEq for CsvFile {
    fn eq(&self, other: &CsvFile) -> bool {
        self.path == other.path && self.bytes == other.bytes
    }
}

impl CsvFile {
    /// Reads the header and the first data row. An empty file, or one with no data rows, is an error.
    pub fn open(path: &Path) -> Result<CsvFile, DataError> {
        let bytes: Arc<[u8]> =
            std::fs::read(path).map_err(|e| DataError::Io { path: path.display().to_string(), source: e })?.into();
        let mut file = CsvFile { path: path.to_path_buf(), bytes, header: Vec::new(), numeric: Vec::new() };
        let mut reader = file.reader();
        let header: Vec<String> =
            reader.headers().map_err(|e| file.csv_error(e))?.iter().map(|h| h.trim().to_string()).collect();
        if header.is_empty() || header.iter().all(String::is_empty) {
            return Err(DataError::Format {
                path: path.display().to_string(),
                message: "the file is empty: expected a header line of column names, then data rows".into(),
            });
        }
        let mut first = csv::StringRecord::new();
        let has_row = reader.read_record(&mut first).map_err(|e| file.csv_error(e))?;
        if !has_row {
            return Err(DataError::Format {
                path: path.display().to_string(),
                message: "the file has a header but no data rows".into(),
            });
        }
        file.numeric =
            (0..header.len()).map(|j| first.get(j).is_some_and(|v| v.trim().parse::<f64>().is_ok())).collect();
        file.header = header;
        Ok(file)
    }

    /// A reader of the data rows (after the header), from memory.
    fn reader(&self) -> csv::Reader<&[u8]> {
        csv::ReaderBuilder::new().has_headers(true).from_reader(&self.bytes[..])
    }

    /// The 1-based line of a record: counted from its byte offset, so that CRLF line endings count
    /// once (the csv crate's own line numbers are one short with CRLF).
    fn line_of(&self, pos: Option<&csv::Position>) -> u64 {
        let mut byte = pos.map_or(0, |p| p.byte() as usize).min(self.bytes.len());
        // With CRLF a record's position can fall on the line break before it: step over it.
        while byte < self.bytes.len() && matches!(self.bytes[byte], b'\r' | b'\n') {
            byte += 1;
        }
        // A line ends at `\n`, or at a `\r` not followed by `\n` (old Mac files end lines with `\r`).
        let head = &self.bytes[..byte];
        let ends =
            head.iter().enumerate().filter(|&(i, &b)| b == b'\n' || (b == b'\r' && head.get(i + 1) != Some(&b'\n')));
        ends.count() as u64 + 1
    }

    /// The 1-based line of data row `row` (0-based, in file order), for messages about a row.
    pub fn line_of_row(&self, row: usize) -> Option<u64> {
        let mut reader = self.reader();
        let record = reader.records().nth(row)?.ok()?;
        Some(self.line_of(record.position()))
    }

    /// A CSV structure error, with the line counted as `line_of` counts it.
    fn csv_error(&self, e: csv::Error) -> DataError {
        let message = match e.kind() {
            csv::ErrorKind::UnequalLengths { pos, expected_len, len } => {
                format!("line {}: {len} fields, but the header has {expected_len}", self.line_of(pos.as_ref()))
            }
            _ => e.to_string(),
        };
        DataError::Format { path: self.path.display().to_string(), message }
    }

    /// The data set of `target` and `features` (default: [`CsvFile::default_features`]), with the true
    /// components when the file has a `z` column of labels that is not among them.
    pub fn dataset(&self, target: &str, features: Option<&[String]>) -> Result<Dataset, DataError> {
        let (target, features) = self.columns(target, features);
        if features.iter().any(|f| f.column == target.column) {
            let path = self.path.display().to_string();
            return Err(DataError::TargetAmongFeatures { path, column: target.column });
        }
        let mut cols = features.clone();
        cols.push(target.clone());
        let m = self.read(&cols)?;
        let uses_z = cols.iter().any(|c| c.column == TRUTH_COLUMN);
        let labels = if uses_z { None } else { self.read_labels()? };
        Ok(Dataset::from_matrix(m, features, target, labels))
    }

    /// The column names in file order.
    pub fn header(&self) -> &[String] {
        &self.header
    }

    /// Whether the header has a column with this name.
    pub fn has_column(&self, name: &str) -> bool {
        self.header.iter().any(|h| h == name)
    }

    /// The target and feature columns of a request; without `features`, the default features.
    pub fn columns(&self, target: &str, features: Option<&[String]>) -> (ColumnExpr, Vec<ColumnExpr>) {
        let target = ColumnExpr::parse(target);
        let features = match features {
            Some(list) => list.iter().map(|f| ColumnExpr::parse(f)).collect(),
            None => self.default_features(&target),
        };
        (target, features)
    }

    /// Default features for a target: every numeric column except the target's column and the
    /// ground-truth column `z`.
    pub fn default_features(&self, target: &ColumnExpr) -> Vec<ColumnExpr> {
        self.header
            .iter()
            .zip(&self.numeric)
            .filter(|(h, num)| **num && **h != target.column && h.as_str() != TRUTH_COLUMN)
            .map(|(h, _)| ColumnExpr::parse(h))
            .collect()
    }

    /// The default features for `target` without the partition column `column` (a column that says
    /// which machine holds a row describes the cluster, not the data).
    pub fn features_except(&self, target: &str, column: &str) -> Vec<String> {
        let features = self.default_features(&ColumnExpr::parse(target));
        features.into_iter().filter(|f| f.column != column).map(|f| f.label).collect()
    }

    /// Reads the requested columns into an n x len matrix, checking every value.
    pub fn read(&self, columns: &[ColumnExpr]) -> Result<Array2<f64>, DataError> {
        self.read_rows(columns, |_| true)
    }

    /// Number of data rows (the header excluded), without parsing any value.
    pub fn count_rows(&self) -> Result<usize, DataError> {
        let mut reader = self.reader();
        let mut rec = csv::ByteRecord::new();
        let mut n = 0;
        while reader.read_byte_record(&mut rec).map_err(|e| self.csv_error(e))? {
            n += 1;
        }
        Ok(n)
    }

    /// Like [`CsvFile::read`], but only for the data rows (0-based) where `keep` is true, in file
    /// order; the other rows are skipped without parsing, so a machine reads only its own shard.
    pub fn read_rows(&self, columns: &[ColumnExpr], keep: impl Fn(usize) -> bool) -> Result<Array2<f64>, DataError> {
        let path_str = || self.path.display().to_string();
        let idx: Vec<usize> = columns
            .iter()
            .map(|c| {
                self.header.iter().position(|h| *h == c.column).ok_or_else(|| DataError::MissingColumn {
                    path: path_str(),
                    column: c.column.clone(),
                    available: self.header.join(", "),
                })
            })
            .collect::<Result<_, _>>()?;
        let mut reader = self.reader();
        let mut record = csv::StringRecord::new();
        let mut values = Vec::new();
        let mut rows = 0usize;
        let mut index = 0usize;
        while reader.read_record(&mut record).map_err(|e| self.csv_error(e))? {
            index += 1;
            if !keep(index - 1) {
                continue;
            }
            for (c, &j) in columns.iter().zip(&idx) {
                // The line is counted only for an error (counting is a scan from the file's start).
                let bad = |problem: String| DataError::BadValue {
                    path: path_str(),
                    line: self.line_of(record.position()),
                    column: c.column.clone(),
                    problem,
                };
                let raw = record.get(j).unwrap_or("").trim();
                if raw.is_empty() {
                    return Err(bad("the value is missing; expected a number".into()));
                }
                let v: f64 = raw.parse().map_err(|_| bad(format!("expected a number, found `{raw}`")))?;
                if !v.is_finite() {
                    return Err(bad(format!("the value is `{raw}`; expected a finite number")));
                }
                let v = if c.log {
                    if v <= 0.0 {
                        return Err(bad(format!("`{}` needs a positive value, found {raw}", c.label)));
                    }
                    v.ln()
                } else {
                    v
                };
                values.push(v);
            }
            rows += 1;
        }
        Ok(Array2::from_shape_vec((rows, columns.len()), values).expect("one value per requested column and row"))
    }

    /// Reads one column as text (trimmed), e.g. a category to partition by. Every row must have it.
    pub fn read_text(&self, column: &str) -> Result<Vec<String>, DataError> {
        let j = self.header.iter().position(|h| h == column).ok_or_else(|| DataError::MissingColumn {
            path: self.path.display().to_string(),
            column: column.to_string(),
            available: self.header.join(", "),
        })?;
        let mut reader = self.reader();
        let mut record = csv::StringRecord::new();
        let mut out = Vec::new();
        while reader.read_record(&mut record).map_err(|e| self.csv_error(e))? {
            let v = record.get(j).unwrap_or("").trim();
            if v.is_empty() {
                return Err(DataError::BadValue {
                    path: self.path.display().to_string(),
                    line: self.line_of(record.position()),
                    column: column.to_string(),
                    problem: "the value is missing; every row needs a category".into(),
                });
            }
            out.push(v.to_string());
        }
        Ok(out)
    }

    /// Reads the true-component column `z` as labels: `Some` when the file has a `z` column whose every
    /// value is a whole number >= 1 with at most `MAX_LABELS` distinct values (as `dmoe simulate`
    /// writes), `None` otherwise (a data set whose `z` means something else, such as the diamonds'
    /// depth in mm). Labels are renumbered 0.. in increasing order of their values.
    pub fn read_labels(&self) -> Result<Option<Vec<usize>>, DataError> {
        if !self.has_column(TRUTH_COLUMN) {
            return Ok(None);
        }
        let z = match self.read(&[ColumnExpr::parse(TRUTH_COLUMN)]) {
            Ok(z) => z,
            Err(DataError::BadValue { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        if !z.iter().all(|&v| v >= 1.0 && v.fract() == 0.0) {
            return Ok(None);
        }
        let mut values: Vec<u64> = z.iter().map(|&v| v as u64).collect();
        values.sort_unstable();
        values.dedup();
        if values.len() > MAX_LABELS {
            return Ok(None);
        }
        Ok(Some(z.iter().map(|&v| values.binary_search(&(v as u64)).expect("a value of the column")).collect()))
    }
}

/// Most distinct values a `z` column may have to count as true components (more is not a mixture
/// label, and the clustering metrics would need a table that large).
pub const MAX_LABELS: usize = 1000;

/// A regression data set: features, target and, for simulated data, the true components.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Feature labels (as requested, e.g. `log(carat)`).
    pub features: Vec<String>,
    /// Target label.
    pub target: String,
    /// Covariates, n x d.
    pub x: Array2<f64>,
    /// Responses.
    pub y: Array1<f64>,
    /// True components (0-based) when the file has a `z` column that is not a feature or the target.
    pub labels: Option<Vec<usize>>,
}

impl Dataset {
    /// A data set from a matrix of the `features` columns followed by the `target` column.
    pub fn from_matrix(
        m: Array2<f64>,
        features: Vec<ColumnExpr>,
        target: ColumnExpr,
        labels: Option<Vec<usize>>,
    ) -> Dataset {
        let d = features.len();
        Dataset {
            features: features.into_iter().map(|c| c.label).collect(),
            target: target.label,
            x: m.slice(ndarray::s![.., ..d]).to_owned(),
            y: m.column(d).to_owned(),
            labels,
        }
    }

    /// A data set from arrays: one name per column of `x`, one response per row. No true labels.
    pub fn new(features: Vec<String>, target: &str, x: Array2<f64>, y: Array1<f64>) -> Result<Dataset, DataError> {
        let shape = |message: String| DataError::Format { path: "(arrays)".into(), message };
        if features.len() != x.ncols() {
            return Err(shape(format!("{} feature names for {} columns of x", features.len(), x.ncols())));
        }
        if y.len() != x.nrows() {
            return Err(shape(format!("{} responses for {} rows of x", y.len(), x.nrows())));
        }
        Ok(Dataset { features, target: target.to_string(), x, y, labels: None })
    }
}

/// Loads `target` and `features` (default: [`CsvFile::default_features`]) from a CSV file.
pub fn load_dataset(path: &Path, target: &str, features: Option<&[String]>) -> Result<Dataset, DataError> {
    CsvFile::open(path)?.dataset(target, features)
}
