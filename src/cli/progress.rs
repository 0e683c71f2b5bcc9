//! Progress bars on stderr for work that takes more than about a second:
//! only when stderr is a terminal, never with `--quiet` or `--json`.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pkgsign::digest::Progress;

/// Delay before a bar appears.
const DELAY: Duration = Duration::from_secs(1);

/// A bar that clears itself when dropped.
pub struct Bar(ProgressBar);

impl Bar {
    /// A callback that sets the bar's total, for work whose size is known
    /// only once it has started.
    pub fn total_setter(&self) -> impl Fn(u64) + Send + Sync + 'static {
        let pb = self.0.clone();
        move |total| pb.set_length(total)
    }

    /// Run `f` (which writes to the terminal) with the bar hidden.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.0.suspend(f)
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

/// A progress callback for hashing `path` (bytes), and the bar to keep
/// alive while it runs; `None` when no bar should be drawn.
pub fn for_file(path: &Path, quiet: bool, json: bool) -> Option<(Progress, Bar)> {
    let len = std::fs::metadata(path).ok()?.len();
    make(
        quiet || json,
        len,
        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        format!("hashing {}", path.display()),
    )
}

/// A progress callback counting checked items out of `total` (which
/// [`Bar::total_setter`] can set later), and its bar.
pub fn for_count(total: u64, what: &str, quiet: bool, json: bool) -> Option<(Progress, Bar)> {
    make(
        quiet || json,
        total,
        "{msg} [{bar:30}] {pos}/{len} eta {eta}",
        what.to_string(),
    )
}

/// A hidden bar that draws itself once [`DELAY`] has passed.
fn make(off: bool, len: u64, template: &str, msg: String) -> Option<(Progress, Bar)> {
    if off || !std::io::stderr().is_terminal() {
        return None;
    }
    let pb = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden());
    if let Ok(style) = ProgressStyle::with_template(template) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message(msg);
    let start = Instant::now();
    let shown = AtomicBool::new(false);
    let bar = pb.clone();
    let progress = Progress(Arc::new(move |done| {
        if !shown.load(Ordering::Relaxed) && start.elapsed() >= DELAY {
            shown.store(true, Ordering::Relaxed);
            bar.set_draw_target(ProgressDrawTarget::stderr());
        }
        bar.set_position(done);
    }));
    Some((progress, Bar(pb)))
}
