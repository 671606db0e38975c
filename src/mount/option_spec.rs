//! What is declared of one mount option (`OptionSpec`), and `declare_options!`, which
//! turns the declaration of every option (`super::declaration`) into three things: the
//! `Settings` one layer says (flags, `-o`, the environment, the file), the resolved
//! `MountConfig` with the defaults under them, and the `OPTIONS` table that the flags,
//! `-o`, the file, the environment, `--help` and the README's table are all read from.

use clap::parser::MatchesError;
use clap::{Arg, ArgMatches};

use super::option_values::{FlagValue, Kind};

/// The headings of `--help` (and of the README's table), in their order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heading {
    /// Clap's own "Options", with `-o`, `--help` and `--version`.
    Options,
    /// Where the artifacts are and how the regions are reached.
    Store,
    /// Who sees and may change what through the mount.
    Mount,
    Caching,
    Staging,
    Logging,
}

impl Heading {
    pub const ALL: [Heading; 6] = [
        Heading::Options,
        Heading::Store,
        Heading::Mount,
        Heading::Caching,
        Heading::Staging,
        Heading::Logging,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Heading::Options => "Options",
            Heading::Store => "Store",
            Heading::Mount => "Mount",
            Heading::Caching => "Caching",
            Heading::Staging => "Staging",
            Heading::Logging => "Logging",
        }
    }

    /// The heading clap is given (`None`: its own "Options").
    pub fn help_heading(self) -> Option<&'static str> {
        (self != Heading::Options).then(|| self.title())
    }
}

/// An option's default, as declared.
#[derive(Clone, Copy)]
pub enum OptionDefault {
    /// A value, shown when asked.
    Value(fn() -> ShownDefault),
    /// No value: what happens without the option.
    Unset(&'static str),
}

/// A default value, as `-o` would write it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShownDefault {
    pub text: String,
    /// Whether `--help` shows it (an off switch goes without saying).
    pub in_help: bool,
    /// Whether `text` reads back as the default itself (the tests hold every one to it).
    pub reads_back: bool,
}

impl ShownDefault {
    pub fn of<K: Kind>(value: &K::Value) -> ShownDefault {
        let text = K::show(value);
        ShownDefault {
            in_help: K::shows_default(value),
            reads_back: K::parse_shown(&text).as_ref() == Ok(value),
            text,
        }
    }
}

/// One mount option, as declared; `S` is the `Settings` it is read into.
pub struct OptionSpec<S: 'static> {
    /// Its field of `Settings` and `MountConfig`.
    pub field: &'static str,
    /// Its key in `-o` and the configuration file (with `_`; `-` is accepted too).
    pub key: &'static str,
    /// How `-o` is shown spelling it, when not as `key` (`ro`); accepted too.
    pub dash_o: Option<&'static str>,
    /// One more spelling accepted (`passthrough`, the opposite of `no_passthrough`).
    pub also: Option<&'static str>,
    pub heading: Heading,
    /// Its flag (`--metadata-ttl`); `None`: `-o` and the file only.
    pub flag: Option<&'static str>,
    pub short: Option<char>,
    /// The name of its value (`SECONDS`); `None` for a switch.
    pub value: Option<&'static str>,
    /// Its value in `-o` when that differs from `value` (other separators).
    pub dash_o_value: Option<&'static str>,
    /// The environment variable that sets it.
    pub env: Option<&'static str>,
    /// Whether the configuration file may set it.
    pub in_file: bool,
    /// What it does: its doc comment.
    pub help: &'static str,
    pub default: OptionDefault,
    /// Why the default is what it is.
    pub why: &'static str,
    /// Reads `key` or `key=value` of `-o`, the file or the environment into the settings.
    pub(super) set: fn(&mut S, &str, Option<&str>) -> Result<(), String>,
    /// Reads the flag's value (the flag's name first).
    pub(super) set_from_flag: fn(&mut S, &str, FlagValue) -> Result<(), String>,
    /// Reads the environment variable's value (the variable's name first).
    pub(super) set_from_environment: fn(&mut S, &str, &str) -> Result<(), String>,
    /// The flag's action and value parser.
    pub(super) flag_arg: fn(Arg) -> Arg,
    /// What the command line gave for the flag.
    pub(super) read_flag: fn(&ArgMatches, &str) -> Result<Option<FlagValue>, MatchesError>,
}

impl<S> std::fmt::Debug for OptionSpec<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OptionSpec")
            .field("key", &self.key)
            .field("flag", &self.flag)
            .finish_non_exhaustive()
    }
}

impl<S> OptionSpec<S> {
    /// Whether `key` (of `-o` or the file, `-` or `_`) names this option.
    pub fn accepts(&self, key: &str) -> bool {
        let key = key.replace('-', "_");
        key == self.key || Some(key.as_str()) == self.dash_o || Some(key.as_str()) == self.also
    }

    /// How `-o` gives it: `ro`, `regions=R1:R2`, `metadata_ttl=SECONDS`.
    pub fn dash_o_form(&self) -> String {
        let key = self.dash_o.unwrap_or(self.key);
        match self.dash_o_value.or(self.value) {
            Some(value) => format!("{key}={value}"),
            None => key.to_string(),
        }
    }

    /// The flag as the help writes it: `-f, --foreground`, `--metadata-ttl SECONDS`.
    pub fn flag_form(&self) -> Option<String> {
        let flag = self.flag?;
        let short = self.short.map(|c| format!("-{c}, ")).unwrap_or_default();
        let value = self.value.map(|v| format!(" {v}")).unwrap_or_default();
        Some(format!("{short}{flag}{value}"))
    }

    /// The flag without its dashes, as clap is given it.
    pub fn long(&self) -> Option<&'static str> {
        self.flag.map(|flag| flag.trim_start_matches('-'))
    }

    /// What it does, in one line without the closing period (as clap shows doc comments).
    pub fn summary(&self) -> &'static str {
        let text = self.help.trim();
        text.strip_suffix('.').unwrap_or(text)
    }
}

/// `Some` of the literal given, else `None`.
macro_rules! optional {
    () => {
        None
    };
    ($value:literal) => {
        Some($value)
    };
}

/// The literal given, else `true`.
macro_rules! or_true {
    () => {
        true
    };
    ($value:literal) => {
        $value
    };
}

/// The type of an option in `MountConfig`: its value when it has a default, else an
/// `Option` of it.
macro_rules! resolved_type {
    ($kind:ty, $unset:literal) => {
        Option<<$kind as $crate::mount::option_values::Kind>::Value>
    };
    ($kind:ty, ($default:expr)) => {
        <$kind as $crate::mount::option_values::Kind>::Value
    };
}

/// What a layer said, the default under it.
macro_rules! resolved_value {
    ($said:expr, $unset:literal) => {
        $said
    };
    ($said:expr, ($default:expr)) => {
        $said.unwrap_or_else(|| $default)
    };
}

macro_rules! option_default {
    ($kind:ty, $unset:literal) => {
        $crate::mount::option_spec::OptionDefault::Unset($unset)
    };
    ($kind:ty, ($default:expr)) => {
        $crate::mount::option_spec::OptionDefault::Value(|| {
            $crate::mount::option_spec::ShownDefault::of::<$kind>(&$default)
        })
    };
}

/// Declares every mount option once. Each is a doc comment (its help) and
///
/// ```text
/// field: Kind {
///     heading: Store,              // its heading in --help and the README
///     key: "read_only",            // -o and the configuration file
///     dash_o: "ro",                // optional: how -o is shown spelling it
///     also: "passthrough",         // optional: one more spelling accepted
///     flag: "--read-only",         // optional: its flag (else -o and the file only)
///     short: 'f',                  // optional
///     value: "SECONDS",            // its value's name (not for a switch)
///     env: "STARTIFACT_REGIONS",   // optional: the variable that sets it
///     in_file: false,              // optional: the file may not set it
///     default: (expression),       // or "what happens without it"
///     why: "why that default",
/// }
/// ```
///
/// after the resolved struct's own fields (`pub struct MountConfig { ... }`).
macro_rules! declare_options {
    (
        $(#[doc = $config_doc:literal])*
        pub struct $config:ident {
            $($(#[doc = $extra_doc:literal])* pub $extra:ident: $extra_type:ty,)*
        }
        $(
            $(#[doc = $doc:literal])*
            $field:ident: $kind:ty {
                heading: $heading:ident,
                key: $key:literal,
                $(dash_o: $dash_o:literal,)?
                $(also: $also:literal,)?
                $(flag: $flag:literal,)?
                $(short: $short:literal,)?
                $(value: $value:literal,)?
                $(env: $env:literal,)?
                $(in_file: $in_file:literal,)?
                default: $default:tt,
                why: $why:literal $(,)?
            }
        )*
    ) => {
        /// What one layer says (the flags, `-o`, the environment or the file); `None`
        /// where it says nothing.
        #[derive(Debug, Default, Clone, PartialEq)]
        pub struct Settings {
            $($(#[doc = $doc])* pub $field: Option<<$kind as $crate::mount::option_values::Kind>::Value>,)*
        }

        impl Settings {
            /// This layer over `lower`.
            pub fn or(self, lower: Settings) -> Settings {
                Settings { $($field: self.$field.or(lower.$field),)* }
            }
        }

        $(#[doc = $config_doc])*
        #[derive(Debug, Clone)]
        pub struct $config {
            $($(#[doc = $extra_doc])* pub $extra: $extra_type,)*
            $($(#[doc = $doc])* pub $field: $crate::mount::option_spec::resolved_type!($kind, $default),)*
        }

        impl $config {
            /// What `settings` say, with the defaults under them.
            pub fn with_defaults(settings: Settings, $($extra: $extra_type),*) -> $config {
                $config {
                    $($extra,)*
                    $($field: $crate::mount::option_spec::resolved_value!(settings.$field, $default),)*
                }
            }
        }

        /// Every option, in the order of `--help`.
        pub static OPTIONS: &[$crate::mount::option_spec::OptionSpec<Settings>] = &[$(
            $crate::mount::option_spec::OptionSpec {
                field: stringify!($field),
                key: $key,
                dash_o: $crate::mount::option_spec::optional!($($dash_o)?),
                also: $crate::mount::option_spec::optional!($($also)?),
                heading: $crate::mount::option_spec::Heading::$heading,
                flag: $crate::mount::option_spec::optional!($($flag)?),
                short: $crate::mount::option_spec::optional!($($short)?),
                value: $crate::mount::option_spec::optional!($($value)?),
                dash_o_value: <$kind as $crate::mount::option_values::Kind>::DASH_O_VALUE,
                env: $crate::mount::option_spec::optional!($($env)?),
                in_file: $crate::mount::option_spec::or_true!($($in_file)?),
                help: concat!($($doc),*),
                default: $crate::mount::option_spec::option_default!($kind, $default),
                why: $why,
                set: |settings, key, value| {
                    use $crate::mount::option_values::Kind;
                    settings.$field = Some(<$kind>::parse(key, value)?);
                    Ok(())
                },
                set_from_flag: |settings, flag, value| {
                    use $crate::mount::option_values::{FlagType, Kind};
                    let value = <<$kind as Kind>::Flag as FlagType>::take(value)
                        .ok_or_else(|| format!("{flag}: a value of another type"))?;
                    settings.$field = Some(<$kind>::from_flag(flag, value)?);
                    Ok(())
                },
                set_from_environment: |settings, variable, value| {
                    use $crate::mount::option_values::Kind;
                    settings.$field = Some(<$kind>::from_environment(variable, $key, value)?);
                    Ok(())
                },
                flag_arg: <<$kind as $crate::mount::option_values::Kind>::Flag as $crate::mount::option_values::FlagType>::arg,
                read_flag: <<$kind as $crate::mount::option_values::Kind>::Flag as $crate::mount::option_values::FlagType>::read,
            },
        )*];
    };
}

pub(crate) use {
    declare_options, option_default, optional, or_true, resolved_type, resolved_value,
};
