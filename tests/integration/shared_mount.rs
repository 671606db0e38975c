//! A mount shared with other local users (`--allow-other`), played from the other
//! side: a real unprivileged user (`useradd`) runs `ls`, `cat`, `mkdir`, `cp`,
//! `setfattr`, `ln -sfn` and `rm -r` through `setpriv`. Everyone may read; only the
//! daemon's owner and the `--stagers` group may change anything, and what they change
//! is logged with who they are. Who may do what is decided in the adapter and the
//! model, the same over every backend, so these tests use the local store; the one
//! about credentials in the log runs on moto, where credentials are sent.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

use crate::support::files::project;
use crate::support::mount::{mount_line, Mount};
use crate::support::world::{run, run_ok, World, WorldOptions};

/// A local user the tests act as.
pub struct LocalUser {
    pub uid: u32,
    pub gid: u32,
}

/// `useradd` once per machine; tests in parallel must not race on `/etc/passwd`.
pub fn local_user(name: &'static str, group: Option<&str>) -> LocalUser {
    static USERS: Mutex<()> = Mutex::new(());
    let _guard = USERS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(group) = group {
        if !Command::new("getent")
            .args(["group", group])
            .output()
            .expect("getent runs")
            .status
            .success()
        {
            run_ok(Command::new("groupadd").args(["--system", group]));
        }
    }
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, name]).output().ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    if id("-u").is_none() {
        let mut useradd = Command::new("useradd");
        useradd.args(["--system", "--no-create-home", "--shell", "/bin/sh"]);
        if let Some(group) = group {
            useradd.args(["--groups", group]);
        }
        run_ok(useradd.arg(name));
    }
    LocalUser {
        uid: id("-u").expect("the user exists"),
        gid: id("-g").expect("the user has a group"),
    }
}

/// Another user with no business changing the mount.
pub fn guest() -> LocalUser {
    local_user("startifact-guest", None)
}

/// A member of the stagers group.
pub fn stager() -> LocalUser {
    local_user("startifact-stager", Some("startifact-stagers"))
}

/// Runs a shell script as `user` (with its supplementary groups): (status, stdout, stderr).
pub fn as_user(user: &LocalUser, script: &str) -> (i32, String, String) {
    run(Command::new("setpriv")
        .arg(format!("--reuid={}", user.uid))
        .arg(format!("--regid={}", user.gid))
        .arg("--init-groups")
        .args(["--", "bash", "-c", script]))
}

/// Lets other users reach the mount point (tests keep it in a private temp folder).
pub fn open_the_way(mount: &Mount) {
    let parent = mount.path.parent().expect("a folder above the mount");
    std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A refusal: the command failed with EACCES, as the shell tools print it.
#[track_caller]
fn refused(what: &str, (code, stdout, stderr): (i32, String, String)) {
    assert_ne!(code, 0, "{what} should fail; stdout: {stdout}");
    assert!(
        stderr.contains("Permission denied"),
        "{what} should be EACCES, got: {stderr}"
    );
}

fn q(path: &Path) -> String {
    format!("'{}'", path.display())
}

async fn staged_world() -> (World, String) {
    let world = World::local(WorldOptions::default()).await;
    let p = project(&world, "Shared");
    let file = world.file("dist.tar.gz", b"root's artifact\n");
    run_ok(
        world
            .cli()
            .args([p.as_str(), "1.0.0", "--stage"])
            .arg(&file)
            .args(["--metadata", "lang=rust", "--filename"]),
    );
    (world, p)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everyone_reads_a_shared_mount_but_only_the_owner_changes_it() {
    let (world, p) = staged_world().await;
    let guest = guest();
    let mount = Mount::start(&world, &["--allow-other", "--allow-delete"]);
    open_the_way(&mount);
    let line = mount_line(&mount.path).expect("mounted");
    assert!(line.contains("default_permissions"), "{line}");
    assert!(line.contains("allow_other"), "{line}");
    // Root's own staging folder, for the guest to try to tag.
    std::fs::create_dir(mount.join(&format!("{p}/2.0.0"))).unwrap();

    let project_dir = mount.join(&p);
    let listing = as_user(&guest, &format!("ls {}", q(&project_dir)));
    assert_eq!(listing.0, 0, "{listing:?}");
    assert!(listing.1.lines().any(|l| l == "1.0.0"), "{listing:?}");
    let read = as_user(
        &guest,
        &format!("cat {}", q(&project_dir.join("latest/dist.tar.gz"))),
    );
    assert_eq!(read, (0, "root's artifact\n".to_string(), String::new()));
    let attrs = as_user(
        &guest,
        &format!(
            "getfattr --only-values -n user.lang {}",
            q(&project_dir.join("1.0.0"))
        ),
    );
    assert_eq!(attrs.1, "rust", "{attrs:?}");

    refused(
        "mkdir of a project",
        as_user(&guest, &format!("mkdir {}", q(&mount.join("Intruder")))),
    );
    refused(
        "mkdir of a version",
        as_user(&guest, &format!("mkdir {}", q(&project_dir.join("1.0.1")))),
    );
    refused(
        "setfattr on root's staging folder",
        as_user(
            &guest,
            &format!(
                "setfattr -n user.owner -v guest {}",
                q(&project_dir.join("2.0.0"))
            ),
        ),
    );
    refused(
        "cp into root's staging folder",
        as_user(
            &guest,
            &format!("echo evil > {}", q(&project_dir.join("2.0.0/dist.tar.gz"))),
        ),
    );
    refused(
        "ln -sfn onto latest",
        as_user(
            &guest,
            &format!("ln -sfn 2.0.0 {}", q(&project_dir.join("latest"))),
        ),
    );
    refused(
        "rm -r of a staged version",
        as_user(&guest, &format!("rm -rf {}", q(&project_dir.join("1.0.0")))),
    );

    // Nothing changed: the store still holds 1.0.0 alone, latest points at it, and
    // root's staging folder is untouched.
    let listed = run_ok(world.cli().args([p.as_str(), "--list"]));
    assert_eq!(listed.trim(), "1.0.0");
    let latest = std::fs::read_link(project_dir.join("latest")).unwrap();
    assert_eq!(latest, Path::new("1.0.0"));
    assert!(crate::support::files::getxattr(&project_dir.join("2.0.0"), "user.owner", 64).is_err());
    assert!(!mount.join("Intruder").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_allow_other_other_users_see_nothing() {
    let (world, _p) = staged_world().await;
    let guest = guest();
    let mount = Mount::start(&world, &["-o", "default_permissions"]);
    open_the_way(&mount);
    let line = mount_line(&mount.path).expect("mounted");
    assert!(line.contains("default_permissions"), "{line}");
    refused("ls", as_user(&guest, &format!("ls {}", q(&mount.path))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stagers_stage_and_each_change_names_who_made_it() {
    let (world, p) = staged_world().await;
    let (stager, guest) = (stager(), guest());
    let mount = Mount::start(
        &world,
        &["--allow-other", "--stagers", "startifact-stagers"],
    );
    open_the_way(&mount);
    let shown = std::fs::metadata(&mount.path).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(shown.mode() & 0o777, 0o775, "the stagers may make projects");
    let stagers_gid = shown.gid();

    let version = mount.join(&format!("{p}/1.1.0"));
    let staged = as_user(
        &stager,
        &format!(
            "mkdir {v} && printf 'staged by a stager' > {v}/dist.tar.gz",
            v = q(&version)
        ),
    );
    assert_eq!(staged.0, 0, "{staged:?}\n{}", mount.log());
    let downloaded = run_ok(world.cli().args([p.as_str(), "1.1.0", "--download", "-"]));
    assert_eq!(downloaded, "staged by a stager");
    assert_eq!(
        std::fs::metadata(mount.join(&format!("{p}/1.1.0")))
            .unwrap()
            .gid(),
        stagers_gid
    );
    let log = mount.log();
    let by = format!("by=uid {} gid {}", stager.uid, stager.gid);
    assert!(
        log.lines()
            .any(|l| l.contains(&by) && l.contains("staged:") && l.contains("(bash)")),
        "the stage names its stager: {log}"
    );
    let moved = as_user(
        &stager,
        &format!("ln -sfn 1.0.0 {}", q(&mount.join(&format!("{p}/latest")))),
    );
    assert_eq!(moved.0, 0, "{moved:?}");
    assert!(mount
        .log()
        .lines()
        .any(|l| l.contains(&by) && l.contains("latest moved")));

    refused(
        "mkdir by a user outside the group",
        as_user(
            &guest,
            &format!("mkdir {}", q(&mount.join(&format!("{p}/1.2.0")))),
        ),
    );

    // A stager's writer killed mid-write: the file is kept, shown as the stager's, and
    // status.json says who wrote it.
    let abandoned = mount.join(&format!("{p}/1.3.0"));
    let killed = as_user(
        &stager,
        &format!(
            "mkdir {v} && exec 3>{v}/dist.tar.gz && printf partial >&3 && kill -9 $$",
            v = q(&abandoned)
        ),
    );
    assert_eq!(killed.0, -1, "killed by a signal: {killed:?}");
    assert_eq!(
        std::fs::metadata(abandoned.join("dist.tar.gz"))
            .unwrap()
            .uid(),
        stager.uid
    );
    let status: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(mount.staging_dir().join("status.json")).unwrap(),
    )
    .unwrap();
    let entry = status["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["version"] == "1.3.0")
        .cloned()
        .unwrap_or_default();
    assert_eq!(entry["state"], "abandoned", "{entry}");
    assert_eq!(entry["by"]["uid"], stager.uid, "{entry}");
    assert_eq!(entry["by"]["command"], "bash", "{entry}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_writer_adds_to_a_file_in_flight() {
    let (world, p) = staged_world().await;
    let guest = guest();
    let mount = Mount::start(&world, &["--allow-other"]);
    open_the_way(&mount);
    let version = mount.join(&format!("{p}/2.0.0"));
    std::fs::create_dir(&version).unwrap();
    let file = version.join("dist.tar.gz");
    // The writer holds the file open until the test says it has tried the others.
    let go_on = world.scratch.path().join("go-on");
    let mut writer = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "exec 3>{f}; printf 'root ' >&3; until [ -e {g} ]; do sleep 0.05; done; printf bytes >&3; exec 3>&-",
            f = q(&file),
            g = q(&go_on)
        ))
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the writer never wrote"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Another of root's processes: the kernel lets root in, the daemon does not.
    let (code, _, stderr) = run(Command::new("bash")
        .arg("-c")
        .arg(format!("printf evil >> {}", q(&file))));
    assert_ne!(code, 0);
    assert!(
        stderr.contains("Permission denied"),
        "{stderr}\n{}",
        mount.log()
    );
    refused(
        "appending as another user",
        as_user(&guest, &format!("printf evil >> {}", q(&file))),
    );
    std::fs::write(&go_on, b"").unwrap();
    assert!(writer.wait().unwrap().success());
    let downloaded = run_ok(world.cli().args([p.as_str(), "2.0.0", "--download", "-"]));
    assert_eq!(downloaded, "root bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_user_cannot_fill_the_staging_folder_for_everyone() {
    let (world, p) = staged_world().await;
    let stager = stager();
    let mount = Mount::start(
        &world,
        &[
            "--allow-other",
            "--stagers",
            "startifact-stagers",
            "--staging-size",
            "1M",
        ],
    );
    open_the_way(&mount);
    // The stager's killed copy keeps 400 kB: abandoned, still held.
    let killed = as_user(
        &stager,
        &format!(
            "mkdir {v} && exec 3>{v}/dist && head -c 400000 /dev/zero >&3 && kill -9 $$",
            v = q(&mount.join(&format!("{p}/2.0.0")))
        ),
    );
    assert_eq!(killed.0, -1, "{killed:?}");
    // Half of --staging-size each: the stager may not take more...
    let (code, _, stderr) = as_user(
        &stager,
        &format!(
            "mkdir {v} && head -c 400000 /dev/zero > {v}/dist",
            v = q(&mount.join(&format!("{p}/3.0.0")))
        ),
    );
    assert!(
        code != 0 && stderr.contains("No space left on device"),
        "{stderr}"
    );
    // ...and the owner still can.
    let version = mount.join(&format!("{p}/4.0.0"));
    std::fs::create_dir(&version).unwrap();
    std::fs::write(version.join("dist"), vec![7u8; 300_000]).unwrap();
    let listed = run_ok(world.cli().args([p.as_str(), "--list"]));
    assert!(listed.lines().any(|l| l == "4.0.0"), "{listed}");
}

/// Credentials that look like real ones never reach a log, at the most verbose level,
/// whatever the mount does (reads, a stage, a move of `latest`, a refusal).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credential_appears_in_the_log_at_trace_level() {
    let world = World::moto(WorldOptions::default()).await;
    let p = project(&world, "Secret");
    let (key_id, secret, token) = (
        "AKIAZZSECRETLOOKING1",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzSECRETzz",
        "FwoGZXIvYXdzEBSECRETSESSIONTOKENzz",
    );
    let env = [
        ("AWS_ACCESS_KEY_ID", key_id),
        ("AWS_SECRET_ACCESS_KEY", secret),
        ("AWS_SESSION_TOKEN", token),
    ];
    let mount = Mount::start_with_env(&world, &["-o", "log_level=trace"], &env);
    let version = mount.join(&format!("{p}/1.0.0"));
    std::fs::create_dir_all(&version).unwrap();
    std::fs::write(version.join("dist"), b"bytes").unwrap();
    assert_eq!(std::fs::read(version.join("dist")).unwrap(), b"bytes");
    std::os::unix::fs::symlink("1.0.0", mount.join(&format!("{p}/latest.tmp"))).unwrap();
    std::fs::rename(
        mount.join(&format!("{p}/latest.tmp")),
        mount.join(&format!("{p}/latest")),
    )
    .unwrap();
    let _ = std::fs::remove_file(version.join("dist"));
    let log = mount.log();
    assert!(log.contains("TRACE") || log.contains("DEBUG"), "{log}");
    assert!(log.contains("staged"), "{log}");
    for credential in [key_id, secret, token] {
        assert!(!log.contains(credential), "{credential} is in the log");
    }
}
