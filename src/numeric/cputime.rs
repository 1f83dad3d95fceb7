//! Thread CPU time, the honest measure of one machine's compute when many simulated machines share
//! a few real cores (docs/simulator.md).

/// CPU seconds consumed so far by the calling thread (`CLOCK_THREAD_CPUTIME_ID`). Differences of two
/// readings on the same thread time a piece of single-threaded work, whatever else the box is doing.
pub fn thread_cpu_seconds() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime only writes the timespec we pass; the clock id is a constant that every
    // Linux kernel since 2.6.12 supports.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "CLOCK_THREAD_CPUTIME_ID is unavailable on this system");
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// CPU seconds consumed so far by the whole process, every thread included
/// (`CLOCK_PROCESS_CPUTIME_ID`): the cost of work spread over several threads.
pub fn process_cpu_seconds() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: as in `thread_cpu_seconds`.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "CLOCK_PROCESS_CPUTIME_ID is unavailable on this system");
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

#[cfg(test)]
mod tests {
    #[test]
    fn thread_cpu_time_advances_with_work_not_with_sleep() {
        let t0 = super::thread_cpu_seconds();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let slept = super::thread_cpu_seconds() - t0;
        let mut acc = 0u64;
        for i in 0..20_000_000u64 {
            acc = acc.wrapping_mul(6364136223846793005).wrapping_add(i);
        }
        std::hint::black_box(acc);
        let worked = super::thread_cpu_seconds() - t0 - slept;
        assert!(slept < 0.02, "sleeping used {slept} s of CPU");
        assert!(worked > 0.001, "work used only {worked} s of CPU");
    }
}
