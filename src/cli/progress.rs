//! Progress of `dmoe run` on stderr: indicatif bars on a terminal (runs done with an ETA, and one
//! bar per running cell counting its machines' reports), plain log lines when stderr is not a
//! terminal, nothing with `--quiet` (`study::Silent`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::study::Progress;

/// The bars on screen, so that an interrupt can erase them ([`clear_bars`]).
static ON_SCREEN: Mutex<Option<MultiProgress>> = Mutex::new(None);

/// Erases the bars on screen, if any (called when a signal stops the run).
pub fn clear_bars() {
    if let Some(multi) = ON_SCREEN.lock().ok().and_then(|mut m| m.take()) {
        let _ = multi.clear();
    }
}

/// Bars on a terminal.
pub struct Bars {
    multi: MultiProgress,
    main: ProgressBar,
    running: Mutex<HashMap<usize, ProgressBar>>,
}

impl Bars {
    /// `total` units of work (cluster runs and global fits).
    pub fn new(total: usize) -> Bars {
        let multi = MultiProgress::new();
        let main = multi.add(ProgressBar::new(total as u64));
        main.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:40.cyan/blue}] {pos}/{len} runs, ETA {eta}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        *ON_SCREEN.lock().expect("progress lock") = Some(multi.clone());
        Bars { multi, main, running: Mutex::new(HashMap::new()) }
    }
}

impl Drop for Bars {
    fn drop(&mut self) {
        if let Ok(mut m) = ON_SCREEN.lock() {
            *m = None;
        }
    }
}

impl Progress for Bars {
    fn started(&self, task: usize, label: &str, machines: usize) {
        let pb = self.multi.add(ProgressBar::new(machines as u64));
        let template = if machines > 0 { "  {msg} [{bar:25}] {pos}/{len} machines" } else { "  {spinner} {msg}" };
        pb.set_style(ProgressStyle::with_template(template).expect("a valid template").progress_chars("=> "));
        pb.set_message(label.to_string());
        if machines == 0 {
            pb.enable_steady_tick(std::time::Duration::from_millis(200));
        }
        self.running.lock().expect("progress lock").insert(task, pb);
    }

    fn machine_done(&self, task: usize) {
        if let Some(pb) = self.running.lock().expect("progress lock").get(&task) {
            pb.inc(1);
        }
    }

    fn finished(&self, task: usize, summary: &str) {
        if let Some(pb) = self.running.lock().expect("progress lock").remove(&task) {
            pb.finish_and_clear();
            self.multi.remove(&pb);
        }
        self.main.inc(1);
        let _ = self.multi.println(format!("  {summary}"));
    }
}

/// One line per finished unit of work, for logs.
pub struct Lines {
    total: usize,
    done: AtomicUsize,
}

impl Lines {
    /// `total` units of work.
    pub fn new(total: usize) -> Lines {
        Lines { total, done: AtomicUsize::new(0) }
    }
}

impl Progress for Lines {
    fn started(&self, _: usize, _: &str, _: usize) {}
    fn machine_done(&self, _: usize) {}
    fn finished(&self, _: usize, summary: &str) {
        let k = self.done.fetch_add(1, Ordering::SeqCst) + 1;
        tell!("[{k}/{}] {summary}", self.total);
    }
}
