//! The regions of a session: `STARTIFACT_REGIONS`, comma-separated, each trimmed;
//! shuffled once per session to spread the load.

use rand::seq::SliceRandom;

use super::error::Error;

/// Splits a comma-separated list of regions, trimming each and dropping empty ones.
pub fn parse_regions(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .collect()
}

/// The regions in `STARTIFACT_REGIONS`, in the order given.
pub fn regions_from_env() -> Result<Vec<String>, Error> {
    let regions = parse_regions(&std::env::var("STARTIFACT_REGIONS").unwrap_or_default());
    if regions.is_empty() {
        return Err(Error::NoRegionsConfigured);
    }
    Ok(regions)
}

/// Shuffles regions in place, once per session.
pub fn shuffle<T>(regions: &mut [T]) {
    regions.shuffle(&mut rand::rng());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_are_trimmed_and_empty_ones_dropped() {
        assert_eq!(
            parse_regions(" us-east-1 ,eu-west-2,, "),
            vec!["us-east-1".to_string(), "eu-west-2".to_string()]
        );
        assert!(parse_regions("").is_empty());
    }
}
