//! The study at a glance: one line per cell, means over the repetitions, of what a reader needs to
//! judge a distributed fit: its time (makespan, speedup), its accuracy next to the global fit's (test
//! RPE, test log-likelihood lost per row, parameter MSE) and what entered it (machines included and
//! flagged, local fits converged); then each baseline's accuracy over all cells. The terminal summary
//! of `dmoe run` and the report page both show it.

use crate::study::warnings::LoglikLoss;
use crate::study::{Plan, ResultRow};

/// One cell, means over its repetitions (`None` where no row carries the number).
#[derive(Debug, Clone, PartialEq)]
pub struct CellSummary {
    pub cell: usize,
    pub machines: usize,
    pub n: usize,
    /// The swept setting keys' values in words (`K = 3, S = 500`); empty when none is swept.
    pub setting: String,
    /// With several protocols swept, the cell's protocol and the estimator its columns show
    /// (`exact EM (distributed-em)`).
    pub protocol: Option<String>,
    pub network: String,
    /// The protocol's makespan (the reduction's, in one-shot), seconds; its row gives every
    /// number below that is not the global fit's.
    pub makespan_s: Option<f64>,
    pub speedup: Option<f64>,
    /// Test RPE of the reduction and of the global fit.
    pub rpe: Option<f64>,
    pub rpe_global: Option<f64>,
    /// Nats per test row the protocol's model loses against the global fit.
    pub loglik_gap: Option<f64>,
    /// Parameter MSE against the truth of the reduction and of the global fit.
    pub param_mse: Option<f64>,
    pub param_mse_global: Option<f64>,
    /// Machines whose models entered the reduced model, machines flagged, local fits converged.
    pub machines_included: Option<f64>,
    pub machines_flagged: Option<f64>,
    pub local_converged: Option<f64>,
}

/// What the columns of the protocol's model are headed: `protocol` when several are swept, else
/// `reduction` (one-shot's model).
pub fn model_column(cells: &[CellSummary]) -> &'static str {
    if cells.iter().any(|c| c.protocol.is_some()) { "protocol" } else { "reduction" }
}

impl CellSummary {
    /// The swept setting and protocol in words, as they head the cell's rows (empty when neither is
    /// swept).
    pub fn label(&self) -> String {
        match (&self.protocol, self.setting.is_empty()) {
            (None, _) => self.setting.clone(),
            (Some(p), true) => p.clone(),
            (Some(p), false) => format!("{}, {p}", self.setting),
        }
    }
}

/// A baseline estimator at the largest M of the study, means over its cells and repetitions.
#[derive(Debug, Clone, PartialEq)]
pub struct BaselineSummary {
    pub name: &'static str,
    /// The largest M.
    pub machines: usize,
    pub rpe: Option<f64>,
    pub loglik_gap: Option<f64>,
    pub param_mse: Option<f64>,
}

/// The mean of the numbers `f` gives, `None` when there are none.
fn mean_of<'a>(rows: impl Iterator<Item = &'a ResultRow>, f: impl Fn(&ResultRow) -> Option<f64>) -> Option<f64> {
    let v: Vec<f64> = rows.filter_map(f).collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// One summary per cell, in cell order.
pub fn cells(plan: &Plan, rows: &[ResultRow]) -> Vec<CellSummary> {
    let loss = LoglikLoss::new(plan, rows);
    let mut cells: Vec<usize> = rows.iter().map(|r| r.cell).collect();
    cells.dedup();
    cells
        .into_iter()
        .map(|c| {
            let of = |est: &'static str| rows.iter().filter(move |r| r.cell == c && r.estimator == est);
            // The protocol's own row: the reduction's in one-shot cells.
            let own = || rows.iter().filter(move |r| r.cell == c && r.rounds.is_some());
            let first = rows.iter().find(|r| r.cell == c).expect("a cell has rows");
            let count = |f: fn(&ResultRow) -> Option<usize>| mean_of(own(), |r| f(r).map(|v| v as f64));
            let protocol = (plan.protocols.len() > 1).then(|| {
                let p = &plan.protocols[plan.cells[c].protocol];
                format!("{} ({})", p.name, p.kind.estimator())
            });
            CellSummary {
                cell: c,
                machines: first.machines,
                n: first.n,
                setting: plan.setting_label(&plan.settings[plan.cells[c].setting]),
                protocol,
                network: first.network.clone(),
                makespan_s: mean_of(own(), |r| r.makespan_s),
                speedup: mean_of(own(), |r| r.speedup),
                rpe: mean_of(own(), |r| Some(r.scores.rpe)),
                rpe_global: mean_of(of("global"), |r| Some(r.scores.rpe)),
                // Below 1e-12 nats per row a gap is round-off (M = 1 is the global fit itself).
                loglik_gap: mean_of(own(), |r| loss.of(r)).map(|g| if g.abs() < 1e-12 { 0.0 } else { g }),
                param_mse: mean_of(own(), |r| r.scores.param_mse),
                param_mse_global: mean_of(of("global"), |r| r.scores.param_mse),
                machines_included: count(|r| r.machines_included),
                machines_flagged: count(|r| r.machines_flagged),
                local_converged: count(|r| r.local_converged),
            }
        })
        .collect()
}

/// Every estimator other than the reduction and the global fit, in the scenario's order, at the
/// largest M.
pub fn baselines(plan: &Plan, rows: &[ResultRow]) -> Vec<BaselineSummary> {
    let loss = LoglikLoss::new(plan, rows);
    // At the largest M, where the baselines differ most: a mean over every M would let the largest
    // swamp the others.
    let machines = rows.iter().map(|r| r.machines).max().unwrap_or(0);
    let rows: Vec<&ResultRow> = rows.iter().filter(|r| r.machines == machines).collect();
    let mut names: Vec<&'static str> = Vec::new();
    // The protocols' own models are in the cells' lines already.
    let own = |r: &ResultRow| {
        r.rounds.is_some() || crate::cluster::protocol::ProtocolKind::estimator_named(r.estimator).is_some()
    };
    for r in rows.iter().filter(|r| !matches!(r.estimator, "reduction" | "global") && !own(r)) {
        if !names.contains(&r.estimator) {
            names.push(r.estimator);
        }
    }
    names
        .into_iter()
        .map(|name| {
            let of = || rows.iter().copied().filter(move |r| r.estimator == name);
            BaselineSummary {
                name,
                machines,
                rpe: mean_of(of(), |r| Some(r.scores.rpe)),
                loglik_gap: mean_of(of(), |r| loss.of(r)),
                param_mse: mean_of(of(), |r| r.scores.param_mse),
            }
        })
        .collect()
}

/// A number in at most 9 characters with 4 significant digits: positional from 0.001 to 99,999,
/// scientific outside (`2.775e6`, `1.25e-5`, `-1.52e-15`); `-` when absent.
pub fn short(v: Option<f64>) -> String {
    let Some(v) = v else { return "-".into() };
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if (1e-3..1e5).contains(&a) {
        let decimals = (3 - a.log10().floor() as i32).max(0) as usize;
        let s = format!("{v:.decimals$}");
        match s.contains('.') {
            true => s.trim_end_matches('0').trim_end_matches('.').to_string(),
            false => s,
        }
    } else {
        // Fewer mantissa digits when a sign or a long exponent needs the room.
        let scientific = |digits: usize| {
            let s = format!("{v:.digits$e}");
            let (mantissa, exp) = s.split_once('e').expect("scientific format");
            let mantissa =
                if mantissa.contains('.') { mantissa.trim_end_matches('0').trim_end_matches('.') } else { mantissa };
            format!("{mantissa}e{exp}")
        };
        (0..=3).rev().map(scientific).find(|s| s.len() <= 9).unwrap_or_else(|| scientific(0))
    }
}

/// The summary as text lines of at most 100 columns: a two-line header, one line per cell, then one
/// line per baseline (means over all cells) and a legend of the columns.
pub fn text(cells: &[CellSummary], baselines: &[BaselineSummary]) -> Vec<String> {
    let row = |c: [&str; 11]| {
        let line = format!(
            "{:>4} {:>5} {:>7} {:<11} {:>10} {:>7} {:>9} {:>9} {:>10} {:>9} {:>9}",
            c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9], c[10]
        );
        line.trim_end().to_string()
    };
    let ours = model_column(cells);
    let mut lines = vec![
        row(["", "", "", "", "", "", "test RPE", "", "loglik gap", "param MSE", ""]),
        row(["cell", "M", "n", "network", "makespan_s", "speedup", ours, "global", "nats/row", ours, "global"]),
    ];
    for (i, c) in cells.iter().enumerate() {
        // A swept setting or protocol heads its cells, so the table keeps its width.
        if !c.label().is_empty() && (i == 0 || cells[i - 1].label() != c.label()) {
            lines.push(format!("{}:", c.label()));
        }
        let network: String = c.network.split(" (").next().unwrap_or(&c.network).chars().take(11).collect();
        lines.push(row([
            &c.cell.to_string(),
            &c.machines.to_string(),
            &c.n.to_string(),
            &network,
            &short(c.makespan_s),
            &short(c.speedup),
            &short(c.rpe),
            &short(c.rpe_global),
            &short(c.loglik_gap),
            &short(c.param_mse),
            &short(c.param_mse_global),
        ]));
    }
    if !baselines.is_empty() {
        let what =
            if baselines.iter().any(|b| b.name == "truth") { "baselines and the true model" } else { "baselines" };
        lines.push(format!(
            "{what} at M = {} (means over its cells; test RPE, loglik gap in nats/row, param MSE):",
            baselines[0].machines
        ));
        for b in baselines {
            lines.push(format!(
                "  {:<16} RPE {:>9}   loglik gap {:>9}   param MSE {:>9}",
                b.name,
                short(b.rpe),
                short(b.loglik_gap),
                short(b.param_mse)
            ));
        }
    }
    lines.push("loglik gap: test log-likelihood per row lost against the global fit (0.05 and more: a warning)".into());
    lines
}

/// `text` broken at spaces into lines of at most `width` characters (a longer word stands alone on
/// its line).
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        match lines.last_mut() {
            Some(line) if line.chars().count() + 1 + word.chars().count() <= width => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapped_lines_stay_within_the_width() {
        let text = "M = 16: the fastest of those swept (0.3334 s, speedup 5.725), and its model loses 2.696e-6 nats per test row";
        let lines = wrap(text, 40);
        assert!(lines.iter().all(|l| l.chars().count() <= 40), "{lines:?}");
        assert_eq!(lines.join(" "), text);
        assert_eq!(wrap("a verylongword b", 5), ["a", "verylongword", "b"]);
    }

    #[test]
    fn short_numbers_keep_four_significant_digits_in_nine_characters() {
        let cases = [
            (0.148_71, "0.1487"),
            (6.38, "6.38"),
            (1.254_984_776, "1.255"),
            (2_775_093.0, "2.775e6"),
            (1.25e-5, "1.25e-5"),
            (-2.1e-5, "-2.1e-5"),
            (0.001_916_56, "0.001917"),
            (12_000.0, "12000"),
            (0.0, "0"),
        ];
        for (v, want) in cases {
            assert_eq!(short(Some(v)), want, "{v}");
            assert!(short(Some(v)).len() <= 9);
        }
        assert_eq!(short(None), "-");
        assert_eq!(short(Some(-1.516e-15)), "-1.52e-15");
        assert_eq!(short(Some(-1.234_567e-300)), "-1.2e-300");
    }

    #[test]
    fn every_line_fits_in_100_columns() {
        let c = CellSummary {
            cell: 1234,
            machines: 99_999,
            n: 9_999_999,
            setting: "K = 3".into(),
            protocol: None,
            network: "a very long network name (with details)".into(),
            makespan_s: Some(99_999.4),
            speedup: Some(123_456.0),
            rpe: Some(0.123_456),
            rpe_global: Some(1.234e15),
            loglik_gap: Some(-1.5e-12),
            param_mse: Some(2_775_093.0),
            param_mse_global: None,
            machines_included: Some(16.0),
            machines_flagged: None,
            local_converged: Some(16.0),
        };
        let b = BaselineSummary {
            name: "aligned-average",
            machines: 512,
            rpe: Some(0.2),
            loglik_gap: Some(-1.234e-15),
            param_mse: None,
        };
        for line in text(&[c], &[b]) {
            assert!(line.chars().count() <= 100, "{} columns: {line}", line.chars().count());
        }
    }
}
