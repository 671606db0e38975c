//! The host the daemon runs on, apart from the filesystem's rules: private folders
//! (only the daemon's user may change them, nothing in them opened through a link), the
//! checks a folder passes to be one, the Linux calls they rest on, and the processes
//! behind a call (who opened a file, who closes it, whether it is exiting). Used by the
//! filesystem's wings and by `src/mount`.

mod folder_checks;
pub mod private_dir;
pub mod process;
mod syscalls;
