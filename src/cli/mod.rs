//! The `startifact` command line: parses arguments, runs one task on a `Session`, and
//! prints what the Python tool prints (its "🌍 ..." lines on stdout, which scripts grep),
//! except that errors go to stderr as one line. Exit 0 on success, 1 on any failure.

pub mod args;
mod console;
mod progress;
mod repair;
mod setup_prompt;
mod state;

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use semver::Version;

use crate::arguments::parse_arguments;
use crate::protocol::{
    parse_version, read_latest, Artifact, Download, Error, RegionOutcome, StageOptions,
    StageSource, Stager,
};

use args::{log_filter, parse_metadata, session, Args};
use console::{Failure, DELIVERED, DELIVERING, FIRE, INFO, WARNING};

/// Runs the command line with the process's arguments.
pub fn main() -> ExitCode {
    let args: Args = match parse_arguments("🔥 ", " (see startifact --help)") {
        Ok(args) => args,
        Err(code) => return code,
    };
    if args.version {
        println!("startifact {} (Rust)", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let Some(filter) = log_filter(&args.log_level) else {
        eprintln!(
            "{FIRE} --log-level {:?} is not one of CRITICAL, ERROR, WARNING, INFO, DEBUG",
            args.log_level
        );
        return ExitCode::FAILURE;
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(format!(
            "startifact={filter}"
        )))
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never in a file or a pipe.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("{FIRE} cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(message)) => {
            let _ = std::io::stdout().flush();
            eprintln!("{FIRE} {message}");
            ExitCode::FAILURE
        }
    }
}

fn require_project(args: &Args) -> Result<&str, Failure> {
    let project = args
        .project
        .as_deref()
        .ok_or_else(|| Failure("a project name is required".into()))?;
    crate::protocol::validate_project_name(project)?;
    Ok(project)
}

/// The version argument, where "latest" or nothing means `None`.
fn optional_version(args: &Args) -> Result<Option<Version>, Failure> {
    match args.artifact_version.as_deref() {
        None | Some("latest") => Ok(None),
        Some(text) => Ok(Some(parse_version(text)?)),
    }
}

fn required_version(args: &Args) -> Result<Version, Failure> {
    match args.artifact_version.as_deref() {
        None => Err(Failure("a version is required to stage".into())),
        Some(text) => Ok(parse_version(text)?),
    }
}

async fn run(args: Args) -> Result<(), Failure> {
    if args.setup {
        return setup_prompt::run(&args).await;
    }
    if let Some(path) = args.stage.clone() {
        return stage(&args, &path, false).await;
    }
    if args.repair {
        return repair::run(&args).await;
    }
    if let Some(path) = args.dry_run.clone() {
        let path = path.ok_or_else(|| {
            Failure("--dry-run needs the path of the artifact (FROM), except with --repair".into())
        })?;
        return stage(&args, &path, true).await;
    }
    if let Some(path) = args.download.clone() {
        return download(&args, &path).await;
    }
    if args.info {
        return info(&args).await;
    }
    if args.list {
        return list(&args).await;
    }
    if args.set_latest {
        return set_latest(&args).await;
    }
    Err(Failure(
        "nothing to do: give one of --stage, --dry-run, --download, --info, --list, --set-latest, --repair, --setup".into(),
    ))
}

async fn stage(args: &Args, path: &Path, dry_run: bool) -> Result<(), Failure> {
    // Everything that can be checked locally is checked before any request.
    let project = require_project(args)?;
    let version = required_version(args)?;
    let metadata = parse_metadata(&args.metadata).map_err(Failure)?;
    crate::protocol::metadata::validate_user_metadata(&metadata)?;
    std::fs::File::open(path)
        .map_err(|e| Failure(format!("cannot read {}: {e}", path.display())))?;
    if !path.is_file() {
        return Err(Failure(format!("{} is not a file", path.display())));
    }

    let session = session(args, dry_run).await?;
    let note = if dry_run { " (not really)" } else { "" };
    let shown = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    println!(
        "{DELIVERING} Staging{note} {} as {project} version {version}…",
        shown.display()
    );
    let bar = progress::on_terminal("staging");
    let defaults = StageOptions::default();
    let options = StageOptions {
        require_all_regions: args.require_all_regions,
        multipart_threshold: args
            .multipart_threshold
            .unwrap_or(defaults.multipart_threshold),
        sending: args
            .multipart_threshold
            .is_none()
            .then(|| Arc::new(state::sending_costs())),
        progress: bar.as_ref().map(progress::Bar::handle),
        ..defaults
    };
    // What earlier failed stages of this version left is taken up as ours.
    let named = format!("{project}@{version}");
    let earlier = if dry_run {
        Vec::new()
    } else {
        state::earlier_stages(&named)
    };
    let mut source = StageSource::of(path, args.filename)?;
    source.stager = Stager::after(earlier.clone());
    let staged = session
        .stage_file(project, &version, source, metadata, &options)
        .await;
    if let Some(bar) = &bar {
        bar.clear();
    }
    if let (Some(costs), false) = (&options.sending, dry_run) {
        state::keep_sending_costs(costs);
    }
    match &staged {
        _ if dry_run => {}
        Ok(_) => state::keep_earlier_stages(&named, &[]),
        Err(Error::CannotStage(report)) if !report.left_behind.is_empty() => {
            let ids: Vec<String> = earlier.into_iter().chain([report.stager.clone()]).collect();
            state::keep_earlier_stages(&named, &ids);
        }
        Err(_) => {}
    }
    let report = staged?;
    for (region, outcome) in &report.regions {
        match outcome {
            RegionOutcome::Failed(reason) | RegionOutcome::Taken(reason) => {
                eprintln!("{FIRE} Failed to stage to {region}: {reason}")
            }
            RegionOutcome::AlreadyHeld(_) => {
                println!("{DELIVERED} Staged to {region} (it was already there).")
            }
            _ => println!("{DELIVERED} Staged{note} to {region}."),
        }
    }
    if !dry_run {
        println!();
        println!("To download this artifact, run one of:\n");
        println!("    startifact {project} --download <PATH>");
        println!("    startifact {project} latest --download <PATH>");
        println!("    startifact {project} {version} --download <PATH>\n");
    }
    Ok(())
}

async fn download(args: &Args, path: &Path) -> Result<(), Failure> {
    let project = require_project(args)?;
    let version = optional_version(args)?;
    let session = session(args, true).await?;
    let mut artifact = session.get(project, version.as_ref()).await?;
    let bar = progress::on_terminal("downloading");
    if let Some(bar) = &bar {
        artifact = artifact.with_progress(bar.handle());
    }
    let to_stdout = path == Path::new("-");
    let done = download_to(args, &artifact, path, to_stdout).await;
    if let Some(bar) = &bar {
        bar.clear();
    }
    let done = done?;
    let shown = done
        .path
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "standard output".into());
    let line = format!(
        "{DELIVERED} Downloaded {project} {} from {} to {shown}.",
        artifact.version(),
        done.regions.join(" and ")
    );
    if to_stdout {
        eprintln!("{line}");
    } else {
        println!("{line}");
    }
    Ok(())
}

/// The download itself: to standard output, into a folder, or to a path.
async fn download_to(
    args: &Args,
    artifact: &Artifact,
    path: &Path,
    to_stdout: bool,
) -> Result<Download, Failure> {
    let (project, version) = (artifact.project(), artifact.version());
    Ok(if to_stdout {
        let mut stdout = tokio::io::stdout();
        artifact.download_to_writer(&mut stdout).await?
    } else if args.filename || path.is_dir() {
        if args.filename
            && crate::protocol::metadata::usable_filename(artifact.metadata().await?).is_none()
        {
            // Said whatever the log level: the file is not where the caller asked.
            eprintln!(
                "{WARNING} {project}@{version} has no saved file name: saving it as {project}@{version}."
            );
        }
        artifact.download_to_folder(path, args.filename).await?
    } else {
        artifact.download_to_path(path).await?
    })
}

async fn info(args: &Args) -> Result<(), Failure> {
    let project = require_project(args)?;
    let version = optional_version(args)?;
    let session = session(args, true).await?;
    let loaded = session.configuration().await?;
    let mut lines = vec![format!(
        "{INFO} Configuration loaded from {}.",
        loaded.region
    )];
    let version = match version {
        Some(version) => version,
        None => {
            let latest = read_latest(&session, project).await?;
            for (region, claim) in &latest.claims {
                lines.push(format!("{INFO} {region} claims {project} at {claim}."));
            }
            latest.version
        }
    };
    let artifact = session.get(project, Some(&version)).await?;
    let metadata = artifact.metadata().await?;
    if args.json {
        let location = artifact.locate().await?;
        let value = serde_json::json!({
            "project": project,
            "version": version.to_string(),
            "key": artifact.key(),
            "metadata": metadata,
            "region": location.region,
            "bucket": location.bucket,
            "size": location.info.size,
            "etag": location.info.etag,
            "md5": location.info.known_md5(),
        });
        println!("{value:#}");
        return Ok(());
    }
    lines.push(format!(
        "{INFO} The latest version of {project} is {version}."
    ));
    if metadata.is_empty() {
        lines.push(format!("{INFO} This version of {project} has no metadata."));
    } else {
        lines.push(format!("{INFO} This version of {project} has metadata:"));
        // The Python tool pads to the length of the greatest key, not the longest.
        let pad = metadata
            .keys()
            .max()
            .map(|k| k.chars().count())
            .unwrap_or(0);
        for (key, value) in metadata {
            lines.push(format!("{INFO}   {key:<pad$} = {value}"));
        }
    }
    println!("{}", lines.join("\n"));
    Ok(())
}

async fn list(args: &Args) -> Result<(), Failure> {
    let project = require_project(args)?;
    let session = session(args, true).await?;
    let versions = session.list_versions(project).await?;
    let mut out = std::io::stdout().lock();
    if args.json {
        let texts: Vec<String> = versions.iter().map(|v| v.to_string()).collect();
        let _ = writeln!(out, "{}", serde_json::Value::from(texts));
    } else {
        for version in versions {
            let _ = writeln!(out, "{version}");
        }
    }
    Ok(())
}

async fn set_latest(args: &Args) -> Result<(), Failure> {
    let project = require_project(args)?;
    let version = match args.artifact_version.as_deref() {
        None | Some("latest") => return Err(Failure("--set-latest needs a version".into())),
        Some(text) => parse_version(text)?,
    };
    let session = session(args, false).await?;
    let report = session.set_latest(project, &version).await?;
    for (region, result) in &report.regions {
        match result {
            Ok(()) => {
                println!("{INFO} The latest version of {project} is now {version} in {region}.")
            }
            Err(e) => eprintln!("{FIRE} Failed to move the latest version in {region}: {e}"),
        }
    }
    Ok(())
}
