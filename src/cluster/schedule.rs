//! Virtual time of one run, as a pure function of what the machines reported: compute time (measured
//! CPU or the cost model, times the machine's speed factor), network delay of each report, arrival,
//! the deadline, and when the server starts reducing.

use super::clock::Clock;
use super::network::{Delivery, NetworkModel};
use crate::distributed::LocalReport;
use crate::numeric::rng;

/// Bytes of a report message, from what it carries: 8 per number for the model (gate rows 1..K-1,
/// experts, variances), N_m, CPU time and iteration count, the support rows (d numbers each), plus 8
/// for the machine id and 1 for the convergence flag.
pub fn report_bytes(report: &LocalReport) -> u64 {
    let (k, d) = (report.model.k() as u64, report.model.d() as u64);
    let model = (k - 1) * (d + 1) + k * (d + 1) + k;
    let support = report.support.len() as u64;
    8 * (model + 3 + support) + 8 + 1
}

/// One machine's virtual timing.
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    /// Compute time of its fit (speed factor applied).
    pub compute: f64,
    /// How its report got through.
    pub delivery: Delivery,
    /// Arrival at the server.
    pub arrival: f64,
    /// Report size.
    pub bytes: u64,
    /// Arrived by the deadline (always, without one).
    pub included: bool,
}

/// Timing of every machine that reported (`None` for failed ones). Network draws come from the stream
/// `(seed, path, 1, machine)`, so they do not depend on the order reports came in.
pub fn timings(
    reports: &[Option<LocalReport>],
    speeds: &[f64],
    clock: &Clock,
    network: &NetworkModel,
    deadline: Option<f64>,
    seed: u64,
    path: &[u64],
) -> Vec<Option<Timing>> {
    reports
        .iter()
        .zip(speeds)
        .enumerate()
        .map(|(m, (r, &speed))| {
            let r = r.as_ref()?;
            let compute = fit_seconds(r, clock) * speed;
            let bytes = report_bytes(r);
            let mut p = path.to_vec();
            p.extend([1, m as u64]);
            let delivery = network.deliver(bytes, &mut rng::stream(seed, &p));
            let arrival = compute + delivery.seconds;
            Some(Timing { compute, delivery, arrival, bytes, included: deadline.is_none_or(|d| arrival <= d) })
        })
        .collect()
}

/// Seconds of a machine's local fit on `clock`, before its speed factor.
fn fit_seconds(r: &LocalReport, clock: &Clock) -> f64 {
    clock.fit_seconds(&r.summary, r.model.k(), r.model.d())
}

/// When the server starts reducing. Without a deadline it waits for every machine that did not fail
/// (failures are detected at once: the simulator's failure detector is perfect). With a deadline it
/// starts at the last arrival if every machine arrived by then, otherwise at the deadline (it cannot
/// tell a failed machine from a slow one). `None` when no report is usable.
pub fn reduce_start(timings: &[Option<Timing>], deadline: Option<f64>) -> Option<f64> {
    let last = timings.iter().flatten().filter(|t| t.included).map(|t| t.arrival).reduce(f64::max)?;
    match deadline {
        Some(d) if timings.iter().any(|t| t.as_ref().is_none_or(|t| !t.included)) => Some(d),
        _ => Some(last),
    }
}
