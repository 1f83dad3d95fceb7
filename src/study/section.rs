//! Reading one table of a scenario key by key. Every getter checks the type and the range of its key
//! and records a problem in plain words when it is wrong (the value returned is then a placeholder, so
//! that reading goes on and every problem of the file is found in one pass). `finish` reports the keys
//! that no getter asked for: unknown keys, with the list of known ones.

use std::cell::RefCell;

use toml::Value;

use super::problems::Problems;
use crate::numeric::range::{Range, within};

/// One table of the scenario, at key path `path`.
pub struct Section<'a> {
    path: String,
    table: Option<&'a toml::Table>,
    problems: &'a Problems<'a>,
    asked: RefCell<Vec<String>>,
}

/// Plain words for a TOML value's type.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "text",
        Value::Integer(_) => "a whole number",
        Value::Float(_) => "a decimal number",
        Value::Boolean(_) => "true/false",
        Value::Datetime(_) => "a date",
        Value::Array(_) => "a list",
        Value::Table(_) => "a table",
    }
}

/// A value as written, for messages (short).
fn shown(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 40 { format!("{}...", &s[..37]) } else { s }
}

impl<'a> Section<'a> {
    /// The top-level table of a document.
    pub fn root(doc: &'a toml::Table, problems: &'a Problems<'a>) -> Section<'a> {
        Section { path: String::new(), table: Some(doc), problems, asked: RefCell::new(Vec::new()) }
    }

    /// Full key path of `key` in this table.
    pub fn key(&self, key: &str) -> String {
        match (self.path.is_empty(), key.is_empty()) {
            (_, true) => self.path.clone(),
            (true, false) => key.to_string(),
            (false, false) => format!("{}.{key}", self.path),
        }
    }

    /// Records a problem with `key` of this table.
    pub fn problem(&self, key: &str, message: impl Into<String>) {
        self.problems.add(&self.key(key), message);
    }

    /// The raw value of `key`, marking it as known.
    pub fn raw(&self, key: &str) -> Option<&'a Value> {
        self.asked.borrow_mut().push(key.to_string());
        self.table.and_then(|t| t.get(key))
    }

    fn wrong(&self, key: &str, expected: &str, v: &Value) {
        // Name the type only when it is not the one expected (not "got -3 (a whole number)").
        let whole = matches!(v, Value::Integer(_)) && expected.starts_with("a whole number");
        let note = if whole { String::new() } else { format!(" ({})", kind(v)) };
        self.problem(key, format!("expected {expected}, got {}{note}", shown(v)));
    }

    /// A sub-table (absent: an empty one, so its defaults apply).
    pub fn table(&self, key: &str) -> Section<'a> {
        let table = match self.raw(key) {
            Some(Value::Table(t)) => Some(t),
            Some(v) => {
                self.wrong(key, "a table (`[section]` or `{ key = value }`)", v);
                None
            }
            None => None,
        };
        Section { path: self.key(key), table, problems: self.problems, asked: RefCell::new(Vec::new()) }
    }

    /// Whether the table itself was given.
    pub fn present(&self) -> bool {
        self.table.is_some()
    }

    /// One table, or a list of tables (`[[key]]`): each with its path (`key[i]` for a list of several).
    pub fn tables(&self, key: &str) -> Vec<Section<'a>> {
        let section =
            |path: String, table| Section { path, table, problems: self.problems, asked: RefCell::new(Vec::new()) };
        match self.raw(key) {
            None => Vec::new(),
            Some(Value::Table(t)) => vec![section(self.key(key), Some(t))],
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .filter_map(|(i, v)| match v {
                    Value::Table(t) => Some(section(format!("{}[{i}]", self.key(key)), Some(t))),
                    other => {
                        self.problems
                            .add(&format!("{}[{i}]", self.key(key)), format!("expected a table, got {}", kind(other)));
                        None
                    }
                })
                .collect(),
            Some(v) => {
                self.wrong(key, "a table or a list of tables (`[[key]]`)", v);
                Vec::new()
            }
        }
    }

    /// A whole number >= `min`, if given.
    fn whole(&self, key: &str, expected: &str) -> Option<u64> {
        match self.raw(key)? {
            Value::Integer(i) if *i >= 0 => Some(*i as u64),
            v => {
                self.wrong(key, expected, v);
                None
            }
        }
    }

    /// A whole number (>= 0), if given.
    pub fn opt_u64(&self, key: &str) -> Option<u64> {
        self.whole(key, "a whole number >= 0")
    }

    /// A whole number in `[min, max]`, if given.
    pub fn opt_count_within(&self, key: &str, min: usize, max: usize) -> Option<usize> {
        let expected = match max {
            usize::MAX => format!("a whole number >= {min}"),
            _ => format!("a whole number in [{min}, {max}]"),
        };
        let n = usize::try_from(self.whole(key, &expected)?).unwrap_or(usize::MAX);
        within(n, min, max).map_err(|e| self.problem(key, e.to_string())).ok()
    }

    /// A whole number in `[min, max]`, `default` when absent.
    pub fn count_within(&self, key: &str, min: usize, max: usize, default: usize) -> usize {
        self.opt_count_within(key, min, max).unwrap_or(default)
    }

    /// A whole number >= `min`, `default` when absent.
    pub fn count(&self, key: &str, min: usize, default: usize) -> usize {
        self.count_within(key, min, usize::MAX, default)
    }

    /// A required whole number in `[min, max]` (0 as the placeholder when missing or wrong).
    pub fn required_count(&self, key: &str, min: usize, max: usize, what: &str) -> usize {
        if self.raw(key).is_none() {
            self.problem(key, format!("missing: expected {what}"));
            return 0;
        }
        self.opt_count_within(key, min, max).unwrap_or(0)
    }

    /// A whole number >= `min` or a list of them (a sweep), if given.
    pub fn opt_counts(&self, key: &str, min: usize) -> Option<Vec<usize>> {
        let expected = format!("a whole number >= {min} or a list of them, e.g. [1, 2, 4]");
        let items: Vec<&Value> = match self.raw(key)? {
            Value::Array(a) if !a.is_empty() => a.iter().collect(),
            v @ Value::Integer(_) => vec![v],
            v => {
                self.wrong(key, &expected, v);
                return None;
            }
        };
        let mut out = Vec::new();
        for v in items {
            match v {
                Value::Integer(i) if out.contains(&(*i as usize)) => {
                    self.problem(key, format!("lists {i} twice; give each value once"));
                    return None;
                }
                Value::Integer(i) if *i >= min as i64 => out.push(usize::try_from(*i).unwrap_or(usize::MAX)),
                v => {
                    self.wrong(key, &expected, v);
                    return None;
                }
            }
        }
        Some(out)
    }

    /// A number in `range` or a list of them (a sweep), if given (whole numbers are accepted).
    pub fn opt_numbers(&self, key: &str, range: Range) -> Option<Vec<f64>> {
        let expected = format!("{} or a list of them, e.g. [0, 0.1, 0.2]", range.expected());
        let items: Vec<&Value> = match self.raw(key)? {
            Value::Array(a) if !a.is_empty() => a.iter().collect(),
            v @ (Value::Integer(_) | Value::Float(_)) => vec![v],
            v => {
                self.wrong(key, &expected, v);
                return None;
            }
        };
        let mut out: Vec<f64> = Vec::new();
        for v in items {
            let x = match v {
                Value::Float(x) => *x,
                Value::Integer(i) => *i as f64,
                v => {
                    self.wrong(key, &expected, v);
                    return None;
                }
            };
            if let Err(e) = range.check(x) {
                self.problem(key, e.to_string());
                return None;
            }
            if out.contains(&x) {
                self.problem(key, format!("lists {x} twice; give each value once"));
                return None;
            }
            out.push(x);
        }
        Some(out)
    }

    /// A required number in `range` or a list of them (`[f64::NAN]` as the placeholder when missing
    /// or wrong).
    pub fn required_numbers(&self, key: &str, range: Range) -> Vec<f64> {
        if self.raw(key).is_none() {
            self.problem(key, format!("missing: expected {}", range.expected()));
            return vec![f64::NAN];
        }
        self.opt_numbers(key, range).unwrap_or_else(|| vec![f64::NAN])
    }

    /// A number in `range`, if given (a whole number is accepted).
    pub fn opt_number(&self, key: &str, range: Range) -> Option<f64> {
        let x = match self.raw(key)? {
            Value::Float(x) => *x,
            Value::Integer(i) => *i as f64,
            v => {
                self.wrong(key, &range.expected(), v);
                return None;
            }
        };
        range.check(x).map_err(|e| self.problem(key, e.to_string())).ok()
    }

    /// A number in `range`, `default` when absent.
    pub fn number(&self, key: &str, range: Range, default: f64) -> f64 {
        self.opt_number(key, range).unwrap_or(default)
    }

    /// A required number in `range` (`f64::NAN` as the placeholder when missing or wrong).
    pub fn required_number(&self, key: &str, range: Range) -> f64 {
        if self.raw(key).is_none() {
            self.problem(key, format!("missing: expected {}", range.expected()));
            return f64::NAN;
        }
        self.opt_number(key, range).unwrap_or(f64::NAN)
    }

    /// `true` or `false`, `default` when absent.
    pub fn boolean(&self, key: &str, default: bool) -> bool {
        match self.raw(key) {
            None => default,
            Some(Value::Boolean(b)) => *b,
            Some(v) => {
                self.wrong(key, "true or false", v);
                default
            }
        }
    }

    /// A text, if given.
    pub fn opt_text(&self, key: &str) -> Option<&'a str> {
        match self.raw(key)? {
            Value::String(s) => Some(s),
            v => {
                self.wrong(key, "text in quotes", v);
                None
            }
        }
    }

    /// A list of texts, if given.
    pub fn opt_texts(&self, key: &str) -> Option<Vec<String>> {
        let expected = "a list of texts in quotes, e.g. [\"a\", \"b\"]";
        match self.raw(key)? {
            Value::Array(a) if a.iter().all(Value::is_str) => {
                Some(a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
            }
            v => {
                self.wrong(key, expected, v);
                None
            }
        }
    }

    /// One of `choices` (the first is the default when absent); `None`, with the problem recorded,
    /// when the value is not one of them.
    pub fn choice(&self, key: &str, choices: &[&'a str]) -> Option<&'a str> {
        let list: Vec<String> = choices.iter().map(|c| format!("\"{c}\"")).collect();
        let expected = format!("one of {}", list.join(", "));
        let found = match self.raw(key) {
            None => return Some(choices[0]),
            Some(Value::String(s)) => choices.iter().find(|c| **c == s).copied(),
            Some(_) => None,
        };
        if found.is_none() {
            self.wrong(key, &expected, self.raw(key).expect("present"));
        }
        found
    }

    /// The `kind` of a table whose other keys depend on it (one of `kinds`, the first by default).
    /// When it is wrong, the other keys are not checked: they would only repeat the problem.
    pub fn kind(&self, kinds: &[&'a str]) -> Option<&'a str> {
        let kind = self.choice("kind", kinds);
        if kind.is_none() {
            self.ignore_rest();
        }
        kind
    }

    /// Marks every key of the table as known (after a problem that makes the rest meaningless).
    pub fn ignore_rest(&self) {
        if let Some(t) = self.table {
            self.asked.borrow_mut().extend(t.keys().cloned());
        }
    }

    /// Reports every key of the table that no getter asked for.
    pub fn finish(&self) {
        let Some(t) = self.table else { return };
        let mut asked = self.asked.borrow().clone();
        asked.sort();
        asked.dedup();
        for key in t.keys().filter(|k| !asked.contains(k)) {
            let known: Vec<String> = asked.iter().map(|k| format!("`{k}`")).collect();
            self.problems.add(&self.key(key), format!("unknown key; known keys here: {}", known.join(", ")));
        }
    }
}
