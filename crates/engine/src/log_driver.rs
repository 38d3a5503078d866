//! The log drivers a container may ask for (`HostConfig.LogConfig`), checked at create as
//! dockerd checks them: the monitor writes json-file logs (`local` is kept in that format
//! too), `none` keeps no log; dockerd's other built-in drivers send logs to services berth
//! does not speak to and are refused by name, anything else as dockerd refuses an unknown
//! logging plugin.

use std::collections::HashMap;

use crate::error::{ApiError, Result};

/// What `GET /containers/{id}/logs` answers for a container that keeps no log.
pub const NO_READING: &str = "configured logging driver does not support reading";

/// dockerd's built-in drivers that ship logs elsewhere.
const ELSEWHERE: &[&str] = &[
    "syslog",
    "journald",
    "gelf",
    "fluentd",
    "awslogs",
    "splunk",
    "etwlogs",
    "gcplogs",
    "logentries",
];

/// Checks a driver and its options (`driver` already defaulted to json-file).
pub fn validate(driver: &str, opts: &HashMap<String, String>) -> Result<()> {
    let known: &[&str] = match driver {
        "json-file" => &[
            "max-file",
            "max-size",
            "compress",
            "labels",
            "labels-regex",
            "env",
            "env-regex",
            "tag",
        ],
        "local" => &["max-file", "max-size", "compress"],
        "none" if opts.is_empty() => return Ok(()),
        "none" => {
            return Err(ApiError::BadRequest(
                "invalid logging opts for driver none".into(),
            ))
        }
        d if ELSEWHERE.contains(&d) => {
            return Err(ApiError::BadRequest(format!(
            "the {d} log driver is not supported by berth: its logs are json-file, local or none"
        )))
        }
        d => {
            return Err(ApiError::BadRequest(format!(
                "error looking up logging plugin {d}: plugin \"{d}\" not found"
            )))
        }
    };
    let mut keys: Vec<&String> = opts.keys().collect();
    keys.sort();
    for key in keys {
        if !known.contains(&key.as_str()) {
            return Err(ApiError::BadRequest(if driver == "json-file" {
                format!("unknown log opt '{key}' for json-file log driver")
            } else {
                format!("unknown log opt '{key}' for log driver {driver}")
            }));
        }
    }
    if let Some(size) = opts.get("max-size") {
        if crate::lifecycle::parse_size(size).is_none_or(|s| s == 0) && size != "-1" {
            return Err(ApiError::BadRequest(format!(
                "failed to initialize logging driver: invalid size: '{size}'"
            )));
        }
    }
    if let Some(n) = opts.get("max-file") {
        if n.parse::<u32>().is_ok_and(|n| n < 1) || n.parse::<u32>().is_err() {
            return Err(ApiError::BadRequest(format!(
                "failed to initialize logging driver: max-file cannot be less than 1: '{n}'"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn opts(kv: &[(&str, &str)]) -> HashMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn drivers_and_options_as_dockerd_checks_them() {
        assert!(validate(
            "json-file",
            &opts(&[("max-size", "10m"), ("max-file", "3")])
        )
        .is_ok());
        assert!(validate("local", &opts(&[])).is_ok());
        assert!(validate("none", &opts(&[])).is_ok());
        let msg = |d: &str, o: &[(&str, &str)]| validate(d, &opts(o)).unwrap_err().to_string();
        assert_eq!(
            msg("nope", &[]),
            "error looking up logging plugin nope: plugin \"nope\" not found"
        );
        assert_eq!(
            msg("json-file", &[("bogus", "1")]),
            "unknown log opt 'bogus' for json-file log driver"
        );
        assert_eq!(
            msg("local", &[("tag", "x")]),
            "unknown log opt 'tag' for log driver local"
        );
        assert!(msg("syslog", &[]).contains("not supported by berth"));
        assert!(msg("json-file", &[("max-size", "abc")]).contains("invalid size: 'abc'"));
        assert!(msg("json-file", &[("max-file", "0")]).contains("max-file"));
    }
}
