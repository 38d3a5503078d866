//! Usage errors in docker 28's words and with its exit statuses, plus the closest command or
//! flag: an unknown command (`berth: unknown command: berth foo`, status 1), a wrong number
//! of arguments (`berth: 'berth logs' requires 1 argument`, 1), and every flag error
//! (`unknown flag: --foo`, `flag needs an argument: --restart`, `invalid argument "x" for
//! "-n, --last" flag: …`, 125) — each followed by the command's usage line and where to read
//! more. Help asked for (`--help`, `help COMMAND`, a management command alone) is printed
//! here too, in docker's layout.

use std::error::Error as _;
use std::ffi::OsString;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Arg, Command};

use super::help::{self, full_name, usage};
use super::walk::{find_long, find_short, has_commands, walk, Walk};

/// docker's status for a flag error (`cli.StatusError{StatusCode: 125}`).
const FLAG_ERROR: i32 = 125;
/// docker's status for an unknown command or a wrong number of arguments.
const ARGS_ERROR: i32 = 1;

/// Reports `err`, clap's verdict on `args` (the whole line, the program's name first);
/// returns the exit status.
pub fn report(root: &Command, args: &[OsString], err: &clap::Error) -> i32 {
    let words: Vec<String> = args
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let w = walk(root, &words);
    match err.kind() {
        ErrorKind::DisplayHelp => {
            print!("{}", help::render(&w.path, help::terminal_width()));
            0
        }
        // docker prints a management command's help on stderr when it is given alone.
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand | ErrorKind::MissingSubcommand => {
            eprint!("{}", help::render(&w.path, help::terminal_width()));
            0
        }
        ErrorKind::DisplayVersion => {
            let _ = err.print();
            0
        }
        ErrorKind::InvalidSubcommand => {
            let name = w
                .unknown_command
                .clone()
                .or_else(|| context(err, ContextKind::InvalidSubcommand))
                .unwrap_or_default();
            unknown_command(&w, &name)
        }
        ErrorKind::UnknownArgument => match &w.unknown_flag {
            Some((depth, flag)) => unknown_flag(&w.path[..=*depth], flag),
            None => wrong_arguments(&w.path),
        },
        ErrorKind::MissingRequiredArgument
        | ErrorKind::TooFewValues
        | ErrorKind::TooManyValues
        | ErrorKind::WrongNumberOfValues
            if w.pending.is_none() =>
        {
            wrong_arguments(&w.path)
        }
        _ => flag_error(&w, args, err),
    }
}

/// `berth help TOPIC…`: the topic's help, or docker's "unknown help topic".
pub fn help_topic(root: &Command, topic: &[String]) -> i32 {
    let w = walk(root, topic);
    if let Some(name) = &w.unknown_command {
        let mut path = w.names()[1..].join(" ");
        if !path.is_empty() {
            path.push(' ');
        }
        eprintln!("unknown help topic: {path}{name}");
        return ARGS_ERROR;
    }
    print!("{}", help::render(&w.path, help::terminal_width()));
    0
}

fn unknown_command(w: &Walk<'_>, name: &str) -> i32 {
    let cmd = w.command();
    let names = help::subcommands(cmd)
        .into_iter()
        .flat_map(|c| std::iter::once(c.get_name()).chain(c.get_visible_aliases()))
        .map(String::from);
    let mut msg = format!(
        "{}: unknown command: {} {name}\n",
        w.path[0].get_name(),
        full_name(&w.path)
    );
    msg.push_str(&suggestion(name, names));
    if w.path.len() > 1 {
        msg.push_str(&format!("\nUsage:  {}\n", usage(&w.path)));
    }
    msg.push_str(&format!(
        "\nRun '{} --help' for more information",
        full_name(&w.path)
    ));
    eprintln!("{msg}");
    ARGS_ERROR
}

fn unknown_flag(path: &[&Command], flag: &str) -> i32 {
    let cmd = path[path.len() - 1];
    let first = match flag.strip_prefix("--") {
        Some(_) => format!("unknown flag: {flag}"),
        None => {
            let c = flag.trim_start_matches('-');
            format!("unknown shorthand flag: '{c}' in {flag}")
        }
    };
    let flags = cmd
        .get_arguments()
        .filter(|a| !a.is_hide_set())
        .filter_map(Arg::get_long)
        .map(|l| format!("--{l}"));
    let hint = if flag.starts_with("--") {
        suggestion(flag, flags)
    } else {
        String::new()
    };
    eprintln!("{first}\n{hint}{}", footer(path, "Run"));
    FLAG_ERROR
}

/// docker's words for a command given the wrong number of arguments.
fn wrong_arguments(path: &[&Command]) -> i32 {
    let cmd = path[path.len() - 1];
    let (min, max) = arity(cmd);
    let n = |k: usize| if k == 1 { "argument" } else { "arguments" };
    let what = match (min, max) {
        (_, Some(0)) => "accepts no arguments".to_owned(),
        (min, Some(max)) if min == max => format!("requires {min} {}", n(min)),
        (0, Some(max)) => format!("requires at most {max} {}", n(max)),
        (min, Some(max)) => format!("requires at least {min} and at most {max} {}", n(max)),
        (min, None) => format!("requires at least {min} {}", n(min)),
    };
    // docker's "at least" check says "See" where the others say "Run".
    let verb = if max.is_none() { "See" } else { "Run" };
    let name = full_name(path);
    eprintln!(
        "{}: '{name}' {what}\n{}",
        path[0].get_name(),
        footer(path, verb)
    );
    ARGS_ERROR
}

/// How many positional values a command takes: at least, and at most (none: no limit).
fn arity(cmd: &Command) -> (usize, Option<usize>) {
    if has_commands(cmd) {
        return (1, None);
    }
    let mut min = 0usize;
    let mut max = Some(0usize);
    for arg in cmd.get_positionals() {
        let range = arg.get_num_args();
        if arg.is_required_set() {
            min += range.map_or(1, |r| r.min_values().max(1));
        }
        let most = range.map_or(1, |r| r.max_values());
        max = max.and_then(|m| (most != usize::MAX).then(|| m + most));
    }
    (min, max)
}

/// A flag given a bad value, or none; or a positional value clap refused.
fn flag_error(w: &Walk<'_>, args: &[OsString], err: &clap::Error) -> i32 {
    let shown = context(err, ContextKind::InvalidArg).unwrap_or_default();
    if shown.starts_with('<') {
        return bad_argument(w, err);
    }
    let arg = flag_named(w, &shown).or(w.pending);
    let Some(arg) = arg else {
        let text = err.to_string();
        let first = text.lines().next().unwrap_or_default();
        eprintln!(
            "{}: {}\n{}",
            w.path[0].get_name(),
            first.trim_start_matches("error: "),
            footer(&w.path, "Run")
        );
        return FLAG_ERROR;
    };
    let depth = w
        .flags
        .iter()
        .rev()
        .find(|g| g.arg.get_id() == arg.get_id())
        .map_or(w.path.len() - 1, |g| g.depth);
    let path = &w.path[..=depth];
    let value = context(err, ContextKind::InvalidValue);
    let first = match value.as_deref() {
        None | Some("") => needs_value(arg, args),
        Some(v) => {
            let why = err
                .source()
                .map(|s| s.to_string())
                .or_else(|| {
                    context(err, ContextKind::ValidValue).map(|v| format!("valid values: {v}"))
                })
                .unwrap_or_else(|| "invalid value".to_owned());
            format!(
                "invalid argument {v:?} for {:?} flag: {why}",
                flag_names(arg)
            )
        }
    };
    eprintln!("{first}\n{}", footer(path, "Run"));
    FLAG_ERROR
}

/// docker's words for a positional value outside its choices (`completion foo`).
fn bad_argument(w: &Walk<'_>, err: &clap::Error) -> i32 {
    let value = context(err, ContextKind::InvalidValue).unwrap_or_default();
    let valid = context(err, ContextKind::ValidValue)
        .map(|v| format!(" (valid: {v})"))
        .unwrap_or_default();
    eprintln!(
        "{}: invalid argument {value:?} for {:?}{valid}\n{}",
        w.path[0].get_name(),
        full_name(&w.path),
        footer(&w.path, "Run")
    );
    ARGS_ERROR
}

/// `flag needs an argument: --restart`, or `… 'n' in -n` when the short form was used.
fn needs_value(arg: &Arg, args: &[OsString]) -> String {
    let long = arg.get_long().map(|l| format!("--{l}"));
    let used_long = long
        .as_deref()
        .is_some_and(|l| args.iter().any(|a| a.to_str() == Some(l)));
    match (arg.get_short(), long) {
        (Some(c), _) if !used_long => format!("flag needs an argument: '{c}' in -{c}"),
        (_, Some(l)) => format!("flag needs an argument: {l}"),
        _ => format!("flag needs an argument: {}", arg.get_id()),
    }
}

/// `-n, --last` or `--cpus`, as docker names a flag in its errors.
fn flag_names(arg: &Arg) -> String {
    match (arg.get_short(), arg.get_long()) {
        (Some(s), Some(l)) => format!("-{s}, --{l}"),
        (None, Some(l)) => format!("--{l}"),
        (Some(s), None) => format!("-{s}"),
        (None, None) => arg.get_id().to_string(),
    }
}

/// The flag clap shows as `--last <LAST>` (or `-n <N>`), looked up on the path.
fn flag_named<'a>(w: &Walk<'a>, shown: &str) -> Option<&'a Arg> {
    let word = shown.split([' ', '=', '<']).next().unwrap_or_default();
    let word = word.rsplit(", ").next().unwrap_or(word);
    w.path
        .iter()
        .rev()
        .find_map(|cmd| match word.strip_prefix("--") {
            Some(long) => find_long(cmd, long),
            None => word
                .strip_prefix('-')
                .and_then(|s| s.chars().next())
                .and_then(|c| find_short(cmd, c)),
        })
}

/// The usage line and docker's pointer to the help.
fn footer(path: &[&Command], verb: &str) -> String {
    format!(
        "\nUsage:  {}\n\n{verb} '{} --help' for more information",
        usage(path),
        full_name(path)
    )
}

/// `Did you mean this?` and the closest names (two edits at most, a swap of neighbours
/// counting one), or those that begin with what was typed; empty when none is close.
pub fn suggestion(typed: &str, names: impl Iterator<Item = String>) -> String {
    let typed = typed.to_lowercase();
    let bare = typed.trim_start_matches('-');
    let names: Vec<String> = names.collect();
    let distance =
        |n: &String| strsim::damerau_levenshtein(bare, n.to_lowercase().trim_start_matches('-'));
    // Two edits of a three-letter word can reach almost anything.
    let most = if bare.chars().count() <= 3 { 1 } else { 2 };
    let mut close: Vec<&String> = match names.iter().map(distance).filter(|&d| d <= most).min() {
        Some(best) => names.iter().filter(|n| distance(n) == best).collect(),
        None if bare.len() > 1 => names
            .iter()
            .filter(|n| n.to_lowercase().starts_with(&typed))
            .collect(),
        None => Vec::new(),
    };
    close.dedup();
    if close.is_empty() {
        return String::new();
    }
    let mut s = String::from("\nDid you mean this?\n");
    for n in close {
        s.push('\t');
        s.push_str(n);
        s.push('\n');
    }
    s
}

/// A context value of a clap error, as text.
fn context(err: &clap::Error, kind: ContextKind) -> Option<String> {
    match err.get(kind)? {
        ContextValue::String(s) => Some(s.clone()),
        ContextValue::Strings(v) => Some(v.join(", ")),
        ContextValue::StyledStr(s) => Some(s.to_string()),
        ContextValue::StyledStrs(v) => Some(
            v.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        ),
        ContextValue::Number(n) => Some(n.to_string()),
        ContextValue::Bool(b) => Some(b.to_string()),
        ContextValue::None => None,
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_are_close_names() {
        let names = || {
            ["run", "rm", "rmi", "ps", "pull"]
                .map(String::from)
                .into_iter()
        };
        assert_eq!(suggestion("rnu", names()), "\nDid you mean this?\n\trun\n");
        assert_eq!(suggestion("xyzzy", names()), "");
        assert_eq!(suggestion("foo", names()), "");
        assert_eq!(suggestion("pul", names()), "\nDid you mean this?\n\tpull\n");
    }
}
