//! A `moto_server` on a free loopback port, shared by the whole test binary (worlds
//! keep tests apart; the fault proxy stands in for a region that is down or hung).
//! `regions.rs` starts servers of its own, one per region, with what is here.

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub struct Moto {
    pub url: String,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Makes the process `command` starts die with the thread that started it (SIGKILL), so
/// that no server outlives the tests.
pub fn dies_with_its_thread(command: &mut Command) {
    // SAFETY: prctl is async-signal-safe, and the closure touches nothing else.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

/// Starts a `moto_server` on `port`; it dies with the thread that started it.
pub fn spawn(port: u16) -> Child {
    let server = super::venv().join("bin/moto_server");
    let mut command = Command::new(&server);
    command
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .env_remove("AWS_CA_BUNDLE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    dies_with_its_thread(&mut command);
    command.spawn().unwrap_or_else(|e| {
        panic!(
            "cannot start {} (run scripts/test.sh): {e}",
            server.display()
        )
    })
}

pub fn wait_until_up(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("moto_server on port {port} did not start within a minute");
}

impl Moto {
    /// The server shared by every test of this binary. It is started from a thread that
    /// never ends, so that it lives (and dies) with the test process.
    pub fn shared() -> &'static Moto {
        static SHARED: OnceLock<Moto> = OnceLock::new();
        SHARED.get_or_init(|| {
            let port = free_port();
            let (sender, receiver) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let child = spawn(port);
                let _ = sender.send(child.id());
                let _keep = child;
                loop {
                    std::thread::park();
                }
            });
            receiver.recv().expect("moto_server started");
            wait_until_up(port);
            Moto {
                url: format!("http://127.0.0.1:{port}"),
            }
        })
    }
}
