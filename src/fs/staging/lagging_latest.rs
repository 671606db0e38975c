//! Projects whose `latest` some region missed: an explicit move (`ln -sfn`) that
//! reached a majority but not every region. The repair sets those regions to the
//! majority's value (`Session::align_latest`), as it does after completing a version;
//! the list is kept in `latest.json` at the spool's top, so a restart does not forget
//! it, and a project leaves it once every region agrees (or no value has a majority,
//! which only another explicit move can settle).

use std::collections::BTreeSet;
use std::sync::Mutex;

use crate::protocol::{validate_project_name, Session};

use super::spool::Spool;
use crate::fs::sync::lock;

/// The file at the spool's top.
const LAGGING_LATEST_FILE: &str = "latest.json";

/// Reads the kept list; names that are not project names are dropped.
fn decode(bytes: &[u8]) -> BTreeSet<String> {
    serde_json::from_slice::<Vec<String>>(bytes)
        .unwrap_or_default()
        .into_iter()
        .filter(|p| validate_project_name(p).is_ok())
        .collect()
}

/// The projects whose `latest` waits to be aligned, as kept in the spool.
#[derive(Default)]
pub(super) struct LaggingLatest {
    projects: Mutex<BTreeSet<String>>,
}

impl LaggingLatest {
    /// The list the spool kept (empty when it kept none or it cannot be read).
    pub(super) fn load(spool: &Spool) -> Self {
        let projects = match spool.read_kept(LAGGING_LATEST_FILE) {
            Ok(Some(bytes)) => decode(&bytes),
            Ok(None) => Default::default(),
            Err(e) => {
                tracing::warn!("ignoring {LAGGING_LATEST_FILE}: {e}");
                Default::default()
            }
        };
        LaggingLatest {
            projects: Mutex::new(projects),
        }
    }

    /// Some region missed a move of `project`'s `latest`; whether it is new here.
    pub(super) fn add(&self, project: &str, spool: &Spool) -> bool {
        let added = lock(&self.projects).insert(project.to_string());
        if added {
            self.keep(spool);
        }
        added
    }

    /// Whether some project's `latest` waits to be aligned.
    pub(super) fn lags(&self) -> bool {
        !lock(&self.projects).is_empty()
    }

    /// Aligns every project whose `latest` some region missed.
    pub(super) async fn align(&self, session: &Session, spool: &Spool) {
        let projects: Vec<String> = lock(&self.projects).iter().cloned().collect();
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
            let mut lagging = lock(&self.projects);
            for project in &settled {
                lagging.remove(project);
            }
            drop(lagging);
            self.keep(spool);
        }
    }

    fn keep(&self, spool: &Spool) {
        let projects: Vec<String> = lock(&self.projects).iter().cloned().collect();
        match serde_json::to_vec_pretty(&projects) {
            Ok(bytes) => spool.keep(LAGGING_LATEST_FILE, &bytes),
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
