//! The examples of `docs/SEMANTICS.md`, run: every ```` ```console ```` block of the page
//! runs in a fresh mount of a fresh local store, set up by the page's ```` ```sh fixture ````
//! block, and must print what the page shows and fail where the page says it fails. The
//! format is described in the page itself ("Reading the examples"); this file reads it.
//! A change of behaviour that the page does not follow fails here, naming the block,
//! the command, and what was expected and seen.

use std::fmt::Write as _;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::mount::Mount;
use crate::support::world::World;

const PAGE_PATH: &str = "docs/SEMANTICS.md";
const PAGE: &str = include_str!("../../docs/SEMANTICS.md");

/// How long one command may take before it counts as hung.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// The errnos an example may name, with the texts tools print for them (`getfattr`
/// says "No such attribute" for ENODATA).
const ERRNOS: &[(&str, &[&str])] = &[
    ("EPERM", &["Operation not permitted"]),
    ("ENOENT", &["No such file or directory"]),
    ("EIO", &["Input/output error"]),
    ("E2BIG", &["Argument list too long"]),
    ("EBADF", &["Bad file descriptor"]),
    ("EBUSY", &["Device or resource busy"]),
    ("EEXIST", &["File exists"]),
    ("EXDEV", &["Invalid cross-device link"]),
    ("ENOTDIR", &["Not a directory"]),
    ("EISDIR", &["Is a directory"]),
    ("EINVAL", &["Invalid argument"]),
    ("ENOTTY", &["Inappropriate ioctl for device"]),
    ("ENOSPC", &["No space left on device"]),
    ("EROFS", &["Read-only file system"]),
    ("EACCES", &["Permission denied"]),
    ("ENAMETOOLONG", &["File name too long"]),
    ("ERANGE", &["Numerical result out of range"]),
    ("ENOTEMPTY", &["Directory not empty"]),
    ("ELOOP", &["Too many levels of symbolic links"]),
    ("ENODATA", &["No data available", "No such attribute"]),
    ("EOPNOTSUPP", &["Operation not supported"]),
];

/// How a command must end.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// Exit status 0 (no marker).
    Success,
    /// `# -> EPERM`: a non-zero status, and the output names the errno.
    Errno(&'static str),
    /// `# -> exit N`: exactly that status (a signal `S` counts as `128 + S`).
    Exit(i32),
}

/// One `$ command` of an example and the output the page shows for it.
#[derive(Debug)]
struct Step {
    /// Line of the page where the command starts.
    line: usize,
    /// The command as the page shows it, marker included (bash ignores it: a comment).
    command: String,
    outcome: Outcome,
    output: Vec<String>,
}

/// A fenced block of the page.
#[derive(Debug)]
struct Block {
    /// Line of the opening fence.
    line: usize,
    info: String,
    lines: Vec<(usize, String)>,
}

impl Block {
    /// The mount's options of a console block (the words after `console`), or `None`
    /// for a block that is not an example.
    fn example_options(&self) -> Option<Vec<&str>> {
        let mut words = self.info.split_whitespace();
        (words.next() == Some("console")).then(|| words.collect())
    }
}

fn blocks(page: &str) -> Vec<Block> {
    let mut found = Vec::new();
    let mut open: Option<Block> = None;
    for (index, text) in page.lines().enumerate() {
        let line = index + 1;
        match open.take() {
            None => {
                if let Some(info) = text.strip_prefix("```") {
                    open = Some(Block {
                        line,
                        info: info.trim().to_string(),
                        lines: Vec::new(),
                    });
                }
            }
            Some(mut block) => {
                if text.trim_end() == "```" {
                    found.push(block);
                } else {
                    block.lines.push((line, text.to_string()));
                    open = Some(block);
                }
            }
        }
    }
    assert!(
        open.is_none(),
        "{PAGE_PATH}: a fenced block is never closed"
    );
    found
}

/// Splits the marker off a command line: `cmd  # -> EPERM` or `cmd  # -> exit 137`.
fn outcome_of(command: &str, line: usize) -> Outcome {
    let Some((_, marker)) = command.rsplit_once("# -> ") else {
        return Outcome::Success;
    };
    let marker = marker.trim();
    if let Some(code) = marker.strip_prefix("exit ") {
        let code = code
            .parse()
            .unwrap_or_else(|_| panic!("{PAGE_PATH}:{line}: bad exit status in {command:?}"));
        return Outcome::Exit(code);
    }
    match ERRNOS.iter().find(|(name, _)| *name == marker) {
        Some((name, _)) => Outcome::Errno(name),
        None => panic!(
            "{PAGE_PATH}:{line}: unknown marker {marker:?} in {command:?} \
             (name an errno of the table in tests/integration/semantics.rs, or `exit N`)"
        ),
    }
}

/// The steps of a console block: `$ ` starts a command (a line ending in `\` goes on),
/// every other line is output.
fn steps(block: &Block) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut continued = false;
    for (line, text) in &block.lines {
        if continued {
            let step = steps.last_mut().expect("a command to continue");
            step.command.push('\n');
            step.command.push_str(text);
            continued = text.ends_with('\\');
            if !continued {
                step.outcome = outcome_of(&step.command, step.line);
            }
        } else if let Some(command) = text.strip_prefix("$ ") {
            continued = command.ends_with('\\');
            steps.push(Step {
                line: *line,
                command: command.to_string(),
                outcome: outcome_of(command, *line),
                output: Vec::new(),
            });
        } else {
            match steps.last_mut() {
                Some(step) => step.output.push(text.clone()),
                None => panic!(
                    "{PAGE_PATH}:{line}: a console block must start with a `$ ` command, not {text:?}"
                ),
            }
        }
    }
    steps
}

/// Lines as compared: trailing spaces and trailing blank lines do not count.
fn comparable(lines: &[String]) -> Vec<String> {
    let mut lines: Vec<String> = lines.iter().map(|l| l.trim_end().to_string()).collect();
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines
}

/// Where the examples run: a world (its scratch folder is `~`) and the folder of the
/// binaries, put first on `PATH`.
struct Place<'a> {
    world: &'a World,
    bin_dir: PathBuf,
}

impl Place<'_> {
    fn home(&self) -> &Path {
        self.world.scratch.path()
    }

    /// `bash -c script` in `cwd`: (exit status, stdout and stderr as one stream).
    fn bash(&self, script: &str, cwd: &Path, mnt: &Path) -> (i32, String) {
        let mut output = tempfile::tempfile().expect("output file");
        let path = format!(
            "{}:{}",
            self.bin_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut child = Command::new("bash")
            .args(["--noprofile", "--norc", "-c", script])
            .current_dir(cwd)
            .env_clear()
            .envs(self.world.env())
            .env("PATH", path)
            // Plain ASCII quotes in every tool's messages.
            .env("LC_ALL", "C")
            .env("MNT", mnt)
            .stdin(Stdio::null())
            // One open file for both: its one offset keeps the two streams in order.
            .stdout(output.try_clone().expect("output file"))
            .stderr(output.try_clone().expect("output file"))
            .spawn()
            .expect("bash starts");
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait().expect("waiting for bash") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                let seen = read_all(&mut output);
                return (
                    -1,
                    format!("{seen}[still running after {COMMAND_TIMEOUT:?}: killed]"),
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let code = status
            .code()
            .or_else(|| status.signal().map(|s| 128 + s))
            .unwrap_or(-1);
        (code, read_all(&mut output))
    }

    /// The mount's and the home folder's real paths, as the page writes them.
    fn normalize(&self, text: &str, mnt: &Path) -> String {
        text.replace(&mnt.display().to_string(), "$MNT")
            .replace(&self.home().display().to_string(), "~")
    }
}

/// Runs one console block in a fresh store and mount; `Err` describes the first step
/// that did not do what the page says.
fn run_block(place: &Place, fixture: &str, block: &Block, steps: &[Step]) -> Result<(), String> {
    let home = place.home().to_path_buf();
    let (code, output) = place.bash(fixture, &home, Path::new("/nonexistent"));
    if code != 0 {
        return Err(format!(
            "the fixture failed (exit {code}):\n{}",
            indent(&output)
        ));
    }
    let options = block.example_options().unwrap_or_default();
    let mount = Mount::start(place.world, &options);
    for step in steps {
        let (code, raw) = place.bash(&step.command, &mount.path, &mount.path);
        let output = place.normalize(&raw, &mount.path);
        let actual: Vec<String> = output.lines().map(str::to_string).collect();
        let mut problems = Vec::new();
        if comparable(&actual) != comparable(&step.output) {
            problems.push("the output differs".to_string());
        }
        match &step.outcome {
            Outcome::Success if code != 0 => {
                problems.push(format!("expected exit 0 (no marker), got exit {code}"))
            }
            Outcome::Exit(expected) if code != *expected => {
                problems.push(format!("expected exit {expected}, got exit {code}"))
            }
            Outcome::Errno(name) => {
                if code == 0 {
                    problems.push(format!("expected a failure with {name}, got exit 0"));
                }
                let texts = ERRNOS
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, texts)| *texts)
                    .unwrap_or_default();
                if !texts.iter().any(|t| output.contains(t)) {
                    problems.push(format!(
                        "expected the output to name {name} ({})",
                        texts.join(" or ")
                    ));
                }
            }
            _ => {}
        }
        if !problems.is_empty() {
            let mut report = String::new();
            let _ = writeln!(
                report,
                "{PAGE_PATH}:{} (block at line {}): {}",
                step.line,
                block.line,
                problems.join("; ")
            );
            let _ = writeln!(report, "  $ {}", step.command.replace('\n', "\n    "));
            let _ = writeln!(report, "expected:\n{}", indent(&step.output.join("\n")));
            let _ = writeln!(report, "actual (exit {code}):\n{}", indent(&output));
            let log = mount.log();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            let _ = writeln!(
                report,
                "end of the daemon's log:\n{}",
                indent(&tail.join("\n"))
            );
            return Err(report);
        }
    }
    Ok(())
}

fn read_all(file: &mut std::fs::File) -> String {
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(0)).expect("output file");
    file.read_to_end(&mut bytes).expect("output file");
    String::from_utf8_lossy(&bytes).into_owned()
}

fn indent(text: &str) -> String {
    if text.trim().is_empty() {
        return "    (nothing)".to_string();
    }
    text.trim_end_matches('\n')
        .lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_example_of_the_semantics_page_does_what_it_shows() {
    let all = blocks(PAGE);
    let fixtures: Vec<&Block> = all.iter().filter(|b| b.info == "sh fixture").collect();
    assert_eq!(
        fixtures.len(),
        1,
        "{PAGE_PATH} must hold one ```sh fixture block"
    );
    let fixture: String = fixtures[0]
        .lines
        .iter()
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    let fixture = format!("set -e\n{fixture}");
    let examples: Vec<(&Block, Vec<Step>)> = all
        .iter()
        .filter(|b| b.example_options().is_some())
        .map(|b| (b, steps(b)))
        .collect();
    let commands: usize = examples.iter().map(|(_, s)| s.len()).sum();
    // A page whose examples vanished (a renamed fence, say) proves nothing.
    assert!(
        examples.len() >= 10 && commands >= 40,
        "{PAGE_PATH}: only {} console blocks with {commands} commands found",
        examples.len()
    );
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_startifact-fs"))
        .parent()
        .expect("the binaries' folder")
        .to_path_buf();

    let mut failures = Vec::new();
    for (block, steps) in &examples {
        let world = World::local_new().await;
        let place = Place {
            world: &world,
            bin_dir: bin_dir.clone(),
        };
        if let Err(report) = run_block(&place, &fixture, block, steps) {
            failures.push(report);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} examples of {PAGE_PATH} do not do what the page shows:\n\n{}",
        failures.len(),
        examples.len(),
        failures.join("\n")
    );
}

#[test]
fn the_example_reader_finds_commands_markers_and_output() {
    let page = "text\n```console\n$ ls\na\nb\n$ rm a  # -> EPERM\nrm: x\n$ false \\\n  && true  # -> exit 1\n```\n\n```console --read-only\n$ ls\n```\n```text\n$ not run\n```\n";
    let found = blocks(page);
    assert_eq!(found.len(), 3);
    assert_eq!(found[0].example_options(), Some(vec![]));
    assert_eq!(found[1].example_options(), Some(vec!["--read-only"]));
    assert_eq!(found[2].example_options(), None);
    let steps = steps(&found[0]);
    assert_eq!(steps.len(), 3);
    assert_eq!(steps[0].output, ["a", "b"]);
    assert_eq!(steps[0].outcome, Outcome::Success);
    assert_eq!(steps[1].outcome, Outcome::Errno("EPERM"));
    assert_eq!(steps[2].command, "false \\\n  && true  # -> exit 1");
    assert_eq!(steps[2].outcome, Outcome::Exit(1));
    assert_eq!(steps[1].line, 6);
}
