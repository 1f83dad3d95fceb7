//! Output destinations: every file or folder a command writes.
//!
//! The guarantee: a destination holds either its complete old content or the complete new one, never
//! a mixture, and no temporary file is left behind, whatever happens during the run (an error, a
//! SIGINT/SIGTERM, a second run writing to the same place). It rests on four steps:
//!
//! 1. **Claim before any work** ([`Destination::file`], [`Destination::folder`]): the path is
//!    checked (its folder exists or can be made, it is not of the wrong kind, not the current folder)
//!    and locked: `.NAME.lock` beside it is held with `flock`, so a second run to the same
//!    destination is refused with the first one's process id. Leftovers of a killed run (`kill -9`)
//!    are removed then, under the lock.
//! 2. **Stage** ([`Destination::stage`]): the output is written into a temporary sibling
//!    `.NAME.partial-PID`, which is deleted if it is dropped uncommitted (an error on the way).
//! 3. **Commit** ([`commit`]): every staged output of the command appears by one `rename` each (on
//!    Linux, an existing folder is swapped in by one `renameat2(RENAME_EXCHANGE)`), all under one
//!    process-wide lock.
//! 4. **Interrupt** ([`abandon_all`], called by the command line's signal thread): takes that same
//!    lock, so a commit in progress finishes first and no other starts, then deletes every staged
//!    temporary and every lock file. The caller then exits.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// Why a destination cannot be used; every message names the flag and the path.
#[derive(Debug, thiserror::Error)]
pub enum DestinationError {
    /// The destination is unusable as given.
    #[error("{flag} {}: {message}", path.display())]
    Refused { flag: String, path: PathBuf, message: String },
    /// Another process holds the destination's lock.
    #[error(
        "{flag} {}: another dmoe run{} is writing to it; wait for it to finish or choose another destination",
        path.display(), owner.map_or(String::new(), |p| format!(" (process {p})"))
    )]
    Busy { flag: String, path: PathBuf, owner: Option<u32> },
    /// The file system failed.
    #[error("{}: {}", path.display(), io_text(source))]
    Io { path: PathBuf, source: std::io::Error },
}

/// An I/O error in words, without the operating system's error number.
fn io_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    text.find(" (os error").map_or(text.clone(), |i| text[..i].to_string())
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> DestinationError + '_ {
    move |source| DestinationError::Io { path: path.to_path_buf(), source }
}

/// The process's outputs in progress. Its mutex is also the commit lock.
struct Registry {
    /// To delete if the process is interrupted: staged temporaries and lock files.
    pending: Vec<PathBuf>,
    /// Destinations already committed.
    written: Vec<PathBuf>,
    /// Folders made for destinations, deleted (when empty) on an interrupt.
    made: Vec<PathBuf>,
    /// Set by [`abandon_all`]: nothing may be staged or committed any more.
    abandoned: bool,
}

static REGISTRY: Mutex<Registry> =
    Mutex::new(Registry { pending: Vec::new(), written: Vec::new(), made: Vec::new(), abandoned: false });

fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

fn forget(path: &Path) {
    registry().pending.retain(|p| p != path);
}

/// The file a folder destination carries to show that dmoe wrote it: only an empty folder or one
/// with this marker is ever replaced, never a folder of the user's files.
pub const OUTPUT_MARKER: &str = ".dmoe-output";

/// What a destination is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Folder,
}

/// A claimed output path: checked and locked until dropped.
#[derive(Debug)]
pub struct Destination {
    path: PathBuf,
    flag: String,
    kind: Kind,
    lock_path: PathBuf,
    _lock: File,
    /// Folders made for the destination, deleted again (when still empty) if nothing is committed.
    created: Vec<PathBuf>,
}

/// `(folder, file name)` of a destination, with `.` for a bare file name.
fn split(path: &Path) -> Option<(PathBuf, String)> {
    let name = path.file_name()?.to_str()?.to_string();
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    Some((parent.to_path_buf(), name))
}

impl Destination {
    /// Claims a file destination: its folder must exist, and `path` must be new or a regular,
    /// writable file (not a folder, a device or a pipe).
    pub fn file(path: &Path, flag: &str) -> Result<Destination, DestinationError> {
        let refuse = |m: &str| DestinationError::Refused { flag: flag.into(), path: path.into(), message: m.into() };
        if path.as_os_str().to_string_lossy().ends_with('/') {
            return Err(refuse("ends with `/`: give a file name"));
        }
        let (parent, _) = split(path).ok_or_else(|| refuse("is not a file name"))?;
        if !parent.is_dir() {
            return Err(refuse("cannot write here: its folder does not exist"));
        }
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(refuse(&symlink_message(path)));
        }
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => return Err(refuse("cannot write here: it is a folder (give a file name)")),
            Ok(m) if !m.is_file() => return Err(refuse("is not a regular file (a device, a pipe or a socket)")),
            Ok(m) if m.permissions().readonly() => return Err(refuse("is read-only")),
            _ => {}
        }
        Destination::claim(path, Kind::File, flag, Vec::new())
    }

    /// Claims a folder destination: a new folder, an empty one, or an old dmoe output (with
    /// [`OUTPUT_MARKER`]) to replace; never a file, a folder of other files, the current folder or
    /// one of its ancestors. Missing parent folders are made (and deleted again if nothing is
    /// committed).
    pub fn folder(path: &Path, flag: &str) -> Result<Destination, DestinationError> {
        let path: PathBuf = path.components().collect();
        let refuse = |m: &str| DestinationError::Refused { flag: flag.into(), path: path.clone(), message: m.into() };
        let ours = "is the current folder or contains it; give a folder of its own, e.g. output/NAME";
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(refuse(&symlink_message(&path)));
        }
        if path.is_file() {
            return Err(refuse("is a file; the output is a folder (give a new or an old output folder)"));
        }
        let here = std::env::current_dir().and_then(|d| d.canonicalize()).ok();
        let Some((parent, _)) = split(&path) else { return Err(refuse(ours)) };
        if path.canonicalize().ok().zip(here).is_some_and(|(t, h)| h.starts_with(&t)) {
            return Err(refuse(ours));
        }
        if path.is_dir() && !replaceable(&path) {
            return Err(refuse(&format!(
                "exists and is not a dmoe output (it has files and no {OUTPUT_MARKER}); dmoe replaces the whole folder, so give a new folder or an old output"
            )));
        }
        let created = make_parents(&parent).map_err(|e| refuse(&format!("cannot make its folder: {}", io_text(&e))))?;
        Destination::claim(&path, Kind::Folder, flag, created)
    }

    /// Takes the lock `.NAME.lock` beside `path` and clears leftovers of killed runs.
    fn claim(path: &Path, kind: Kind, flag: &str, created: Vec<PathBuf>) -> Result<Destination, DestinationError> {
        let (parent, name) = split(path).expect("checked by the caller");
        let lock_path = parent.join(format!(".{name}.lock"));
        let refused = |message: String| DestinationError::Refused { flag: flag.into(), path: path.into(), message };
        let lock = lock_file(&lock_path).map_err(|e| match e {
            LockError::Busy(Some(owner)) if owner == std::process::id() => {
                refused("is already an output of this command (two flags name the same path)".into())
            }
            LockError::Busy(owner) => DestinationError::Busy { flag: flag.into(), path: path.into(), owner },
            LockError::Io(e) => refused(format!("cannot write in its folder: {}", io_text(&e))),
        })?;
        {
            let mut reg = registry();
            reg.pending.push(lock_path.clone());
            reg.made.extend(created.iter().cloned());
        }
        lock_cleanup::register(&lock_path);
        let dest = Destination { path: path.to_path_buf(), flag: flag.into(), kind, lock_path, _lock: lock, created };
        dest.clear_leftovers(&parent, &name);
        Ok(dest)
    }

    /// Deletes `.NAME.partial-*` beside the destination (with their `.trash-` and `.aside` forms):
    /// under the lock they can only be left by a run that was killed without a chance to clean up.
    fn clear_leftovers(&self, parent: &Path, name: &str) {
        let prefix = format!(".{name}.partial-");
        let Ok(entries) = std::fs::read_dir(parent) else { return };
        for entry in entries.flatten() {
            if entry.file_name().to_str().is_some_and(|n| n.starts_with(&prefix)) {
                remove(&entry.path());
            }
        }
    }

    /// An error if the destination is one of the command's input files (`(flag, path)` pairs): the
    /// output would replace the data it is computed from.
    pub fn not_an_input(self, inputs: &[(&str, &Path)]) -> Result<Destination, DestinationError> {
        use std::os::unix::fs::MetadataExt;
        let id = |p: &Path| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
        let Some(mine) = id(&self.path) else { return Ok(self) };
        match inputs.iter().find(|(_, p)| id(p) == Some(mine)) {
            Some((flag, p)) => Err(DestinationError::Refused {
                flag: self.flag.clone(),
                path: self.path.clone(),
                message: format!("is the input {flag} {}: write the output elsewhere", p.display()),
            }),
            None => Ok(self),
        }
    }

    /// The destination's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A temporary sibling to write the output into: an empty folder (with [`OUTPUT_MARKER`]) for a
    /// folder destination, an empty file for a file. It is deleted when dropped uncommitted. Made
    /// under the commit lock, so that an interrupt either sees it (and deletes it) or stops it.
    pub fn stage(&self) -> Result<Staged<'_>, DestinationError> {
        let (parent, name) = split(&self.path).expect("checked when claimed");
        let tmp = parent.join(format!(".{name}.partial-{}", std::process::id()));
        let mut reg = registry();
        if reg.abandoned {
            drop(reg);
            // The signal thread is about to end the process.
            loop {
                std::thread::park();
            }
        }
        remove(&tmp);
        let made = match self.kind {
            Kind::Folder => std::fs::create_dir(&tmp).and_then(|()| File::create(tmp.join(OUTPUT_MARKER)).map(drop)),
            Kind::File => File::create(&tmp).map(drop),
        };
        reg.pending.push(tmp.clone());
        drop(reg);
        let staged = Staged { dest: self, tmp, committed: false };
        made.map_err(io(&staged.tmp))?;
        Ok(staged)
    }

    /// A file destination staged and filled (and flushed to disk), ready for [`commit`] with the
    /// command's other outputs.
    pub fn stage_file(
        &self,
        fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> Result<Staged<'_>, DestinationError> {
        let staged = self.stage()?;
        staged.write_file(fill)?;
        Ok(staged)
    }

    /// Writes a file destination in one go: stage, `fill`, flush to disk, commit.
    pub fn write(&self, fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<(), DestinationError> {
        commit(vec![self.stage_file(fill)?])
    }

    /// An error if the destination changed kind since it was claimed (a folder made where a file
    /// goes), so that a commit of several outputs fails before it moves any of them.
    fn still_usable(&self) -> Result<(), DestinationError> {
        let wrong = match self.kind {
            Kind::File => self.path.is_dir(),
            Kind::Folder => self.path.is_file() || (self.path.is_dir() && !replaceable(&self.path)),
        };
        match wrong {
            true => Err(DestinationError::Refused {
                flag: self.flag.clone(),
                path: self.path.clone(),
                message: "changed during the run (it is now of another kind, or a folder of other files); nothing was written".into(),
            }),
            false => Ok(()),
        }
    }
}

impl Drop for Destination {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.lock_path);
        lock_cleanup::unregister(&self.lock_path);
        forget(&self.lock_path);
        registry().made.retain(|d| !self.created.contains(d));
        if !registry().written.contains(&self.path) {
            for dir in self.created.iter().rev() {
                let _ = std::fs::remove_dir(dir);
            }
        }
    }
}

/// The refusal of a symbolic link: the rename at the end would replace the link, not write through
/// it (and `/dev/stdout` is such a link).
fn symlink_message(path: &Path) -> String {
    let target = std::fs::read_link(path).map_or(String::from("?"), |t| t.display().to_string());
    format!("is a symbolic link (to {target}); dmoe replaces its destination whole, so give a real path")
}

/// Whether an existing folder may be replaced: it is empty, or it is a dmoe output (with the marker,
/// or a study folder of a dmoe from before the marker, whose README.txt begins "dmoe run of").
fn replaceable(dir: &Path) -> bool {
    let Ok(mut entries) = std::fs::read_dir(dir) else { return false };
    let legacy = || std::fs::read_to_string(dir.join("README.txt")).is_ok_and(|t| t.starts_with("dmoe run of"));
    dir.join(OUTPUT_MARKER).is_file() || entries.next().is_none() || legacy()
}

/// Makes `dir` and its missing parents; returns the folders it made, outermost first.
fn make_parents(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let missing: Vec<PathBuf> =
        dir.ancestors().take_while(|a| !a.as_os_str().is_empty() && !a.exists()).map(Path::to_path_buf).collect();
    std::fs::create_dir_all(dir)?;
    Ok(missing.into_iter().rev().collect())
}

/// An output being written: a temporary sibling of its destination.
#[derive(Debug)]
pub struct Staged<'a> {
    dest: &'a Destination,
    tmp: PathBuf,
    committed: bool,
}

impl Staged<'_> {
    /// Where to write: the temporary folder, or the temporary file.
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    /// Fills the temporary file and flushes it to disk. The file is opened, not created: after an
    /// interrupt deleted it, writing fails instead of making it again.
    pub fn write_file(&self, fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<(), DestinationError> {
        let file = std::fs::OpenOptions::new().write(true).truncate(true).open(&self.tmp).map_err(io(&self.tmp))?;
        let mut w = std::io::BufWriter::new(file);
        fill(&mut w).map_err(io(&self.dest.path))?;
        w.into_inner().map_err(|e| e.into_error()).and_then(|f| f.sync_all()).map_err(io(&self.dest.path))
    }

    /// Moves the temporary into place (the commit lock is held by the caller).
    fn publish(&mut self) -> Result<(), DestinationError> {
        let dest = &self.dest.path;
        if self.dest.kind == Kind::Folder && dest.exists() {
            exchange(&self.tmp, dest).map_err(io(dest))?;
            // The temporary now holds the old output.
            if let Some(left) = remove(&self.tmp) {
                eprintln!(
                    "warning: the old content of {} could not be deleted; it is in {}",
                    dest.display(),
                    left.display()
                );
            }
        } else {
            std::fs::rename(&self.tmp, dest).map_err(io(dest))?;
        }
        self.committed = true;
        Ok(())
    }
}

impl Drop for Staged<'_> {
    fn drop(&mut self) {
        if !self.committed {
            remove(&self.tmp);
        }
        forget(&self.tmp);
    }
}

/// Makes every staged output appear at its destination, under the commit lock, so an interrupt
/// waits until all of them are in place. Every destination is checked again first, so that a commit
/// of several outputs does not stop half-way because one of them changed during the run; each
/// replacement is then one rename.
pub fn commit(mut staged: Vec<Staged<'_>>) -> Result<(), DestinationError> {
    let mut guard = registry();
    staged.iter().try_for_each(|s| s.dest.still_usable())?;
    for s in &mut staged {
        s.publish()?;
        guard.written.push(s.dest.path.clone());
    }
    Ok(())
}

/// Deletes every staged temporary and lock file of this process, after any commit in progress has
/// finished, and stops every later stage and commit. For the signal handler, just before it exits.
/// Returns the destinations that were already written (complete) by then.
pub fn abandon_all() -> Vec<PathBuf> {
    let mut guard = registry();
    guard.abandoned = true;
    for path in &guard.pending {
        remove(path);
    }
    for dir in guard.made.iter().rev() {
        let _ = std::fs::remove_dir(dir);
    }
    let written = guard.written.clone();
    // Holding the lock until exit: nothing may be committed after an interrupt.
    std::mem::forget(guard);
    written
}

/// Deletes a file or a folder, first renaming a folder out of the way (unless it is trash already)
/// so that a thread still writing into it cannot add files behind the deletion. Returns what could
/// not be deleted, if anything.
fn remove(path: &Path) -> Option<PathBuf> {
    let is_trash = path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.contains(".trash-"));
    if path.is_dir() {
        let trash = sibling(path, "trash");
        let doomed = if !is_trash && std::fs::rename(path, &trash).is_ok() { trash } else { path.to_path_buf() };
        let _ = std::fs::remove_dir_all(&doomed);
        doomed.exists().then_some(doomed)
    } else {
        let _ = std::fs::remove_file(path);
        path.exists().then(|| path.to_path_buf())
    }
}

/// `path` with `.WHAT-PID` appended to its name (a name `clear_leftovers` recognises).
fn sibling(path: &Path, what: &str) -> PathBuf {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("dmoe");
    path.with_file_name(format!("{name}.{what}-{}", std::process::id()))
}

/// Swaps two existing paths atomically (Linux), or moves `dest` aside and `tmp` in (elsewhere, or
/// on a file system without the swap, such as some network file systems: there a crash between the
/// two renames leaves the old output at `.NAME.partial-PID.aside-PID`), leaving the old content at
/// `tmp` either way.
fn exchange(tmp: &Path, dest: &Path) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::ffi::OsStrExt;
        let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(std::io::Error::other);
        let (a, b) = (c(tmp)?, c(dest)?);
        // SAFETY: two valid NUL-terminated paths; renameat2 only reads them.
        let rc =
            unsafe { libc::renameat2(libc::AT_FDCWD, a.as_ptr(), libc::AT_FDCWD, b.as_ptr(), libc::RENAME_EXCHANGE) };
        if rc == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if !matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOSYS)) {
            return Err(e);
        }
    }
    let aside = sibling(tmp, "aside");
    std::fs::rename(dest, &aside)?;
    std::fs::rename(tmp, dest)?;
    std::fs::rename(&aside, tmp)
}

/// Lock files to unlink from a signal handler (SIGPIPE when stdout is closed, SIGABRT when an
/// allocation fails), where no mutex may be taken: a fixed table of C strings, each slot set and
/// cleared atomically. A cleared string is leaked, never freed, so a handler can never read freed
/// memory (a few bytes per destination).
pub mod lock_cleanup {
    use std::ffi::{CStr, CString};
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;
    use std::sync::atomic::{AtomicPtr, Ordering};

    const SLOTS: usize = 64;
    static PATHS: [AtomicPtr<libc::c_char>; SLOTS] = [const { AtomicPtr::new(std::ptr::null_mut()) }; SLOTS];

    /// Adds a lock file (a process has a handful; beyond 64 they are not covered).
    pub fn register(path: &Path) {
        let Ok(c) = CString::new(path.as_os_str().as_bytes()) else { return };
        let ptr = c.into_raw();
        for slot in &PATHS {
            if slot.compare_exchange(std::ptr::null_mut(), ptr, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                return;
            }
        }
    }

    /// Removes a lock file from the table.
    pub fn unregister(path: &Path) {
        for slot in &PATHS {
            let p = slot.load(Ordering::SeqCst);
            // SAFETY: a non-null slot holds a leaked, NUL-terminated CString.
            if !p.is_null() && unsafe { CStr::from_ptr(p) }.to_bytes() == path.as_os_str().as_bytes() {
                let _ = slot.compare_exchange(p, std::ptr::null_mut(), Ordering::SeqCst, Ordering::SeqCst);
            }
        }
    }

    /// Unlinks every registered lock file. Async-signal-safe: atomic loads and `unlink` only.
    pub fn unlink_all() {
        for slot in &PATHS {
            let p = slot.load(Ordering::SeqCst);
            if !p.is_null() {
                // SAFETY: a valid C string; unlink is async-signal-safe.
                unsafe { libc::unlink(p) };
            }
        }
    }
}

enum LockError {
    Busy(Option<u32>),
    Io(std::io::Error),
}

/// Opens and `flock`s the lock file, writing this process's id into it. Retries when the file was
/// deleted by its previous owner between our open and our lock (then it no longer guards anything).
fn lock_file(path: &Path) -> Result<File, LockError> {
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::io::AsRawFd;
    for _ in 0..100 {
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(LockError::Io)?;
        // SAFETY: a valid open descriptor.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let owner = std::fs::read_to_string(path).ok().and_then(|s| s.trim().parse().ok());
            return Err(LockError::Busy(owner));
        }
        let same = match (f.metadata(), std::fs::metadata(path)) {
            (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
            _ => false,
        };
        if same {
            f.set_len(0).and_then(|()| write!(f, "{}", std::process::id())).map_err(LockError::Io)?;
            return Ok(f);
        }
    }
    Err(LockError::Busy(None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scratch::Scratch;

    fn scratch(name: &str) -> Scratch {
        Scratch::new(&format!("destination-{name}"))
    }

    fn listing(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
        v.sort();
        v
    }

    #[test]
    fn a_folder_is_replaced_whole_and_nothing_is_left_beside_it() {
        let dir = scratch("folder");
        let out = dir.join("run");
        for content in ["old", "new"] {
            let d = Destination::folder(&out, "--out").unwrap();
            let s = d.stage().unwrap();
            std::fs::write(s.path().join("a.txt"), content).unwrap();
            commit(vec![s]).unwrap();
        }
        assert_eq!(listing(&out), [OUTPUT_MARKER, "a.txt"]);
        assert_eq!(std::fs::read_to_string(out.join("a.txt")).unwrap(), "new");
        assert_eq!(listing(&dir), ["run"]);
    }

    #[test]
    fn an_uncommitted_stage_leaves_the_old_content_and_no_temporary() {
        let dir = scratch("drop");
        let out = dir.join("m.json");
        std::fs::write(&out, "old").unwrap();
        {
            let d = Destination::file(&out, "--out").unwrap();
            let s = d.stage().unwrap();
            s.write_file(|w| w.write_all(b"half")).unwrap();
        }
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "old");
        assert_eq!(listing(&dir), ["m.json"]);
    }

    #[test]
    fn a_second_claim_is_refused_while_the_first_is_held() {
        let dir = scratch("busy");
        let out = dir.join("run");
        let first = Destination::folder(&out, "--out").unwrap();
        let e = Destination::folder(&out, "--global-out").unwrap_err().to_string();
        assert!(e.starts_with("--global-out") && e.contains("two flags name the same path"), "{e}");
        // Another process's lock (the owner is read from the lock file).
        std::fs::write(dir.join(".run.lock"), "4194305").unwrap();
        let e = Destination::folder(&out, "--out").unwrap_err().to_string();
        assert!(e.contains("another dmoe run (process 4194305)"), "{e}");
        drop(first);
        assert!(Destination::folder(&out, "--out").is_ok());
        assert!(listing(&dir).is_empty(), "{:?}", listing(&dir));
    }

    #[test]
    fn leftovers_of_a_killed_run_are_removed_when_claimed() {
        let dir = scratch("leftover");
        std::fs::create_dir(dir.join(".run.partial-1")).unwrap();
        std::fs::create_dir(dir.join(".run.partial-1.trash-1")).unwrap();
        std::fs::write(dir.join(".run.lock"), "1").unwrap();
        let d = Destination::folder(&dir.join("run"), "--out").unwrap();
        assert_eq!(listing(&dir), [".run.lock"]);
        drop(d);
        assert!(listing(&dir).is_empty());
    }

    #[test]
    fn wrong_kinds_are_refused_with_the_flag() {
        let dir = scratch("kinds");
        let file = dir.join("f.csv");
        std::fs::write(&file, "x").unwrap();
        let e = Destination::folder(&file, "--out").unwrap_err().to_string();
        assert!(e.starts_with("--out ") && e.contains("is a file"), "{e}");
        let e = Destination::file(&dir, "--truth").unwrap_err().to_string();
        assert!(e.starts_with("--truth ") && e.contains("is a folder"), "{e}");
        let e = Destination::file(&dir.join("no/such/f.csv"), "--out").unwrap_err().to_string();
        assert!(e.contains("folder does not exist"), "{e}");
        let e = Destination::file(Path::new("/dev/null"), "--out").unwrap_err().to_string();
        assert!(e.contains("is not a regular file"), "{e}");
        let e = Destination::file(Path::new(&format!("{}/", file.display())), "--out").unwrap_err().to_string();
        assert!(e.contains("ends with `/`"), "{e}");
    }

    #[test]
    fn only_an_empty_folder_or_an_old_output_is_replaced() {
        let dir = scratch("mine");
        let theirs = dir.join("thesis");
        std::fs::create_dir(&theirs).unwrap();
        std::fs::write(theirs.join("thesis.tex"), "years of work").unwrap();
        let e = Destination::folder(&theirs, "--out").unwrap_err().to_string();
        assert!(e.contains("is not a dmoe output"), "{e}");
        assert!(theirs.join("thesis.tex").is_file());
        // An output folder carries the marker, so the next run may replace it.
        let out = dir.join("run/");
        let d = Destination::folder(&out, "--out").unwrap();
        commit(vec![d.stage().unwrap()]).unwrap();
        drop(d);
        assert!(dir.join("run").join(OUTPUT_MARKER).is_file());
        assert!(Destination::folder(&out, "--out").is_ok());
    }

    #[test]
    fn an_input_is_never_a_destination() {
        let dir = scratch("input");
        let data = dir.join("d.csv");
        std::fs::write(&data, "x,y\n").unwrap();
        let same = dir.join(".").join("d.csv");
        let e = Destination::file(&same, "--out").unwrap().not_an_input(&[("--data", &data)]).unwrap_err();
        assert!(e.to_string().contains("is the input --data"), "{e}");
        assert_eq!(std::fs::read_to_string(&data).unwrap(), "x,y\n");
        assert!(Destination::file(&dir.join("p.csv"), "--out").unwrap().not_an_input(&[("--data", &data)]).is_ok());
    }

    #[test]
    fn parents_made_for_a_destination_go_away_if_nothing_is_written() {
        let dir = scratch("parents");
        drop(Destination::folder(&dir.join("a/b/run"), "--out").unwrap());
        assert!(listing(&dir).is_empty(), "{:?}", listing(&dir));
    }
}
