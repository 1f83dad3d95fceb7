//! How much memory a data set and its fit need, and how much this machine has: so that a run that
//! cannot fit is refused by `check` (and before any work) with a message, instead of aborting on a
//! failed allocation hours later.

/// Bytes of one `f64`.
const F64: u64 = 8;

/// Estimated peak bytes of fitting a K-component model on `n` rows of `d` covariates: the rows
/// (covariates, target, label, a training and a test copy), EM's working arrays (design matrix,
/// weighted copies, responsibilities and log-densities) and the gate's Newton step (one weight
/// column per pair of components, and its Hessian of side (K-1)(d+1)):
/// `8 (n (5 (d+1) + 4 K + 4 + K (K-1) / 2) + ((K-1)(d+1))^2)` bytes. Measured peaks on `dmoe run`
/// are below it: 437 MB at n = 2e6, K = 3, d = 2 (estimate 544 MB) and 209 MB at n = 2e5, K = 5,
/// d = 20 (estimate 222 MB + the program). Saturates instead of wrapping around.
pub fn fit_bytes(n: usize, k: usize, d: usize) -> u64 {
    let (n, k, p) = (n as u64, k as u64, (d as u64).saturating_add(1));
    let pairs = k.saturating_mul(k.saturating_sub(1)) / 2;
    let per_row = p.saturating_mul(5).saturating_add(k.saturating_mul(4)).saturating_add(4).saturating_add(pairs);
    let side = k.saturating_sub(1).saturating_mul(p);
    F64.saturating_mul(n.saturating_mul(per_row).saturating_add(side.saturating_mul(side)))
}

/// Bytes of `n` simulated rows of `d` covariates with their target and label.
pub fn rows_bytes(n: usize, d: usize) -> u64 {
    F64.saturating_mul(n as u64).saturating_mul((d as u64).saturating_add(2))
}

/// The memory this process may use, in bytes (`None` if unknown): the machine's physical memory,
/// or less if the address-space limit (`ulimit -v`) or the control group's limit
/// (`/sys/fs/cgroup/memory.max`) is lower.
pub fn physical_bytes() -> Option<u64> {
    // SAFETY: sysconf has no preconditions.
    let (pages, page) = unsafe { (libc::sysconf(libc::_SC_PHYS_PAGES), libc::sysconf(libc::_SC_PAGESIZE)) };
    let physical = (pages > 0 && page > 0).then(|| (pages as u64).saturating_mul(page as u64));
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: a valid pointer to an rlimit.
    let address_space = (unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut limit) } == 0
        && limit.rlim_cur != libc::RLIM_INFINITY)
        .then_some(limit.rlim_cur);
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max").ok().and_then(|s| s.trim().parse::<u64>().ok());
    [physical, address_space, cgroup].into_iter().flatten().min()
}

/// Bytes in words: "24.0 GB".
pub fn show(bytes: u64) -> String {
    let b = bytes as f64;
    match b {
        _ if bytes == u64::MAX => "more than 1e7 TB".to_string(),
        b if b >= 1e12 => format!("{:.1} TB", b / 1e12),
        b if b >= 1e9 => format!("{:.1} GB", b / 1e9),
        _ => format!("{:.0} MB", (b / 1e6).max(1.0)),
    }
}

/// Bytes the program needs beside its data: code, thread stacks and the allocator's per-thread
/// arenas, which count against an address-space limit (`ulimit -v`).
const PROGRAM_BYTES: u64 = 256 << 20;

/// Whether `need` bytes (plus the program's own) fit in the memory this process may use.
pub fn fits(need: u64) -> bool {
    physical_bytes().is_none_or(|have| need.saturating_add(PROGRAM_BYTES) <= have)
}

/// An error when `need` bytes (plus the program's own) exceed the memory this process may use:
/// `what` says what needs them.
pub fn check_fits(need: u64, what: &str) -> Result<(), String> {
    match physical_bytes() {
        Some(have) if !fits(need) => Err(format!(
            "{what} needs about {} of memory, but this process may use {}: use fewer rows or components",
            show(need.saturating_add(PROGRAM_BYTES)),
            show(have)
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_grow_with_the_problem_and_never_wrap() {
        assert_eq!(fit_bytes(1, 3, 2), 8 * (15 + 12 + 4 + 3 + 36));
        assert!(fit_bytes(300_000, 300, 1) > 86_112_000_000, "the gate's pair weights (a measured abort)");
        assert!(fit_bytes(2_000_000, 3, 2) > 437_072 * 1024, "above the measured peak");
        assert_eq!(fit_bytes(usize::MAX, usize::MAX, usize::MAX), u64::MAX);
        assert_eq!(rows_bytes(10, 2), 320);
        let e = check_fits(u64::MAX, "data.n = 1e19").unwrap_err();
        assert!(e.starts_with("data.n = 1e19 needs about more than 1e7 TB") && e.contains("may use"), "{e}");
        assert!(check_fits(1 << 20, "a megabyte").is_ok());
        assert!(check_fits(u64::MAX - 1, "all").unwrap_err().contains("more than 1e7 TB"), "no wrap-around");
        assert_eq!(show(24_000_000_000), "24.0 GB");
    }
}
