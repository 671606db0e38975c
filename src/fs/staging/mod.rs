//! Staging through the mount: the staging folders made with `mkdir`, the one file each
//! staging version may hold (its bytes in the spool, see `spool`), its attributes, and
//! the stage that publishes it to every region.
//!
//! When a stage runs (the rule is also in the README):
//! - at the `close()` (FUSE `flush`) of the last descriptor of any kind (read or write)
//!   that the writers' process tree holds of the file (see `crate::fs::calls::in_flight`),
//!   when the file has its final name in the version folder; `close()` returns when the
//!   stage is done, with its errno;
//! - at the `rename` that gives a file written under a hidden name (any name starting
//!   with `.`, such as rsync's `.NAME.XXXXXX`, or inside a hidden subfolder such as
//!   `.~tmp~`) its final name;
//! - never for a writer that is exiting by a signal or with a failure status: its bytes
//!   stay in the spool, reported as abandoned. Metadata cannot change while a stage
//!   runs (EBUSY): the stage publishes what it took at its start.
//!
//! A failed stage keeps the file (closing it again retries, `rm` discards it). A stage
//! that reached a majority but not every region publishes the version and keeps the
//! spool, to repair the others from (`repair`). The file is saved as `staging` before
//! a stage's first request, so a stage the daemon was running when it died or was
//! stopped (`stopping`) is taken up at the next start: completed where a majority of
//! regions already holds it, else ended `failed` with nothing published.
//!
//! Its parts: `model` (what is staging, in memory: the folders, each version's file
//! and its stage), `folders` (`mkdir`, `rmdir` and what the mount lists), `file` (the
//! one file: create, open, write, truncate, rename, `rm`), `metadata` (`user.*` of the
//! folder and the file), `journal` (every change saved to `state.json`, and
//! `status.json`), `stage` (when a stage runs, and the stage itself), `completion`
//! (the background completion of stages some region missed, which `status` calls
//! their repair, and the resumed stages) with `retries` (when each is tried again),
//! `lagging_latest` (projects whose `latest` some region missed), `stopping`
//! (SIGTERM's bounded wait), `fair_share` (what each user may hold of a shared
//! spool), and the spool on disk (`spool`, `spool_lock`). `Staging` itself, its state
//! and how it is opened, is in `state`.

mod completion;
mod fair_share;
mod file;
mod folders;
mod journal;
mod lagging_latest;
mod metadata;
mod model;
mod retries;
mod spool;
mod spool_lock;
mod stage;
mod state;
mod stopping;

pub use fair_share::ABANDONED_TTL;
pub use file::RenameEffect;
pub use metadata::{AttributeOwner, SetMode};
pub use model::{FileView, VersionView};
pub use retries::{backoff, RepairSeen, FIRST_RETRY, LAST_RETRY};
pub use spool::{seconds_of, FileStatus, DEFAULT_STAGING_SIZE};
pub use stage::{is_temporary_name, CloseEffect};
pub use state::{Room, Staging};
