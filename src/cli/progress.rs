//! The progress of `--stage` and `--download` on a terminal: one bar on stderr with the
//! bytes moved, the rate, and (staging) the regions done. Drawn only when stderr is a
//! terminal; scripts, pipes and log files see nothing of it.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::protocol::{Progress, ProgressHandle};

/// A bar on stderr, or `None` when stderr is not a terminal.
pub fn on_terminal(what: &str) -> Option<Bar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    // Hidden until the transfer begins: finding the regions draws no empty bar.
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::hidden());
    let style = ProgressStyle::with_template(
        "{prefix} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(what.to_string());
    Some(Bar(Arc::new(Shared {
        bar,
        state: Mutex::new(State::default()),
    })))
}

struct Shared {
    bar: ProgressBar,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The bytes each region is to take.
    share: u64,
    /// Each region's bytes so far, and whether it is done (and how).
    regions: BTreeMap<String, (u64, Option<bool>)>,
}

/// The bar, shared with the transfer that moves it.
#[derive(Clone)]
pub struct Bar(Arc<Shared>);

impl Bar {
    pub fn handle(&self) -> ProgressHandle {
        ProgressHandle(Arc::new(self.clone()))
    }

    /// Takes the bar off the terminal, before the command prints its outcome.
    pub fn clear(&self) {
        self.0.bar.finish_and_clear();
    }

    fn show_regions(&self, regions: &BTreeMap<String, (u64, Option<bool>)>) {
        if regions.len() < 2 {
            return;
        }
        let done = regions.values().filter(|(_, d)| *d == Some(true)).count();
        let failed = regions.values().filter(|(_, d)| *d == Some(false)).count();
        let mut message = format!("{done}/{} regions done", regions.len());
        if failed > 0 {
            message.push_str(&format!(", {failed} failed"));
        }
        self.0.bar.set_message(message);
    }
}

impl Progress for Bar {
    fn begin(&self, total: u64, regions: &[String]) {
        let Ok(mut state) = self.0.state.lock() else {
            return;
        };
        state.share = total / regions.len().max(1) as u64;
        state.regions = regions.iter().map(|r| (r.clone(), (0, None))).collect();
        self.0.bar.set_length(total);
        self.0.bar.set_position(0);
        self.show_regions(&state.regions);
        if self.0.bar.is_hidden() {
            self.0.bar.set_draw_target(ProgressDrawTarget::stderr());
        }
    }

    fn moved(&self, region: &str, bytes: u64) {
        if let Ok(mut state) = self.0.state.lock() {
            if let Some((moved, _)) = state.regions.get_mut(region) {
                *moved += bytes;
            }
        }
        self.0.bar.inc(bytes);
    }

    fn region_done(&self, region: &str, ok: bool) {
        let Ok(mut state) = self.0.state.lock() else {
            return;
        };
        let share = state.share;
        if let Some((moved, done)) = state.regions.get_mut(region) {
            // A region that failed, or already held the artifact, takes no more bytes:
            // the bar's end moves in by what it will not take.
            if let (Some(total), true) = (self.0.bar.length(), *moved < share) {
                self.0.bar.set_length(total.saturating_sub(share - *moved));
            }
            *done = Some(ok);
        }
        self.show_regions(&state.regions);
    }
}
