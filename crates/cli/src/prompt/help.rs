//! Help in docker's layout, read from the clap tree: `Usage:` with docker's argument words,
//! the description, `Aliases:` (every way to reach the same command), `Options:` as docker's
//! flag library prints them (a type word after each flag, defaults, wrapped to the
//! terminal), and for the root and the management commands their commands, in docker's
//! groups. The man pages (`man.rs`) are made of the same pieces.

use std::any::TypeId;
use std::collections::BTreeSet;
use std::fmt::Write;

use clap::{Arg, ArgAction, Command};

use super::walk::{has_commands, is_help, wants_value};

/// The commands docker lists first, in its order (those berth has).
const COMMON: [&str; 12] = [
    "run", "exec", "ps", "build", "pull", "push", "images", "login", "logout", "search", "version",
    "info",
];

/// A command's place in the tree: the commands from the root to it.
pub type Path<'a> = [&'a Command];

/// The help of the last command of `path`, for a terminal `width` columns wide.
pub fn render(path: &Path<'_>, width: usize) -> String {
    let cmd = path[path.len() - 1];
    let mut out = format!("Usage:  {}\n\n{}\n", usage(path), description(cmd));
    if path.len() == 1 {
        for (title, cmds) in groups(cmd) {
            if !cmds.is_empty() {
                let _ = write!(out, "\n{title}:\n{}", command_list(&cmds, cmd));
            }
        }
        let flags = options(path);
        if !flags.is_empty() {
            let _ = write!(out, "\nGlobal Options:\n{}", flag_table(&flags, width));
        }
        let _ = write!(
            out,
            "\nRun '{} COMMAND --help' for more information on a command.\n",
            cmd.get_name()
        );
        return out;
    }
    let aliases = aliases(path);
    if aliases.len() > 1 {
        let _ = write!(out, "\nAliases:\n  {}\n", aliases.join(", "));
    }
    let flags = options(path);
    if !flags.is_empty() {
        let _ = write!(out, "\nOptions:\n{}", flag_table(&flags, width));
    }
    if has_commands(cmd) {
        let _ = write!(
            out,
            "\nCommands:\n{}\nRun '{} COMMAND --help' for more information on a command.\n",
            command_list(&subcommands(cmd), cmd),
            full_name(path)
        );
    }
    out
}

/// The command's words from the root: `berth container ls`.
pub fn full_name(path: &Path<'_>) -> String {
    path.iter()
        .map(|c| c.get_name())
        .collect::<Vec<_>>()
        .join(" ")
}

/// docker's usage line: `berth stop [OPTIONS] CONTAINER [CONTAINER...]`.
pub fn usage(path: &Path<'_>) -> String {
    let cmd = path[path.len() - 1];
    if let Some(u) = cmd.get_overridden_usage() {
        return u.to_string();
    }
    let mut words = vec![full_name(path)];
    if !options(path).is_empty() {
        words.push("[OPTIONS]".into());
    }
    if has_commands(cmd) {
        words.push("COMMAND".into());
    }
    let mut positionals: Vec<&Arg> = cmd.get_positionals().filter(|a| !a.is_hide_set()).collect();
    positionals.sort_by_key(|a| a.get_index().unwrap_or(usize::MAX));
    words.extend(positionals.into_iter().map(positional_words));
    words.join(" ")
}

/// A positional argument in docker's words: `NAME`, `[NAME]`, `NAME [NAME...]`, or its value
/// name as written when that is already a phrase (`IMAGE [COMMAND] [ARG...]`).
fn positional_words(arg: &Arg) -> String {
    let name = arg.get_value_names().map_or_else(
        || arg.get_id().as_str().to_uppercase(),
        |names| {
            names
                .iter()
                .map(|n| n.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        },
    );
    if name.contains(' ') {
        return name;
    }
    let many = arg.get_num_args().is_some_and(|r| r.max_values() > 1);
    match (arg.is_required_set(), many) {
        (true, false) => name,
        (true, true) => format!("{name} [{name}...]"),
        (false, false) => format!("[{name}]"),
        (false, true) => format!("[{name}...]"),
    }
}

/// What the command does: its long description if it has one.
pub fn description(cmd: &Command) -> String {
    cmd.get_long_about()
        .or(cmd.get_about())
        .map(|s| s.to_string().trim_end().to_owned())
        .unwrap_or_default()
}

/// The one-line summary of a command.
pub fn summary(cmd: &Command) -> String {
    cmd.get_about()
        .map(|s| s.to_string().trim_end().to_owned())
        .unwrap_or_default()
}

/// The groups of the root's help, as docker's: the common commands, the management
/// commands (those with commands of their own), and the rest.
pub fn groups(root: &Command) -> Vec<(&'static str, Vec<&Command>)> {
    let all = subcommands(root);
    let common = COMMON
        .iter()
        .filter_map(|n| all.iter().find(|c| c.get_name() == *n).copied())
        .collect();
    let management = all.iter().filter(|c| has_commands(c)).copied().collect();
    let other = all
        .iter()
        .filter(|c| !has_commands(c) && !COMMON.contains(&c.get_name()))
        .copied()
        .collect();
    vec![
        ("Common Commands", common),
        ("Management Commands", management),
        ("Commands", other),
    ]
}

/// The commands a user can name under `cmd`, sorted by name.
pub fn subcommands(cmd: &Command) -> Vec<&Command> {
    let mut v: Vec<&Command> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        .collect();
    v.sort_by_key(|s| s.get_name());
    v
}

/// `  name        summary` lines, padded as docker pads them (to the longest name of the
/// parent's commands, at least 11).
fn command_list(cmds: &[&Command], parent: &Command) -> String {
    let pad = subcommands(parent)
        .iter()
        .map(|c| c.get_name().len())
        .max()
        .unwrap_or(0)
        .max(11);
    cmds.iter()
        .map(|c| format!("  {:<pad$} {}\n", c.get_name(), summary(c)))
        .collect()
}

/// Every way to reach the same command, docker's `Aliases:`: `berth container ls, berth
/// container list, berth container ps, berth ps`. The same command is the one with the same
/// summary and flags under a management command and at the top (`ps` and `container ls`,
/// `images` and `image ls`).
pub fn aliases(path: &Path<'_>) -> Vec<String> {
    let cmd = path[path.len() - 1];
    let root = path[0];
    let own = |prefix: &str, c: &Command| -> Vec<String> {
        std::iter::once(c.get_name())
            .chain(c.get_visible_aliases())
            .map(|n| format!("{prefix} {n}"))
            .collect()
    };
    if path.len() > 3 || path.len() < 2 {
        return own(&full_name(&path[..path.len() - 1]), cmd);
    }
    let mut out = Vec::new();
    for m in subcommands(root).into_iter().filter(|m| has_commands(m)) {
        for s in subcommands(m) {
            if same_command(s, cmd) {
                out.extend(own(&format!("{} {}", root.get_name(), m.get_name()), s));
            }
        }
    }
    for t in subcommands(root).into_iter().filter(|t| !has_commands(t)) {
        if same_command(t, cmd) {
            out.extend(own(root.get_name(), t));
        }
    }
    if out.is_empty() {
        out = own(&full_name(&path[..path.len() - 1]), cmd);
    }
    out
}

fn same_command(a: &Command, b: &Command) -> bool {
    let ids = |c: &Command| -> BTreeSet<String> {
        c.get_arguments()
            .map(|a| a.get_id().as_str().to_owned())
            .collect()
    };
    a.get_about().map(ToString::to_string) == b.get_about().map(ToString::to_string)
        && ids(a) == ids(b)
}

/// One flag of a command, in docker's words.
#[derive(Debug)]
pub struct Flag {
    /// `-d, --detach` or `    --rm`, as docker aligns them.
    pub names: String,
    /// docker's word for the value (`string`, `int`, `list`, …); none for a switch.
    pub type_word: Option<String>,
    /// The help line and its default, `(default "all")`.
    pub usage: String,
}

/// The flags of the last command of `path` that a user sees, sorted by name as docker
/// sorts them: hidden ones, the help flag and global flags of an ancestor left out.
pub fn options(path: &Path<'_>) -> Vec<Flag> {
    let cmd = path[path.len() - 1];
    let parent = path.len().checked_sub(2).map(|i| path[i]);
    let mut args: Vec<&Arg> = cmd
        .get_arguments()
        .filter(|a| !a.is_positional() && !a.is_hide_set() && !is_help(a))
        .filter(|a| !matches!(a.get_action(), ArgAction::Version))
        .filter(|a| {
            !(a.is_global_set()
                && parent.is_some_and(|p| p.get_arguments().any(|b| b.get_id() == a.get_id())))
        })
        .collect();
    args.sort_by_key(|a| {
        a.get_long()
            .map(String::from)
            .or(a.get_short().map(String::from))
    });
    args.into_iter().map(flag).collect()
}

fn flag(arg: &Arg) -> Flag {
    let names = match (arg.get_short(), arg.get_long()) {
        (Some(s), Some(l)) => format!("-{s}, --{l}"),
        (None, Some(l)) => format!("    --{l}"),
        (Some(s), None) => format!("-{s}"),
        (None, None) => arg.get_id().as_str().to_owned(),
    };
    let type_word = type_word(arg);
    let mut usage = arg
        .get_help()
        .map(|h| h.to_string().trim_end().to_owned())
        .unwrap_or_default();
    if let Some(d) = default_text(arg, type_word.as_deref()) {
        if !usage.is_empty() {
            usage.push(' ');
        }
        usage.push_str(&format!("(default {d})"));
    }
    Flag {
        names,
        type_word,
        usage,
    }
}

/// docker's word for a flag's value: a lower-case value name says it (`bytes`,
/// `duration`), else it follows from the parser and the action.
pub fn type_word(arg: &Arg) -> Option<String> {
    if !wants_value(arg) {
        return None;
    }
    let id = arg.get_value_parser().type_id();
    if id == TypeId::of::<bool>() {
        return None;
    }
    if let Some([name]) = arg.get_value_names() {
        if name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Some(name.to_string());
        }
    }
    // docker's filter flags have a type of their own.
    if arg.get_long() == Some("filter") {
        return Some("filter".into());
    }
    if matches!(arg.get_action(), ArgAction::Append) {
        return Some("list".into());
    }
    let word = if [
        TypeId::of::<i64>(),
        TypeId::of::<i32>(),
        TypeId::of::<isize>(),
    ]
    .iter()
    .any(|t| id == *t)
    {
        "int"
    } else if id == TypeId::of::<u16>() {
        "uint16"
    } else if id == TypeId::of::<u32>() {
        "uint32"
    } else if id == TypeId::of::<u64>() || id == TypeId::of::<usize>() {
        "uint"
    } else if id == TypeId::of::<f64>() {
        "float"
    } else {
        "string"
    };
    Some(word.into())
}

/// The default docker would show: none when it is the type's zero value.
fn default_text(arg: &Arg, type_word: Option<&str>) -> Option<String> {
    if arg.is_hide_default_value_set() {
        return None;
    }
    let values: Vec<String> = arg
        .get_default_values()
        .iter()
        .map(|v| v.to_string_lossy().into_owned())
        .collect();
    let d = values.join(",");
    match type_word {
        None => (d == "true").then_some(d),
        Some("list" | "filter") => None,
        Some("string") => (!d.is_empty()).then(|| format!("{d:?}")),
        Some(_) => (!d.is_empty() && d != "0").then_some(d),
    }
}

/// The flags as docker's flag library prints them: names and type, then the help from a
/// common column, wrapped to `width` (the terminal's, else 80).
pub fn flag_table(flags: &[Flag], width: usize) -> String {
    let lefts: Vec<String> = flags
        .iter()
        .map(|f| {
            let mut l = format!("  {}", f.names);
            if let Some(t) = &f.type_word {
                l.push(' ');
                l.push_str(t);
            }
            l
        })
        .collect();
    let column = lefts.iter().map(String::len).max().unwrap_or(0) + 3;
    let mut out = String::new();
    for (left, f) in lefts.iter().zip(flags) {
        if f.usage.is_empty() {
            let _ = writeln!(out, "{left}");
            continue;
        }
        let _ = writeln!(
            out,
            "{left:<w$}{}",
            wrap(column, width.saturating_sub(1), &f.usage),
            w = column
        );
    }
    out
}

/// Wraps `text` to end at column `width`, its later lines indented to `indent`; a text
/// with too little room starts on a line of its own at column 16, docker's way.
fn wrap(indent: usize, width: usize, text: &str) -> String {
    let mut indent = indent;
    let mut room = width.saturating_sub(indent);
    let mut out = String::new();
    if room < 24 {
        indent = 16;
        room = width.saturating_sub(indent);
        out.push('\n');
        out.push_str(&" ".repeat(indent));
    }
    let newline = format!("\n{}", " ".repeat(indent));
    if room < 24 {
        out.push_str(&text.replace('\n', &newline));
        return out;
    }
    // A little slop keeps a short last word from sitting alone on a line.
    let slop = 5;
    let room = room - slop;
    let mut rest = text;
    let mut first = true;
    while first || !rest.is_empty() {
        let (line, more) = wrap_once(room, slop, rest);
        if !first {
            out.push_str(&newline);
        }
        out.push_str(&line.replace('\n', &newline));
        rest = more;
        first = false;
    }
    out
}

/// The first line of `s` at most `room` bytes long (or `room + slop` if that ends it), and
/// the rest.
fn wrap_once(room: usize, slop: usize, s: &str) -> (&str, &str) {
    if room + slop > s.len() {
        return (s, "");
    }
    let mut end = room;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let head = &s[..end];
    let Some(space) = head.rfind([' ', '\t', '\n']).filter(|&w| w > 0) else {
        return (s, "");
    };
    match head.rfind('\n') {
        Some(nl) if nl > 0 && nl < space => (&s[..nl], &s[nl + 1..]),
        _ => (&s[..space], &s[space + 1..]),
    }
}

/// The terminal's width, as docker reads it, or 80.
pub fn terminal_width() -> usize {
    crate::client::stream::terminal_size()
        .map(|(_, cols)| usize::from(cols))
        .filter(|&c| c > 0)
        .unwrap_or(80)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The root's help is made from the tree, so a command added to the definitions is
    /// listed without anyone remembering to: every visible command, once, in one group.
    #[test]
    fn root_help_lists_every_command_of_the_tree() {
        let root = crate::tree::command();
        let text = render(&[&root], 80);
        let listed: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("  ") && !l.trim_start().starts_with('-'))
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        for cmd in root.get_subcommands() {
            let name = cmd.get_name();
            let times = listed.iter().filter(|n| **n == name).count();
            if cmd.is_hide_set() || name == "help" {
                assert_eq!(times, 0, "{name} is hidden but listed:\n{text}");
            } else {
                assert_eq!(times, 1, "{name} listed {times} times:\n{text}");
            }
        }
        assert!(text.contains("\nManagement Commands:\n  builder     Manage builds\n"));
        assert!(!text.contains("Swarm"));
    }

    /// Each management command lists its commands, and each command's help starts with
    /// the usage line and its description.
    #[test]
    fn every_command_has_a_help_in_docker_layout() {
        let root = crate::tree::command();
        let mut stack: Vec<Vec<&Command>> = vec![vec![&root]];
        let mut seen = 0;
        while let Some(path) = stack.pop() {
            let cmd = path[path.len() - 1];
            let text = render(&path, 80);
            assert!(
                text.starts_with(&format!("Usage:  {}", full_name(&path))),
                "{text}"
            );
            assert!(
                !description(cmd).is_empty(),
                "{} has no description",
                full_name(&path)
            );
            for sub in subcommands(cmd) {
                assert!(
                    text.contains(&format!("  {:<11} {}", sub.get_name(), summary(sub)))
                        || text.contains(&format!("  {} ", sub.get_name())),
                    "{} not listed in:\n{text}",
                    sub.get_name()
                );
                let mut p = path.clone();
                p.push(sub);
                stack.push(p);
            }
            seen += 1;
        }
        assert!(seen > 100, "{seen}");
    }

    #[test]
    fn wraps_as_docker() {
        let f = Flag {
            names: "-n, --last".into(),
            type_word: Some("int".into()),
            usage: "Show n last created containers (includes all states) (default -1)".into(),
        };
        let g = Flag {
            names: "    --format".into(),
            type_word: Some("string".into()),
            usage: "Format output".into(),
        };
        assert_eq!(
            flag_table(&[f, g], 80),
            "  -n, --last int        Show n last created containers (includes all\n                        states) (default -1)\n      --format string   Format output\n"
        );
    }
}
