//! A scenario file as text: its TOML document with the `--set` overrides applied, and where each key
//! stands (the line in the file, or "--set"), so that every error can point at its key.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};

use super::problems::{Problems, ScenarioError};

/// Where a key's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A line of the file (1-based).
    Line(usize),
    /// A `--set` override on the command line.
    Override,
}

/// The parsed scenario document.
#[derive(Debug, Clone)]
pub struct Source {
    /// The scenario file.
    pub file: PathBuf,
    /// The document, overrides applied.
    pub doc: toml::Table,
    /// The file's text as read (before the overrides).
    pub text: String,
    /// Where each key path (`network[1].latency.seconds`) stands.
    origins: HashMap<String, Origin>,
}

impl Source {
    /// Reads `file` and applies `overrides` (`key=value`, a TOML value). Errors in the text or in an
    /// override are reported before any key is looked at.
    pub fn load(file: &Path, overrides: &[String]) -> Result<Source, ScenarioError> {
        let text = std::fs::read_to_string(file)
            .map_err(|e| ScenarioError::single(file, None, format!("cannot read the scenario: {e}")))?;
        Source::parse(file, &text, overrides)
    }

    /// The scenario `text` of `file` (paths in it are relative to the file's folder).
    pub fn parse(file: &Path, text: &str, overrides: &[String]) -> Result<Source, ScenarioError> {
        let fail = |line: Option<usize>, message: String| ScenarioError::single(file, line, message);
        let spanned = DeTable::parse(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start));
            fail(line, format!("not valid TOML: {}", e.message()))
        })?;
        let mut doc: toml::Table = toml::from_str(text).map_err(|e| {
            // The spanned parse above accepted the text, so what is left is a number out of range.
            let line = e.span().map(|s| line_of(text, s.start));
            fail(
                line,
                format!("a number out of range (whole numbers go up to {}, decimals up to about 1.8e308)", i64::MAX),
            )
        })?;
        let mut origins = HashMap::new();
        index_table(spanned.get_ref(), "", text, &mut origins);
        let mut given: Vec<String> = Vec::new();
        for o in overrides {
            let path = apply_override(&mut doc, o).map_err(|m| fail(None, format!("--set {o}: {m}")))?;
            if given.contains(&path) {
                return Err(fail(None, format!("--set {o}: `{path}` is set twice; give each key once")));
            }
            given.push(path.clone());
            origins.retain(|k, _| {
                k != &path && !k.starts_with(&format!("{path}.")) && !k.starts_with(&format!("{path}["))
            });
            origins.insert(path, Origin::Override);
        }
        Ok(Source { file: file.to_path_buf(), doc, text: text.to_string(), origins })
    }

    /// Where `path` stands; for a key that is absent, where its closest present parent stands.
    pub fn origin(&self, path: &str) -> Option<Origin> {
        let mut p = path;
        loop {
            if let Some(o) = self.origins.get(p) {
                return Some(*o);
            }
            p = &p[..p.rfind(['.', '['])?];
        }
    }

    /// A collector of problems that knows where keys stand.
    pub fn problems(&self) -> Problems<'_> {
        Problems::new(self)
    }
}

/// 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].bytes().filter(|&b| b == b'\n').count() + 1
}

/// Records the line of every key under `table`, with paths prefixed by `prefix`.
fn index_table(table: &DeTable, prefix: &str, text: &str, out: &mut HashMap<String, Origin>) {
    for (key, value) in table {
        let path = if prefix.is_empty() { key.get_ref().to_string() } else { format!("{prefix}.{}", key.get_ref()) };
        out.insert(path.clone(), Origin::Line(line_of(text, key.span().start)));
        index_value(value.get_ref(), &path, text, out);
    }
}

fn index_value(value: &DeValue, path: &str, text: &str, out: &mut HashMap<String, Origin>) {
    match value {
        DeValue::Table(t) => index_table(t, path, text, out),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let p = format!("{path}[{i}]");
                out.insert(p.clone(), Origin::Line(line_of(text, item.span().start)));
                index_value(item.get_ref(), &p, text, out);
            }
        }
        _ => {}
    }
}

/// Applies one `key=value` override to the document; returns the key path it set.
fn apply_override(doc: &mut toml::Table, o: &str) -> Result<String, String> {
    let (key, value) = o.split_once('=').ok_or("expected KEY=VALUE, e.g. --set data.n=[2000]")?;
    let value: toml::Value = toml::from_str::<toml::Table>(&format!("v = {value}"))
        .map_err(|_| {
            format!("`{value}` is not a TOML value (text goes in double quotes inside single quotes: --set '{}=\"{value}\"')", key.trim())
        })?
        .remove("v")
        .ok_or("expected a value after `=`")?;
    let parts: Vec<&str> = key.trim().split('.').collect();
    if parts.iter().any(|p| p.is_empty() || p.starts_with('[')) {
        return Err(format!("`{key}` is not a key path (e.g. data.n, network.latency.seconds or network[1].loss)"));
    }
    let mut table = doc;
    for p in &parts[..parts.len() - 1] {
        table = sub_table(table, p)?;
    }
    let last = parts[parts.len() - 1];
    if last.contains('[') {
        return Err(format!("`{last}`: an override sets a key, not a whole entry of a list"));
    }
    table.insert(last.to_string(), value);
    Ok(parts.join("."))
}

/// The table at `part` of `table` (`name` or `name[i]` for an entry of a list of tables), created
/// when absent (not for list entries).
fn sub_table<'t>(table: &'t mut toml::Table, part: &str) -> Result<&'t mut toml::Table, String> {
    let Some((name, index)) = part.strip_suffix(']').and_then(|p| p.split_once('[')) else {
        let entry = table.entry(part.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        return match entry {
            toml::Value::Table(t) => Ok(t),
            toml::Value::Array(_) => Err(format!("`{part}` is a list of tables here: name an entry, e.g. {part}[0]")),
            _ => Err(format!("`{part}` is not a table")),
        };
    };
    let i: usize = index.parse().map_err(|_| format!("`{part}`: expected a whole number between the brackets"))?;
    match table.get_mut(name) {
        Some(toml::Value::Array(items)) => {
            let len = items.len();
            items
                .get_mut(i)
                .and_then(toml::Value::as_table_mut)
                .ok_or_else(|| format!("`{part}`: the list `{name}` has {len} entries, numbered from 0"))
        }
        Some(toml::Value::Table(t)) if i == 0 => Ok(t),
        _ => Err(format!("`{part}`: there is no list of tables `{name}` in the scenario")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_know_their_lines_and_overrides_replace_them() {
        let dir = crate::scratch::Scratch::new("source");
        let f = dir.join("s.toml");
        std::fs::write(&f, "seed = 1\n\n[data]\nkind = \"synthetic\"\nn = [10, 20]\n\n[[network]]\nname = \"a\"\n[[network]]\nlatency = { kind = \"constant\", seconds = 1 }\n").unwrap();
        let s = Source::load(&f, &["data.k=3".into()]).unwrap();
        assert_eq!(s.origin("seed"), Some(Origin::Line(1)));
        assert_eq!(s.origin("data.n"), Some(Origin::Line(5)));
        assert_eq!(s.origin("network[1].latency.seconds"), Some(Origin::Line(10)));
        assert_eq!(s.origin("network[0].bandwidth"), Some(Origin::Line(7)), "an absent key points at its table");
        assert_eq!(s.origin("data.k"), Some(Origin::Override));
        let s = Source::load(&f, &["network[1].loss=0.1".into()]).unwrap();
        assert_eq!(s.doc["network"][1]["loss"].as_float(), Some(0.1));
        assert_eq!(s.origin("network[1].loss"), Some(Origin::Override));
        let list = Source::load(&f, &["network.loss=0.1".into()]).unwrap_err().to_string();
        assert!(list.contains("`network` is a list of tables here: name an entry, e.g. network[0]"), "{list}");
        let range = Source::load(&f, &["network[5].loss=0.1".into()]).unwrap_err().to_string();
        assert!(range.contains("the list `network` has 2 entries"), "{range}");
        let bad = Source::load(&f, &["clock=model".into()]).unwrap_err().to_string();
        assert!(bad.contains("--set 'clock=\"model\"'"), "the hint is shell-safe: {bad}");
    }
}
