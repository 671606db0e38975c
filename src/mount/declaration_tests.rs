//! The declaration holds together: every default reads back as itself, keys, flags and
//! variables are unique and spelled alike, and clap takes every flag.

use std::collections::BTreeSet;

use clap::{CommandFactory, Parser};

use super::*;
use crate::mount::option_spec::{Heading, OptionDefault};
use crate::mount::options::MountArgs;

#[test]
fn every_default_reads_back_as_itself() {
    for option in OPTIONS {
        if let OptionDefault::Value(shown) = option.default {
            let shown = shown();
            assert!(shown.reads_back, "{}: {shown:?}", option.key);
        }
    }
}

#[test]
fn keys_spellings_flags_and_variables_are_unique() {
    let mut spellings = BTreeSet::new();
    let mut flags = BTreeSet::new();
    let mut variables = BTreeSet::new();
    for option in OPTIONS {
        for spelling in [Some(option.key), option.dash_o, option.also]
            .into_iter()
            .flatten()
        {
            assert!(spellings.insert(spelling), "{spelling} twice");
            assert!(!spelling.contains('-'), "{spelling}: keys use _");
        }
        if let Some(flag) = option.flag {
            assert!(flags.insert(flag), "{flag} twice");
        }
        if let Some(variable) = option.env {
            assert!(variables.insert(variable), "{variable} twice");
        }
    }
}

#[test]
fn a_flag_is_its_key_with_dashes() {
    for option in OPTIONS {
        if let Some(flag) = option.flag {
            assert_eq!(flag, format!("--{}", option.key.replace('_', "-")));
        }
    }
}

#[test]
fn a_switch_has_no_value_name_and_every_other_option_has_one() {
    for option in OPTIONS {
        let switch = (option.set)(&mut Settings::default(), option.key, None).is_ok();
        assert_eq!(switch, option.value.is_none(), "{}", option.key);
    }
}

#[test]
fn options_are_declared_heading_by_heading_in_the_helps_order() {
    let order = |heading: Heading| Heading::ALL.iter().position(|h| *h == heading);
    let headings: Vec<_> = OPTIONS.iter().map(|option| order(option.heading)).collect();
    assert!(headings.is_sorted(), "{headings:?}");
}

#[test]
fn every_option_says_what_it_does_and_why_its_default() {
    for option in OPTIONS {
        assert!(option.help.trim().ends_with('.'), "{}", option.key);
        assert!(!option.why.is_empty(), "{}", option.key);
    }
}

#[test]
fn clap_takes_every_flag_under_its_heading() {
    let command = MountArgs::command();
    command.clone().debug_assert();
    for option in OPTIONS {
        let argument = command
            .get_arguments()
            .find(|argument| argument.get_id() == option.key);
        match (option.long(), argument) {
            (None, None) => {}
            (Some(long), Some(argument)) => {
                assert_eq!(argument.get_long(), Some(long));
                assert_eq!(argument.get_short(), option.short);
                assert_eq!(argument.get_help_heading(), option.heading.help_heading());
            }
            (long, _) => panic!("{}: flag {long:?} and clap disagree", option.key),
        }
    }
}

#[test]
fn a_flag_and_its_dash_o_form_say_the_same() {
    let parse = |args: &[&str]| {
        let mut all = vec!["startifact-fs"];
        all.extend_from_slice(args);
        all.push("/mnt");
        MountArgs::try_parse_from(all).unwrap()
    };
    for (flag, value, dash_o) in [
        ("--cache-size", "2G", "cache_size=2G"),
        ("--metadata-ttl", "2.5", "metadata_ttl=2.5"),
        ("--local-store", "/s", "local_store=/s"),
        (
            "--endpoints",
            "r=http://a,q=http://b",
            "endpoints=r=http://a;q=http://b",
        ),
        ("--uid", "7", "uid=7"),
        ("--no-passthrough", "", "no_passthrough"),
        ("--read-only", "", "ro"),
    ] {
        let args: Vec<&str> = [flag, value]
            .into_iter()
            .filter(|a| !a.is_empty())
            .collect();
        let flags = parse(&args).flags.settings().unwrap();
        let options = Settings::from_mount_options(&[dash_o.to_string()]).unwrap();
        assert_eq!(flags, options, "{flag} {value}");
    }
}
