//! `dmoe teach`: the one-shot distributed fit on one covariate (d = 1), step by step, for a class.
//! Data from a random true MoE, shards fitted by EM on M machines, the M*K experts pooled, then every
//! MM iteration of the reduction (which reduced expert absorbs each pooled expert, the reduced lines
//! and their variance bands), and the final model against the truth and the naive average. The
//! lesson is computed here; `plots::lesson` draws one figure per step and this module writes them
//! with a page that steps through them.

use std::fmt::Write as _;
use std::ops::Range;
use std::path::Path;

use ndarray::{Array1, Array2};

use crate::data::synthetic::{Simulator, TruthSpec};
use crate::distributed::{self, LocalReport, support_count};
use crate::numeric::em::EmSettings;
use crate::numeric::metrics::param_mse;
use crate::numeric::model::Moe;
use crate::numeric::range::{MAX_COMPONENTS, within};
use crate::numeric::rng;
use crate::numeric::transport::LargeModel;
use crate::reduce::{self, Init, OutlierPolicy, ReductionSettings, baselines};

/// Supporting points in all: fewer than `reduce::START_POINTS`, so that the reduction is a single MM
/// run on one set of points, which the lesson replays iteration by iteration.
pub const SUPPORT: usize = 200;

/// MM iterations drawn one by one; after them, about as many more, evenly spaced, and the last.
pub const SHOWN_FIRST: usize = 10;

/// The most machines a lesson draws (one panel each, in a grid of at most 3 x 3 that stays legible).
pub const MAX_MACHINES: usize = 9;

/// What the lesson is about.
#[derive(Debug, Clone, PartialEq)]
pub struct TeachSettings {
    pub k: usize,
    pub machines: usize,
    pub n: usize,
    pub seed: u64,
}

impl Default for TeachSettings {
    fn default() -> TeachSettings {
        TeachSettings { k: 3, machines: 4, n: 2000, seed: 1 }
    }
}

/// One MM iteration (index 0: the start): the reduced experts and, per pooled expert, the reduced
/// expert that takes most of its mass.
#[derive(Debug, Clone)]
pub struct MmStep {
    /// Its iteration (0: the start).
    pub iteration: usize,
    pub coef: Array2<f64>,
    pub variances: Array1<f64>,
    pub absorbs: Vec<usize>,
    /// The transport objective J per supporting point.
    pub objective: f64,
}

/// Everything the lesson shows.
pub struct Lesson {
    pub settings: TeachSettings,
    pub truth: Moe,
    /// The covariate, the response and the true component of every row.
    pub x: Vec<f64>,
    pub y: Vec<f64>,
    pub z: Vec<usize>,
    /// Each machine's rows.
    pub shards: Vec<Range<usize>>,
    /// Each machine's local fit.
    pub locals: Vec<Moe>,
    /// The pooled M*K experts at the supporting points.
    pub large: LargeModel,
    /// How the winning MM run started.
    pub init: Init,
    pub steps: Vec<MmStep>,
    /// Whether MM stopped on its tolerance (not on its iteration cap).
    pub converged: bool,
    /// The reduced model, gate included (the library's reduction of the same reports).
    pub reduced: Moe,
    /// The naive average of the local models (labels not matched).
    pub naive: Option<Moe>,
}

/// Checks the settings; an error names the flag.
pub fn check(s: &TeachSettings) -> Result<(), String> {
    within(s.k, 1, MAX_COMPONENTS.min(8)).map_err(|e| format!("--k: {e}"))?;
    within(s.machines, 1, MAX_MACHINES).map_err(|e| format!("--machines: {e}"))?;
    // 20 rows per free parameter (5K - 2 on one covariate) on every machine.
    let need = 20 * crate::numeric::model::n_free_params(s.k, 1) * s.machines;
    within(s.n, need, 200_000).map_err(|e| {
        format!("--n: {e} (20 rows per free parameter on each of the {} machines, with K = {})", s.machines, s.k)
    })?;
    Ok(())
}

/// Computes the lesson: data, local fits, the reduction replayed step by step.
pub fn lesson(s: &TeachSettings) -> Result<Lesson, String> {
    check(s)?;
    let sim =
        Simulator::random(&TruthSpec { k: s.k, d: 1, separation: 1.0, seed: s.seed }).map_err(|e| e.to_string())?;
    let data = sim.sample(s.n, &mut rng::stream(s.seed, &[1]));
    let names = vec!["x1".to_string()];
    let em = EmSettings { k: s.k, seed: s.seed, ..EmSettings::default() };
    let size = s.n / s.machines;
    let shards: Vec<Range<usize>> = (0..s.machines).map(|m| m * size..(m + 1) * size).collect();
    let reports: Vec<LocalReport> = shards
        .iter()
        .enumerate()
        .map(|(m, r)| {
            let (x, y) = (data.x.slice(ndarray::s![r.clone(), ..]), data.y.slice(ndarray::s![r.clone()]));
            distributed::local_fit(m, x, y, &names, "y", &em, support_count(SUPPORT, size, size * s.machines), s.seed)
        })
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let settings =
        ReductionSettings { k: s.k, seed: s.seed, outliers: OutlierPolicy::Keep, ..ReductionSettings::default() };
    let reduction = distributed::aggregate(&reports, &settings).map_err(|e| e.to_string())?;
    let locals: Vec<Moe> = reports.iter().map(|r| r.model.clone()).collect();
    let refs: Vec<&Moe> = locals.iter().collect();
    let sizes = vec![size; s.machines];
    let large = reduction.large;
    let (coef, var) = reduce::start_experts(reduction.init, &large, &refs, &sizes, &settings)
        .ok_or("the winning start does not apply")?;
    let mut steps = Vec::new();
    let points = large.n_support() as f64;
    let run = reduce::mm_observed(&large, coef, var, settings.max_iter, settings.tol, &mut |coef, variances, plan| {
        steps.push(MmStep {
            iteration: steps.len(),
            coef: coef.clone(),
            variances: variances.clone(),
            absorbs: absorbs(&large, &plan.target, plan.k),
            objective: plan.objective / points,
        });
    });
    // A long run is shown by its first iterations, then every few, and its last.
    let last = steps.len() - 1;
    let every = (last.saturating_sub(SHOWN_FIRST)).div_ceil(SHOWN_FIRST).max(1);
    steps.retain(|s| s.iteration <= SHOWN_FIRST || s.iteration == last || s.iteration % every == 0);
    Ok(Lesson {
        settings: s.clone(),
        truth: sim.truth.clone(),
        x: data.x.column(0).to_vec(),
        y: data.y.to_vec(),
        z: data.z.clone(),
        shards,
        naive: baselines::naive_average(&refs, &sizes).ok(),
        locals,
        large,
        init: reduction.init,
        steps,
        converged: run.converged,
        reduced: reduction.model,
    })
}

/// Per pooled expert l, the reduced expert that receives most of its mass
/// `sum_s w_l(x_s) [target(s, l) = k]`.
fn absorbs(large: &LargeModel, target: &[u32], k: usize) -> Vec<usize> {
    let l_n = large.n_experts();
    (0..l_n)
        .map(|l| {
            let mut mass = vec![0.0; k];
            for s in 0..large.n_support() {
                mass[target[s * l_n + l] as usize] += large.weights[[s, l]];
            }
            (0..k).max_by(|&a, &b| mass[a].total_cmp(&mass[b])).unwrap_or(0)
        })
        .collect()
}

/// One page step: its figure's file stem, title and what to say about it.
pub struct Step {
    pub stem: String,
    pub title: String,
    pub text: String,
}

/// The steps of a lesson, in order, with their explanations.
pub fn steps(l: &Lesson) -> Vec<Step> {
    let (k, m) = (l.settings.k, l.settings.machines);
    let mut out = vec![
        Step {
            stem: "step-01-data".into(),
            title: "The data".into(),
            text: format!(
                "{} rows drawn from a mixture of {k} linear expert{} on one covariate. Each colour is the expert that \
                 produced the row (the true component, which no estimator sees); the dashed lines are the true experts.{}",
                l.settings.n,
                plural(k),
                if k > 1 { " The gate decides which expert is likely at each x." } else { "" }
            ),
        },
        Step {
            stem: "step-02-local-fits".into(),
            title: if m > 1 { "Each machine fits its own shard".into() } else { "The machine fits its rows".into() },
            text: format!(
                "{} a {k}-expert model by EM{}",
                if m > 1 {
                    format!("The rows are split over {m} machines. Each fits")
                } else {
                    "One machine fits".into()
                },
                match (m > 1, k > 1) {
                    (true, true) =>
                        " on its own rows only, and numbers its experts as it pleases (the numbers near the right \
                                     end of its lines): expert 1 of one machine need not be expert 1 of another."
                            .to_string(),
                    (true, false) => " on its own rows only.".to_string(),
                    (false, _) => " on all the rows.".to_string(),
                }
            ),
        },
        Step {
            stem: "step-03-pooled".into(),
            title: "The server pools the M x K experts".into(),
            text: format!(
                "The server receives the {m} local model{} and a few covariate rows ({} supporting points). \
                 Weighting each machine by its share of the rows gives one large mixture of {} experts, each drawn in \
                 its machine's colour.{}",
                plural(m),
                l.large.n_support(),
                m * k,
                if m > 1 {
                    format!(" It is a good model but too big: the task is to reduce it to {k} expert{}.", plural(k))
                } else {
                    " With one machine it already has K experts: the reduction has nothing to merge.".into()
                }
            ),
        },
    ];
    let last = l.steps.last().map_or(0, |s| s.iteration);
    for (i, s) in l.steps.iter().enumerate() {
        let t = s.iteration;
        let text = match i {
            0 => format!(
                "The reduction starts from {} (the start with the smallest transport cost among those tried). Each \
                 pooled expert is coloured by the reduced expert (thick line, band: mean +- 2 sd) that takes most of its \
                 mass. Transport cost J = {:.5} per supporting point.",
                init_words(l.init),
                s.objective
            ),
            _ => {
                let before = &l.steps[i - 1];
                let drop = before.objective - s.objective;
                let than = if before.iteration + 1 == t {
                    "before".to_string()
                } else {
                    format!("at iteration {}", before.iteration)
                };
                let change =
                    if drop > 0.0 { format!("{drop:.2e} lower than {than}") } else { format!("no lower than {than}") };
                let end = match (t == last, l.converged) {
                    (true, true) => " J no longer changes: MM has converged.",
                    (true, false) => " MM stopped at its iteration cap (reduction.max_iter) before converging.",
                    _ => "",
                };
                format!(
                    "MM iteration {t}: each reduced expert is refitted to the pooled experts assigned to it (a weighted \
                     least squares and an exact variance), then every pooled expert moves to the reduced expert that is now \
                     closest in Kullback-Leibler divergence. J = {:.5} per point ({change}; MM never lets it rise).{end}",
                    s.objective
                )
            }
        };
        out.push(Step {
            stem: format!("step-{:02}-mm-{t:03}", i + 4),
            title: format!("MM iteration {t} of {last}"),
            text,
        });
    }
    out.push(Step {
        stem: format!("step-{:02}-result", l.steps.len() + 4),
        title: "The reduced model against the truth".into(),
        text: result_words(l),
    });
    out
}

/// What the last step says: the reduced model's and the naive average's parameter errors against
/// the truth, in words that hold whatever they are.
fn result_words(l: &Lesson) -> String {
    let reduced = param_mse(&l.reduced, &l.truth);
    let mut text = format!(
        "The reduced model (solid blue, with a gate fitted to the plan) against the true experts (dashed black): \
         parameter error {reduced:.3} after matching labels."
    );
    match &l.naive {
        Some(naive) if l.settings.k > 1 && l.settings.machines > 1 => {
            let naive_mse = param_mse(naive, &l.truth);
            let _ = write!(
                text,
                " The naive average of the local models (vermillion) averages expert 1 with expert 1 although the \
                 machines numbered their experts independently: parameter error {naive_mse:.3}, {} the reduction's.",
                if naive_mse > 2.0 * reduced { "far above" } else { "close to" }
            );
        }
        Some(_) => text.push_str(
            " With one expert or one machine there are no labels to mix up: the naive average (vermillion) is as good.",
        ),
        None => text.push_str(" The naive average cannot be formed here."),
    }
    text
}

/// `s` for a count other than 1.
fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// A start in words.
fn init_words(init: Init) -> &'static str {
    match init {
        Init::Kmeans => "k-means on the pooled experts",
        Init::AlignedAverage => "the label-aligned average of the local models",
        Init::BestLocal => "the local model closest to the pool",
    }
}

/// Writes the lesson into the (empty) folder `dir`: one SVG (and PNG) per step and `index.html`,
/// which shows one step at a time with previous/next links (CSS `:target`, no script).
pub fn write(dir: &Path, l: &Lesson) -> Result<(), String> {
    let steps = steps(l);
    let figures = dir.join("steps");
    std::fs::create_dir(&figures).map_err(|e| format!("{}: {e}", figures.display()))?;
    super::plots::lesson::draw_all(&figures, l, &steps)?;
    let index = dir.join("index.html");
    std::fs::write(&index, page(l, &steps, &figures)?).map_err(|e| format!("{}: {e}", index.display()))
}

/// The stepping page.
fn page(l: &Lesson, steps: &[Step], figures: &Path) -> Result<String, String> {
    let s = &l.settings;
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>dmoe teach: the one-shot reduction step by step</title>\n<style>\
         body{{font-family:sans-serif;max-width:1100px;margin:1em auto;padding:0 1em;color:#222}}\
         .step{{display:none}}.step:target{{display:block}}body:not(:has(.step:target)) #step-1{{display:block}}\
         nav{{margin:.6em 0;font-size:1.05em}}nav a{{margin-right:1.5em}}svg{{max-width:100%;height:auto}}\
         p.say{{font-size:1.05em;line-height:1.45;max-width:60em}}</style>\n</head>\n<body>\n\
         <h1>Learning a mixture of experts on {} machines, step by step</h1>\n<p>K = {}, n = {}, seed {}: \
         <code>dmoe teach --k {} --machines {} --n {} --seed {}</code> draws exactly this again.</p>\n",
        s.machines, s.k, s.n, s.seed, s.k, s.machines, s.n, s.seed
    );
    for (i, step) in steps.iter().enumerate() {
        let path = figures.join(format!("{}.svg", step.stem));
        let svg = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let link = |j: usize, words: &str| format!("<a href=\"#step-{}\">{words}</a>", j + 1);
        let prev = if i > 0 { link(i - 1, "&larr; previous") } else { String::new() };
        let next = if i + 1 < steps.len() { link(i + 1, "next &rarr;") } else { String::new() };
        let _ = write!(
            h,
            "<section class=\"step\" id=\"step-{}\">\n<h2>{} / {}: {}</h2>\n<nav>{prev}{next}</nav>\n<p class=\"say\">{}</p>\n{}\n</section>\n",
            i + 1,
            i + 1,
            steps.len(),
            super::page::escape(&step.title),
            super::page::escape(&step.text),
            svg.trim()
        );
    }
    h.push_str("</body>\n</html>\n");
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_replayed_mm_ends_where_the_reduction_ended_and_never_rises() {
        // The default lesson and others of other K, M and seeds (K = 1 and M = 1 among them).
        for (k, machines, n, seed) in
            [(2, 3, 1500, 2), (1, 2, 600, 3), (4, 5, 5000, 4), (3, 1, 800, 5), (5, 6, 6000, 3)]
        {
            let l = lesson(&TeachSettings { k, machines, n, seed }).unwrap();
            let last = l.steps.last().unwrap();
            assert_eq!(last.coef, l.reduced.experts, "K = {k}, M = {machines}, seed {seed}");
            assert_eq!(last.variances, l.reduced.variances, "K = {k}, M = {machines}, seed {seed}");
        }
        let l = lesson(&TeachSettings::default()).unwrap();
        let last = l.steps.last().unwrap();
        assert_eq!(last.coef, l.reduced.experts, "the replay is the library's own MM run");
        assert_eq!(last.variances, l.reduced.variances);
        for w in l.steps.windows(2) {
            assert!(w[1].objective <= w[0].objective * (1.0 + 1e-12), "{} -> {}", w[0].objective, w[1].objective);
        }
        assert_eq!(l.large.n_experts(), 4 * 3);
        assert!(l.large.n_support() <= reduce::START_POINTS);
        // Every reduced expert absorbs at least one pooled expert at the end.
        for k in 0..3 {
            assert!(last.absorbs.contains(&k), "expert {k} absorbs nothing: {:?}", last.absorbs);
        }
    }

    #[test]
    fn settings_out_of_range_name_the_flag() {
        let bad = |s: TeachSettings| check(&s).unwrap_err();
        assert!(bad(TeachSettings { k: 0, ..TeachSettings::default() }).starts_with("--k: "));
        assert!(bad(TeachSettings { machines: 17, ..TeachSettings::default() }).starts_with("--machines: "));
        assert!(bad(TeachSettings { n: 100, ..TeachSettings::default() }).starts_with("--n: "));
    }
}
