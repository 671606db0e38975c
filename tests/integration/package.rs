//! Installing: the Debian package (`scripts/package.sh`, cargo-deb) installed with
//! `dpkg -i` puts both programs on the PATH with the unit, the environment file and the
//! man pages; `scripts/install.sh` does the same under a prefix for other hosts.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::world::{run, run_ok};

const PACKAGE: &str = "startifact-fs";

fn repository() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The build folder of this test binary's programs (`…/target`): the scripts package
/// those, with no build of their own.
fn target_dir() -> PathBuf {
    let program = Path::new(env!("CARGO_BIN_EXE_startifact"));
    program
        .parent()
        .and_then(Path::parent)
        .expect("the programs are in TARGET/debug")
        .to_path_buf()
}

fn script(name: &str) -> Command {
    let mut command = Command::new("bash");
    // Cargo gives a test its package's variables (CARGO_PKG_NAME, CARGO_MANIFEST_DIR...);
    // build scripts of the dependencies watch some of them, so a cargo run with them
    // would rebuild the whole SDK, and the next run without them would again.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if (key.starts_with("CARGO_") && key != "CARGO_HOME") || key == "OUT_DIR" {
            command.env_remove(key);
        }
    }
    command
        .arg(repository().join("scripts").join(name))
        .env("CARGO_TARGET_DIR", target_dir())
        .env("PROFILE", "dev");
    command
}

/// Purges the package when the test ends, however it ends.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["--purge", PACKAGE]).output();
    }
}

#[test]
fn the_debian_package_puts_both_programs_on_the_path_with_the_unit_and_man_pages() {
    let stdout = run_ok(&mut script("package.sh"));
    let deb = PathBuf::from(stdout.lines().last().expect("the package's path").trim());
    assert!(
        deb.extension().is_some_and(|e| e == "deb") && deb.is_file(),
        "{stdout}"
    );
    let _installed = Installed;
    let (code, out, err) = run(Command::new("dpkg")
        .args(["--force-confold", "-i"])
        .arg(&deb)
        .env("DEBIAN_FRONTEND", "noninteractive"));
    assert_eq!(code, 0, "{out}{err}");

    // From the PATH, as a user (or mount(8), or systemd) finds them.
    let version = format!(" {}", env!("CARGO_PKG_VERSION"));
    for program in ["startifact", "startifact-fs"] {
        let shown = run_ok(Command::new(program).arg("--version").env_clear().env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ));
        assert!(
            shown.starts_with(program) && shown.contains(&version),
            "{shown}"
        );
    }
    let files = run_ok(Command::new("dpkg").args(["-L", PACKAGE]));
    for file in [
        "/usr/bin/startifact",
        "/usr/bin/startifact-fs",
        "/lib/systemd/system/startifact-fs@.service",
        "/etc/default/startifact-fs",
        "/usr/share/man/man1/startifact.1",
        "/usr/share/man/man8/startifact-fs.8",
        "/usr/share/doc/startifact-fs/README.md",
    ] {
        assert!(files.lines().any(|l| l == file), "{file} not in:\n{files}");
        assert!(Path::new(file).exists(), "{file} not installed");
    }
    let page = std::fs::read_to_string("/usr/share/man/man1/startifact.1").unwrap();
    assert!(page.contains(".TH startifact 1"), "{page}");
    assert!(page.contains("download"), "{page}");
    let conffiles =
        run_ok(Command::new("dpkg-query").args(["--showformat=${Conffiles}", "--show", PACKAGE]));
    assert!(
        conffiles.contains("/etc/default/startifact-fs"),
        "{conffiles}"
    );

    drop(_installed);
    assert!(!Path::new("/usr/bin/startifact-fs").exists(), "purged");
}

#[test]
fn install_sh_puts_the_programs_unit_and_man_pages_under_a_prefix() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("etc/default")).unwrap();
    // An environment file of the host's own is kept.
    std::fs::write(root.path().join("etc/default/startifact-fs"), "MINE=1\n").unwrap();
    run_ok(
        script("install.sh")
            .env("DESTDIR", root.path())
            .env("PREFIX", "/opt/startifact"),
    );
    let at = |path: &str| root.path().join(path.trim_start_matches('/'));
    for path in [
        "/opt/startifact/bin/startifact",
        "/opt/startifact/bin/startifact-fs",
        "/opt/startifact/share/man/man1/startifact.1",
        "/opt/startifact/share/man/man8/startifact-fs.8",
        "/etc/systemd/system/startifact-fs@.service",
    ] {
        assert!(at(path).is_file(), "{path} not installed");
    }
    let unit = std::fs::read_to_string(at("/etc/systemd/system/startifact-fs@.service")).unwrap();
    assert!(
        unit.contains("ExecStart=/opt/startifact/bin/startifact-fs "),
        "{unit}"
    );
    assert_eq!(
        std::fs::read_to_string(at("/etc/default/startifact-fs")).unwrap(),
        "MINE=1\n"
    );
    let shown = run_ok(Command::new(at("/opt/startifact/bin/startifact")).arg("--version"));
    assert!(shown.contains(env!("CARGO_PKG_VERSION")), "{shown}");
}
