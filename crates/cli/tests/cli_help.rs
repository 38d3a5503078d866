//! The command line at the prompt as a Docker user knows it: help in docker's layout (checked
//! against docker 28 itself), usage errors in docker's words and exit statuses, completion
//! through bash's own `complete` machinery and through fish and zsh, and man pages rendered
//! by man — all from berth's one set of command definitions.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::engine::{code, err, out, run_cmd, Daemon, DOCKER, IMAGE};
use common::{berth, unique};

/// A scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        let dir = std::env::temp_dir().join(unique("berth-cli-help"));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// berth with no daemon behind it: a socket that does not exist, so nothing can start one.
fn berth_cmd(args: &[&str]) -> Command {
    let mut c = Command::new(berth());
    c.env(
        "BERTH_HOST",
        format!("unix:///nonexistent/{}.sock", unique("no-daemon")),
    )
    .env("COLUMNS", "80")
    .args(args);
    c
}

fn b(args: &[&str]) -> Output {
    run_cmd(berth_cmd(args), None, 30)
}

/// The docker CLI (28.x) with no daemon and a private config: usage errors and help are
/// its client's alone.
fn docker(args: &[&str], config: &Path) -> Output {
    let mut c = Command::new(DOCKER);
    c.env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .env("DOCKER_CONFIG", config)
        .env_remove("DOCKER_CONTEXT")
        .args(args);
    run_cmd(c, None, 30)
}

/// The commands listed under a heading of a help text (`Commands:`), by group.
fn listed(help: &str, heading: &str) -> Vec<String> {
    let mut in_group = false;
    let mut names = Vec::new();
    for line in help.lines() {
        if line == format!("{heading}:") {
            in_group = true;
            continue;
        }
        if in_group {
            if !line.starts_with("  ") {
                break;
            }
            names.push(line.split_whitespace().next().unwrap().to_owned());
        }
    }
    names
}

/// The flag column of a help's `Options:` (`-n, --last int`).
fn flag_column(help: &str) -> BTreeSet<String> {
    help.lines()
        .skip_while(|l| *l != "Options:")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter(|l| l.trim_start().starts_with('-'))
        .map(|l| {
            let l = l.trim_start();
            l.split("   ").next().unwrap().trim().to_owned()
        })
        .filter(|f| f != "--help")
        .collect()
}

/// The visible top-level commands of berth's definitions, as berth's completion sees them.
fn berth_commands() -> Vec<String> {
    let o = b(&["__complete", ""]);
    assert_eq!(code(&o), 0, "{}", err(&o));
    out(&o)
        .lines()
        .filter(|l| !l.starts_with(':'))
        .map(|l| l.split('\t').next().unwrap().to_owned())
        .collect()
}

#[test]
fn root_help_lists_every_command_in_dockers_groups() {
    let scratch = Scratch::new();
    let help = b(&["--help"]);
    assert_eq!(code(&help), 0, "{}", err(&help));
    let text = out(&help);
    assert!(
        text.starts_with("Usage:  berth [OPTIONS] COMMAND\n\n"),
        "{text}"
    );
    // `berth help`, `berth -h` and `berth` alone (on stderr, as docker) say the same.
    for (args, on_stderr) in [
        (&["help"][..], false),
        (&["-h"][..], false),
        (&[][..], true),
    ] {
        let o = b(args);
        assert_eq!(code(&o), 0, "berth {args:?}");
        let shown = if on_stderr { err(&o) } else { out(&o) };
        assert_eq!(shown, text, "berth {args:?}");
    }
    assert!(!text.contains("Swarm"), "{text}");

    // Every command the definitions have is listed once; the hidden ones are not.
    let groups = ["Common Commands", "Management Commands", "Commands"];
    let all: Vec<String> = groups.iter().flat_map(|g| listed(&text, g)).collect();
    let commands = berth_commands();
    assert!(commands.len() > 40, "{commands:?}");
    for c in &commands {
        assert_eq!(all.iter().filter(|n| *n == c).count(), 1, "{c}:\n{text}");
    }
    assert_eq!(all.len(), commands.len(), "{all:?} vs {commands:?}");
    for hidden in ["monitor", "man", "__complete"] {
        assert!(!all.iter().any(|n| n == hidden), "{hidden} listed");
    }
    // berth's own additions where a user looks for them.
    let management = listed(&text, "Management Commands");
    assert!(management.contains(&"compose".to_owned()), "{text}");
    assert!(management.contains(&"runtime".to_owned()), "{text}");
    let rest = listed(&text, "Commands");
    assert!(rest.contains(&"completion".to_owned()), "{text}");
    assert!(rest.contains(&"daemon".to_owned()), "{text}");
    assert!(rest.contains(&"dashboard".to_owned()), "{text}");
    let image = out(&b(&["image", "--help"]));
    assert!(listed(&image, "Commands").contains(&"lint".to_owned()));
    assert!(listed(&image, "Commands").contains(&"analyze".to_owned()));
    assert!(text.contains("Global Options:\n"), "{text}");
    assert!(text.contains("  -H, --host string"), "{text}");

    // Against docker 28: each command both have sits in docker's group.
    let docker_help = out(&docker(&["--help"], &scratch.0));
    for group in groups {
        let ours = listed(&text, group);
        for name in listed(&docker_help, group) {
            if commands.contains(&name) {
                assert!(ours.contains(&name), "{name} is not under {group}:\n{text}");
            }
        }
    }
    // docker's order of the common commands.
    let docker_common: Vec<String> = listed(&docker_help, "Common Commands")
        .into_iter()
        .filter(|n| commands.contains(n))
        .collect();
    assert_eq!(listed(&text, "Common Commands"), docker_common);
}

#[test]
fn help_command_is_the_commands_help_in_dockers_form() {
    let scratch = Scratch::new();
    for path in [
        "run",
        "ps",
        "container ls",
        "image lint",
        "image analyze",
        "network create",
        "compose",
        "compose up",
        "runtime",
        "runtime list",
        "daemon",
        "volume",
        "completion",
        "dashboard",
    ] {
        let words: Vec<&str> = path.split(' ').collect();
        let mut with_help = words.clone();
        with_help.push("--help");
        let mut help_first = vec!["help"];
        help_first.extend(&words);
        let a = b(&with_help);
        let h = b(&help_first);
        assert_eq!(
            (code(&a), code(&h)),
            (0, 0),
            "{path}: {}{}",
            err(&a),
            err(&h)
        );
        assert_eq!(out(&a), out(&h), "{path}");
        assert!(
            out(&a).starts_with(&format!("Usage:  berth {path}")),
            "{path}: {}",
            out(&a)
        );
    }
    // The runtime's own name keeps runc's face.
    let link = scratch.0.join("berth-runtime");
    std::os::unix::fs::symlink(berth(), &link).unwrap();
    let o = run_cmd(
        {
            let mut c = Command::new(&link);
            c.arg("--help");
            c
        },
        None,
        30,
    );
    assert_eq!(code(&o), 0);
    assert!(!out(&o).contains("Usage:  "), "{}", out(&o));

    // docker's usage lines, aliases and flags, word for word where berth does the same.
    for path in [
        "ps",
        "logs",
        "stop",
        "rename",
        "exec",
        "run",
        "images",
        "rmi",
        "container ls",
        "network connect",
        "network create",
        "volume rm",
        "top",
        "port",
        "tag",
        "pull",
        "inspect",
    ] {
        let mut args: Vec<&str> = path.split(' ').collect();
        args.push("--help");
        let ours = out(&b(&args));
        let theirs = out(&docker(&args, &scratch.0)).replace("docker", "berth");
        let first = |t: &str| t.lines().next().unwrap_or_default().to_owned();
        assert_eq!(first(&ours), first(&theirs), "usage of {path}");
        let aliases = |t: &str| {
            t.lines()
                .skip_while(|l| *l != "Aliases:")
                .nth(1)
                .map(String::from)
        };
        assert_eq!(aliases(&ours), aliases(&theirs), "aliases of {path}");
        // Every flag berth has is docker's, with docker's word for its value.
        let (ours_flags, theirs_flags) = (flag_column(&ours), flag_column(&theirs));
        let extra: Vec<&String> = ours_flags.difference(&theirs_flags).collect();
        assert!(extra.is_empty(), "{path}: not docker's: {extra:?}\n{ours}");
    }
    // Where berth has all of docker's flags, the lists are the same.
    for path in ["ps", "logs", "stop", "kill", "rm", "wait", "network ls"] {
        let mut args: Vec<&str> = path.split(' ').collect();
        args.push("--help");
        let theirs = flag_column(&out(&docker(&args, &scratch.0)));
        assert_eq!(flag_column(&out(&b(&args))), theirs, "{path}");
    }
    // The layout of docker's flag library, wrapping included.
    assert!(out(&b(&["ps", "--help"])).contains(
        "  -n, --last int        Show n last created containers (includes all\n                        states) (default -1)\n"
    ));
}

#[test]
fn management_commands_list_their_commands_as_docker() {
    let scratch = Scratch::new();
    for m in [
        "container",
        "image",
        "network",
        "volume",
        "system",
        "builder",
    ] {
        let alone = b(&[m]);
        assert_eq!(code(&alone), 0, "{m}");
        let help = out(&b(&[m, "--help"]));
        // Alone, the help goes to stderr, as docker's does.
        assert_eq!(err(&alone), help, "{m}");
        assert!(
            help.starts_with(&format!("Usage:  berth {m} COMMAND\n")),
            "{help}"
        );
        assert!(help.ends_with(&format!(
            "\nRun 'berth {m} COMMAND --help' for more information on a command.\n"
        )));
        let ours: BTreeSet<String> = listed(&help, "Commands").into_iter().collect();
        let theirs: BTreeSet<String> =
            listed(&out(&docker(&[m, "--help"], &scratch.0)), "Commands")
                .into_iter()
                .collect();
        // berth's own additions: `image lint` and `image analyze`.
        let extra: Vec<&str> = ours.difference(&theirs).map(String::as_str).collect();
        let additions: &[&str] = if m == "image" {
            &["analyze", "lint"]
        } else {
            &[]
        };
        assert_eq!(extra, additions, "{m}: {help}");
        if m == "container" || m == "network" {
            assert_eq!(ours, theirs, "{m}");
        }
    }
    let compose = out(&b(&["compose", "--help"]));
    assert!(
        compose.starts_with("Usage:  berth compose [OPTIONS] COMMAND\n"),
        "{compose}"
    );
    for verb in ["up", "down", "ps", "logs", "exec", "run", "config"] {
        assert!(
            listed(&compose, "Commands").contains(&verb.to_owned()),
            "{compose}"
        );
    }
}

#[test]
fn usage_errors_say_what_docker_28_says() {
    let scratch = Scratch::new();
    // Word for word (berth for docker) and the same status.
    for line in [
        "foo",
        "ps --foo",
        "ps -x",
        "ps extra",
        "ps --format",
        "logs a b",
        "logs -n",
        "stop",
        "run",
        "run --foo busybox",
        "run --restart",
        "exec c",
        "rename a",
        "network create --foo",
        "help foo",
    ] {
        let args: Vec<&str> = line.split(' ').collect();
        let (ours, theirs) = (b(&args), docker(&args, &scratch.0));
        assert_eq!(code(&ours), code(&theirs), "berth {line}: {}", err(&ours));
        assert_eq!(
            err(&ours),
            err(&theirs).replace("docker", "berth"),
            "berth {line}"
        );
        assert_eq!(out(&ours), "", "berth {line}");
    }
    // Same first line and status; berth adds the closest name.
    for (line, hint) in [
        ("rnu", "\trun\n"),
        ("container lsx", "\tls\n"),
        ("run --restar busybox", "\t--restart\n"),
        ("volume lss", "\tls\n"),
    ] {
        let args: Vec<&str> = line.split(' ').collect();
        let (ours, theirs) = (b(&args), docker(&args, &scratch.0));
        assert_eq!(code(&ours), code(&theirs), "berth {line}");
        let first = |o: &Output| err(o).lines().next().unwrap_or_default().to_owned();
        assert_eq!(first(&ours), first(&theirs).replace("docker", "berth"));
        assert!(
            err(&ours).contains(&format!("Did you mean this?\n{hint}")),
            "berth {line}: {}",
            err(&ours)
        );
    }
    // A value clap refuses: docker's first words, status 125.
    let (ours, theirs) = (
        b(&["ps", "-n", "abc"]),
        docker(&["ps", "-n", "abc"], &scratch.0),
    );
    assert_eq!((code(&ours), code(&theirs)), (125, 125));
    let prefix = "invalid argument \"abc\" for \"-n, --last\" flag: ";
    assert!(err(&ours).starts_with(prefix), "{}", err(&ours));
    assert!(err(&theirs).starts_with(prefix), "{}", err(&theirs));
    assert!(err(&ours).ends_with(
        "\n\nUsage:  berth ps [OPTIONS]\n\nRun 'berth ps --help' for more information\n"
    ));
    let o = b(&["completion", "tcsh"]);
    assert_eq!(code(&o), 1);
    assert!(err(&o).contains("invalid argument \"tcsh\" for \"berth completion\""));
}

/// A bash that sources `berth completion bash` and completes lines through the function
/// `complete -p berth` names, as readline would call it; one line of output per candidate,
/// `---` after each line completed.
fn bash_complete(script: &Path, lines: &[Vec<String>], env: &[(&str, &str)]) -> Vec<Vec<String>> {
    let mut program = format!(
        r#"source {script}
fn=$(complete -p berth | sed -n 's/.*-F \([^ ]*\) .*/\1/p')
[[ -n $fn ]] || {{ echo "no completion function for berth" >&2; exit 3; }}
comp() {{
    COMP_LINE=$1; shift
    COMP_WORDS=("$@"); COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
    COMP_POINT=${{#COMP_LINE}}
    COMPREPLY=()
    "$fn" berth "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
    printf '%s\n' "${{COMPREPLY[@]}}"
    echo ---
}}
"#,
        script = script.display()
    );
    let quote = |w: &str| format!("'{}'", w.replace('\'', r"'\''"));
    for words in lines {
        // The line as typed: bash split `:` and `=` off into words of their own.
        let mut line = String::new();
        for (i, w) in words.iter().enumerate() {
            let glued =
                i > 0 && (w == ":" || w == "=" || words[i - 1] == ":" || words[i - 1] == "=");
            if i > 0 && !glued {
                line.push(' ');
            }
            line.push_str(w);
        }
        let quoted: Vec<String> = words.iter().map(|w| quote(w)).collect();
        program.push_str(&format!("comp {} {}\n", quote(&line), quoted.join(" ")));
    }
    let mut c = Command::new("bash");
    c.arg("--norc")
        .arg("-c")
        .arg(&program)
        .envs(env.iter().copied());
    let o = run_cmd(c, None, 60);
    assert_eq!(code(&o), 0, "{}", err(&o));
    assert_eq!(err(&o), "", "completion printed on stderr");
    out(&o)
        .split("---\n")
        .map(|s| {
            s.lines()
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect()
        })
        .take(lines.len())
        .collect()
}

fn words(prog: &Path, rest: &[&str]) -> Vec<String> {
    std::iter::once(prog.display().to_string())
        .chain(rest.iter().map(|s| s.to_string()))
        .collect()
}

#[test]
fn bash_completion_completes_commands_flags_values_and_the_daemons_names() {
    let d = Daemon::start();
    let running = unique("up");
    let created = unique("made");
    let net = unique("net");
    let vol = unique("vol");
    d.berth_ok(&["run", "-d", "--name", &running, IMAGE, "sleep", "60"]);
    d.berth_ok(&["create", "--name", &created, IMAGE, "true"]);
    d.berth_ok(&["network", "create", &net]);
    d.berth_ok(&["volume", "create", &vol]);
    let script = d.dir.join("berth.bash");
    let o = b(&["completion", "bash"]);
    assert_eq!(code(&o), 0);
    std::fs::write(&script, out(&o)).unwrap();

    let prog = berth();
    let host = d.host();
    let h = |rest: &[&str]| {
        let mut all = vec!["-H", host.as_str()];
        all.extend_from_slice(rest);
        words(&prog, &all)
    };
    let lines = vec![
        words(&prog, &["ru"]),
        words(&prog, &["run", "--rest"]),
        h(&["logs", ""]),
        h(&["exec", ""]),
        h(&["start", ""]),
        words(&prog, &["run", "--restart", ""]),
        h(&["run", "--network", ""]),
        h(&["volume", "rm", ""]),
        h(&["rmi", ""]),
        h(&["run", "--network", "container", ":", &running[..2]]),
        // bash splits `--restart=on` at `=`: the words as readline hands them over.
        words(&prog, &["run", "--restart", "=", "on"]),
        words(&prog, &["container", "l"]),
        words(&prog, &["dashboard", "--o"]),
        words(&prog, &["daemon", "--dash"]),
    ];
    let got = bash_complete(&script, &lines, &[]);
    let n = got.len();
    assert_eq!(got[n - 2], ["--open"]);
    assert_eq!(got[n - 1], ["--dashboard"]);
    assert_eq!(got[0], ["run", "runtime"]);
    assert_eq!(got[1], ["--restart"]);
    assert!(
        got[2].contains(&running) && got[2].contains(&created),
        "{:?}",
        got[2]
    );
    assert!(
        got[3].contains(&running) && !got[3].contains(&created),
        "{:?}",
        got[3]
    );
    assert!(
        got[4].contains(&created) && !got[4].contains(&running),
        "{:?}",
        got[4]
    );
    assert_eq!(got[5], ["no", "always", "on-failure", "unless-stopped"]);
    assert!(
        got[6].contains(&net) && got[6].contains(&"bridge".to_owned()),
        "{:?}",
        got[6]
    );
    assert!(got[7].contains(&vol), "{:?}", got[7]);
    assert!(got[8].contains(&IMAGE.to_owned()), "{:?}", got[8]);
    // After `container:` readline replaces only the name.
    assert_eq!(got[9], std::slice::from_ref(&running));
    assert_eq!(got[10], ["on-failure"]);
    assert_eq!(got[11], ["logs", "ls"]);

    // The daemon named by BERTH_HOST, as the commands find it.
    let got = bash_complete(
        &script,
        &[words(&prog, &["stop", ""])],
        &[("BERTH_HOST", host.as_str())],
    );
    assert!(got[0].contains(&running), "{:?}", got[0]);

    // fish, with its own `complete -C`, gets the same names.
    let path = format!(
        "{}:{}",
        prog.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut c = Command::new("fish");
    c.args(["--no-config", "-c"])
        .arg(format!(
            "berth completion fish | source; complete -C'berth -H {host} logs '"
        ))
        .env("PATH", &path);
    let o = run_cmd(c, None, 60);
    assert_eq!(code(&o), 0, "{}", err(&o));
    assert!(out(&o).lines().any(|l| l == running), "{}", out(&o));
}

#[test]
fn completion_asks_the_daemon_once_and_is_silent_when_it_is_not_there() {
    let scratch = Scratch::new();
    // A daemon that answers every request with an empty list, and counts them.
    let socket = scratch.0.join("counting.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = requests.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            counted.fetch_add(1, Ordering::SeqCst);
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                line.clear();
            }
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n[]",
            );
        }
    });
    let host = format!("unix://{}", socket.display());
    for (line, expected) in [
        (&["logs", ""][..], 1),
        (&["run", "--network", ""][..], 1),
        (&["ru"][..], 0),
        (&["run", "--restart", ""][..], 0),
    ] {
        let before = requests.load(Ordering::SeqCst);
        let mut args = vec!["__complete", "-H", host.as_str()];
        args.extend_from_slice(line);
        let o = b(&args);
        assert_eq!(code(&o), 0, "{}", err(&o));
        assert_eq!(
            requests.load(Ordering::SeqCst) - before,
            expected,
            "{line:?}"
        );
    }

    // A daemon that never answers: given up after a short while, nothing shown.
    let silent = scratch.0.join("silent.sock");
    let listener = UnixListener::bind(&silent).unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming() {
            held.push(s);
        }
    });
    let started = Instant::now();
    let o = b(&[
        "__complete",
        "-H",
        &format!("unix://{}", silent.display()),
        "logs",
        "",
    ]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        (code(&o), out(&o).as_str(), err(&o).as_str()),
        (0, ":\n", "")
    );

    // No daemon at all: nothing, at once, and none is started.
    let gone = scratch.0.join("gone.sock");
    let started = Instant::now();
    let o = b(&[
        "__complete",
        "-H",
        &format!("unix://{}", gone.display()),
        "exec",
        "",
    ]);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        (code(&o), out(&o).as_str(), err(&o).as_str()),
        (0, ":\n", "")
    );
    assert!(!gone.exists());
}

#[test]
fn compose_services_complete_from_the_project_in_the_current_directory() {
    let scratch = Scratch::new();
    std::fs::write(
        scratch.0.join("compose.yaml"),
        "services:\n  web:\n    image: busybox\n  db:\n    image: busybox\n    profiles: [debug]\n",
    )
    .unwrap();
    std::fs::write(
        scratch.0.join("other.yml"),
        "services:\n  cache:\n    image: busybox\n",
    )
    .unwrap();
    let complete = |args: &[&str]| {
        let mut all = vec!["__complete"];
        all.extend_from_slice(args);
        let mut c = berth_cmd(&all);
        c.current_dir(&scratch.0);
        let o = run_cmd(c, None, 30);
        assert_eq!(code(&o), 0, "{}", err(&o));
        out(&o)
    };
    assert_eq!(complete(&["compose", "logs", ""]), "db\nweb\n:\n");
    assert_eq!(complete(&["compose", "up", "--attach", "w"]), "web\n:\n");
    assert_eq!(
        complete(&["compose", "-f", "other.yml", "stop", ""]),
        "cache\n:\n"
    );
    assert_eq!(complete(&["compose", "scale", "w"]), "web=\n:nospace\n");
    // Outside a project: nothing, and no complaint.
    let mut c = berth_cmd(&["__complete", "compose", "logs", ""]);
    c.current_dir("/");
    let o = run_cmd(c, None, 30);
    assert_eq!((out(&o).as_str(), err(&o).as_str()), (":\n", ""));
}

#[test]
fn zsh_and_fish_load_the_scripts() {
    let scratch = Scratch::new();
    let zsh_script = scratch.0.join("_berth");
    std::fs::write(&zsh_script, out(&b(&["completion", "zsh"]))).unwrap();
    let mut c = Command::new("zsh");
    c.args(["-f", "-c"]).arg(format!(
        "autoload -Uz compinit && compinit -u -D && source {} && print -r -- ${{_comps[berth]}}",
        zsh_script.display()
    ));
    let o = run_cmd(c, None, 60);
    assert_eq!(
        (code(&o), out(&o).as_str(), err(&o).as_str()),
        (0, "_berth\n", ""),
        "zsh (scripts/install-deps.sh installs it)"
    );

    let fish_script = scratch.0.join("berth.fish");
    std::fs::write(&fish_script, out(&b(&["completion", "fish"]))).unwrap();
    let path = format!(
        "{}:{}",
        berth().parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut c = Command::new("fish");
    c.args(["--no-config", "-c"])
        .arg(format!(
            "source {}; complete -C'berth ru'; echo ---; complete -C'berth run --rest'",
            fish_script.display()
        ))
        .env("PATH", &path)
        .env("BERTH_HOST", "unix:///nonexistent/fish.sock");
    let o = run_cmd(c, None, 60);
    assert_eq!(
        (code(&o), err(&o).as_str()),
        (0, ""),
        "fish (scripts/install-deps.sh installs it)"
    );
    let text = out(&o);
    let (commands, flags) = text.split_once("---\n").unwrap();
    assert!(
        commands.starts_with("run\tCreate and run a new container from an image\n"),
        "{text}"
    );
    assert_eq!(
        flags,
        "--restart\tRestart policy to apply when a container exits\n"
    );
}

#[test]
fn man_pages_render_and_say_what_help_and_completion_say() {
    let scratch = Scratch::new();
    let dir = scratch.0.join("man1");
    let o = b(&["man", "--dir", dir.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", err(&o));
    let pages: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for p in [
        "berth.1",
        "berth-run.1",
        "berth-container-ls.1",
        "berth-image-lint.1",
        "berth-compose-up.1",
        "berth-runtime-create.1",
        "berth-daemon.1",
        "berth-completion.1",
        "berth-dashboard.1",
    ] {
        assert!(pages.contains(p), "{p} missing: {pages:?}");
    }
    assert!(pages.len() > 100, "{}", pages.len());
    assert!(!pages
        .iter()
        .any(|p| p.contains("monitor") || p.contains("__complete")));
    // `berth man COMMAND` prints the same page.
    assert_eq!(
        out(&b(&["man", "run"])),
        std::fs::read_to_string(dir.join("berth-run.1")).unwrap()
    );

    // Every page is clean roff for groff.
    for p in &pages {
        let mut c = Command::new("groff");
        c.args(["-man", "-Tutf8", "-ww", "-z"]).arg(dir.join(p));
        let o = run_cmd(c, None, 30);
        assert_eq!((code(&o), err(&o).as_str()), (0, ""), "{p}");
    }

    // man renders it.
    let mut c = Command::new("man");
    c.arg("-l")
        .arg(dir.join("berth-run.1"))
        .env("MANWIDTH", "100")
        .env("MANPAGER", "cat")
        .env("LANG", "C.UTF-8");
    let o = run_cmd(c, None, 30);
    assert_eq!(code(&o), 0, "{}", err(&o));
    let page = out(&o);
    for want in [
        "berth-run - Create and run a new container from an image",
        "berth run [OPTIONS] IMAGE [COMMAND] [ARG...]",
        "berth container run, berth run",
        "--restart string",
        "-d, --detach",
    ] {
        assert!(page.contains(want), "{want:?} not in:\n{page}");
    }

    // Help, man and completion list the same flags of `run`.
    let help: BTreeSet<String> = flag_column(&out(&b(&["run", "--help"])))
        .into_iter()
        .filter_map(|f| {
            f.split([' ', ','])
                .find(|w| w.starts_with("--"))
                .map(String::from)
        })
        .collect();
    let roff = std::fs::read_to_string(dir.join("berth-run.1")).unwrap();
    let man: BTreeSet<String> = roff
        .lines()
        .filter(|l| l.starts_with("\\fB\\-"))
        .filter_map(|l| {
            l.split("\\fB")
                .filter_map(|p| p.split("\\fR").next())
                .map(|p| p.replace("\\-", "-"))
                .find(|p| p.starts_with("--"))
        })
        .collect();
    let completion: BTreeSet<String> = out(&b(&["__complete", "run", "--"]))
        .lines()
        .filter(|l| !l.starts_with(':'))
        .map(|l| l.split('\t').next().unwrap().to_owned())
        .filter(|f| f != "--help")
        .collect();
    assert!(help.len() > 60, "{help:?}");
    assert_eq!(help, man);
    assert_eq!(help, completion);
}
