//! Names in the Startifact format: project names, versions, S3 keys and the
//! per-project parameter name. Everything here is checked locally, before any request.

use semver::Version;

use super::error::Error;

/// The project-name rule of the format.
pub const PROJECT_NAME_PATTERN: &str = r"^[a-zA-Z0-9_\-\.]+$";

/// Checks a project name against the whole of `^[a-zA-Z0-9_\-\.]+$` (no trailing
/// newline slips through, unlike Python's `re.match`), and refuses `.` and `..`, which
/// cannot be folders of the mount.
pub fn validate_project_name(name: &str) -> Result<(), Error> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    if name.is_empty() || !name.chars().all(allowed) || name == "." || name == ".." {
        return Err(Error::ProjectName {
            name: name.to_string(),
        });
    }
    Ok(())
}

/// Parses a Semantic Versioning 2.0 version.
pub fn parse_version(text: &str) -> Result<Version, Error> {
    Version::parse(text).map_err(|e| Error::Version {
        text: text.to_string(),
        reason: e.to_string(),
    })
}

/// `{bucket_key_prefix}{project}@{version}`.
pub fn artifact_key(bucket_key_prefix: &str, project: &str, version: &Version) -> String {
    format!("{bucket_key_prefix}{project}@{version}")
}

/// `{artifact key}/metadata`.
pub fn metadata_key(artifact_key: &str) -> String {
    format!("{artifact_key}/metadata")
}

/// `{parameter_name_prefix}/{project}/latest`.
pub fn latest_parameter_name(parameter_name_prefix: &str, project: &str) -> String {
    format!("{parameter_name_prefix}/{project}/latest")
}

/// The prefix under which every version of a project is keyed: `{prefix}{project}@`.
pub fn versions_prefix(bucket_key_prefix: &str, project: &str) -> String {
    format!("{bucket_key_prefix}{project}@")
}

/// The version of an artifact key found under `versions_prefix`, or `None` for the
/// metadata objects and for anything that is not a version.
pub fn version_of_key(versions_prefix: &str, key: &str) -> Option<Version> {
    let rest = key.strip_prefix(versions_prefix)?;
    if rest.contains('/') {
        return None;
    }
    Version::parse(rest).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names_follow_the_whole_pattern() {
        for good in ["SugarWater", "a", "my-app_2.0", "..a", "a.."] {
            assert!(validate_project_name(good).is_ok(), "{good}");
        }
        for bad in ["", ".", "..", "a\n", "a b", "a/b", "café", "a@b"] {
            assert!(validate_project_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn keys_and_parameter_names_follow_the_format() {
        let v = parse_version("1.0.9000").unwrap();
        assert_eq!(artifact_key("", "SugarWater", &v), "SugarWater@1.0.9000");
        assert_eq!(
            artifact_key("my-platform/", "SugarWater", &v),
            "my-platform/SugarWater@1.0.9000"
        );
        assert_eq!(
            metadata_key("SugarWater@1.0.9000"),
            "SugarWater@1.0.9000/metadata"
        );
        assert_eq!(
            latest_parameter_name("", "SugarWater"),
            "/SugarWater/latest"
        );
        assert_eq!(
            latest_parameter_name("/artifacts", "SugarWater"),
            "/artifacts/SugarWater/latest"
        );
    }

    #[test]
    fn versions_are_read_back_from_keys() {
        let prefix = versions_prefix("p/", "App");
        assert_eq!(
            version_of_key(&prefix, "p/App@2.0.0-rc.1+b.5"),
            Some(parse_version("2.0.0-rc.1+b.5").unwrap())
        );
        assert_eq!(version_of_key(&prefix, "p/App@2.0.0/metadata"), None);
        assert_eq!(version_of_key(&prefix, "p/App@junk"), None);
        assert_eq!(version_of_key(&prefix, "p/Apple@1.0.0"), None);
    }

    #[test]
    fn bad_versions_are_refused() {
        for bad in ["", "1", "1.0", "v1.0.0", "1.0.0\n", "01.0.0"] {
            assert!(parse_version(bad).is_err(), "{bad:?}");
        }
    }
}
