//! `startifact --setup`: asks for what the options leave out (when there is a terminal
//! to ask), then writes the configuration to every region.

use std::io::{BufRead, Write};

use crate::protocol::configuration::configuration_parameter_from_env;
use crate::protocol::regions::parse_regions;
use crate::protocol::setup::save_configuration;
use crate::protocol::{Configuration, SessionBuilder};

use super::args::Args;
use super::console::{can_ask, Failure, FIRE, INFO};

fn ask(question: &str, current: &str) -> Result<String, Failure> {
    let mut stderr = std::io::stderr();
    let _ = write!(stderr, "{question} [{current}] ");
    let _ = stderr.flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Failure(format!("cannot read the answer: {e}")))?;
    let answer = line.trim_end_matches(['\n', '\r']).to_string();
    Ok(if answer.is_empty() {
        current.to_string()
    } else {
        answer
    })
}

pub(super) async fn run(args: &Args) -> Result<(), Failure> {
    let parameter = configuration_parameter_from_env();
    // What is there now, from the regions given (or STARTIFACT_REGIONS), if anything.
    let builder = SessionBuilder {
        regions: args.regions.as_deref().map(parse_regions),
        local_store: args.local_store.clone(),
        configuration_parameter: Some(parameter.clone()),
        ..Default::default()
    };
    let session = match builder.build().await {
        Ok(session) => Some(session),
        Err(crate::Error::NoRegionsConfigured) if args.regions.is_none() && can_ask() => None,
        Err(e) => return Err(e.into()),
    };
    let current = match &session {
        Some(session) => session
            .configuration()
            .await
            .map(|c| c.configuration.clone())
            .unwrap_or_default(),
        None => Configuration::default(),
    };
    let complete =
        args.bucket_name_param.is_some() && (args.regions.is_some() || !current.regions.is_empty());
    if !complete && !can_ask() {
        return Err(Failure(
            "--setup needs --regions and --bucket-name-param when there is no terminal to ask"
                .into(),
        ));
    }
    let pick = |given: &Option<String>, now: &str, question: &str| -> Result<String, Failure> {
        match given {
            Some(value) => Ok(value.clone()),
            None if complete => Ok(now.to_string()),
            None => ask(question, now),
        }
    };
    let session_regions = session
        .as_ref()
        .map(|s| s.regions().join(","))
        .unwrap_or_default();
    let regions_now = if current.regions.is_empty() {
        session_regions.as_str()
    } else {
        current.regions.as_str()
    };
    let configuration = Configuration {
        regions: parse_regions(&pick(&args.regions, regions_now, "Regions?")?).join(","),
        bucket_name_param: pick(
            &args.bucket_name_param,
            &current.bucket_name_param,
            "Bucket name parameter?",
        )?,
        bucket_key_prefix: pick(
            &args.bucket_key_prefix,
            &current.bucket_key_prefix,
            "Bucket key prefix?",
        )?,
        parameter_name_prefix: pick(
            &args.parameter_name_prefix,
            &current.parameter_name_prefix,
            "Project parameter name prefix?",
        )?,
        save_ok: "y".to_string(),
    };
    configuration.validate_for_setup()?;
    if !complete && ask("Okay to save? (y/n)", "n")?.trim() != "y" {
        return Err(Failure("setup cancelled; nothing was saved".into()));
    }
    let backend = match &session {
        Some(session) => session.backend().clone(),
        None => SessionBuilder {
            regions: Some(parse_regions(&configuration.regions)),
            local_store: args.local_store.clone(),
            ..Default::default()
        }
        .build()
        .await?
        .backend()
        .clone(),
    };
    let previous = parse_regions(&current.regions);
    let report = save_configuration(&backend, &parameter, &configuration, &previous).await?;
    for (region, result) in &report.deleted {
        match result {
            Ok(()) => println!("{INFO} Configuration deleted from {region} OK!"),
            Err(e) => eprintln!("{FIRE} Failed to delete the configuration from {region}: {e}"),
        }
    }
    for (region, result) in &report.saved {
        match result {
            Ok(()) => println!("{INFO} Configuration saved to {region} OK!"),
            Err(e) => eprintln!("{FIRE} Failed to save the configuration to {region}: {e}"),
        }
    }
    if !report.all_ok() {
        return Err(Failure(
            "Failed to save the configuration to every region: it may be inconsistent between regions.".into(),
        ));
    }
    println!("\nSuccessfully saved the configuration to every region.\n");
    println!(
        "You must set the following environment variable on every machine that uses Startifact:\n"
    );
    println!("    STARTIFACT_REGIONS=\"{}\"\n", configuration.regions);
    Ok(())
}
