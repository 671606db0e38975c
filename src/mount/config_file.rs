//! The configuration file, `/etc/startifact-fs/config.toml` (read when it exists) or
//! the one `--config PATH` / `-o config=PATH` names (which must exist): TOML, with the
//! keys of `-o` (see `super::declaration`; not `config`), for what fstab and environment
//! files carry badly:
//!
//! ```toml
//! regions = ["us-east-1", "eu-west-2"]
//! parameter = "/startifact"
//! staging_size = "20G"
//! ca_bundle = "/etc/ssl/private-store-ca.pem"
//! aws_credentials_file = "/etc/startifact-fs/credentials"
//!
//! [endpoints]
//! us-east-1 = "https://s3.store.example:9000"
//! ```
//!
//! A bad file is an error naming the file and the line.

use std::path::Path;

use super::settings::{Applied, Settings};

/// Read when it exists and no other file is named.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/startifact-fs/config.toml";

/// Reads and parses the file at `path`.
pub fn read(path: &Path) -> Result<Settings, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the configuration file {}: {e}", path.display()))?;
    parse(&text).map_err(|(line, message)| {
        format!(
            "bad configuration file {}, line {line}: {message}",
            path.display()
        )
    })
}

/// Parses a file's text; an error is its line (from 1) and what is wrong there.
pub fn parse(text: &str) -> Result<Settings, (usize, String)> {
    let table: toml::Table = toml::from_str(text).map_err(|e| {
        let line = e.span().map_or(1, |span| line_of(text, span.start));
        (line, e.message().trim().to_string())
    })?;
    let mut settings = Settings::default();
    for (key, value) in &table {
        let line = line_of_key(text, key);
        let value = option_value(key, value).map_err(|message| (line, message))?;
        match settings.apply(key, value.as_deref()) {
            Ok(Applied::Taken(option)) if option.in_file => {}
            Ok(_) => return Err((line, format!("unknown key {key:?}"))),
            Err(message) => return Err((line, message)),
        }
    }
    Ok(settings)
}

/// A TOML value as the text `-o` would give (`None` for a switch that is on).
fn option_value(key: &str, value: &toml::Value) -> Result<Option<String>, String> {
    use toml::Value;
    Ok(Some(match value {
        Value::String(s) => s.clone(),
        Value::Integer(n) => n.to_string(),
        Value::Float(x) => x.to_string(),
        Value::Boolean(b) => b.to_string(),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.clone()),
                other => Err(format!("{key}: a {} is not a string", other.type_str())),
            })
            .collect::<Result<Vec<_>, _>>()?
            .join(","),
        Value::Table(table) if key == "endpoints" => table
            .iter()
            .map(|(region, url)| match url {
                Value::String(url) => Ok(format!("{region}={url}")),
                other => Err(format!(
                    "endpoints.{region}: a {} is not a URL string",
                    other.type_str()
                )),
            })
            .collect::<Result<Vec<_>, _>>()?
            .join(","),
        other => {
            return Err(format!(
                "{key}: a {} is not a value of this key",
                other.type_str()
            ))
        }
    }))
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The line that sets `key` at the top level (or opens its table), else 1.
fn line_of_key(text: &str, key: &str) -> usize {
    text.lines()
        .position(|line| {
            let line = line.trim_start();
            let rest = line
                .strip_prefix(key)
                .or_else(|| line.strip_prefix(&format!("\"{key}\"")))
                .or_else(|| line.strip_prefix(&format!("[{key}]")).map(|_| "="));
            rest.is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map_or(1, |i| i + 1)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_file_carries_regions_endpoints_limits_and_credentials() {
        let s = parse(
            "# shared by every mount\n\
             regions = [\"us-east-1\", \"eu-west-2\"]\n\
             staging_size = \"2G\"\n\
             part_size = 16777216\n\
             connect_timeout = 1.5\n\
             read_only = true\n\
             ca_bundle = \"/etc/ca.pem\"\n\
             aws_profile = \"store\"\n\
             \n\
             [endpoints]\n\
             us-east-1 = \"https://a.example\"\n\
             eu-west-2 = \"http://127.0.0.1:9000\"\n",
        )
        .unwrap();
        assert_eq!(s.regions.as_deref(), Some("us-east-1,eu-west-2"));
        assert_eq!(
            (s.staging_size, s.part_size),
            (Some(2 << 30), Some(16 << 20))
        );
        assert_eq!(s.connect_timeout, Some(Duration::from_millis(1500)));
        assert_eq!(s.read_only, Some(true));
        assert_eq!(s.ca_bundle, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(s.aws_profile.as_deref(), Some("store"));
        let expected: BTreeMap<String, String> = [
            ("eu-west-2", "http://127.0.0.1:9000"),
            ("us-east-1", "https://a.example"),
        ]
        .into_iter()
        .map(|(r, u)| (r.to_string(), u.to_string()))
        .collect();
        assert_eq!(s.endpoints, Some(expected));
    }

    #[test]
    fn a_syntax_error_names_its_line() {
        let (line, message) = parse("regions = \"a\"\nstaging_size = \n").unwrap_err();
        assert_eq!(line, 2, "{message}");
    }

    #[test]
    fn an_unknown_key_or_a_bad_value_names_its_line() {
        let (line, message) = parse("parameter = \"/p\"\n\nregoins = \"a\"\n").unwrap_err();
        assert_eq!(line, 3);
        assert!(message.contains("regoins"), "{message}");
        let (line, message) = parse("regions = \"a\"\nstaging_size = \"lots\"\n").unwrap_err();
        assert_eq!(line, 2);
        assert!(message.contains("lots"), "{message}");
        let (line, _) = parse("a_b = 1\n[endpoints]\nr = 5\n").unwrap_err();
        assert_eq!(line, 1, "the first key is already unknown");
        let (line, message) = parse("[endpoints]\nr = 5\n").unwrap_err();
        assert_eq!(line, 1);
        assert!(message.contains("endpoints.r"), "{message}");
        let (line, _) = parse("nofail = true\n").unwrap_err();
        assert_eq!(line, 1, "options of mount(8) mean nothing in the file");
        let (_, message) = parse("config = \"/other.toml\"\n").unwrap_err();
        assert!(message.contains("unknown key"), "{message}");
    }

    #[test]
    fn the_declared_default_is_this_file() {
        let config = crate::mount::declaration::OPTIONS
            .iter()
            .find(|option| option.key == "config")
            .unwrap();
        assert!(!config.in_file);
        match config.default {
            crate::mount::option_spec::OptionDefault::Unset(text) => {
                assert!(text.starts_with(DEFAULT_CONFIG_FILE), "{text}")
            }
            crate::mount::option_spec::OptionDefault::Value(_) => panic!("a default file"),
        }
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let e = read(Path::new("/no/such/startifact-fs.toml")).unwrap_err();
        assert!(e.contains("/no/such/startifact-fs.toml"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "regions = [\"a\",\n").unwrap();
        let e = read(&path).unwrap_err();
        assert!(
            e.starts_with(&format!("bad configuration file {}, line ", path.display())),
            "{e}"
        );
    }
}
