//! A command line walked through the clap tree as clap parses it: which (sub)command the
//! words reach, which flags and positional values they give, whether help was asked for, and
//! whether the line ends on a flag that still wants its value. Help requests, usage errors
//! and completion all read a line this way, so they agree with the parser on where a word
//! belongs.

use clap::{Arg, ArgAction, Command};

/// A flag as given on the line.
#[derive(Debug)]
pub struct Given<'a> {
    /// How deep in `Walk::path` the command that took it is.
    pub depth: usize,
    pub arg: &'a Arg,
    pub value: Option<String>,
}

/// What a command line says, read up to its end.
#[derive(Debug)]
pub struct Walk<'a> {
    /// The commands reached, the root first.
    pub path: Vec<&'a Command>,
    pub flags: Vec<Given<'a>>,
    /// The positional values of the last command.
    pub positionals: Vec<String>,
    /// `--help`, `-h` or a `help` word where clap takes it as one.
    pub help: bool,
    /// The line ends right after a flag that wants a value.
    pub pending: Option<&'a Arg>,
    /// After `--`, or inside a trailing command (`run IMAGE CMD…`): no more flags.
    pub only_values: bool,
    /// The first flag no command on the path knows, and the depth where it was met.
    pub unknown_flag: Option<(usize, String)>,
    /// A word in a command's place that names no command.
    pub unknown_command: Option<String>,
}

impl<'a> Walk<'a> {
    /// The last command reached.
    pub fn command(&self) -> &'a Command {
        self.path[self.path.len() - 1]
    }

    /// The value of the flag `long` given to the command at `depth` (the last one given).
    pub fn value_of(&self, depth: usize, long: &str) -> Option<&str> {
        self.flags
            .iter()
            .rev()
            .find(|g| g.depth == depth && g.arg.get_long() == Some(long))
            .and_then(|g| g.value.as_deref())
    }

    /// Whether the flag `long` was given to the last command.
    pub fn has(&self, long: &str) -> bool {
        let depth = self.path.len() - 1;
        self.flags
            .iter()
            .any(|g| g.depth == depth && g.arg.get_long() == Some(long))
    }

    /// The words of the command names from the root, `["berth", "container", "ls"]`.
    pub fn names(&self) -> Vec<&'a str> {
        self.path.iter().map(|c| c.get_name()).collect()
    }
}

/// Reads `words` (the line after the program's name) through the tree under `root`.
pub fn walk<'a>(root: &'a Command, words: &[String]) -> Walk<'a> {
    let mut w = Walk {
        path: vec![root],
        flags: Vec::new(),
        positionals: Vec::new(),
        help: false,
        pending: None,
        only_values: false,
        unknown_flag: None,
        unknown_command: None,
    };
    let mut i = 0;
    while i < words.len() {
        let word = &words[i];
        i += 1;
        let cmd = w.command();
        let depth = w.path.len() - 1;
        if w.only_values {
            w.positionals.push(word.clone());
            continue;
        }
        if word == "--" {
            w.only_values = true;
            continue;
        }
        if let Some(long) = word.strip_prefix("--") {
            let (name, value) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (long, None),
            };
            match find_long(cmd, name) {
                Some(arg) => {
                    let value = if value.is_none() && wants_value(arg) {
                        take_next(words, &mut i, &mut w.pending, arg)
                    } else {
                        value
                    };
                    w.note(depth, arg, value);
                }
                None => {
                    w.unknown_flag.get_or_insert((depth, word.clone()));
                }
            }
            continue;
        }
        if word.len() > 1 && word.starts_with('-') && !takes_hyphen_value(cmd, &w.positionals) {
            let shorts: Vec<char> = word[1..].chars().collect();
            let mut k = 0;
            while k < shorts.len() {
                let c = shorts[k];
                k += 1;
                let Some(arg) = find_short(cmd, c) else {
                    w.unknown_flag.get_or_insert((depth, format!("-{c}")));
                    break;
                };
                if wants_value(arg) {
                    let rest: String = shorts[k..].iter().collect();
                    let rest = rest.strip_prefix('=').unwrap_or(&rest).to_owned();
                    let value = if rest.is_empty() {
                        take_next(words, &mut i, &mut w.pending, arg)
                    } else {
                        Some(rest)
                    };
                    w.note(depth, arg, value);
                    break;
                }
                w.note(depth, arg, None);
            }
            continue;
        }
        if w.positionals.is_empty() && has_commands(cmd) {
            if word == "help" {
                w.help = true;
                continue;
            }
            match cmd.find_subcommand(word) {
                Some(sub) => w.path.push(sub),
                None => {
                    w.unknown_command = Some(word.clone());
                    break;
                }
            }
            continue;
        }
        w.positionals.push(word.clone());
        if positional_at(cmd, w.positionals.len() - 1).is_some_and(Arg::is_trailing_var_arg_set) {
            w.only_values = true;
        }
    }
    w
}

impl<'a> Walk<'a> {
    fn note(&mut self, depth: usize, arg: &'a Arg, value: Option<String>) {
        if is_help(arg) {
            self.help = true;
        }
        self.flags.push(Given { depth, arg, value });
    }
}

/// The next word as `arg`'s value, or the line ends waiting for it.
fn take_next<'a>(
    words: &[String],
    i: &mut usize,
    pending: &mut Option<&'a Arg>,
    arg: &'a Arg,
) -> Option<String> {
    match words.get(*i) {
        Some(v) => {
            *i += 1;
            Some(v.clone())
        }
        None => {
            *pending = Some(arg);
            None
        }
    }
}

/// Whether a command has subcommands a user can name (clap's own `help` aside).
pub fn has_commands(cmd: &Command) -> bool {
    cmd.get_subcommands().any(|s| s.get_name() != "help")
}

/// The flag `--name` of `cmd` (its own, or a global one of an ancestor: the tree is built).
pub fn find_long<'a>(cmd: &'a Command, name: &str) -> Option<&'a Arg> {
    cmd.get_arguments().find(|a| {
        a.get_long() == Some(name)
            || a.get_all_aliases()
                .is_some_and(|aliases| aliases.contains(&name))
    })
}

/// The flag `-c` of `cmd`.
pub fn find_short(cmd: &Command, c: char) -> Option<&Arg> {
    cmd.get_arguments().find(|a| {
        a.get_short() == Some(c)
            || a.get_all_short_aliases()
                .is_some_and(|aliases| aliases.contains(&c))
    })
}

/// Whether a flag takes the next word as its value (not `--flag[=v]` with an optional value).
pub fn wants_value(arg: &Arg) -> bool {
    arg.get_action().takes_values() && arg.get_num_args().is_none_or(|r| r.min_values() > 0)
}

/// Whether `arg` asks for help.
pub fn is_help(arg: &Arg) -> bool {
    matches!(
        arg.get_action(),
        ArgAction::Help | ArgAction::HelpShort | ArgAction::HelpLong
    )
}

/// The positional argument that the `index`th positional value goes to.
pub fn positional_at(cmd: &Command, index: usize) -> Option<&Arg> {
    let mut start = 0usize;
    let mut positionals: Vec<&Arg> = cmd.get_positionals().collect();
    positionals.sort_by_key(|a| a.get_index().unwrap_or(usize::MAX));
    for arg in positionals {
        let count = arg.get_num_args().map_or(1, |r| r.max_values());
        if index < start.saturating_add(count) {
            return Some(arg);
        }
        start = start.saturating_add(count);
    }
    None
}

/// Whether the next positional of `cmd`, past its first, takes words that start with `-`
/// (`top CONTAINER -ef`).
fn takes_hyphen_value(cmd: &Command, given: &[String]) -> bool {
    !given.is_empty()
        && positional_at(cmd, given.len()).is_some_and(Arg::is_allow_hyphen_values_set)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(s: &str) -> Vec<String> {
        s.split(' ').map(String::from).collect()
    }

    #[test]
    fn help_is_seen_where_clap_sees_it() {
        let root = crate::tree::command();
        let w = walk(&root, &line("run --help"));
        assert!(w.help);
        assert_eq!(w.names(), ["berth", "run"]);
        // After the image, words are the container's command.
        let w = walk(&root, &line("run -d busybox ls --help"));
        assert!(!w.help);
        assert_eq!(w.positionals, ["busybox", "ls", "--help"]);
        let w = walk(&root, &line("help container ls"));
        assert!(w.help);
        assert_eq!(w.names(), ["berth", "container", "ls"]);
        let w = walk(&root, &line("runtime exec c sh --help"));
        assert!(!w.help);
    }

    #[test]
    fn flags_take_their_values() {
        let root = crate::tree::command();
        let w = walk(&root, &line("-H unix:///x logs -n 5 -ft web"));
        assert_eq!(w.value_of(0, "host"), Some("unix:///x"));
        assert_eq!(w.value_of(1, "tail"), Some("5"));
        assert!(w.has("follow") && w.has("timestamps"));
        assert_eq!(w.positionals, ["web"]);
        let w = walk(&root, &line("run --restart"));
        assert_eq!(w.pending.and_then(Arg::get_long), Some("restart"));
        let w = walk(&root, &line("ps --bogus"));
        assert_eq!(w.unknown_flag, Some((1, "--bogus".into())));
        let w = walk(&root, &line("container lss"));
        assert_eq!(w.unknown_command.as_deref(), Some("lss"));
    }
}
