//! Shell completion: the candidates for the word under the cursor. Commands, subcommands and
//! flags come from the clap tree; flag values from the choices clap knows, else from
//! docker's fixed words (`--restart`, network modes, `--format` keywords, signals, …); names
//! from the daemon (`Names`: at most one request per completion) or, for compose services,
//! from the project's files. The scripts (`scripts.rs`) only pass the words and show what
//! comes back, in this protocol: one candidate a line (`value<TAB>description`), then a last
//! line `:` followed by what the shell should add (`nospace`, `files`, `dirs`).

use clap::builder::ValueHint;
use clap::{Arg, Command};

use super::help::summary;
use super::walk::{find_long, has_commands, positional_at, walk, Walk};

/// A container as completion needs it.
#[derive(Debug, Clone)]
pub struct Container {
    pub name: String,
    /// The API's `State`: created, running, paused, restarting, exited, dead.
    pub state: String,
}

/// The compose flags that choose the project, as given on the line.
#[derive(Debug, Default)]
pub struct Project {
    pub files: Vec<String>,
    pub name: Option<String>,
    pub directory: Option<String>,
    pub env_files: Vec<String>,
    pub profiles: Vec<String>,
}

/// Where names come from; each method is one request (or one read of the project).
pub trait Names {
    fn containers(&mut self) -> Vec<Container>;
    /// `REPOSITORY:TAG` of every tagged image.
    fn images(&mut self) -> Vec<String>;
    fn networks(&mut self) -> Vec<String>;
    fn volumes(&mut self) -> Vec<String>;
    fn log_drivers(&mut self) -> Vec<String>;
    fn services(&mut self, project: &Project) -> Vec<String>;
}

/// What to offer for the word under the cursor.
#[derive(Debug, Default, PartialEq)]
pub struct Completions {
    /// Candidates and their one-line descriptions.
    pub items: Vec<(String, String)>,
    /// No space after the candidate (`container:`, `type=bind,`).
    pub nospace: bool,
    /// The shell adds file names.
    pub files: bool,
    /// The shell adds directory names.
    pub dirs: bool,
}

impl Completions {
    /// The protocol's text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (value, help) in &self.items {
            out.push_str(value);
            let help = help.lines().next().unwrap_or_default().replace('\t', " ");
            if !help.is_empty() {
                out.push('\t');
                out.push_str(&help);
            }
            out.push('\n');
        }
        let directives: Vec<&str> = [
            (self.nospace, "nospace"),
            (self.files, "files"),
            (self.dirs, "dirs"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, w)| *w)
        .collect();
        out.push(':');
        out.push_str(&directives.join(" "));
        out.push('\n');
        out
    }

    fn files() -> Completions {
        Completions {
            files: true,
            ..Completions::default()
        }
    }

    fn dirs() -> Completions {
        Completions {
            dirs: true,
            ..Completions::default()
        }
    }
}

/// The candidates for the last of `words` (the line after the program's name, up to the
/// cursor; the last word is the one being typed, possibly empty).
pub fn complete(root: &Command, words: &[String], names: &mut dyn Names) -> Completions {
    let (cur, before) = match words.split_last() {
        Some((cur, before)) => (cur.as_str(), before),
        None => ("", words),
    };
    let mut c = candidates(root, before, cur, names);
    // A word that goes on (`container:`, `status=`, `type=bind,`) takes no space after it.
    c.nospace |= !c.items.is_empty() && c.items.iter().all(|(v, _)| v.ends_with([':', '=', ',']));
    c
}

fn candidates(root: &Command, before: &[String], cur: &str, names: &mut dyn Names) -> Completions {
    let w = walk(root, before);
    if w.unknown_command.is_some() {
        return Completions::default();
    }
    if let Some(arg) = w.pending {
        return flag_value(&w, arg, cur, "", names);
    }
    let cmd = w.command();
    if !w.only_values {
        if let Some((name, value)) = cur.strip_prefix("--").and_then(|r| r.split_once('=')) {
            return match find_long(cmd, name).filter(|a| a.get_action().takes_values()) {
                Some(arg) => flag_value(&w, arg, value, &format!("--{name}="), names),
                None => Completions::default(),
            };
        }
        if cur.starts_with('-') {
            return flags(&w, cur);
        }
        if w.positionals.is_empty() && has_commands(cmd) {
            return subcommands(cmd, cur);
        }
    }
    positional(&w, cur, names)
}

fn subcommands(cmd: &Command, cur: &str) -> Completions {
    let mut items: Vec<(String, String)> = super::help::subcommands(cmd)
        .into_iter()
        .filter(|c| c.get_name().starts_with(cur))
        .map(|c| (c.get_name().to_owned(), summary(c)))
        .collect();
    if items.is_empty() {
        // An alias only when no name fits (`container list`).
        items = super::help::subcommands(cmd)
            .into_iter()
            .flat_map(|c| c.get_visible_aliases().map(move |a| (a, c)))
            .filter(|(a, _)| a.starts_with(cur))
            .map(|(a, c)| (a.to_owned(), summary(c)))
            .collect();
    }
    Completions {
        items,
        ..Completions::default()
    }
}

/// The flags of the last command that fit `cur`, less those already given once.
fn flags(w: &Walk<'_>, cur: &str) -> Completions {
    let cmd = w.command();
    let depth = w.path.len() - 1;
    let mut items = Vec::new();
    for arg in cmd.get_arguments() {
        if arg.is_positional() || arg.is_hide_set() {
            continue;
        }
        let repeatable = matches!(
            arg.get_action(),
            clap::ArgAction::Append | clap::ArgAction::Count
        );
        let given = w
            .flags
            .iter()
            .any(|g| g.depth == depth && g.arg.get_id() == arg.get_id());
        if given && !repeatable {
            continue;
        }
        let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
        if let Some(long) = arg.get_long() {
            let word = format!("--{long}");
            if word.starts_with(cur) {
                items.push((word, help.clone()));
            }
        }
        if let Some(short) = arg.get_short() {
            if cur == "-" {
                items.push((format!("-{short}"), help));
            }
        }
    }
    items.sort();
    Completions {
        items,
        ..Completions::default()
    }
}

/// Candidates for a flag's value; `prefix` (`--flag=`) is put back before each.
fn flag_value(
    w: &Walk<'_>,
    arg: &Arg,
    cur: &str,
    prefix: &str,
    names: &mut dyn Names,
) -> Completions {
    let mut c = flag_candidates(w, arg, cur, names);
    c.items.retain(|(v, _)| v.starts_with(cur));
    if !prefix.is_empty() {
        for (v, _) in &mut c.items {
            v.insert_str(0, prefix);
        }
    }
    c
}

fn flag_candidates(w: &Walk<'_>, arg: &Arg, cur: &str, names: &mut dyn Names) -> Completions {
    if let Some(c) = clap_choices(arg) {
        return c;
    }
    let cmd = w.command().get_name();
    let in_compose = w.names().contains(&"compose");
    let long = arg.get_long().unwrap_or_default();
    let container_ref =
        |names: &mut dyn Names| words(running(names).into_iter().map(|n| format!("container:{n}")));
    match long {
        "restart" => words(["no", "always", "on-failure", "unless-stopped"]),
        "network" | "net" if cur.starts_with("container:") => container_ref(names),
        "network" | "net" => {
            let mut all: Vec<String> = ["bridge", "host", "none", "container:"]
                .map(String::from)
                .to_vec();
            for n in names.networks() {
                if !all.contains(&n) {
                    all.push(n);
                }
            }
            words(all)
        }
        "pid" | "ipc" if cur.starts_with("container:") => container_ref(names),
        "pid" => words(["container:", "host"]),
        "ipc" => words(["container:", "host", "none", "private", "shareable"]),
        "uts" | "userns" => words(["host"]),
        "cgroupns" => words(["host", "private"]),
        "pull" if in_compose => words(["always", "missing", "never", "build"]),
        "pull" => words(["always", "missing", "never"]),
        "platform" => words(PLATFORMS),
        // `berth daemon --dashboard`: the default address, or off.
        "dashboard" => words(["127.0.0.1:23784", "off"]),
        "log-driver" => {
            let mut d = names.log_drivers();
            if d.is_empty() {
                d.push("json-file".into());
            }
            words(d)
        }
        "format" => {
            if matches!(
                cmd,
                "ps" | "ls" | "list" | "images" | "stats" | "history" | "df"
            ) {
                words(["json", "table"])
            } else {
                words(["json"])
            }
        }
        "signal" | "stop-signal" if cur.starts_with("SIG") => {
            words(SIGNALS.iter().map(|s| format!("SIG{s}")))
        }
        "signal" | "stop-signal" => words(SIGNALS),
        "type" if cmd == "inspect" => words(["container", "image", "network", "volume"]),
        "volumes-from" => words(names.containers().into_iter().map(|c| c.name)),
        "link" => suffixed(names.containers().into_iter().map(|c| c.name), ":"),
        "volume" if cur.starts_with(['/', '.', '~']) => Completions::files(),
        "volume" => suffixed(names.volumes(), ":"),
        "mount" => words(["type=bind,", "type=volume,", "type=tmpfs,"]),
        "cap-add" | "cap-drop" => words(CAPABILITIES),
        "gpus" => words(["all"]),
        "filter" => filter(cmd, cur, names),
        "attach" | "exit-code-from" | "no-attach" if in_compose => {
            words(names.services(&project(w)))
        }
        "attach" => words(["STDIN", "STDOUT", "STDERR"]),
        "ansi" => words(["never", "always", "auto"]),
        "rmi" => words(["local", "all"]),
        "env-file" | "label-file" | "cidfile" | "iidfile" | "file" | "output" | "input" => {
            Completions::files()
        }
        "project-directory" => Completions::dirs(),
        _ => hinted(arg).unwrap_or_default(),
    }
}

/// Choices clap itself knows (a value enum, a list of values).
fn clap_choices(arg: &Arg) -> Option<Completions> {
    let values: Vec<(String, String)> = arg
        .get_possible_values()
        .iter()
        .filter(|v| !v.is_hide_set())
        .map(|v| {
            (
                v.get_name().to_owned(),
                v.get_help().map(|h| h.to_string()).unwrap_or_default(),
            )
        })
        .collect();
    (!values.is_empty()).then(|| Completions {
        items: values,
        ..Completions::default()
    })
}

/// File or directory names, where clap's definition says the value is a path.
fn hinted(arg: &Arg) -> Option<Completions> {
    match arg.get_value_hint() {
        ValueHint::DirPath => return Some(Completions::dirs()),
        ValueHint::AnyPath | ValueHint::FilePath | ValueHint::ExecutablePath => {
            return Some(Completions::files())
        }
        _ => {}
    }
    (arg.get_value_parser().type_id() == std::any::TypeId::of::<std::path::PathBuf>())
        .then(Completions::files)
}

/// Candidates for the next positional value, by the value's name in the usage line.
fn positional(w: &Walk<'_>, cur: &str, names: &mut dyn Names) -> Completions {
    let cmd = w.command();
    let index = w.positionals.len();
    let Some(arg) = positional_at(cmd, index) else {
        return Completions::default();
    };
    if let Some(c) = clap_choices(arg).or_else(|| hinted(arg)) {
        return retain(c, cur);
    }
    let first = (0..index)
        .take_while(|&i| positional_at(cmd, index - 1 - i) == Some(arg))
        .count();
    let Some(word) = value_word(arg, first) else {
        return Completions::default();
    };
    let alternatives: Vec<&str> = word
        .trim_matches(['[', ']'])
        .trim_end_matches("...")
        .split('|')
        .collect();
    let kind = alternatives[0];
    // `IMAGE|DOCKERFILE|-`: names and local files both.
    let files_too = alternatives[1..]
        .iter()
        .any(|a| a.ends_with("FILE") || a.ends_with("PATH"));
    let in_compose = w.names().contains(&"compose");
    let mut c = match kind {
        // `compose stats` shares `stats`'s arguments; its names are services.
        "CONTAINER" if in_compose => words(names.services(&project(w))),
        "CONTAINER" => containers_for(w, names),
        "NAME" if cmd.get_name() == "inspect" => inspected(w, names),
        k if k.starts_with("CONTAINER:") => path_in(cur, || {
            names.containers().into_iter().map(|c| c.name).collect()
        }),
        k if k.starts_with("SERVICE:") => path_in(cur, || names.services(&project(w))),
        k if k.starts_with("SERVICE=") => suffixed(names.services(&project(w)), "="),
        "SERVICE" => words(names.services(&project(w))),
        k if k.starts_with("IMAGE")
            || k.starts_with("SOURCE_IMAGE")
            || k.starts_with("REPOSITORY") =>
        {
            words(names.images())
        }
        "NETWORK" => words(names.networks()),
        "VOLUME" => words(names.volumes()),
        k if k.ends_with("PATH") || k.ends_with("FILE") || k == "file" => Completions::files(),
        _ => Completions::default(),
    };
    c.files |= files_too;
    retain(c, cur)
}

fn retain(mut c: Completions, cur: &str) -> Completions {
    c.items.retain(|(v, _)| v.starts_with(cur));
    c
}

/// The word of a value name for the `i`th value of its argument: `IMAGE [COMMAND] [ARG...]`
/// gives IMAGE for the first, then `[COMMAND]`, then `[ARG...]` for every later one.
fn value_word(arg: &Arg, i: usize) -> Option<String> {
    let name = arg.get_value_names().map_or_else(
        || arg.get_id().as_str().to_uppercase(),
        |n| n.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" "),
    );
    let words: Vec<&str> = name.split_whitespace().collect();
    match words.get(i) {
        Some(w) => Some((*w).to_owned()),
        None => words
            .last()
            .filter(|w| w.ends_with("...]") || w.ends_with("..."))
            .map(|w| (*w).to_owned())
            .or_else(|| (words.len() == 1).then(|| words[0].to_owned())),
    }
}

/// The containers a verb acts on, as docker's completion narrows them: running ones for
/// `exec`/`attach`/`pause`, stopped ones for `start` (and `rm` without `-f`), paused ones
/// for `unpause`, running or paused for `stop`/`kill`/`top`/…, all for the rest.
fn containers_for(w: &Walk<'_>, names: &mut dyn Names) -> Completions {
    let verb = w.command().get_name();
    let force = w.has("force");
    let keep: fn(&str) -> bool = match verb {
        "attach" | "exec" | "pause" => |s| s == "running",
        "commit" | "diff" | "kill" | "port" | "stats" | "stop" | "top" | "wait" => {
            |s| matches!(s, "running" | "paused" | "restarting")
        }
        "start" => |s| matches!(s, "created" | "exited" | "dead"),
        "rm" if !force => |s| !matches!(s, "running" | "paused" | "restarting"),
        "unpause" => |s| s == "paused",
        _ => |_| true,
    };
    words(
        names
            .containers()
            .into_iter()
            .filter(|c| keep(&c.state))
            .map(|c| c.name),
    )
}

/// `inspect NAME|ID`: the kind `--type` names, containers by default.
fn inspected(w: &Walk<'_>, names: &mut dyn Names) -> Completions {
    let depth = w.path.len() - 1;
    match w.value_of(depth, "type") {
        Some("image") => words(names.images()),
        Some("network") => words(names.networks()),
        Some("volume") => words(names.volumes()),
        _ => words(names.containers().into_iter().map(|c| c.name)),
    }
}

fn running(names: &mut dyn Names) -> Vec<String> {
    names
        .containers()
        .into_iter()
        .filter(|c| c.state == "running")
        .map(|c| c.name)
        .collect()
}

/// `NAME:PATH` values (`cp`): names with `:` before a colon is typed, and local files.
fn path_in(cur: &str, names: impl FnOnce() -> Vec<String>) -> Completions {
    if cur.contains(':') {
        return Completions::default();
    }
    if cur.starts_with(['/', '.', '~']) || cur == "-" {
        return Completions::files();
    }
    let mut c = suffixed(names(), ":");
    c.files = true;
    c
}

/// docker's `--filter` keys of a listing (`status=`), then the values of a few.
fn filter(cmd: &str, cur: &str, names: &mut dyn Names) -> Completions {
    if let Some((key, _)) = cur.split_once('=') {
        let values: Vec<String> = match key {
            "status" => [
                "created",
                "restarting",
                "running",
                "removing",
                "paused",
                "exited",
                "dead",
            ]
            .map(String::from)
            .to_vec(),
            "health" => ["starting", "healthy", "unhealthy", "none"]
                .map(String::from)
                .to_vec(),
            "dangling" => ["true", "false"].map(String::from).to_vec(),
            "ancestor" | "reference" => names.images(),
            "name" if matches!(cmd, "ps" | "ls") => {
                names.containers().into_iter().map(|c| c.name).collect()
            }
            "network" => names.networks(),
            "volume" => names.volumes(),
            _ => Vec::new(),
        };
        return words(values.into_iter().map(|v| format!("{key}={v}")));
    }
    let keys: &[&str] = match cmd {
        "ps" => &[
            "ancestor",
            "before",
            "exited",
            "expose",
            "health",
            "id",
            "isolation",
            "is-task",
            "label",
            "name",
            "network",
            "publish",
            "since",
            "status",
            "volume",
        ],
        "images" => &["before", "dangling", "label", "reference", "since", "until"],
        "events" => &[
            "config",
            "container",
            "daemon",
            "event",
            "image",
            "label",
            "network",
            "node",
            "plugin",
            "scope",
            "secret",
            "service",
            "type",
            "volume",
        ],
        "prune" => &["label", "until"],
        _ => &[
            "dangling", "driver", "id", "label", "name", "scope", "type", "until",
        ],
    };
    suffixed(keys.iter().map(|k| (*k).to_owned()), "=")
}

/// The compose flags given before the compose verb.
fn project(w: &Walk<'_>) -> Project {
    let Some(depth) = w.path.iter().position(|c| c.get_name() == "compose") else {
        return Project::default();
    };
    let all = |long: &str| -> Vec<String> {
        w.flags
            .iter()
            .filter(|g| g.depth == depth && g.arg.get_long() == Some(long))
            .filter_map(|g| g.value.clone())
            .collect()
    };
    Project {
        files: all("file"),
        name: w.value_of(depth, "project-name").map(String::from),
        directory: w.value_of(depth, "project-directory").map(String::from),
        env_files: all("env-file"),
        profiles: all("profile"),
    }
}

fn words<S: Into<String>>(items: impl IntoIterator<Item = S>) -> Completions {
    let items: Vec<(String, String)> = items
        .into_iter()
        .map(|s| (s.into(), String::new()))
        .collect();
    Completions {
        items,
        ..Completions::default()
    }
}

fn suffixed(items: impl IntoIterator<Item = String>, suffix: &str) -> Completions {
    words(items.into_iter().map(|s| format!("{s}{suffix}")))
}

/// docker's `--platform` choices.
const PLATFORMS: [&str; 8] = [
    "linux/amd64",
    "linux/arm64",
    "linux/arm/v7",
    "linux/arm/v6",
    "linux/386",
    "linux/ppc64le",
    "linux/s390x",
    "linux/riscv64",
];

/// Signal names as docker takes them (`-s KILL`, `--stop-signal TERM`).
const SIGNALS: [&str; 31] = [
    "ABRT", "ALRM", "BUS", "CHLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "KILL", "PIPE",
    "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM", "TRAP", "TSTP", "TTIN", "TTOU",
    "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ",
];

/// Linux capabilities by docker's names (without `CAP_`), and ALL.
const CAPABILITIES: [&str; 42] = [
    "ALL",
    "AUDIT_CONTROL",
    "AUDIT_READ",
    "AUDIT_WRITE",
    "BLOCK_SUSPEND",
    "BPF",
    "CHECKPOINT_RESTORE",
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "IPC_LOCK",
    "IPC_OWNER",
    "KILL",
    "LEASE",
    "LINUX_IMMUTABLE",
    "MAC_ADMIN",
    "MAC_OVERRIDE",
    "MKNOD",
    "NET_ADMIN",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_RAW",
    "PERFMON",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_CHROOT",
    "SYS_MODULE",
    "SYS_NICE",
    "SYS_PACCT",
    "SYS_PTRACE",
    "SYS_RAWIO",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "SYSLOG",
    "WAKE_ALARM",
];

#[cfg(test)]
mod tests {
    use super::*;

    /// A daemon with two containers, counting the requests completion makes.
    #[derive(Default)]
    struct Fake {
        calls: usize,
    }

    impl Names for Fake {
        fn containers(&mut self) -> Vec<Container> {
            self.calls += 1;
            [("web", "running"), ("old", "exited"), ("nap", "paused")]
                .map(|(n, s)| Container {
                    name: n.into(),
                    state: s.into(),
                })
                .to_vec()
        }
        fn images(&mut self) -> Vec<String> {
            self.calls += 1;
            vec!["busybox:latest".into()]
        }
        fn networks(&mut self) -> Vec<String> {
            self.calls += 1;
            vec!["bridge".into(), "app".into()]
        }
        fn volumes(&mut self) -> Vec<String> {
            self.calls += 1;
            vec!["data".into()]
        }
        fn log_drivers(&mut self) -> Vec<String> {
            self.calls += 1;
            vec!["json-file".into()]
        }
        fn services(&mut self, _: &Project) -> Vec<String> {
            self.calls += 1;
            vec!["db".into(), "web".into()]
        }
    }

    fn values(line: &str) -> (Vec<String>, usize) {
        let root = crate::tree::command();
        let mut words: Vec<String> = line.split(' ').map(String::from).collect();
        if line.ends_with(' ') {
            words.pop();
            words.push(String::new());
        }
        let mut fake = Fake::default();
        let c = complete(&root, &words, &mut fake);
        (c.items.into_iter().map(|(v, _)| v).collect(), fake.calls)
    }

    #[test]
    fn commands_and_flags_come_from_the_tree_without_the_daemon() {
        assert_eq!(values("ru"), (vec!["run".into(), "runtime".into()], 0));
        assert_eq!(values("run --rest"), (vec!["--restart".into()], 0));
        assert_eq!(values("container li").0, ["list"]);
        assert_eq!(values("compl").0, ["completion"]);
        assert!(!values("").0.contains(&"__complete".to_owned()));
        // A flag given once is not offered again; a repeatable one is.
        assert!(!values("run --rm --r").0.contains(&"--rm".to_owned()));
        assert!(values("run -e A=1 --e").0.contains(&"--env".to_owned()));
    }

    #[test]
    fn fixed_values_and_the_equals_form() {
        assert_eq!(
            values("run --restart ").0,
            ["no", "always", "on-failure", "unless-stopped"]
        );
        assert_eq!(values("run --restart=on").0, ["--restart=on-failure"]);
        assert_eq!(values("completion ").0, ["bash", "zsh", "fish"]);
        assert_eq!(values("runtime list --format ").0, ["table", "json"]);
        assert_eq!(values("ps --format ").0, ["json", "table"]);
        assert_eq!(values("kill -s KI").0, ["KILL"]);
        assert_eq!(values("daemon --dashboard ").0, ["127.0.0.1:23784", "off"]);
    }

    #[test]
    fn names_come_from_one_request_narrowed_as_docker_does() {
        assert_eq!(
            values("logs "),
            (vec!["web".into(), "old".into(), "nap".into()], 1)
        );
        assert_eq!(values("exec ").0, ["web"]);
        assert_eq!(values("start ").0, ["old"]);
        assert_eq!(values("unpause ").0, ["nap"]);
        assert_eq!(values("stop ").0, ["web", "nap"]);
        assert_eq!(values("rm ").0, ["old"]);
        assert_eq!(values("rm -f ").0, ["web", "old", "nap"]);
        assert_eq!(values("run ").0, ["busybox:latest"]);
        assert_eq!(values("network rm ").0, ["bridge", "app"]);
        assert_eq!(values("network connect app ").0, ["web", "old", "nap"]);
        assert_eq!(values("volume rm ").0, ["data"]);
        assert_eq!(
            values("run --network ").0,
            ["bridge", "host", "none", "container:", "app"]
        );
        assert_eq!(values("run --network container:w").0, ["container:web"]);
        assert_eq!(
            values("compose logs "),
            (vec!["db".into(), "web".into()], 1)
        );
        assert_eq!(values("compose stats ").0, ["db", "web"]);
        assert_eq!(values("compose -f x.yml up --attach w").0, ["web"]);
        // The command of a container, and a word past the last argument, get nothing.
        assert_eq!(values("run busybox:latest "), (vec![], 0));
        assert_eq!(values("logs web "), (vec![], 0));
    }

    #[test]
    fn the_protocol_says_what_the_shell_adds() {
        let root = crate::tree::command();
        let mut fake = Fake::default();
        let words = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        let cp = complete(&root, &words("cp w"), &mut fake);
        assert_eq!(cp.render(), "web:\n:nospace files\n");
        let build = complete(&root, &words("build x"), &mut fake);
        assert_eq!(build.render(), ":dirs\n");
        let ru = complete(&root, &words("ru"), &mut fake);
        assert!(ru
            .render()
            .starts_with("run\tCreate and run a new container from an image\n"));
    }
}
