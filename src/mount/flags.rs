//! The options' flags: clap is given one argument for each option of
//! `super::declaration` that has a flag (under its heading, with its help), and what
//! the command line gave is kept as clap parsed it, to be read into the flags' layer of
//! `Settings` when the layers are laid over each other (so that a bad value is told as
//! the other layers' are).

use clap::error::ErrorKind;
use clap::{Arg, ArgMatches, Command, FromArgMatches};

use super::declaration::{Settings, OPTIONS};
use super::help::flag_help;
use super::option_spec::OptionSpec;
use super::option_values::FlagValue;

/// The flags given, with their values.
#[derive(Clone, Default)]
pub struct Flags {
    given: Vec<(&'static OptionSpec<Settings>, FlagValue)>,
}

impl std::fmt::Debug for Flags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.given.iter().map(|(option, value)| (option.key, value)))
            .finish()
    }
}

impl Flags {
    /// What the flags say.
    pub fn settings(&self) -> Result<Settings, String> {
        let mut settings = Settings::default();
        for (option, value) in &self.given {
            let flag = option.flag.unwrap_or(option.key);
            (option.set_from_flag)(&mut settings, flag, value.clone())?;
        }
        Ok(settings)
    }
}

/// The argument of `option`, if it has a flag.
fn argument(option: &'static OptionSpec<Settings>) -> Option<Arg> {
    let mut arg = Arg::new(option.key)
        .long(option.long()?)
        .required(false)
        .help(flag_help(option));
    if let Some(short) = option.short {
        arg = arg.short(short);
    }
    if let Some(value) = option.value {
        arg = arg.value_name(value);
    }
    if let Some(heading) = option.heading.help_heading() {
        arg = arg.help_heading(heading);
    }
    Some((option.flag_arg)(arg))
}

impl clap::Args for Flags {
    fn augment_args(command: Command) -> Command {
        OPTIONS
            .iter()
            .filter_map(argument)
            .fold(command, Command::arg)
    }

    fn augment_args_for_update(command: Command) -> Command {
        Self::augment_args(command)
    }
}

impl FromArgMatches for Flags {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut given = Vec::new();
        for option in OPTIONS.iter().filter(|option| option.flag.is_some()) {
            let value = (option.read_flag)(matches, option.key)
                .map_err(|e| clap::Error::raw(ErrorKind::InvalidValue, e))?;
            if let Some(value) = value {
                given.push((option, value));
            }
        }
        Ok(Flags { given })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        let update = Self::from_arg_matches(matches)?;
        for (option, value) in update.given {
            self.given.retain(|(kept, _)| kept.key != option.key);
            self.given.push((option, value));
        }
        Ok(())
    }
}
