//! Writes the man pages of both programs, generated from their clap definitions, into
//! the folder given (the package ships them): `startifact.1` and `startifact-fs.8`.
//!
//! `cargo run --example man_pages -- target/man`

use std::path::PathBuf;
use std::process::ExitCode;

use clap::CommandFactory;

fn main() -> ExitCode {
    let Some(folder) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: man_pages FOLDER");
        return ExitCode::FAILURE;
    };
    let pages = [
        ("startifact.1", "1", startifact::cli::args::Args::command()),
        (
            "startifact-fs.8",
            "8",
            startifact::mount::options::MountArgs::command(),
        ),
    ];
    if let Err(e) = std::fs::create_dir_all(&folder) {
        eprintln!("cannot make {}: {e}", folder.display());
        return ExitCode::FAILURE;
    }
    for (name, section, command) in pages {
        let version = env!("CARGO_PKG_VERSION");
        let page = clap_mangen::Man::new(command.version(version))
            .section(section)
            .source(format!("startifact-fs {version}"));
        let mut bytes = Vec::new();
        let path = folder.join(name);
        if let Err(e) = page
            .render(&mut bytes)
            .and_then(|()| std::fs::write(&path, &bytes))
        {
            eprintln!("cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        println!("{}", path.display());
    }
    ExitCode::SUCCESS
}
