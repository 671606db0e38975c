//! The model of what happens behind the mount's back and after the fact: this mount's
//! repair step (docs/SEMANTICS.md, "`latest`, yanks and repair: the rules in one
//! place"), yanks by another tool, and how the mount sends each region its files.

use super::*;

impl Model {
    /// The repair step. Each spool entry awaiting repair takes the census first:
    /// - a majority of all regions holds the version: the regions that answer get it
    ///   (sent the way the mount sends them files), and the project's `latest` is
    ///   aligned; the entry goes once every region holds it;
    /// - a majority says it is absent (yanked meanwhile): nothing is uploaded, the
    ///   entry ends `failed` and its file is kept, a staging file again;
    /// - else too few answered: nothing happens.
    ///
    /// Then, in each project some region missed a move of, each whose census found a
    /// majority, and each whose census found a version yanked (a region that missed
    /// the yank may still name it), the regions that answer are set to the value a
    /// majority of all regions name (never moved by the stage's rule); a project whose
    /// version was found yanked stays to be aligned until every region answered.
    pub(super) fn repair(&mut self) {
        let up: Vec<usize> = self.up().collect();
        let everyone = up.len() == REGIONS.len();
        let parts_in = self.parts_in;
        for p in self.projects.values_mut() {
            let mut align = p.lagging;
            for (v, kept) in std::mem::take(&mut p.awaiting) {
                let Some(staged) = p.staged.get_mut(&v) else {
                    let left = p.leftovers.get(&v);
                    let absent = up.iter().filter(|r| left.is_none_or(|l| !l.contains(r)));
                    if absent.count() >= MAJORITY {
                        // A yank that missed a region may have left its `latest`
                        // naming the version: aligned from now on, as a missed move.
                        align = true;
                        p.lagging = true;
                        let mut failed = kept;
                        failed.file.as_mut().expect("a kept file").failed = true;
                        p.staging.insert(v, failed);
                    } else {
                        p.awaiting.insert(v, kept);
                    }
                    continue;
                };
                if up.iter().filter(|r| staged.held.contains(r)).count() >= MAJORITY {
                    align = true;
                    for &r in &up {
                        if staged.held.insert(r) && parts_in[r] && !staged.bytes.is_empty() {
                            staged.in_parts.insert(r);
                        }
                    }
                }
                if staged.held.len() < REGIONS.len() {
                    p.awaiting.insert(v, kept);
                } else {
                    p.spool_dropped(&v);
                }
            }
            if !align {
                continue;
            }
            // What a region that is down names cannot be read.
            let readable: Vec<&Version> =
                up.iter().filter_map(|r| p.latest_in[*r].as_ref()).collect();
            let majority = readable
                .iter()
                .copied()
                .find(|v| readable.iter().filter(|w| **w == *v).count() >= MAJORITY);
            if let Some(value) = majority.cloned() {
                for r in &up {
                    p.latest_in[*r] = Some(value.clone());
                }
            }
            if p.lagging {
                p.lagging = !everyone;
            }
        }
    }

    /// Another tool yanks a staged version; `false` when there is none to yank. It
    /// goes from the regions that answer, and their `latest` back off it; a region
    /// that is down keeps its copy and its `latest` until the tool runs the yank again.
    /// The mount keeps it pinned (a ghost).
    pub(super) fn yank_elsewhere(&mut self, project: &str, name: &str) -> bool {
        let (down, up): (Option<usize>, Vec<usize>) = (self.down, self.up().collect());
        let (Some(p), Some(v)) = (self.projects.get_mut(project), version(name)) else {
            return false;
        };
        let Some(staged) = p.staged.remove(&v) else {
            return false;
        };
        if p.latest.as_ref() == Some(&v) {
            p.latest = p.staged.keys().next_back().cloned();
        }
        p.move_back(&v, &up, up.iter().copied());
        if let Some(down) = down {
            if staged.held.contains(&down) {
                p.leftovers.insert(v.clone(), [down].into());
            }
            p.yanks_elsewhere.insert(v.clone());
        }
        p.yanked.insert(v.clone());
        p.ghosts.insert(v);
        true
    }

    /// The other tool runs its yanks again; returns them, each with whether it
    /// succeeds (every region answered).
    pub(super) fn yank_elsewhere_again(&mut self) -> Vec<(String, Version, bool)> {
        let up: Vec<usize> = self.up().collect();
        let everyone = up.len() == REGIONS.len();
        let mut again = Vec::new();
        for (name, p) in &mut self.projects {
            let yanks = match everyone {
                true => std::mem::take(&mut p.yanks_elsewhere),
                false => p.yanks_elsewhere.clone(),
            };
            for v in yanks {
                p.move_back(&v, &up, up.iter().copied());
                if let Some(left) = p.leftovers.get_mut(&v) {
                    left.retain(|r| !up.contains(r));
                    if left.is_empty() {
                        p.leftovers.remove(&v);
                    }
                }
                again.push((name.clone(), v, everyone));
            }
        }
        again
    }

    /// The mount reads a project's version listing and `latest` again (its TTL
    /// passed, or it staged or yanked a version of it).
    pub(super) fn read_again(&mut self, project: &str) {
        if let Some(p) = self.projects.get_mut(project) {
            p.listing = None;
        }
        self.read_latest_again(project);
    }

    /// The mount reads a project's `latest` again (after its TTL passed, its own stage
    /// or yank), by the quorum read (src/protocol/latest.rs): a region with no
    /// parameter gives no answer; with at least `QUORUM` answers, the value a majority
    /// of all regions names, else the highest; with fewer, none when a majority of all
    /// regions have none, else EIO (then `latest_unsaid`).
    pub(super) fn read_latest_again(&mut self, project: &str) {
        let up: Vec<usize> = self.up().collect();
        let Some(p) = self.projects.get_mut(project) else {
            return;
        };
        let claims: Vec<&Version> = up.iter().filter_map(|r| p.latest_in[*r].as_ref()).collect();
        let missing = up.len() - claims.len();
        let named = |value: &Version| claims.iter().filter(|c| **c == value).count();
        p.latest_unsaid = false;
        p.latest = if claims.len() >= QUORUM {
            let majority = claims.iter().find(|c| named(c) >= MAJORITY);
            majority.or(claims.iter().max()).map(|v| (*v).clone())
        } else {
            p.latest_unsaid = missing < MAJORITY;
            None
        };
    }

    /// The daemon stops and starts again on its spool; `false` while a file is open
    /// (a stop would abandon it) or a yank awaits its second run (only the mount that
    /// pinned the version can run it again). The new mount pinned and cached
    /// nothing: it pins each version at its next lookup and reads `latest` again, a
    /// version it kept pinned though gone is gone for it (unless a region still holds
    /// a copy, or another tool's yank awaits its second run), and it no longer knows
    /// what it yanked. The spool's entries, folders and files are kept, and so are
    /// the project folders made by `mkdir` (`Project::made_here`).
    pub(super) fn restart_daemon(&mut self) -> bool {
        let busy = self.projects.values().any(|p| {
            !p.pending_yanks.is_empty()
                || p.staging
                    .values()
                    .any(|s| s.file.as_ref().is_some_and(|f| f.open))
        });
        if busy {
            return false;
        }
        let names: Vec<String> = self.projects.keys().cloned().collect();
        for name in names {
            let p = self.projects.get_mut(&name).expect("a project");
            for staged in p.staged.values_mut() {
                staged.pinned = None;
            }
            p.listing = None;
            let (leftovers, elsewhere) = (&p.leftovers, &p.yanks_elsewhere);
            p.ghosts
                .retain(|v| leftovers.contains_key(v) || elsewhere.contains(v));
            p.yanked_here.clear();
            self.read_latest_again(&name);
        }
        true
    }

    /// What the mount's figures now say of a region.
    pub(super) fn send_way(&mut self, region: usize, in_parts: bool) {
        self.parts_in[region] = in_parts;
    }
}
