//! Which M to use: per sweep group (network, and data size, setting and protocol when they vary), the M with the shortest
//! mean makespan among those whose model (the protocol's: the reduction in one-shot) loses at most `budget` nats per test row against the
//! global fit (means over the repetitions) and whose parameter MSE, when a truth is known, is at
//! most `PARAM_MSE_RATIO_WARNING` times the global fit's; none when that M is slower than the
//! global fit on one machine. With several protocols, also which protocol and M to use per
//! network: the same rule over every protocol's cells. The reason comes in one sentence.

use super::summary::{CellSummary, short};
use crate::study::warnings::PARAM_MSE_RATIO_WARNING;

/// The default budget, nats per test row.
pub const DEFAULT_BUDGET: f64 = 0.01;

/// The advice for one sweep group.
#[derive(Debug, Clone, PartialEq)]
pub struct Recommendation {
    /// The group: what varies among n, setting, protocol and network (its network at least), or
    /// `every protocol` (with the network when several) for the advice over every protocol.
    pub group: String,
    /// The recommended M (over every protocol: that of the protocol the reason names), `None` when
    /// no M qualifies or the gap cannot be measured.
    pub machines: Option<usize>,
    /// Why, in one sentence.
    pub reason: String,
}

/// With several protocols, first one recommendation per (n, setting, network) over every protocol,
/// which names the protocol and M to use; then one per (n, setting, protocol, network) group of
/// `cells`, in sweep order.
pub fn recommend(cells: &[CellSummary], budget: f64) -> Vec<Recommendation> {
    let mut list = Vec::new();
    if cells.iter().any(|c| c.protocol.is_some()) {
        list.extend(per_group(cells, budget, |c| c.setting.clone(), "every protocol"));
    }
    list.extend(per_group(cells, budget, |c| c.label(), ""));
    list
}

/// One recommendation per group of `cells` with the same n, network and `label`, the group named
/// by what varies and `what` (when not empty).
fn per_group(
    cells: &[CellSummary],
    budget: f64,
    label: impl Fn(&CellSummary) -> String,
    what: &str,
) -> Vec<Recommendation> {
    let key = |c: &CellSummary| (c.n, label(c), c.network.clone());
    let mut groups: Vec<(usize, String, String)> = Vec::new();
    for g in cells.iter().map(key) {
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    // Across protocols a cell is named by its protocol and M, within one by its M.
    let name = |c: &CellSummary| match (&c.protocol, what.is_empty()) {
        (Some(p), false) => format!("{p} at M = {}", c.machines),
        _ => format!("M = {}", c.machines),
    };
    let many_n = groups.iter().any(|g| g.0 != groups[0].0);
    let many_networks = groups.iter().any(|g| g.2 != groups[0].2);
    groups
        .iter()
        .map(|g| {
            let members: Vec<&CellSummary> = cells.iter().filter(|c| key(c) == *g).collect();
            let (machines, reason) = advise(&members, budget, &name, !what.is_empty());
            let mut parts = Vec::new();
            if many_n {
                parts.push(format!("n = {}", g.0));
            }
            if !g.1.is_empty() {
                parts.push(g.1.clone());
            }
            if many_networks || (parts.is_empty() && what.is_empty()) {
                parts.push(g.2.clone());
            }
            if !what.is_empty() {
                parts.push(what.to_string());
            }
            Recommendation { group: parts.join(", "), machines, reason }
        })
        .collect()
}

/// A cell with its mean makespan and log-likelihood gap.
type Timed<'a> = (&'a CellSummary, f64, f64);

/// The cell with the shortest makespan (the smaller M on a tie).
fn fastest<'a>(set: &[Timed<'a>]) -> Option<Timed<'a>> {
    set.iter().copied().min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.machines.cmp(&b.0.machines)))
}

/// The recommended M of one group's cells and the sentence that says why, each cell called by `name`
/// (`across`: the cells are every protocol's).
fn advise(
    cells: &[&CellSummary],
    budget: f64,
    name: &dyn Fn(&CellSummary) -> String,
    across: bool,
) -> (Option<usize>, String) {
    let timed: Vec<Timed> = cells.iter().filter_map(|c| Some((*c, c.makespan_s?, c.loglik_gap?))).collect();
    if timed.is_empty() {
        return (
            None,
            "no global fit in this scenario, so what distributing costs in log-likelihood cannot be measured: add \"global\" to the estimators".into(),
        );
    }
    // With a truth, a reduction whose parameters are far off does not qualify either.
    let sound = |c: &CellSummary| match (c.param_mse, c.param_mse_global) {
        (Some(r), Some(g)) => r <= PARAM_MSE_RATIO_WARNING * g,
        _ => true,
    };
    let within: Vec<Timed> = timed.iter().copied().filter(|t| t.2 <= budget && sound(t.0)).collect();
    let Some((best, makespan, gap)) = fastest(&within) else {
        let closest = timed.iter().min_by(|a, b| a.2.total_cmp(&b.2)).expect("not empty");
        return (
            None,
            format!(
                "no {} keeps the model within {budget} nats per test row of the global fit with a parameter error under {PARAM_MSE_RATIO_WARNING} times the global fit's (the closest: {}, {} nats per row): fit on one machine, or raise --budget",
                if across { "protocol and M" } else { "M" },
                name(closest.0),
                short(Some(closest.2))
            ),
        );
    };
    let (top, top_makespan, top_gap) = fastest(&timed).expect("not empty");
    // Why the fastest M of all did not qualify, when it is not the recommended one.
    let why_not = match (top.param_mse, top.param_mse_global) {
        _ if top.cell == best.cell => String::new(),
        (Some(r), Some(g)) if top_gap <= budget => {
            format!("its parameter error is {} times the global fit's", short(Some(r / g)))
        }
        _ => format!("loses {} nats per row", short(Some(top_gap))),
    };
    if best.speedup.is_some_and(|s| s < 1.0) {
        let faster = match why_not.is_empty() {
            true => String::new(),
            false => format!("; {} is faster ({} s) but {why_not}", name(top), short(Some(top_makespan))),
        };
        return (
            None,
            format!(
                "stay on one machine, if the data can be gathered there: the fastest within the budget ({}, {} s) is slower than the global fit on one machine (speedup {}){faster}",
                name(best),
                short(Some(makespan)),
                short(best.speedup)
            ),
        );
    }
    let speedup = best.speedup.map_or(String::new(), |s| format!(", speedup {}", short(Some(s))));
    let reason = if timed.len() == 1 {
        format!(
            "{} ({} s{speedup}) is the only one swept; its model {}, within the budget of {budget}: sweep cluster.machines to compare",
            name(best),
            short(Some(makespan)),
            loses(gap)
        )
    } else if top.cell == best.cell {
        format!(
            "{}: the fastest of those swept ({} s{speedup}), and its model {}, within the budget of {budget}",
            name(best),
            short(Some(makespan)),
            loses(gap)
        )
    } else {
        format!(
            "{}: the fastest ({} s{speedup}) of those whose model stays within {budget} nats per test row of the global fit; {} is faster ({} s) but {why_not}",
            name(best),
            short(Some(makespan)),
            name(top),
            short(Some(top_makespan))
        )
    };
    (Some(best.machines), reason)
}

/// What the protocol's model loses (or gains, on these test rows) against the global fit.
fn loses(gap: f64) -> String {
    match gap < 0.0 {
        true => format!("gains {} nats per test row over the global fit", short(Some(-gap))),
        false => format!("loses {} nats per test row against the global fit", short(Some(gap))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(machines: usize, network: &str, makespan: f64, gap: Option<f64>) -> CellSummary {
        CellSummary {
            cell: machines + network.len() * 1000 + (makespan * 1e6) as usize,
            machines,
            n: 1000,
            setting: String::new(),
            protocol: None,
            network: network.into(),
            makespan_s: Some(makespan),
            speedup: Some(1.0 / makespan),
            rpe: None,
            rpe_global: None,
            loglik_gap: gap,
            param_mse: None,
            param_mse_global: None,
            machines_included: None,
            machines_flagged: None,
            local_converged: None,
        }
    }

    #[test]
    fn the_fastest_m_within_the_budget_is_recommended_per_network() {
        let cells = [
            cell(1, "lan", 1.0, Some(0.0)),
            cell(8, "lan", 0.3, Some(0.004)),
            cell(32, "lan", 0.1, Some(0.2)),
            cell(1, "wan", 1.0, Some(0.0)),
            cell(8, "wan", 0.5, Some(0.004)),
            cell(32, "wan", 0.6, Some(0.2)),
        ];
        let r = recommend(&cells, DEFAULT_BUDGET);
        assert_eq!((r[0].group.as_str(), r[0].machines), ("lan", Some(8)));
        assert!(r[0].reason.contains("M = 32 is faster (0.1 s) but loses 0.2 nats per row"), "{}", r[0].reason);
        assert_eq!((r[1].group.as_str(), r[1].machines), ("wan", Some(8)));
        assert!(r[1].reason.contains("the fastest of those swept (0.5 s, speedup 2)"), "{}", r[1].reason);
        // A larger budget admits M = 32 on the LAN.
        assert_eq!(recommend(&cells, 0.5)[0].machines, Some(32));
    }

    #[test]
    fn with_several_protocols_the_fastest_protocol_and_m_within_the_budget_is_named_per_network() {
        let with = |protocol: &str, machines, network, makespan, gap| CellSummary {
            protocol: Some(protocol.to_string()),
            ..cell(machines, network, makespan, Some(gap))
        };
        let cells = [
            with("one-shot (reduction)", 16, "rack", 0.10, 0.002),
            with("one-shot (reduction)", 64, "rack", 0.05, 0.3),
            with("exact EM (distributed-em)", 16, "rack", 0.08, 0.0),
            with("one-shot (reduction)", 16, "wan", 0.30, 0.002),
            with("exact EM (distributed-em)", 16, "wan", 9.0, 0.0),
        ];
        let r = recommend(&cells, DEFAULT_BUDGET);
        let groups: Vec<&str> = r.iter().map(|r| r.group.as_str()).collect();
        assert_eq!(
            groups,
            [
                "rack, every protocol",
                "wan, every protocol",
                "one-shot (reduction), rack",
                "exact EM (distributed-em), rack",
                "one-shot (reduction), wan",
                "exact EM (distributed-em), wan"
            ]
        );
        assert_eq!(r[0].machines, Some(16));
        assert!(r[0].reason.starts_with("exact EM (distributed-em) at M = 16: the fastest (0.08 s"), "{}", r[0].reason);
        assert!(
            r[0].reason.contains("one-shot (reduction) at M = 64 is faster (0.05 s) but loses 0.3"),
            "{}",
            r[0].reason
        );
        assert!(r[1].reason.starts_with("one-shot (reduction) at M = 16: the fastest"), "{}", r[1].reason);
        // With one network, the advice over every protocol is named just that.
        let one: Vec<CellSummary> = cells.iter().filter(|c| c.network == "rack").cloned().collect();
        assert_eq!(recommend(&one, DEFAULT_BUDGET)[0].group, "every protocol");
    }

    #[test]
    fn no_m_within_the_budget_or_no_global_fit_recommends_none() {
        let r = recommend(&[cell(4, "lan", 0.3, Some(0.02)), cell(8, "lan", 0.2, Some(0.03))], DEFAULT_BUDGET);
        assert_eq!(r[0].machines, None);
        assert!(r[0].reason.contains("the closest: M = 4, 0.02 nats per row"), "{}", r[0].reason);
        let r = recommend(&[cell(4, "lan", 0.3, Some(0.001))], DEFAULT_BUDGET);
        assert_eq!(r[0].machines, Some(4));
        assert!(r[0].reason.contains("is the only one swept"), "{}", r[0].reason);
        // Slower than one machine (speedup 1 / makespan < 1): stay on one machine.
        let r = recommend(&[cell(4, "lan", 1.5, Some(0.001)), cell(8, "lan", 2.0, Some(0.001))], DEFAULT_BUDGET);
        assert_eq!(r[0].machines, None);
        assert!(r[0].reason.starts_with("stay on one machine"), "{}", r[0].reason);
        // A parameter error over 100 times the global fit's disqualifies.
        let mut far = cell(8, "lan", 0.2, Some(0.001));
        (far.param_mse, far.param_mse_global) = (Some(0.5), Some(0.001));
        let r = recommend(&[cell(4, "lan", 0.3, Some(0.001)), far], DEFAULT_BUDGET);
        assert_eq!(r[0].machines, Some(4));
        assert!(
            r[0].reason.contains("M = 8 is faster (0.2 s) but its parameter error is 500 times"),
            "{}",
            r[0].reason
        );
        let r = recommend(&[cell(4, "lan", 0.3, None)], DEFAULT_BUDGET);
        assert_eq!(r[0].machines, None);
        assert!(r[0].reason.contains("add \"global\""), "{}", r[0].reason);
    }
}
