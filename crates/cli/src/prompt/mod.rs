//! The command line at the prompt, as a Docker user knows it: help in docker's layout,
//! usage errors in docker's words and exit statuses, shell completion and man pages — all
//! read from the one clap tree (`crate::tree`), so none can drift from what is parsed.

mod complete;
mod help;
mod man;
mod names;
mod scripts;
mod usage;
mod walk;

use std::ffi::OsString;
use std::path::PathBuf;

use crate::tree;

/// `berth`, `berth --help`: the root's help (on stderr when nothing was asked, as docker).
pub fn root_help(asked: bool) -> i32 {
    let root = tree::command();
    let text = help::render(&[&root], help::terminal_width());
    if asked {
        print!("{text}");
    } else {
        eprint!("{text}");
    }
    0
}

/// `berth help [COMMAND…]`: the same as `berth COMMAND --help`.
pub fn help_topic(topic: &[OsString]) -> i32 {
    let root = tree::command();
    usage::help_topic(&root, &lossy(topic))
}

/// Prints the help if `args` (the whole line) asks for it where clap would see the request;
/// for the commands whose own parser prints another layout (`runtime`, runc's).
pub fn help_request(args: &[OsString]) -> Option<i32> {
    // The runtime's hot path (`berth runtime create …`) builds no tree.
    if !args.iter().any(|a| a == "--help" || a == "-h") {
        return None;
    }
    let root = tree::command();
    let w = walk::walk(&root, &lossy(&args[1.min(args.len())..]));
    w.help.then(|| {
        print!("{}", help::render(&w.path, help::terminal_width()));
        0
    })
}

/// Reports a usage error of the line `args` (the program's name first) as docker does;
/// returns the exit status.
pub fn usage_error(args: &[OsString], err: &clap::Error) -> i32 {
    let root = tree::command();
    usage::report(&root, args, err)
}

/// `berth completion SHELL` and `berth man …`: the commands about the command line.
pub fn main(args: &[OsString]) -> i32 {
    let root = tree::command();
    let matches = match root.clone().try_get_matches_from(args) {
        Ok(m) => m,
        Err(e) => return usage::report(&root, args, &e),
    };
    match matches.subcommand() {
        Some(("completion", m)) => {
            let shell = m.get_one::<String>("shell").map_or("", String::as_str);
            match scripts::script(shell) {
                Some(s) => {
                    print!("{s}");
                    0
                }
                None => 1,
            }
        }
        Some(("man", m)) => {
            let command: Vec<String> = m
                .get_many::<String>("command")
                .map(|v| v.cloned().collect())
                .unwrap_or_default();
            match m.get_one::<String>("dir") {
                Some(dir) => write_pages(&root, &PathBuf::from(dir)),
                None => print_page(&root, &command),
            }
        }
        _ => 1,
    }
}

/// `berth __complete WORD…`: the candidates for the last word, in `complete.rs`'s protocol.
pub fn complete_main(words: &[OsString]) -> i32 {
    let root = tree::command();
    let words = lossy(words);
    let before = &words[..words.len().saturating_sub(1)];
    let host = walk::walk(&root, before)
        .value_of(0, "host")
        .map(String::from);
    let mut names = names::DaemonNames::new(host);
    print!("{}", complete::complete(&root, &words, &mut names).render());
    0
}

fn write_pages(root: &clap::Command, dir: &std::path::Path) -> i32 {
    if let Err(e) = std::fs::create_dir_all(dir) {
        eprintln!("berth man: creating {}: {e}", dir.display());
        return 1;
    }
    for (name, text) in man::pages(root) {
        let path = dir.join(&name);
        if let Err(e) = std::fs::write(&path, text) {
            eprintln!("berth man: writing {}: {e}", path.display());
            return 1;
        }
    }
    0
}

fn print_page(root: &clap::Command, command: &[String]) -> i32 {
    let w = walk::walk(root, command);
    if let Some(name) = &w.unknown_command {
        eprintln!("berth man: no such command: {name}");
        return 1;
    }
    print!("{}", man::page(&w.path));
    0
}

fn lossy(args: &[OsString]) -> Vec<String> {
    args.iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}
