//! Projects whose `latest` some region missed: an explicit move (`ln -sfn`) that
//! reached a majority but not every region. The repair sets those regions to the
//! majority's value (`Session::align_latest`), as it does after completing a version;
//! the list is kept in `latest.json` at the spool's top, so a restart does not forget
//! it, and a project leaves it once every region agrees (or no value has a majority,
//! which only another explicit move can settle).

use std::collections::BTreeSet;

use crate::protocol::{validate_project_name, Session};

use super::Staging;
use crate::fs::sync::lock;

/// The file at the spool's top.
pub(super) const LAGGING_LATEST_FILE: &str = "latest.json";

/// Reads the kept list; names that are not project names are dropped.
pub(super) fn decode(bytes: &[u8]) -> BTreeSet<String> {
    serde_json::from_slice::<Vec<String>>(bytes)
        .unwrap_or_default()
        .into_iter()
        .filter(|p| validate_project_name(p).is_ok())
        .collect()
}

impl Staging {
    /// Some region missed a move of `project`'s `latest`: the repair aligns it.
    pub fn align_latest_later(&self, project: &str) {
        let added = lock(&self.lagging_latest).insert(project.to_string());
        if added {
            self.keep_lagging_latest();
            tracing::info!(
                project,
                "latest did not move in every region: the repair sets them to the majority's value"
            );
        }
        self.repairs_due.notify_one();
    }

    /// Whether some project's `latest` waits to be aligned.
    pub(super) fn latest_lags(&self) -> bool {
        !lock(&self.lagging_latest).is_empty()
    }

    /// Aligns every project whose `latest` some region missed.
    pub(super) async fn align_lagging_latest(&self, session: &Session) {
        let projects: Vec<String> = lock(&self.lagging_latest).iter().cloned().collect();
        let mut settled = Vec::new();
        for project in projects {
            match session.align_latest(&project).await {
                Ok(alignment) if alignment.is_settled() => {
                    for problem in &alignment.problems {
                        tracing::info!(project, "{problem}");
                    }
                    settled.push(project);
                }
                Ok(alignment) => tracing::info!(
                    project,
                    "latest not aligned everywhere yet: {}",
                    alignment.problems.join("; ")
                ),
                Err(e) => tracing::warn!(project, "latest not aligned: {e}"),
            }
        }
        if !settled.is_empty() {
            let mut lagging = lock(&self.lagging_latest);
            for project in &settled {
                lagging.remove(project);
            }
            drop(lagging);
            self.keep_lagging_latest();
        }
    }

    fn keep_lagging_latest(&self) {
        let projects: Vec<String> = lock(&self.lagging_latest).iter().cloned().collect();
        match serde_json::to_vec_pretty(&projects) {
            Ok(bytes) => self.spool.keep(LAGGING_LATEST_FILE, &bytes),
            Err(e) => tracing::warn!("cannot encode {LAGGING_LATEST_FILE}: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kept_list_takes_only_project_names() {
        let kept = decode(br#"["App", "../etc", "", "Other"]"#);
        assert_eq!(kept.into_iter().collect::<Vec<_>>(), ["App", "Other"]);
        assert!(decode(b"garbled").is_empty());
    }
}
