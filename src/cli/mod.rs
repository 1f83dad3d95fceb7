//! The command line: a thin layer that parses flags, calls the library and prints. Every user error
//! ends with a message on stderr and exit code 2, and no partial output file.

//! One file per command: `run` (run, check, calibrate), `report`, `teach`, `fit`, `simulate`, `predict`, `bench`;
//! `progress` shows a study's progress; `interrupt` turns SIGINT/SIGTERM into a clean stop.

/// `println!` that never panics: when stdout cannot be written (a full disk, `>/dev/full`) the
/// command ends with a message and exit code 2. Every output file is committed before anything is
/// printed, so nothing is lost. (A closed pipe never gets here: SIGPIPE ends the process first.)
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout(), $($arg)*) {
            $crate::cli::stdout_failed(e);
        }
    }};
}

/// `eprintln!` that never panics: a message that cannot be written to stderr is dropped (there is
/// nowhere left to report it).
macro_rules! tell {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub mod bench;
mod fit;
mod interrupt;
mod predict;
pub mod progress;
mod report;
mod run;
mod simulate;
mod teach;

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use self::fit::FitArgs;
use self::predict::PredictArgs;
use self::report::ReportArgs;
use self::run::{CalibrateArgs, CheckArgs, RunArgs};
use self::simulate::SimulateArgs;
use self::teach::TeachArgs;

/// dmoe: learn a Mixture of Experts across a (simulated) cluster.
#[derive(Debug, Parser)]
#[command(name = "dmoe", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a scenario file: every cell of its sweep, then results.csv, run.json, plots, traces and
    /// the report page index.html.
    Run(RunArgs),
    /// Draw the plots and index.html of an output folder again, without running anything.
    Report(ReportArgs),
    /// The one-shot reduction step by step on one covariate, for a class: a page of figures
    /// (data, local fits, pooled experts, every MM iteration, the result).
    Teach(TeachArgs),
    /// Validate a scenario file (keys, types, ranges, data files, shard sizes) without running it,
    /// warning about machines with fewer than 10 training rows per free parameter and about runs
    /// whose machines may all fail.
    Check(CheckArgs),
    /// Measure the model clock's constants on this machine and print them as a [cost_model] table;
    /// --save keeps them for later model-clock runs on this machine.
    Calibrate(CalibrateArgs),
    /// Draw a data set from a random true MoE (one of the authors' recipes, or dmoe's spread recipe) and write it as CSV.
    Simulate(SimulateArgs),
    /// Fit a MoE by EM to a CSV file and write the model as JSON: on one machine, on M machines
    /// reduced to one model (--machines, with a comparison of estimators), or on MPI ranks (--backend mpi).
    Fit(FitArgs),
    /// Predict with a saved model: mixture mean and most likely component of every row.
    Predict(PredictArgs),
    /// Time EM on synthetic data (or, with a flag: the reduction, the simulator's overhead, stuck fits).
    Bench(bench::BenchArgs),
}

/// Ends the process after stdout failed: a message on stderr (if it can be written) and exit code 2.
pub fn stdout_failed(e: std::io::Error) -> ! {
    let _ = writeln!(std::io::stderr(), "error: cannot write to standard output: {e}");
    std::process::exit(2)
}

/// Runs the command line; the binary's `main` is only this.
pub fn main() -> ExitCode {
    interrupt::install();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(a) => run::run(a),
        Command::Check(a) => run::check(a),
        Command::Report(a) => report::report(a),
        Command::Teach(a) => teach::teach(a),
        Command::Calibrate(a) => run::calibrate(a),
        Command::Simulate(a) => simulate::simulate(a),
        Command::Fit(a) if a.uses_mpi() => return fit::fit_mpi(&a),
        Command::Fit(a) => fit::fit(a),
        Command::Predict(a) => predict::predict(a),
        Command::Bench(a) => bench::run(&a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tell!("error: {message}");
            ExitCode::from(2)
        }
    }
}
