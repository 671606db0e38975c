//! What `startifact-fs --help` (and its man page) and the README say of the options,
//! from their declaration (`super::declaration`): each flag's help with its default,
//! the `-o` line, and the README's option table; and what the help shows after the
//! options: an example of every option, the `status` command, the environment, and the
//! exit status.

use super::declaration::{Settings, OPTIONS};
use super::option_spec::{OptionDefault, OptionSpec};

/// A flag's help: what it does, its default and its variable.
pub fn flag_help(option: &OptionSpec<Settings>) -> String {
    let mut help = option.summary().to_string();
    match option.default {
        OptionDefault::Value(shown) => {
            let shown = shown();
            if shown.in_help {
                help.push_str(&format!(" [default: {}]", shown.text));
            }
        }
        OptionDefault::Unset(text) => help.push_str(&format!(" [default: {text}]")),
    }
    if let Some(variable) = option.env {
        help.push_str(&format!(" [env: {variable}]"));
    }
    help
}

/// The help of `-o`: every option's key.
pub fn dash_o_help() -> String {
    let keys: Vec<String> = OPTIONS.iter().map(OptionSpec::dash_o_form).collect();
    format!(
        "Mount options, comma-separated, for mount(8) and fstab: {}; the generic ones of \
         mount(8) are accepted and ignored. Example: \
         -o ro,regions=us-east-1:eu-west-2,aws_credentials_file=/etc/startifact-fs/credentials",
        keys.join(", ")
    )
}

pub const EXAMPLES: &str = "\
Examples:
  startifact-fs local:/srv/artifacts /mnt/artifacts     the embedded local store
  startifact-fs --regions us-east-1,eu-west-2 aws /mnt/artifacts
  startifact-fs -f --log-level debug aws /mnt/artifacts   in the foreground, verbose
  startifact-fs --read-only aws /mnt/artifacts           a deployment host: no changes
  startifact-fs --allow-other --stagers ci aws /mnt/artifacts
                      everyone reads; root, the owner and group ci stage, move latest
  startifact-fs --uid 1000 --gid 1000 aws /mnt/artifacts  shown as owned by 1000:1000
  startifact-fs --metadata-ttl 2 aws /mnt/artifacts      see others' stages sooner
  startifact-fs --parameter /team/startifact aws /mnt/artifacts
  startifact-fs --endpoints us-east-1=http://127.0.0.1:9000,eu-west-2=http://10.0.0.2:9000 \\
      --regions us-east-1,eu-west-2 aws /mnt/artifacts   S3-compatible stores
  startifact-fs --cache-dir /var/cache/startifact-fs --cache-size 50G aws /mnt/artifacts
  startifact-fs --cache-dir /var/cache/startifact-fs --no-passthrough aws /mnt/artifacts
                      cached reads through the daemon, not by the kernel from the cache
  startifact-fs --staging-dir /var/lib/startifact-fs/ci --staging-size 20G aws /mnt/artifacts
  startifact-fs --part-size 16M --stop-timeout 120 aws /mnt/artifacts
  startifact-fs --allow-delete aws /mnt/artifacts        rm -r MOUNT/P/V yanks V
  startifact-fs --log-file /var/log/startifact-fs.log aws /mnt/artifacts   (SIGHUP reopens it)
  startifact-fs --config /etc/startifact-fs/ci.toml /mnt/artifacts
  startifact-fs --ca-bundle /etc/ssl/private-ca.pem aws /mnt/artifacts
  startifact-fs --aws-profile artifacts --aws-credentials-file /etc/startifact-fs/credentials \\
      aws /mnt/artifacts
  mount -t fuse.startifact-fs aws /mnt/artifacts -o regions=us-east-1:eu-west-2,allow_other,ro
  fstab: aws /mnt/artifacts fuse.startifact-fs regions=us-east-1:eu-west-2,_netdev,nofail 0 0
  startifact-fs status /mnt/artifacts [--json]   what is staging, awaiting repair, regions
  umount /mnt/artifacts                          stops the daemon (stages in flight finish)

Settings, strongest first: flags, -o options, the environment (STARTIFACT_REGIONS,
STARTIFACT_PARAMETER, STARTIFACT_ENDPOINTS, STARTIFACT_LOCAL_STORE, AWS_CA_BUNDLE,
AWS_PROFILE, AWS_SHARED_CREDENTIALS_FILE...), the configuration file
(/etc/startifact-fs/config.toml, or --config), the defaults. RUST_LOG sets the log when
--log-level does not.

Exit status: 0 once the mount answers (or, in the foreground, once it is unmounted
cleanly); 1 with one line on stderr saying why it could not mount.";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mount::option_spec::Heading;

    /// Where the README's option table starts and ends.
    const README_TABLE_START: &str = "<!-- options: generated from src/mount/declaration.rs -->";
    const README_TABLE_END: &str = "<!-- options: end -->";

    /// The README's option table: every option under its heading (a test holds the
    /// README to it).
    fn readme_table() -> String {
        let mut table = String::from(
            "| Flag | `-o` | What it does | Default | Why that default | File | Environment |\n\
             |---|---|---|---|---|---|---|\n",
        );
        let code = |text: Option<String>| text.map_or(String::new(), |t| format!("`{t}`"));
        for heading in Heading::ALL {
            table.push_str(&format!("| **{}** | | | | | | |\n", heading.title()));
            for option in OPTIONS.iter().filter(|option| option.heading == heading) {
                let default = match option.default {
                    OptionDefault::Value(shown) => format!("`{}`", shown().text),
                    OptionDefault::Unset(text) => text.to_string(),
                };
                let file = option.in_file.then(|| option.key.to_string());
                table.push_str(&format!(
                    "| {} | {} | {}. | {default} | {} | {} | {} |\n",
                    code(option.flag_form()),
                    code(Some(option.dash_o_form())),
                    option.summary(),
                    option.why,
                    code(file),
                    code(option.env.map(str::to_string)),
                ));
            }
        }
        table
    }

    /// Where the README's table is, between its markers.
    fn readme_part(readme: &str) -> Option<std::ops::Range<usize>> {
        let start = readme.find(README_TABLE_START)? + README_TABLE_START.len() + 1;
        let end = start + readme.get(start..)?.find(README_TABLE_END)?;
        Some(start..end)
    }

    /// `STARTIFACT_UPDATE_README=1 cargo test --lib readme` writes the table into the
    /// README.
    #[test]
    fn the_readme_table_is_the_declarations() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
        let readme = std::fs::read_to_string(&path).unwrap();
        let part = readme_part(&readme).expect("the README's option table and its markers");
        let table = readme_table();
        if readme[part.clone()] == table {
            return;
        }
        if std::env::var_os("STARTIFACT_UPDATE_README").is_some() {
            let updated = format!("{}{table}{}", &readme[..part.start], &readme[part.end..]);
            std::fs::write(&path, updated).unwrap();
            return;
        }
        panic!(
            "the README's option table is not the declaration's; rewrite it with \
             STARTIFACT_UPDATE_README=1 cargo test --lib readme. It should read:\n{table}"
        );
    }

    #[test]
    fn no_cell_holds_a_pipe() {
        for option in OPTIONS {
            assert!(
                !option.help.contains('|') && !option.why.contains('|'),
                "{}",
                option.key
            );
            if let OptionDefault::Unset(text) = option.default {
                assert!(!text.contains('|'), "{}", option.key);
            }
        }
    }

    #[test]
    fn flags_show_their_default_and_variable() {
        let help = |key: &str| flag_help(OPTIONS.iter().find(|option| option.key == key).unwrap());
        assert_eq!(
            help("metadata_ttl"),
            "Seconds listings, `latest` and missing names are trusted [default: 10]"
        );
        assert_eq!(
            help("cache_size"),
            "Size limit of the cache, with K/M/G/T suffixes [default: 10G]"
        );
        assert_eq!(help("read_only"), "Refuse every change (EROFS)");
        assert!(help("regions").ends_with("[env: STARTIFACT_REGIONS]"));
        assert!(help("uid").ends_with("[default: the user mounting]"));
    }

    #[test]
    fn dash_o_names_every_option() {
        let help = dash_o_help();
        for option in OPTIONS {
            assert!(help.contains(&option.dash_o_form()), "{}", option.key);
        }
        assert!(help.contains(" ro, "), "{help}");
        assert!(help.contains("regions=R1:R2"), "{help}");
        assert!(help.contains("endpoints=REGION=URL;..."), "{help}");
    }
}
