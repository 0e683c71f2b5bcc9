//! Progress bars on stderr for hashing that takes more than about a second:
//! only when stderr is a terminal, never with `--quiet` or `--json`.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pkgsign::digest::Progress;

/// Delay before a bar appears.
const DELAY: Duration = Duration::from_secs(1);

/// A bar that clears itself when dropped.
pub struct Bar(ProgressBar);

impl Drop for Bar {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

/// A progress callback for hashing `path`, and the bar to keep alive while
/// it runs; `None` when no bar should be drawn.
pub fn for_file(path: &Path, quiet: bool, json: bool) -> Option<(Progress, Bar)> {
    if quiet || json || !std::io::stderr().is_terminal() {
        return None;
    }
    let len = std::fs::metadata(path).ok()?.len();
    let pb = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden());
    if let Ok(style) = ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message(format!("hashing {}", path.display()));
    let start = Instant::now();
    let shown = std::sync::atomic::AtomicBool::new(false);
    let bar = pb.clone();
    let progress = Progress(Arc::new(move |done| {
        if !shown.load(std::sync::atomic::Ordering::Relaxed) && start.elapsed() >= DELAY {
            shown.store(true, std::sync::atomic::Ordering::Relaxed);
            bar.set_draw_target(ProgressDrawTarget::stderr());
        }
        bar.set_position(done);
    }));
    Some((progress, Bar(pb)))
}

/// A progress callback counting checked files out of `total`, and its bar.
pub fn for_count(total: u64, what: &str, quiet: bool, json: bool) -> Option<(Progress, Bar)> {
    if quiet || json || !std::io::stderr().is_terminal() {
        return None;
    }
    let pb = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} eta {eta}") {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message(what.to_string());
    let start = Instant::now();
    let shown = std::sync::atomic::AtomicBool::new(false);
    let bar = pb.clone();
    let progress = Progress(Arc::new(move |done| {
        if !shown.load(std::sync::atomic::Ordering::Relaxed) && start.elapsed() >= DELAY {
            shown.store(true, std::sync::atomic::Ordering::Relaxed);
            bar.set_draw_target(ProgressDrawTarget::stderr());
        }
        bar.set_position(done);
    }));
    Some((progress, Bar(pb)))
}
