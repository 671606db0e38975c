//! The kinds of value a mount option takes (a switch, seconds, a size, a path...): how
//! each is read from its flag (as clap parsed it), from `-o key=value` (the same text in
//! the configuration file and the environment) and how its default is shown. An option
//! names its kind in `super::declaration`; nothing here knows any one option.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Arg, ArgAction, ArgMatches};

use super::access::group_id;
use crate::arguments::parse_size;
use crate::protocol::stage::MIN_PART_SIZE;
use crate::storage::options::parse_region_endpoints;

/// Where the artifacts live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Aws,
    Local(PathBuf),
}

/// A flag's value as clap parsed it, kept until the layers are laid over each other
/// (so that a bad one is reported as the other layers' are).
#[derive(Debug, Clone, PartialEq)]
pub enum FlagValue {
    On,
    Number(u32),
    Seconds(f64),
    Text(String),
    Path(PathBuf),
}

/// A type clap parses a flag's value into.
pub trait FlagType: Sized {
    /// The flag's action and value parser.
    fn arg(arg: Arg) -> Arg;
    /// What the command line gave for the flag `id`, if anything.
    fn read(
        matches: &ArgMatches,
        id: &str,
    ) -> Result<Option<FlagValue>, clap::parser::MatchesError>;
    /// The value back from `FlagValue` (`None`: a value of another type).
    fn take(value: FlagValue) -> Option<Self>;
}

macro_rules! flag_type {
    ($type:ty, $variant:ident, $parser:expr) => {
        impl FlagType for $type {
            fn arg(arg: Arg) -> Arg {
                arg.action(ArgAction::Set).value_parser($parser)
            }

            fn read(
                matches: &ArgMatches,
                id: &str,
            ) -> Result<Option<FlagValue>, clap::parser::MatchesError> {
                Ok(matches
                    .try_get_one::<$type>(id)?
                    .map(|value| FlagValue::$variant(value.clone())))
            }

            fn take(value: FlagValue) -> Option<Self> {
                match value {
                    FlagValue::$variant(value) => Some(value),
                    _ => None,
                }
            }
        }
    };
}

flag_type!(u32, Number, clap::value_parser!(u32));
flag_type!(f64, Seconds, clap::value_parser!(f64));
flag_type!(String, Text, clap::value_parser!(String));
flag_type!(PathBuf, Path, clap::value_parser!(PathBuf));

/// A switch: given or not.
impl FlagType for bool {
    fn arg(arg: Arg) -> Arg {
        arg.action(ArgAction::SetTrue)
    }

    fn read(
        matches: &ArgMatches,
        id: &str,
    ) -> Result<Option<FlagValue>, clap::parser::MatchesError> {
        Ok((matches.try_get_one::<bool>(id)? == Some(&true)).then_some(FlagValue::On))
    }

    fn take(value: FlagValue) -> Option<Self> {
        (value == FlagValue::On).then_some(true)
    }
}

/// A kind of option value.
pub trait Kind {
    /// What the option holds once read.
    type Value: Clone + std::fmt::Debug + PartialEq;
    /// What clap parses its flag into.
    type Flag: FlagType;
    /// The value of `-o` (and of the file) in place of the flag's value name, when its
    /// separators differ (commas separate the options of `-o`).
    const DASH_O_VALUE: Option<&'static str> = None;

    /// `key` or `key=value` of `-o`, the file or the environment (`key` as written).
    fn parse(key: &str, value: Option<&str>) -> Result<Self::Value, String>;

    /// The flag's value, `flag` its name (`--metadata-ttl`).
    fn from_flag(flag: &str, value: Self::Flag) -> Result<Self::Value, String>;

    /// The value of the environment variable `variable`, which keeps its own separators.
    fn from_environment(variable: &str, key: &str, value: &str) -> Result<Self::Value, String> {
        Self::parse(key, Some(value)).map_err(|e| format!("{variable}: {e}"))
    }

    /// A value as `-o` would give it (a default, in the help and the README).
    fn show(value: &Self::Value) -> String;

    /// What `show` gave, read back (`parse` unless a kind shows more than it reads).
    fn parse_shown(text: &str) -> Result<Self::Value, String> {
        Self::parse("default", Some(text))
    }

    /// Whether the default is worth showing in the help (an off switch is not).
    fn shows_default(_value: &Self::Value) -> bool {
        true
    }
}

/// The value of `key=value`, which must not be empty.
pub fn text(key: &str, value: Option<&str>) -> Result<String, String> {
    match value {
        Some(v) if !v.is_empty() => Ok(v.to_string()),
        _ => Err(format!("{key} needs a value ({key}=...)")),
    }
}

/// A switch: given alone (`-o ro`), or `true`/`false` (the file).
pub fn parse_switch(key: &str, value: Option<&str>) -> Result<bool, String> {
    match value {
        None | Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(other) => Err(format!("{key}={other:?} is neither true nor false")),
    }
}

pub fn parse_seconds(key: &str, text: &str) -> Result<Duration, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("{key}={text:?} is not a number of seconds"))
}

fn parse_number(key: &str, text: &str) -> Result<u32, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("{key}={text:?} is not a number"))
}

/// A size as written: the largest suffix that divides it (`10G`, `8M`, `512`).
fn show_size(size: u64) -> String {
    for (shift, suffix) in [(40, 'T'), (30, 'G'), (20, 'M'), (10, 'K')] {
        if size != 0 && size % (1u64 << shift) == 0 {
            return format!("{}{suffix}", size >> shift);
        }
    }
    size.to_string()
}

/// On or off: `-o ro`, `--read-only`.
pub struct Switch;

impl Kind for Switch {
    type Value = bool;
    type Flag = bool;

    fn parse(key: &str, value: Option<&str>) -> Result<bool, String> {
        parse_switch(key, value)
    }

    fn from_flag(_flag: &str, on: bool) -> Result<bool, String> {
        Ok(on)
    }

    fn show(value: &bool) -> String {
        value.to_string()
    }

    fn shows_default(value: &bool) -> bool {
        *value
    }
}

/// A switch on by default, whose flag and key turn it off (`--no-passthrough`,
/// `-o no_passthrough`); its key without `no_` turns it on (`-o passthrough`).
pub struct OffSwitch;

impl Kind for OffSwitch {
    type Value = bool;
    type Flag = bool;

    fn parse(key: &str, value: Option<&str>) -> Result<bool, String> {
        let on = parse_switch(key, value)?;
        let negated = key.replace('-', "_").starts_with("no_");
        Ok(on != negated)
    }

    fn from_flag(_flag: &str, on: bool) -> Result<bool, String> {
        Ok(!on)
    }

    /// As its key (`no_...`) says it: `false` when on.
    fn show(value: &bool) -> String {
        (!value).to_string()
    }

    fn parse_shown(text: &str) -> Result<bool, String> {
        parse_switch("default", Some(text)).map(|off| !off)
    }

    fn shows_default(value: &bool) -> bool {
        !value
    }
}

/// Any text: a name, a log level.
pub struct Text;

impl Kind for Text {
    type Value = String;
    type Flag = String;

    fn parse(key: &str, value: Option<&str>) -> Result<String, String> {
        text(key, value)
    }

    fn from_flag(_flag: &str, value: String) -> Result<String, String> {
        Ok(value)
    }

    fn show(value: &String) -> String {
        value.clone()
    }
}

/// A path: a file or a folder.
pub struct Path;

impl Kind for Path {
    type Value = PathBuf;
    type Flag = PathBuf;

    fn parse(key: &str, value: Option<&str>) -> Result<PathBuf, String> {
        text(key, value).map(PathBuf::from)
    }

    fn from_flag(_flag: &str, value: PathBuf) -> Result<PathBuf, String> {
        Ok(value)
    }

    fn show(value: &PathBuf) -> String {
        value.display().to_string()
    }
}

/// The local store's folder, in place of SOURCE.
pub struct LocalStore;

impl Kind for LocalStore {
    type Value = Source;
    type Flag = PathBuf;

    fn parse(key: &str, value: Option<&str>) -> Result<Source, String> {
        Path::parse(key, value).map(Source::Local)
    }

    fn from_flag(_flag: &str, value: PathBuf) -> Result<Source, String> {
        Ok(Source::Local(value))
    }

    fn show(value: &Source) -> String {
        match value {
            Source::Aws => "aws".to_string(),
            Source::Local(dir) => format!("local:{}", dir.display()),
        }
    }

    /// SOURCE says it already.
    fn shows_default(_value: &Source) -> bool {
        false
    }

    fn parse_shown(text: &str) -> Result<Source, String> {
        match text.strip_prefix("local:") {
            Some(dir) => Ok(Source::Local(PathBuf::from(dir))),
            None if text == "aws" => Ok(Source::Aws),
            None => Err(format!("{text:?} is neither aws nor local:DIR")),
        }
    }
}

/// A whole number: ids, attempts.
pub struct Number;

impl Kind for Number {
    type Value = u32;
    type Flag = u32;

    fn parse(key: &str, value: Option<&str>) -> Result<u32, String> {
        parse_number(key, &text(key, value)?)
    }

    fn from_flag(_flag: &str, value: u32) -> Result<u32, String> {
        Ok(value)
    }

    fn show(value: &u32) -> String {
        value.to_string()
    }
}

/// A group, by name or number.
pub struct Group;

impl Kind for Group {
    type Value = u32;
    type Flag = String;

    fn parse(key: &str, value: Option<&str>) -> Result<u32, String> {
        group_id(&text(key, value)?)
    }

    fn from_flag(_flag: &str, value: String) -> Result<u32, String> {
        group_id(&value)
    }

    fn show(value: &u32) -> String {
        value.to_string()
    }
}

/// Seconds, fractions allowed (`2.5`).
pub struct Seconds;

impl Kind for Seconds {
    type Value = Duration;
    type Flag = f64;

    fn parse(key: &str, value: Option<&str>) -> Result<Duration, String> {
        parse_seconds(key, &text(key, value)?)
    }

    fn from_flag(flag: &str, value: f64) -> Result<Duration, String> {
        parse_seconds(flag, &value.to_string())
    }

    fn show(value: &Duration) -> String {
        value.as_secs_f64().to_string()
    }
}

/// A size in bytes, with K/M/G/T suffixes, of the sizes `B` allows.
pub struct Size<B = AnySize>(PhantomData<B>);

/// The part size of multipart uploads: a size of at least S3's smallest part.
pub type PartSize = Size<AtLeastOnePart>;

/// Which sizes a `Size` allows.
pub trait SizeBound {
    /// `size`, as `text` wrote it, or why it is not allowed.
    fn check(text: &str, size: u64) -> Result<u64, String>;
}

/// Every size.
pub struct AnySize;

impl SizeBound for AnySize {
    fn check(_text: &str, size: u64) -> Result<u64, String> {
        Ok(size)
    }
}

/// No size under S3's smallest part.
pub struct AtLeastOnePart;

impl SizeBound for AtLeastOnePart {
    fn check(text: &str, size: u64) -> Result<u64, String> {
        if size < MIN_PART_SIZE {
            return Err(format!(
                "part size {text:?} is under S3's smallest part, 5M"
            ));
        }
        Ok(size)
    }
}

impl<B: SizeBound> Size<B> {
    fn read(text: &str) -> Result<u64, String> {
        B::check(text, parse_size(text)?)
    }
}

impl<B: SizeBound> Kind for Size<B> {
    type Value = u64;
    type Flag = String;

    fn parse(key: &str, value: Option<&str>) -> Result<u64, String> {
        Self::read(&text(key, value)?)
    }

    fn from_flag(_flag: &str, value: String) -> Result<u64, String> {
        Self::read(&value)
    }

    fn show(value: &u64) -> String {
        show_size(*value)
    }
}

/// Regions: comma-separated on the command line and in the environment, `:` in `-o`
/// (where commas separate options); a list in the file.
pub struct Regions;

impl Kind for Regions {
    type Value = String;
    type Flag = String;
    const DASH_O_VALUE: Option<&'static str> = Some("R1:R2");

    fn parse(key: &str, value: Option<&str>) -> Result<String, String> {
        Ok(text(key, value)?.replace(':', ","))
    }

    fn from_flag(_flag: &str, value: String) -> Result<String, String> {
        Ok(value)
    }

    fn show(value: &String) -> String {
        value.replace(',', ":")
    }
}

/// One endpoint per region, `region=url,...`: `;` in `-o` (where commas separate
/// options); a table in the file.
pub struct Endpoints;

impl Kind for Endpoints {
    type Value = BTreeMap<String, String>;
    type Flag = String;
    const DASH_O_VALUE: Option<&'static str> = Some("REGION=URL;...");

    fn parse(key: &str, value: Option<&str>) -> Result<Self::Value, String> {
        let list = text(key, value)?.replace(';', ",");
        parse_region_endpoints(&list).map_err(|e| e.to_string())
    }

    fn from_flag(_flag: &str, value: String) -> Result<Self::Value, String> {
        parse_region_endpoints(&value).map_err(|e| e.to_string())
    }

    /// `STARTIFACT_ENDPOINTS`' own message names it.
    fn from_environment(_variable: &str, _key: &str, value: &str) -> Result<Self::Value, String> {
        parse_region_endpoints(value).map_err(|e| e.to_string())
    }

    fn show(value: &Self::Value) -> String {
        let pairs: Vec<String> = value.iter().map(|(r, url)| format!("{r}={url}")).collect();
        pairs.join(";")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_show_with_the_largest_suffix_that_divides_them() {
        assert_eq!(show_size(10 << 30), "10G");
        assert_eq!(show_size(8 << 20), "8M");
        assert_eq!(show_size(1536), "1536");
        assert_eq!(show_size(3 << 10), "3K");
        assert_eq!(show_size(0), "0");
        assert_eq!(show_size(5), "5");
    }

    #[test]
    fn a_part_size_is_a_size_of_at_least_one_part() {
        assert_eq!(
            Size::<AnySize>::parse("cache_size", Some("1M")),
            Ok(1 << 20)
        );
        assert_eq!(PartSize::parse("part_size", Some("8M")), Ok(8 << 20));
        assert_eq!(PartSize::from_flag("--part-size", "5M".into()), Ok(5 << 20));
        assert_eq!(
            PartSize::parse("part_size", Some("1M")),
            Err("part size \"1M\" is under S3's smallest part, 5M".to_string())
        );
        assert_eq!(PartSize::show(&(16 << 20)), "16M");
    }

    #[test]
    fn seconds_show_as_written() {
        assert_eq!(Seconds::show(&Duration::from_secs(10)), "10");
        assert_eq!(Seconds::show(&Duration::from_millis(2500)), "2.5");
    }

    #[test]
    fn the_off_switch_reads_its_key_with_and_without_no() {
        assert_eq!(OffSwitch::parse("no_passthrough", None), Ok(false));
        assert_eq!(OffSwitch::parse("no-passthrough", Some("false")), Ok(true));
        assert_eq!(OffSwitch::parse("passthrough", None), Ok(true));
        assert_eq!(OffSwitch::parse("passthrough", Some("false")), Ok(false));
        assert_eq!(OffSwitch::from_flag("--no-passthrough", true), Ok(false));
    }
}
