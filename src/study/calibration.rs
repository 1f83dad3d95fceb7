//! The model clock's constants saved by `dmoe calibrate --save`, so that later runs on the same
//! machine use constants measured there instead of the development box's defaults.
//!
//! The file is `$DMOE_CALIBRATION` when that is set (an empty value: no saved constants, the
//! built-in defaults), else `$XDG_CONFIG_HOME/dmoe/cost-model.toml`, else
//! `$HOME/.config/dmoe/cost-model.toml`. It names the host it was measured on; on another host
//! (a home folder shared by a cluster) it is not used. A scenario's `[cost_model]` keys always win,
//! key by key, and every model-clock run says where its constants came from (`Constants::source`),
//! on stderr and in run.json, so its times can be reproduced elsewhere by copying them into the
//! scenario.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cluster::clock::CostModel;

/// The saved file's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Saved {
    /// The host name of the machine it was measured on.
    pub host: String,
    /// When, in Unix seconds.
    pub calibrated_unix_seconds: u64,
    /// The dmoe version that measured it.
    pub dmoe_version: String,
    /// The constants.
    pub cost_model: CostModel,
}

/// The constants a model-clock run starts from (before the scenario's own keys) and where they come
/// from, in words.
#[derive(Debug, Clone, PartialEq)]
pub struct Constants {
    pub cost_model: CostModel,
    pub source: String,
}

/// Where the saved constants live, `None` when `DMOE_CALIBRATION` is set empty or no folder is known.
pub fn path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("DMOE_CALIBRATION") {
        return (!p.is_empty()).then(|| PathBuf::from(p));
    }
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").filter(|p| !p.is_empty()).map(|h| PathBuf::from(h).join(".config")))?;
    Some(config.join("dmoe").join("cost-model.toml"))
}

/// This machine's host name.
pub fn host() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into `buf`.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    if ok { String::from_utf8_lossy(&buf[..end]).into_owned() } else { "unknown".into() }
}

/// The text of a saved file.
pub fn to_toml(saved: &Saved) -> String {
    let body = toml::to_string(saved).expect("a calibration serialises");
    format!(
        "# Model-clock constants measured by `dmoe calibrate --save`; used by model-clock runs on this host.\n{body}"
    )
}

/// Reads the saved file at `p`; an error says what is wrong with it (the caller names the file).
fn read(p: &Path) -> Result<Saved, String> {
    let text = std::fs::read_to_string(p).map_err(|e| e.to_string())?;
    let saved: Saved = toml::from_str(&text).map_err(|e| {
        format!("not a dmoe calibration ({}); run `dmoe calibrate --save` again or delete it", e.message())
    })?;
    saved.cost_model.validate().map_err(|e| format!("{e}; run `dmoe calibrate --save` again"))?;
    // A file from before a constant existed would silently take that constant's default, next to
    // others measured under another formula.
    let table: toml::Table = toml::from_str(&text).map_err(|e| e.message().to_string())?;
    let given = table.get("cost_model").and_then(toml::Value::as_table);
    if let Some(absent) = CostModel::NAMES.iter().find(|n| given.is_none_or(|t| !t.contains_key(**n))) {
        return Err(format!(
            "has no `{absent}` (written by an older dmoe); run `dmoe calibrate --save` again or delete it"
        ));
    }
    Ok(saved)
}

/// The constants this machine's model-clock runs start from: the saved calibration when there is one
/// for this host, else the built-in defaults. An error when the saved file exists but cannot be read.
pub fn constants() -> Result<Constants, (PathBuf, String)> {
    let defaults = |why: String| Constants {
        cost_model: CostModel::default(),
        source: format!("the built-in defaults, measured on the development box, not on this machine ({why})"),
    };
    let Some(p) = path() else {
        return Ok(defaults("DMOE_CALIBRATION is empty".into()));
    };
    if !p.exists() {
        return Ok(defaults(format!("run `dmoe calibrate --save` to measure them here; it writes {}", p.display())));
    }
    let saved = read(&p).map_err(|e| (p.clone(), e))?;
    let here = host();
    if saved.host != here {
        return Ok(defaults(format!("{} was measured on host {}, this is {here}", p.display(), saved.host)));
    }
    Ok(Constants {
        cost_model: saved.cost_model,
        source: format!("this machine's calibration ({here}, dmoe {}), saved in {}", saved.dmoe_version, p.display()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_file_reads_back_and_a_foreign_key_is_refused() {
        let saved = Saved {
            host: "box".into(),
            calibrated_unix_seconds: 1,
            dmoe_version: "0.1.0".into(),
            cost_model: CostModel::from_values([1e-7, 2e-10, 3e-9, 4e-10]),
        };
        let text = to_toml(&saved);
        assert_eq!(toml::from_str::<Saved>(&text).unwrap(), saved);
        let dir = crate::scratch::Scratch::new("calibration-test");
        let p = dir.join("c.toml");
        std::fs::write(&p, text.replace("mm_per_unit", "mm_per_units")).unwrap();
        let e = read(&p).unwrap_err();
        assert!(e.starts_with("not a dmoe calibration") && e.contains("mm_per_units"), "{e}");
        let negative =
            Saved { cost_model: CostModel { mm_per_unit: -3e-9, ..saved.cost_model.clone() }, ..saved.clone() };
        std::fs::write(&p, to_toml(&negative)).unwrap();
        assert!(read(&p).unwrap_err().contains("mm_per_unit"));
        // A file from before `pool_per_unit` existed is refused, not completed with the default.
        let old: String =
            to_toml(&saved).lines().filter(|l| !l.starts_with("pool_per_unit")).map(|l| format!("{l}\n")).collect();
        std::fs::write(&p, old).unwrap();
        let e = read(&p).unwrap_err();
        assert!(e.contains("has no `pool_per_unit`") && e.contains("dmoe calibrate --save"), "{e}");
    }
}
