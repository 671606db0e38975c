//! `startifact --repair [PROJECT] [--dry-run]`: runs the repair and prints one line per
//! action (planned, done, or failed and why), one per thing that cannot be repaired
//! (conflicts, regions that could not be read), then a summary. Exit 0 when every
//! region is whole (a dry run: when nothing stands in the way), else 1.

use std::io::Write;

use crate::protocol::repair::{describe, Outcome, RepairReport};
use crate::protocol::validate_project_name;

use super::args::{session, Args};
use super::console::{Failure, DELIVERED, FIRE, INFO, WARNING};

pub(super) async fn run(args: &Args) -> Result<(), Failure> {
    let dry_run = args.dry_run.is_some();
    // `--repair --dry-run PROJECT` reads PROJECT as --dry-run's value.
    let project = match (&args.project, &args.dry_run) {
        (Some(project), Some(Some(_))) => {
            return Err(Failure(format!(
                "--repair {project} --dry-run takes no path"
            )))
        }
        (Some(project), _) => Some(project.clone()),
        (None, Some(Some(value))) => Some(value.to_string_lossy().into_owned()),
        (None, _) => None,
    };
    if args.artifact_version.is_some() {
        return Err(Failure("--repair takes a project, not a version".into()));
    }
    if let Some(project) = &project {
        validate_project_name(project)?;
    }
    let session = session(args, dry_run).await?;
    // Ctrl-C and SIGTERM drop the repair where it stands, so that its temporary files
    // go with it (a signal's default would end the process before any of them is
    // removed).
    let terminated = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                terminate.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    let report = tokio::select! {
        report = session.repair(project.as_deref(), dry_run) => report?,
        _ = tokio::signal::ctrl_c() => {
            return Err(Failure(
                "interrupted: what was copied stays, the rest was not repaired".into(),
            ))
        }
        _ = terminated => {
            return Err(Failure(
                "terminated: what was copied stays, the rest was not repaired".into(),
            ))
        }
    };
    print_report(&report, &session.regions());
    if report.is_whole() {
        Ok(())
    } else {
        Err(Failure(format!(
            "{} of the repair could not be done (see above)",
            count(report.failed() + report.problems.len(), "thing", "things")
        )))
    }
}

fn print_report(report: &RepairReport, regions: &[String]) {
    let mut out = std::io::stdout().lock();
    for (action, outcome) in &report.actions {
        let what = describe(action);
        let _ = match outcome {
            Outcome::Planned => writeln!(out, "{INFO} Would {what}."),
            Outcome::Done => writeln!(out, "{DELIVERED} Did {what}."),
            Outcome::AlreadyDone => writeln!(out, "{DELIVERED} Already done: {what}."),
            Outcome::Failed(why) => writeln!(out, "{FIRE} Failed to {what}: {why}"),
        };
    }
    for problem in &report.problems {
        let _ = writeln!(out, "{WARNING} Not repaired: {problem}");
    }
    let projects = count(report.projects, "project", "projects");
    let regions = count(regions.len(), "region", "regions");
    let _ = if report.dry_run {
        writeln!(
            out,
            "{INFO} Dry run over {projects} in {regions}: {} planned, {} not repairable; nothing changed.",
            count(report.actions.len(), "action", "actions"),
            report.problems.len()
        )
    } else if report.actions.is_empty() && report.problems.is_empty() {
        writeln!(
            out,
            "{INFO} {projects} in {regions}: every region is whole."
        )
    } else {
        let done = report
            .actions
            .iter()
            .filter(|(_, o)| matches!(o, Outcome::Done | Outcome::AlreadyDone))
            .count();
        writeln!(
            out,
            "{INFO} Repair of {projects} in {regions}: {done} done, {} failed, {} not repairable.",
            report.failed(),
            report.problems.len()
        )
    };
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
