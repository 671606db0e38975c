//! What a mount is told, layer by layer. Each place that can say something (the
//! command line's flags, its `-o` options, the environment, the configuration file) is
//! read into a `Settings` holding only what that place says; the layers are then laid
//! over each other, flags first, then `-o`, then the environment, then the file, and
//! the defaults fill what none of them says (`MountArgs::resolve`).
//!
//! `-o key=value` and the file share one vocabulary (`Settings::apply`), the keys of
//! `super::declaration`: what fstab carries badly (per-region endpoints, credentials)
//! the file carries under the same name.

pub use super::declaration::Settings;
use super::declaration::OPTIONS;
use super::option_spec::OptionSpec;

/// What `apply` made of a key.
#[derive(Debug)]
pub enum Applied {
    /// The option's value was read.
    Taken(&'static OptionSpec<Settings>),
    /// A generic option of mount(8) (`rw`, `nofail`, `x-systemd.*`...): nothing to us.
    Generic,
    Unknown,
}

/// Options of mount(8) and fstab that mean nothing to us (`mount.fuse3` adds `dev`
/// and `suid` of its own).
fn is_generic_option(key: &str) -> bool {
    matches!(
        key,
        "rw" | "dev"
            | "nodev"
            | "suid"
            | "nosuid"
            | "exec"
            | "noexec"
            | "atime"
            | "noatime"
            | "relatime"
            | "auto"
            | "noauto"
            | "nofail"
            | "_netdev"
            | "user"
            | "users"
            | "defaults"
            | "async"
            | "sync"
            | "comment"
    ) || key.starts_with("x-")
}

impl Settings {
    /// Takes one `key` or `key=value` (of `-o`, or of the file, where `-` and `_` are
    /// both accepted); a bad value is an error.
    pub fn apply(&mut self, key: &str, value: Option<&str>) -> Result<Applied, String> {
        match OPTIONS.iter().find(|option| option.accepts(key)) {
            Some(option) => {
                (option.set)(self, key, value)?;
                Ok(Applied::Taken(option))
            }
            None if is_generic_option(key) => Ok(Applied::Generic),
            None => Ok(Applied::Unknown),
        }
    }

    /// The `-o` options, comma-separated, of every `-o` given.
    pub fn from_mount_options(groups: &[String]) -> Result<Settings, String> {
        let mut settings = Settings::default();
        for group in groups {
            for option in group.split(',').map(str::trim).filter(|o| !o.is_empty()) {
                let (key, value) = match option.split_once('=') {
                    Some((k, v)) => (k, Some(v)),
                    None => (option, None),
                };
                match settings.apply(key, value) {
                    Ok(Applied::Unknown) => return Err(format!("unknown mount option {option:?}")),
                    Ok(_) => {}
                    Err(e) => return Err(format!("mount option {option:?}: {e}")),
                }
            }
        }
        Ok(settings)
    }

    /// What the environment says: the variables of the options that have one (the
    /// `STARTIFACT_*` variables, and those of the AWS CLI for the CA bundle, the profile
    /// and the shared files). `lookup` reads one variable (the process's environment,
    /// or a test's); a blank one says nothing.
    pub fn from_environment(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Settings, String> {
        let mut settings = Settings::default();
        for option in OPTIONS {
            let Some(variable) = option.env else {
                continue;
            };
            if let Some(value) = lookup(variable).filter(|v| !v.trim().is_empty()) {
                (option.set_from_environment)(&mut settings, variable, &value)?;
            }
        }
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_higher_layer_wins_and_a_lower_one_fills_the_rest() {
        let mut high = Settings::default();
        high.apply("regions", Some("a")).unwrap();
        let mut low = Settings::default();
        low.apply("regions", Some("b")).unwrap();
        low.apply("parameter", Some("/p")).unwrap();
        let both = high.or(low);
        assert_eq!(both.regions.as_deref(), Some("a"));
        assert_eq!(both.parameter.as_deref(), Some("/p"));
    }

    #[test]
    fn the_environment_is_read_through_its_variables() {
        let env = |name: &str| match name {
            "STARTIFACT_REGIONS" => Some("r1,r2".to_string()),
            "STARTIFACT_ENDPOINTS" => Some("r1=http://x,r2=https://y".to_string()),
            "AWS_CA_BUNDLE" => Some("/ca.pem".to_string()),
            "STARTIFACT_MAX_ATTEMPTS" => Some("4".to_string()),
            "AWS_PROFILE" => Some(" ".to_string()),
            _ => None,
        };
        let s = Settings::from_environment(&env).unwrap();
        assert_eq!(s.regions.as_deref(), Some("r1,r2"));
        assert_eq!(s.endpoints.unwrap()["r2"], "https://y");
        assert_eq!(s.ca_bundle, Some(std::path::PathBuf::from("/ca.pem")));
        assert_eq!(s.max_attempts, Some(4));
        assert_eq!(s.aws_profile, None, "a blank variable says nothing");
        let bad = |name: &str| (name == "STARTIFACT_CONNECT_TIMEOUT").then(|| "soon".to_string());
        let e = Settings::from_environment(&bad).unwrap_err();
        assert!(e.contains("STARTIFACT_CONNECT_TIMEOUT"), "{e}");
    }

    #[test]
    fn switches_take_true_and_false_and_unknown_keys_are_refused() {
        let mut s = Settings::default();
        s.apply("read-only", Some("false")).unwrap();
        assert_eq!(s.read_only, Some(false));
        assert!(s.apply("ro", Some("perhaps")).is_err());
        assert!(matches!(
            s.apply("x-systemd.automount", None),
            Ok(Applied::Generic)
        ));
        assert!(matches!(
            s.apply("regoins", Some("a")),
            Ok(Applied::Unknown)
        ));
        let e = Settings::from_mount_options(&["ro,regoins=a".to_string()]).unwrap_err();
        assert!(e.contains("unknown mount option \"regoins=a\""), "{e}");
        assert!(s.apply("parameter", None).is_err(), "a value is needed");
    }

    #[test]
    fn no_passthrough_turns_passthrough_off_and_a_flag_wins_over_dash_o() {
        use super::super::options::MountArgs;
        use clap::Parser;
        let resolve = |args: &[&str]| {
            let mut all = vec!["startifact-fs"];
            all.extend_from_slice(args);
            MountArgs::try_parse_from(all)
                .unwrap()
                .resolve_in(&|_| None, std::path::Path::new("/no/such/config.toml"))
                .unwrap()
        };
        assert!(resolve(&["/mnt"]).passthrough, "on by default");
        assert!(!resolve(&["-o", "no_passthrough", "/mnt"]).passthrough);
        assert!(!resolve(&["--no-passthrough", "/mnt"]).passthrough);
        assert!(!resolve(&["--no-passthrough", "-o", "passthrough", "/mnt"]).passthrough);
        assert!(resolve(&["-o", "no_passthrough=false", "/mnt"]).passthrough);
        let mut s = Settings::default();
        assert!(s.apply("no-passthrough", Some("perhaps")).is_err());
    }
}
