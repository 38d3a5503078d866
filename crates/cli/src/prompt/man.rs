//! Man pages in roff, one per command — `berth(1)`, `berth-run(1)`, `berth-container-ls(1)`,
//! `berth-runtime-create(1)` … — made of the same pieces as the help (usage, description,
//! aliases, flags with docker's type words, commands), so `man berth-run` and `berth run
//! --help` say the same. (clap_mangen renders clap's own layout, `--name <NAME>`, which is
//! not what the help shows; the page is short enough to write here.)

use std::fmt::Write;

use clap::Command;

use super::help::{self, full_name, summary, usage};
use super::walk::has_commands;

/// Every page of the tree under `root`: (file name, roff text), the root's first.
pub fn pages(root: &Command) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack: Vec<Vec<&Command>> = vec![vec![root]];
    while let Some(path) = stack.pop() {
        let cmd = path[path.len() - 1];
        out.push((format!("{}.1", page_name(&path)), page(&path)));
        for sub in help::subcommands(cmd).into_iter().rev() {
            let mut p = path.clone();
            p.push(sub);
            stack.push(p);
        }
    }
    out
}

/// `berth-container-ls`.
pub fn page_name(path: &[&Command]) -> String {
    path.iter()
        .map(|c| c.get_name())
        .collect::<Vec<_>>()
        .join("-")
}

/// The page of the last command of `path`.
pub fn page(path: &[&Command]) -> String {
    let cmd = path[path.len() - 1];
    let name = page_name(path);
    let mut out = String::new();
    let _ = writeln!(
        out,
        ".TH \"{}\" \"1\" \"\" \"berth {}\" \"berth manual\"",
        name.to_uppercase(),
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(out, ".SH NAME\n{} \\- {}", esc(&name), esc(&summary(cmd)));
    let line = usage(path);
    let command = full_name(path);
    let rest = line.strip_prefix(&command).unwrap_or(&line).trim_start();
    let _ = writeln!(out, ".SH SYNOPSIS\n\\fB{}\\fR {}", esc(&command), esc(rest));
    let _ = writeln!(out, ".SH DESCRIPTION");
    for (i, para) in help::description(cmd).split("\n\n").enumerate() {
        if i > 0 {
            out.push_str(".PP\n");
        }
        let _ = writeln!(out, "{}", esc(para));
    }
    let aliases = help::aliases(path);
    if path.len() > 1 && aliases.len() > 1 {
        let _ = writeln!(out, ".SH ALIASES\n{}", esc(&aliases.join(", ")));
    }
    let flags = help::options(path);
    if !flags.is_empty() {
        let title = if path.len() == 1 {
            "GLOBAL OPTIONS"
        } else {
            "OPTIONS"
        };
        let _ = writeln!(out, ".SH {title}");
        for f in flags {
            let names = f
                .names
                .trim()
                .split(", ")
                .map(|n| format!("\\fB{}\\fR", esc(n)))
                .collect::<Vec<_>>()
                .join(", ");
            let value = f
                .type_word
                .map(|t| format!(" \\fI{}\\fR", esc(&t)))
                .unwrap_or_default();
            let _ = writeln!(out, ".TP\n{names}{value}\n{}", esc(&f.usage));
        }
    }
    if has_commands(cmd) {
        let groups = if path.len() == 1 {
            help::groups(cmd)
        } else {
            vec![("Commands", help::subcommands(cmd))]
        };
        let _ = writeln!(out, ".SH COMMANDS");
        for (title, cmds) in groups {
            if cmds.is_empty() {
                continue;
            }
            if path.len() == 1 {
                let _ = writeln!(out, ".SS {title}");
            }
            for c in cmds {
                let _ = writeln!(
                    out,
                    ".TP\n\\fB{}-{}\\fR(1)\n{}",
                    esc(&name),
                    esc(c.get_name()),
                    esc(&summary(c))
                );
            }
        }
    }
    if path.len() > 1 {
        let parents: Vec<String> = (1..path.len())
            .map(|i| format!("\\fB{}\\fR(1)", esc(&page_name(&path[..i]))))
            .collect();
        let _ = writeln!(out, ".SH SEE ALSO\n{}", parents.join(", "));
    }
    out
}

/// Text made safe for roff: backslashes and dashes escaped, no line starting with a
/// control character.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\e"),
            '-' => out.push_str("\\-"),
            // groff reads its input as Latin-1 unless told otherwise: name other characters.
            c if !c.is_ascii() => out.push_str(&format!("\\[u{:04X}]", u32::from(c))),
            c => out.push(c),
        }
    }
    out.lines()
        .map(|l| {
            if l.starts_with(['.', '\'']) {
                format!("\\&{l}")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roff_is_escaped() {
        assert_eq!(esc("a-b\\c\n.x\n'y"), "a\\-b\\ec\n\\&.x\n\\&'y");
        assert_eq!(esc("(…)"), "(\\[u2026])");
    }
}
