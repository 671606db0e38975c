//! What the command line prints and asks: the marks its lines start with (the Python
//! tool's, which scripts grep), a failure as one line, and whether a question can be
//! put to the person running it.

use std::io::IsTerminal;

use crate::protocol::Error;

pub(super) const INFO: &str = "🌍";
pub(super) const DELIVERED: &str = "📦";
pub(super) const DELIVERING: &str = "🚚";
pub(super) const FIRE: &str = "🔥";
pub(super) const WARNING: &str = "⚠️";

/// A failure of the command line: printed as one line on stderr, exit 1.
#[derive(Debug)]
pub(crate) struct Failure(pub(super) String);

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure(e.to_string())
    }
}

/// True when standard input is a terminal a question can be put to.
pub(super) fn can_ask() -> bool {
    std::io::stdin().is_terminal()
}
