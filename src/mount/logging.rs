//! The daemon's log: which lines (`--log-level`, else `RUST_LOG`, else `info`), where
//! (`--log-file`, else stderr), plain text unless it goes to a terminal (journald and
//! redirected stderr get no colour codes), and the log file reopened on SIGHUP so that
//! logrotate can move it away.

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tracing_subscriber::fmt::MakeWriter;

use crate::fs::host::private_dir::open_append_only;

use super::declaration::MountConfig;

/// The filter of the daemon's lines. `--log-level` (or `-o log_level`) is a level for
/// our own lines and wins; without it, `RUST_LOG` (any `EnvFilter` directives, e.g.
/// `startifact=debug,aws_smithy_runtime=debug`); without either, `info`.
pub fn filter_directives(log_level: Option<&str>, rust_log: Option<&str>) -> String {
    match (log_level, rust_log.map(str::trim).filter(|v| !v.is_empty())) {
        (Some(level), _) => format!("startifact={level}"),
        (None, Some(directives)) => directives.to_string(),
        (None, None) => "startifact=info".to_string(),
    }
}

/// The log file, reopened at its path when asked (after logrotate moved it).
#[derive(Clone)]
pub struct LogFile {
    path: PathBuf,
    file: Arc<Mutex<File>>,
}

impl LogFile {
    fn open(path: &Path) -> Result<LogFile, String> {
        Ok(LogFile {
            path: path.to_path_buf(),
            file: Arc::new(Mutex::new(open_log(path)?)),
        })
    }

    fn lock(&self) -> MutexGuard<'_, File> {
        self.file.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Opens the path again (a new file if the old one was moved away); on failure,
    /// keeps writing to the old one and says why there.
    pub fn reopen(&self) {
        match open_log(&self.path) {
            Ok(fresh) => {
                *self.lock() = fresh;
                tracing::info!(path = %self.path.display(), "SIGHUP: log file reopened");
            }
            Err(message) => tracing::error!("SIGHUP: {message}; still writing to the old file"),
        }
    }
}

/// Never through a link, 0600: the log tells what the daemon does and where.
fn open_log(path: &Path) -> Result<File, String> {
    open_append_only(path).map_err(|e| format!("cannot open the log {}: {e}", path.display()))
}

/// One event's write to the log file, holding it for the event's bytes only.
pub struct LogFileWriter<'a>(MutexGuard<'a, File>);

impl Write for LogFileWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.write(bytes)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl<'a> MakeWriter<'a> for LogFile {
    type Writer = LogFileWriter<'a>;
    fn make_writer(&'a self) -> Self::Writer {
        LogFileWriter(self.lock())
    }
}

/// What SIGHUP acts on.
pub enum Log {
    File(LogFile),
    Stderr,
}

impl Log {
    /// SIGHUP: reopens the log file; with the log on stderr there is nothing to do.
    pub fn reopen(&self) {
        match self {
            Log::File(file) => file.reopen(),
            Log::Stderr => tracing::info!("SIGHUP: the log goes to stderr, nothing to reopen"),
        }
    }
}

/// Sets up the daemon's log for the whole process.
pub fn init(config: &MountConfig) -> Result<Log, String> {
    let rust_log = std::env::var("RUST_LOG").ok();
    let directives = filter_directives(config.log_level.as_deref(), rust_log.as_deref());
    let filter = tracing_subscriber::EnvFilter::try_new(&directives).map_err(|e| match &config
        .log_level
    {
        Some(level) => format!("--log-level {level:?}: {e}"),
        None => format!("RUST_LOG {directives:?}: {e}"),
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    match &config.log_file {
        Some(path) => {
            let file = LogFile::open(path)?;
            builder.with_ansi(false).with_writer(file.clone()).init();
            Ok(Log::File(file))
        }
        None => {
            // Colour codes only for a person at a terminal: journald and a redirected
            // stderr would keep them as `ESC[2m...` around every field.
            builder
                .with_ansi(std::io::stderr().is_terminal())
                .with_writer(std::io::stderr)
                .init();
            Ok(Log::Stderr)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_level_wins_over_rust_log_which_wins_over_info() {
        assert_eq!(
            filter_directives(Some("debug"), Some("warn")),
            "startifact=debug"
        );
        assert_eq!(
            filter_directives(None, Some("startifact=trace,aws_smithy_runtime=debug")),
            "startifact=trace,aws_smithy_runtime=debug"
        );
        assert_eq!(filter_directives(None, Some("  ")), "startifact=info");
        assert_eq!(filter_directives(None, None), "startifact=info");
    }
}
