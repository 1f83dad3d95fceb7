//! What is wrong with a scenario, said so that a newcomer can act on it: every problem names the full
//! key path (`network[2].latency.seconds`), the line it stands on (or `--set`), and what was expected in
//! plain words. All problems of a file are reported together, up to `MAX_REPORTED`.

use std::cell::RefCell;
use std::fmt;
use std::path::Path;

use super::source::{Origin, Source};

/// Most problems listed in one error; the count of the rest is given.
pub const MAX_REPORTED: usize = 20;

/// One problem of a scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// Where the key stands, when known.
    pub origin: Option<Origin>,
    /// Key path, e.g. `network[2].latency.seconds` (empty for the file as a whole).
    pub key: String,
    /// What is wrong and what was expected.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self.origin {
            Some(Origin::Line(l)) => write!(f, "line {l}: ")?,
            Some(Origin::Override) => write!(f, "--set: ")?,
            None => {}
        }
        if !self.key.is_empty() {
            write!(f, "`{}`: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

/// Why a scenario cannot run: its file and every problem found.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioError {
    /// The scenario file.
    pub file: String,
    /// The problems, in the order they were found.
    pub problems: Vec<Problem>,
}

impl ScenarioError {
    /// An error with one problem that belongs to no key (an unreadable file, broken TOML).
    pub fn single(file: &Path, line: Option<usize>, message: String) -> ScenarioError {
        ScenarioError {
            file: file.display().to_string(),
            problems: vec![Problem { origin: line.map(Origin::Line), key: String::new(), message }],
        }
    }
}

impl std::error::Error for ScenarioError {}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if let [one] = &self.problems[..] {
            return write!(f, "{}: {one}", self.file);
        }
        write!(f, "{}: {} problems", self.file, self.problems.len())?;
        for p in self.problems.iter().take(MAX_REPORTED) {
            write!(f, "\n  {p}")?;
        }
        if self.problems.len() > MAX_REPORTED {
            write!(f, "\n  ... and {} more", self.problems.len() - MAX_REPORTED)?;
        }
        Ok(())
    }
}

/// Collects the problems of one scenario as its keys are read.
pub struct Problems<'a> {
    source: &'a Source,
    list: RefCell<Vec<Problem>>,
}

impl<'a> Problems<'a> {
    /// An empty collector for `source`.
    pub fn new(source: &'a Source) -> Problems<'a> {
        Problems { source, list: RefCell::new(Vec::new()) }
    }

    /// Records a problem with the key at `key`.
    pub fn add(&self, key: &str, message: impl Into<String>) {
        let origin = self.source.origin(key);
        self.list.borrow_mut().push(Problem { origin, key: key.to_string(), message: message.into() });
    }

    /// Whether any problem was recorded.
    pub fn any(&self) -> bool {
        !self.list.borrow().is_empty()
    }

    /// `value` when no problem was recorded, else the error listing them all.
    pub fn finish<T>(self, value: T) -> Result<T, ScenarioError> {
        let mut problems = self.list.into_inner();
        // In file order: overrides first, then by line; the sort is stable, so ties keep their order.
        problems.sort_by_key(|p| match p.origin {
            Some(Origin::Override) => (0, 0),
            Some(Origin::Line(l)) => (1, l),
            None => (2, 0),
        });
        if problems.is_empty() {
            Ok(value)
        } else {
            Err(ScenarioError { file: self.source.file.display().to_string(), problems })
        }
    }
}
