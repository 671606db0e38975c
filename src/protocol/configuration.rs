//! The organisation configuration: one SSM parameter per region (`/startifact`, or the
//! name in `STARTIFACT_PARAMETER`) holding a JSON object of strings.

use std::collections::BTreeMap;

use super::error::Error;
use super::json::python_dumps;

/// Default name of the configuration parameter.
pub const DEFAULT_CONFIGURATION_PARAMETER: &str = "/startifact";

/// The configuration parameter's name: `STARTIFACT_PARAMETER`, else `/startifact`.
pub fn configuration_parameter_from_env() -> String {
    std::env::var("STARTIFACT_PARAMETER")
        .ok()
        .filter(|name| !name.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_CONFIGURATION_PARAMETER.to_string())
}

/// What the configuration parameter holds; absent keys read as empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Configuration {
    pub bucket_name_param: String,
    pub bucket_key_prefix: String,
    pub parameter_name_prefix: String,
    pub regions: String,
    pub save_ok: String,
}

/// Why the configuration parameter's value cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigurationError {
    #[error("{0}")]
    NotJson(#[from] serde_json::Error),
    #[error("{key} is {value}, not a string")]
    NotAString { key: String, value: String },
}

impl Configuration {
    /// Parses the parameter's value. Unknown keys are ignored; a value that is no JSON
    /// object of strings is an error.
    pub fn from_json(text: &str) -> Result<Self, ConfigurationError> {
        let map: BTreeMap<String, serde_json::Value> = serde_json::from_str(text)?;
        let get = |key: &str| -> Result<String, ConfigurationError> {
            match map.get(key) {
                None | Some(serde_json::Value::Null) => Ok(String::new()),
                Some(serde_json::Value::String(s)) => Ok(s.clone()),
                Some(other) => Err(ConfigurationError::NotAString {
                    key: key.to_string(),
                    value: other.to_string(),
                }),
            }
        };
        Ok(Configuration {
            bucket_name_param: get("bucket_name_param")?,
            bucket_key_prefix: get("bucket_key_prefix")?,
            parameter_name_prefix: get("parameter_name_prefix")?,
            regions: get("regions")?,
            save_ok: get("save_ok")?,
        })
    }

    /// The parameter's value as the Python tool's setup writes it.
    pub fn to_json(&self) -> String {
        let map: BTreeMap<String, String> = [
            ("bucket_key_prefix", &self.bucket_key_prefix),
            ("bucket_name_param", &self.bucket_name_param),
            ("parameter_name_prefix", &self.parameter_name_prefix),
            ("regions", &self.regions),
            ("save_ok", &self.save_ok),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
        python_dumps(&map)
    }

    /// Checks the values setup accepts (the Python tool's setup rules).
    pub fn validate_for_setup(&self) -> Result<(), Error> {
        if self.bucket_name_param.is_empty() {
            return Err(Error::Setup(
                "the bucket name parameter may not be empty".into(),
            ));
        }
        let prefix = &self.bucket_key_prefix;
        let prefix_ok = prefix.is_empty()
            || (prefix.ends_with('/')
                && prefix[..prefix.len() - 1]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')));
        if !prefix_ok {
            return Err(Error::Setup(format!(
                "bucket key prefix {prefix:?} must be empty or letters, digits, '-', '_', '.' ending with '/'"
            )));
        }
        let name_prefix = &self.parameter_name_prefix;
        if !(name_prefix.is_empty()
            || (name_prefix.starts_with('/')
                && !name_prefix.ends_with('/')
                && name_prefix.len() > 1))
        {
            return Err(Error::Setup(format!(
                "parameter name prefix {name_prefix:?} must be empty, or start with '/' and not end with '/'"
            )));
        }
        let regions_ok = !self.regions.trim().is_empty()
            && self.regions.chars().all(|c| {
                c.is_ascii_lowercase()
                    || c.is_ascii_digit()
                    || matches!(c, '-' | ',')
                    || c.is_whitespace()
            });
        if !regions_ok {
            return Err(Error::Setup(format!(
                "regions {:?} must be a comma-separated list of region names",
                self.regions
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_keys_read_as_empty() {
        let c = Configuration::from_json(r#"{"bucket_name_param": "/b"}"#).unwrap();
        assert_eq!(c.bucket_name_param, "/b");
        assert_eq!(c.bucket_key_prefix, "");
        assert!(Configuration::from_json("[]").is_err());
        assert!(Configuration::from_json(r#"{"bucket_name_param": 3}"#).is_err());
    }

    #[test]
    fn written_as_python_setup_writes_it() {
        let c = Configuration {
            bucket_name_param: "/bucket".into(),
            regions: "us-east-1".into(),
            save_ok: "y".into(),
            ..Default::default()
        };
        assert_eq!(
            c.to_json(),
            "{\n  \"bucket_key_prefix\": \"\",\n  \"bucket_name_param\": \"/bucket\",\n  \"parameter_name_prefix\": \"\",\n  \"regions\": \"us-east-1\",\n  \"save_ok\": \"y\"\n}"
        );
        assert_eq!(Configuration::from_json(&c.to_json()).unwrap(), c);
    }

    #[test]
    fn setup_rules_follow_the_python_tool() {
        let good = Configuration {
            bucket_name_param: "/b".into(),
            bucket_key_prefix: "a.b-c_d/".into(),
            parameter_name_prefix: "/p".into(),
            regions: "us-east-1, eu-west-2".into(),
            save_ok: "y".into(),
        };
        assert!(good.validate_for_setup().is_ok());
        let slash = Configuration {
            bucket_key_prefix: "/".into(),
            ..good.clone()
        };
        assert!(slash.validate_for_setup().is_ok());
        for bad in [
            Configuration {
                bucket_key_prefix: "a".into(),
                ..good.clone()
            },
            Configuration {
                bucket_key_prefix: "a b/".into(),
                ..good.clone()
            },
            Configuration {
                parameter_name_prefix: "p".into(),
                ..good.clone()
            },
            Configuration {
                parameter_name_prefix: "/p/".into(),
                ..good.clone()
            },
            Configuration {
                bucket_name_param: "".into(),
                ..good.clone()
            },
            Configuration {
                regions: "US_EAST".into(),
                ..good.clone()
            },
        ] {
            assert!(bad.validate_for_setup().is_err(), "{bad:?}");
        }
    }
}
