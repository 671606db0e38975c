//! `startifact --stage` and `--download` show their progress (bytes, rate, regions done)
//! on a terminal, and print nothing of it when stderr is not one (a pipe, a file, CI).

use std::path::Path;
use std::process::Command;

use crate::support::files::{project, random_bytes};
use crate::support::world::{run, World, WorldOptions, REGIONS};

/// Large enough to go up in parts and take a moment.
const SIZE: usize = 24 << 20;

/// Single-quotes `text` for `sh -c`.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Runs `command` on a pseudo-terminal (util-linux `script`), with its environment:
/// (exit code, everything it wrote to the terminal).
fn on_terminal(command: &Command) -> (i32, String) {
    let mut line = quoted(&command.get_program().to_string_lossy());
    for arg in command.get_args() {
        line.push(' ');
        line.push_str(&quoted(&arg.to_string_lossy()));
    }
    let mut script = Command::new("script");
    script.args(["-q", "-e", "-f", "-c", &line, "/dev/null"]);
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => script.env(key, value),
            None => script.env_remove(key),
        };
    }
    let (code, stdout, stderr) = run(&mut script);
    (code, format!("{stdout}{stderr}"))
}

/// What only the bar draws.
fn bar_drawn(output: &str) -> bool {
    output.contains("] ") && output.contains("MiB") && output.contains('\r')
}

fn stage_command(world: &World, p: &str, version: &str, file: &Path) -> Command {
    let mut command = world.cli();
    command.args([p, version, "--stage"]).arg(file);
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stage_and_download_draw_a_bar_on_a_terminal_only() {
    let world = World::moto(WorldOptions::default()).await;
    let p = project(&world, "Progress");
    let bytes = random_bytes(SIZE, 21);
    let file = world.file("dist", &bytes);

    // Not a terminal: stdout and stderr are pipes.
    let (code, stdout, stderr) = run(&mut stage_command(&world, &p, "1.0.0", &file));
    assert_eq!(code, 0, "{stderr}");
    for text in [&stdout, &stderr] {
        assert!(!bar_drawn(text), "{text}");
        assert!(!text.contains('\x1b') && !text.contains('\r'), "{text:?}");
    }
    let out = world.scratch.path().join("piped");
    let (code, stdout, stderr) = run(world
        .cli()
        .args([p.as_str(), "1.0.0", "--download"])
        .arg(&out));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        !stderr.contains('\r') && !stdout.contains('\r'),
        "{stderr:?}"
    );
    assert!(std::fs::read(&out).unwrap() == bytes);

    // A terminal: the bar, with the regions done, then the usual lines.
    let (code, shown) = on_terminal(&stage_command(&world, &p, "2.0.0", &file));
    assert_eq!(code, 0, "{shown}");
    assert!(bar_drawn(&shown), "{shown:?}");
    assert!(shown.contains("staging"), "{shown:?}");
    assert!(
        shown.contains(&format!("/{} regions done", REGIONS.len())),
        "{shown:?}"
    );
    assert!(shown.contains("Staged to"), "{shown:?}");
    let out = world.scratch.path().join("shown");
    let mut download = world.cli();
    download.args([p.as_str(), "2.0.0", "--download"]).arg(&out);
    let (code, shown) = on_terminal(&download);
    assert_eq!(code, 0, "{shown}");
    assert!(bar_drawn(&shown), "{shown:?}");
    assert!(shown.contains("downloading"), "{shown:?}");
    assert!(shown.contains("Downloaded"), "{shown:?}");
    assert!(std::fs::read(&out).unwrap() == bytes);
}
