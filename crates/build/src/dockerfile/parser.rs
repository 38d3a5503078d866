//! Logical lines → instructions → stages. Every word that the build will expand later is
//! checked here already (quotes closed, `${` closed, known modifiers), so that a syntax error
//! is reported with its line and column before any step runs.

use super::lexer::{lex, Logical};
use super::words::{self, Lookup};
use super::{
    ArgDecl, CmdLine, Command, Copy, Dockerfile, From, Health, Instruction, KeyValue, ParseError,
    Run, Source, Stage,
};

const KEYWORDS: [&str; 18] = [
    "FROM",
    "RUN",
    "CMD",
    "LABEL",
    "EXPOSE",
    "ENV",
    "ADD",
    "COPY",
    "ENTRYPOINT",
    "VOLUME",
    "USER",
    "WORKDIR",
    "ARG",
    "ONBUILD",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "SHELL",
    "MAINTAINER",
];

/// Parses a Dockerfile.
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    let lexed = lex(text)?;
    let escape = lexed.escape;
    let mut global_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for l in &lexed.lines {
        let ins = instruction(l, escape)?;
        match &ins.command {
            Command::From(f) => {
                if let Some(name) = &f.alias {
                    if stages.iter().any(|s| s.name.as_deref() == Some(name)) {
                        return Err(ParseError {
                            line: ins.line,
                            column: ins.column,
                            message: format!("duplicate name {name}"),
                        });
                    }
                }
                stages.push(Stage {
                    index: stages.len(),
                    name: f.alias.clone(),
                    from: ins,
                    instructions: Vec::new(),
                });
            }
            Command::Arg(_) if stages.is_empty() => global_args.push(ins),
            _ => match stages.last_mut() {
                Some(s) => s.instructions.push(ins),
                None => {
                    return Err(ParseError {
                        line: ins.line,
                        column: ins.column,
                        message: format!(
                            "no build stage in current context: {} comes before any FROM",
                            ins.command.keyword()
                        ),
                    })
                }
            },
        }
    }
    if stages.is_empty() {
        let line = lexed.lines.last().map(|l| l.end_line).unwrap_or(1);
        return Err(ParseError {
            line,
            column: 1,
            message: if lexed.lines.is_empty() {
                "the Dockerfile cannot be empty".into()
            } else {
                "the Dockerfile has no FROM: no stage to build".into()
            },
        });
    }
    Ok(Dockerfile {
        escape,
        syntax: lexed.syntax,
        global_args,
        stages,
    })
}

/// Parses one instruction on its own (an ONBUILD trigger when it fires).
pub fn parse_instruction(text: &str, escape: char) -> Result<Instruction, ParseError> {
    let lexed = lex(text)?;
    match lexed.lines.as_slice() {
        [l] => instruction(l, escape),
        _ => Err(ParseError {
            line: 1,
            column: 1,
            message: format!("{text:?} is not one instruction"),
        }),
    }
}

/// Any variable is set (to a non-empty value): checks syntax, never fails on `${X:?}`.
struct CheckVars;

impl Lookup for CheckVars {
    fn lookup(&self, _name: &str) -> Option<&str> {
        Some("x")
    }
}

struct Flag {
    name: String,
    value: Option<String>,
    offset: usize,
}

/// The parts of one logical line that every instruction parser needs.
struct Line<'a> {
    l: &'a Logical,
    escape: char,
    keyword: String,
    /// The arguments (after the keyword and the flags), and their offset in the line.
    args: &'a str,
    args_off: usize,
    flags: Vec<Flag>,
}

impl Line<'_> {
    fn err(&self, offset: usize, message: impl Into<String>) -> ParseError {
        self.l.error(offset, message)
    }

    /// Checks the syntax of a raw word at `offset` of the line.
    fn check(&self, word: &str, offset: usize) -> Result<(), ParseError> {
        words::process_word(word, self.escape, &CheckVars)
            .map(|_| ())
            .map_err(|e| self.err(offset + e.pos, e.message))
    }

    /// The arguments as raw words (quotes kept), each checked.
    fn raw_words(&self) -> Result<Vec<(usize, String)>, ParseError> {
        let ws = words::split_raw(self.args, self.escape)
            .map_err(|e| self.err(self.args_off + e.pos, e.message))?;
        let ws: Vec<(usize, String)> = ws
            .into_iter()
            .map(|(o, w)| (self.args_off + o, w))
            .collect();
        for (o, w) in &ws {
            self.check(w, *o)?;
        }
        Ok(ws)
    }

    fn need_args(&self) -> Result<(), ParseError> {
        if self.args.trim().is_empty() {
            return Err(self.err(
                self.args_off,
                format!("{} requires at least one argument", self.keyword),
            ));
        }
        Ok(())
    }

    /// Takes the flags this instruction knows; any other is an error.
    fn flags(&self, known: &[&str]) -> Result<Vec<(String, Option<String>)>, ParseError> {
        let mut out = Vec::new();
        for f in &self.flags {
            if !known.contains(&f.name.as_str()) {
                return Err(self.err(
                    f.offset,
                    format!("unknown flag for {}: --{}", self.keyword, f.name),
                ));
            }
            if let Some(v) = &f.value {
                self.check(v, f.offset + f.name.len() + 3)?;
            }
            out.push((f.name.clone(), f.value.clone()));
        }
        Ok(out)
    }

    fn cmdline(&self) -> CmdLine {
        match json_array(self.args) {
            Some(v) => CmdLine::Exec(v),
            None => CmdLine::Shell(self.args.trim_end().to_string()),
        }
    }
}

fn json_array(s: &str) -> Option<Vec<String>> {
    let t = s.trim();
    if !t.starts_with('[') {
        return None;
    }
    serde_json::from_str(t).ok()
}

fn instruction(l: &Logical, escape: char) -> Result<Instruction, ParseError> {
    let text = l.text.trim_end();
    let kw_end = text.find(char::is_whitespace).unwrap_or(text.len());
    let keyword = text[..kw_end].to_ascii_uppercase();
    if !KEYWORDS.contains(&keyword.as_str()) {
        return Err(l.error(0, format!("unknown instruction: {}", &text[..kw_end])));
    }
    let mut rest_off = kw_end;
    while text[rest_off..].starts_with(char::is_whitespace) {
        rest_off += text[rest_off..].chars().next().map_or(1, char::len_utf8);
    }
    // Leading `--name[=value]` words are the instruction's flags.
    let mut flags = Vec::new();
    if keyword != "ONBUILD" {
        while text[rest_off..].starts_with("--") {
            let end = text[rest_off..]
                .find(char::is_whitespace)
                .map(|e| rest_off + e)
                .unwrap_or(text.len());
            let word = &text[rest_off + 2..end];
            let (name, value) = match word.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (word.to_string(), None),
            };
            flags.push(Flag {
                name,
                value,
                offset: rest_off,
            });
            rest_off = end;
            while text[rest_off..].starts_with(char::is_whitespace) {
                rest_off += 1;
            }
        }
    }
    let line = Line {
        l,
        escape,
        keyword: keyword.clone(),
        args: &text[rest_off..],
        args_off: rest_off,
        flags,
    };
    let command = match keyword.as_str() {
        "FROM" => from(&line)?,
        "RUN" => run(&line)?,
        "CMD" | "ENTRYPOINT" => {
            line.flags(&[])?;
            line.need_args()?;
            let c = line.cmdline();
            if keyword == "CMD" {
                Command::Cmd(c)
            } else {
                Command::Entrypoint(c)
            }
        }
        "LABEL" => {
            line.flags(&[])?;
            Command::Label(name_values(&line)?)
        }
        "ENV" => {
            line.flags(&[])?;
            Command::Env(name_values(&line)?)
        }
        "EXPOSE" => {
            line.flags(&[])?;
            line.need_args()?;
            Command::Expose(line.raw_words()?.into_iter().map(|w| w.1).collect())
        }
        "ADD" | "COPY" => copy(&line)?,
        "VOLUME" => {
            line.flags(&[])?;
            line.need_args()?;
            match json_array(line.args) {
                Some(v) => Command::Volume(v),
                None => Command::Volume(line.raw_words()?.into_iter().map(|w| w.1).collect()),
            }
        }
        "USER" | "WORKDIR" | "STOPSIGNAL" | "MAINTAINER" => {
            line.flags(&[])?;
            line.need_args()?;
            let arg = line.args.trim().to_string();
            if keyword != "MAINTAINER" {
                line.check(&arg, line.args_off)?;
            }
            match keyword.as_str() {
                "USER" => Command::User(arg),
                "WORKDIR" => Command::Workdir(arg),
                "STOPSIGNAL" => Command::Stopsignal(arg),
                _ => Command::Maintainer(arg),
            }
        }
        "ARG" => arg(&line)?,
        "ONBUILD" => onbuild(&line)?,
        "HEALTHCHECK" => healthcheck(&line)?,
        "SHELL" => {
            line.flags(&[])?;
            match json_array(line.args) {
                Some(v) if !v.is_empty() => Command::Shell(v),
                _ => {
                    return Err(line.err(
                        line.args_off,
                        "SHELL requires the arguments to be in JSON form, e.g. SHELL [\"/bin/sh\", \"-c\"]",
                    ))
                }
            }
        }
        _ => return Err(l.error(0, format!("unknown instruction: {keyword}"))),
    };
    let (line_no, column) = l.position(0);
    Ok(Instruction {
        line: line_no,
        end_line: l.end_line,
        column,
        text: text.to_string(),
        command,
    })
}

fn from(line: &Line<'_>) -> Result<Command, ParseError> {
    let flags = line.flags(&["platform"])?;
    let ws = line.raw_words()?;
    let (image, alias) = match ws.as_slice() {
        [(_, img)] => (img.clone(), None),
        [(_, img), (_, as_kw), (o, name)] if as_kw.eq_ignore_ascii_case("as") => {
            let name = name.to_ascii_lowercase();
            let ok = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
            if !ok {
                return Err(line.err(
                    *o,
                    format!("invalid name for build stage: {name:?}, name can't start with a number or contain symbols"),
                ));
            }
            (img.clone(), Some(name))
        }
        _ => {
            return Err(line.err(
                line.args_off,
                "FROM requires either one or three arguments: FROM IMAGE [AS NAME]",
            ))
        }
    };
    let platform = flags.into_iter().find_map(|(_, v)| v);
    Ok(Command::From(From {
        image,
        platform,
        alias,
    }))
}

fn run(line: &Line<'_>) -> Result<Command, ParseError> {
    let flags = line.flags(&["network", "mount", "security"])?;
    let mut network = None;
    for (name, value) in flags {
        match name.as_str() {
            "network" => match value.as_deref() {
                Some(v @ ("default" | "none" | "host")) => network = Some(v.to_string()),
                v => {
                    return Err(line.err(
                        line.args_off,
                        format!(
                            "RUN --network={}: want default, none or host",
                            v.unwrap_or_default()
                        ),
                    ))
                }
            },
            other => {
                return Err(line.err(
                    line.args_off,
                    format!("RUN --{other} is not supported by berth's builder yet"),
                ))
            }
        }
    }
    line.need_args()?;
    Ok(Command::Run(Run {
        cmd: line.cmdline(),
        heredocs: line.l.heredocs.clone(),
        network,
    }))
}

/// ENV and LABEL: `k=v k2="v 2"`, or the legacy `k the rest is the value`.
fn name_values(line: &Line<'_>) -> Result<Vec<KeyValue>, ParseError> {
    line.need_args()?;
    let ws = line.raw_words()?;
    let Some((first_off, first)) = ws.first() else {
        return Ok(Vec::new());
    };
    if !first.contains('=') {
        // Legacy form: the first word is the name, everything after it the value.
        let value = line.args[first_off - line.args_off + first.len()..].trim();
        if value.is_empty() {
            return Err(line.err(
                *first_off,
                format!("{} {first}: no value (write {first}=VALUE)", line.keyword),
            ));
        }
        return Ok(vec![KeyValue {
            key: first.clone(),
            value: value.to_string(),
        }]);
    }
    let mut out = Vec::new();
    for (o, w) in ws {
        let Some((k, v)) = w.split_once('=') else {
            return Err(line.err(
                o,
                format!("Syntax error - can't find = in {w:?}. Must be of the form: name=value"),
            ));
        };
        if k.is_empty() {
            return Err(line.err(o, format!("{} names can not be blank", line.keyword)));
        }
        out.push(KeyValue {
            key: k.to_string(),
            value: v.to_string(),
        });
    }
    Ok(out)
}

fn copy(line: &Line<'_>) -> Result<Command, ParseError> {
    let is_add = line.keyword == "ADD";
    let known: &[&str] = if is_add {
        &["chown", "chmod", "link", "checksum", "keep-git-dir"]
    } else {
        &["from", "chown", "chmod", "link"]
    };
    let flags = line.flags(known)?;
    let mut c = Copy {
        sources: Vec::new(),
        dest: String::new(),
        from: None,
        chown: None,
        chmod: None,
        checksum: None,
        link: false,
        json: false,
    };
    for (name, value) in flags {
        let need = |v: Option<String>| {
            v.filter(|v| !v.is_empty())
                .ok_or_else(|| line.err(line.args_off, format!("--{name} needs a value")))
        };
        match name.as_str() {
            "from" => c.from = Some(need(value)?),
            "chown" => c.chown = Some(need(value)?),
            "chmod" => c.chmod = Some(need(value)?),
            "checksum" => c.checksum = Some(need(value)?),
            "link" => c.link = value.as_deref() != Some("false"),
            _ => {
                return Err(line.err(
                    line.args_off,
                    format!(
                        "ADD --{name} is not supported by berth's builder (git sources are not)"
                    ),
                ))
            }
        }
    }
    let words: Vec<String> = match json_array(line.args) {
        Some(v) => {
            c.json = true;
            v
        }
        None => line.raw_words()?.into_iter().map(|w| w.1).collect(),
    };
    if words.len() < 2 {
        return Err(line.err(
            line.args_off,
            format!("{} requires at least two arguments, but only one was provided. Destination could not be determined", line.keyword),
        ));
    }
    let mut heredocs = line.l.heredocs.iter();
    let (dest, srcs) = words.split_last().unwrap_or((&words[0], &[]));
    for s in srcs {
        let is_marker = s.starts_with("<<") && !c.json;
        match heredocs.next().filter(|_| is_marker) {
            Some(h) => c.sources.push(Source::Heredoc(h.clone())),
            None => c.sources.push(Source::Path(s.clone())),
        }
    }
    c.dest = dest.clone();
    Ok(if is_add {
        Command::Add(c)
    } else {
        Command::Copy(c)
    })
}

fn arg(line: &Line<'_>) -> Result<Command, ParseError> {
    line.flags(&[])?;
    line.need_args()?;
    let mut out = Vec::new();
    for (o, w) in line.raw_words()? {
        let (name, default) = match w.split_once('=') {
            Some((n, d)) => (n.to_string(), Some(d.to_string())),
            None => (w.clone(), None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(line.err(o, format!("ARG: invalid name {name:?}")));
        }
        out.push(ArgDecl { name, default });
    }
    Ok(Command::Arg(out))
}

fn onbuild(line: &Line<'_>) -> Result<Command, ParseError> {
    line.need_args()?;
    let trigger = line.args.trim();
    let kw = trigger
        .split(char::is_whitespace)
        .next()
        .unwrap_or("")
        .to_ascii_uppercase();
    if matches!(kw.as_str(), "ONBUILD" | "FROM" | "MAINTAINER") {
        return Err(line.err(
            line.args_off,
            format!("{kw} isn't allowed as an ONBUILD trigger"),
        ));
    }
    // The trigger must parse as an instruction of its own.
    let inner = lex(trigger).map_err(|e| line.err(line.args_off + e.column - 1, e.message))?;
    for l in &inner.lines {
        instruction(l, line.escape)
            .map_err(|e| line.err(line.args_off + e.column - 1, e.message))?;
    }
    Ok(Command::Onbuild(trigger.to_string()))
}

fn healthcheck(line: &Line<'_>) -> Result<Command, ParseError> {
    let flags = line.flags(&[
        "interval",
        "timeout",
        "start-period",
        "start-interval",
        "retries",
    ])?;
    line.need_args()?;
    let args = line.args.trim();
    let (kw, rest) = args.split_once(char::is_whitespace).unwrap_or((args, ""));
    if kw.eq_ignore_ascii_case("NONE") {
        if !rest.trim().is_empty() || !flags.is_empty() {
            return Err(line.err(line.args_off, "HEALTHCHECK NONE takes no other argument"));
        }
        return Ok(Command::Healthcheck(Health::None));
    }
    if !kw.eq_ignore_ascii_case("CMD") {
        return Err(line.err(
            line.args_off,
            format!("Unknown type {kw:?} in HEALTHCHECK (try CMD)"),
        ));
    }
    if rest.trim().is_empty() {
        return Err(line.err(line.args_off, "HEALTHCHECK CMD requires a command"));
    }
    let test = match json_array(rest) {
        Some(v) => CmdLine::Exec(v),
        None => CmdLine::Shell(rest.trim().to_string()),
    };
    let mut h = (None, None, None, None, None);
    for (name, value) in flags {
        let v = value.unwrap_or_default();
        if name == "retries" {
            let n: u64 = v.parse().map_err(|_| {
                line.err(line.args_off, format!("--retries: {v:?} is not a number"))
            })?;
            h.4 = Some(n);
            continue;
        }
        let d = parse_duration(&v).ok_or_else(|| {
            line.err(
                line.args_off,
                format!("--{name}: {v:?} is not a duration (like 30s, 1m30s, 500ms)"),
            )
        })?;
        match name.as_str() {
            "interval" => h.0 = Some(d),
            "timeout" => h.1 = Some(d),
            "start-period" => h.2 = Some(d),
            _ => h.3 = Some(d),
        }
    }
    Ok(Command::Healthcheck(Health::Check {
        test,
        interval: h.0,
        timeout: h.1,
        start_period: h.2,
        start_interval: h.3,
        retries: h.4,
    }))
}

/// A Go duration (`1h2m3.5s`, `300ms`, `0`) in nanoseconds.
pub(crate) fn parse_duration(s: &str) -> Option<u64> {
    if s == "0" {
        return Some(0);
    }
    crate::duration::go_duration_ns(s).map(|ns| ns as u64)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn one(text: &str) -> Instruction {
        let df = parse(&format!("FROM scratch\n{text}\n")).unwrap();
        df.stages[0].instructions[0].clone()
    }

    fn err(text: &str) -> ParseError {
        parse(text).unwrap_err()
    }

    #[test]
    fn every_instruction() {
        let df = parse(
            "ARG BASE=busybox\nFROM --platform=linux/amd64 ${BASE} AS Build\n\
             RUN echo hi\nRUN [\"echo\", \"x\"]\nCMD [\"sh\"]\nENTRYPOINT top -b\n\
             LABEL a=1 \"b c\"=\"d e\"\nEXPOSE 80 443/udp\nENV A=1 B=\"two words\"\nENV C legacy value\n\
             ADD --chown=1:2 --chmod=600 a.tar /x/\nCOPY --from=build --link a b /d/\n\
             VOLUME [\"/v\"]\nVOLUME /a /b\nUSER app:app\nWORKDIR /w\nARG X Y=2\n\
             ONBUILD RUN echo trig\nSTOPSIGNAL SIGKILL\n\
             HEALTHCHECK --interval=5s --retries=3 CMD curl -f x\nHEALTHCHECK NONE\n\
             SHELL [\"/bin/bash\", \"-c\"]\nMAINTAINER me\n",
        )
        .unwrap();
        assert_eq!(df.global_args.len(), 1);
        let s = &df.stages[0];
        assert_eq!(s.name.as_deref(), Some("build"));
        assert!(
            matches!(&s.from.command, Command::From(f) if f.image == "${BASE}" && f.platform.as_deref() == Some("linux/amd64"))
        );
        let kws: Vec<&str> = s.instructions.iter().map(|i| i.command.keyword()).collect();
        assert_eq!(
            kws,
            [
                "RUN",
                "RUN",
                "CMD",
                "ENTRYPOINT",
                "LABEL",
                "EXPOSE",
                "ENV",
                "ENV",
                "ADD",
                "COPY",
                "VOLUME",
                "VOLUME",
                "USER",
                "WORKDIR",
                "ARG",
                "ONBUILD",
                "STOPSIGNAL",
                "HEALTHCHECK",
                "HEALTHCHECK",
                "SHELL",
                "MAINTAINER"
            ]
        );
        assert!(
            matches!(&s.instructions[1].command, Command::Run(r) if r.cmd == CmdLine::Exec(vec!["echo".into(), "x".into()]))
        );
        assert!(
            matches!(&s.instructions[7].command, Command::Env(kv) if kv[0].key == "C" && kv[0].value == "legacy value")
        );
        match &s.instructions[9].command {
            Command::Copy(c) => {
                assert_eq!(c.from.as_deref(), Some("build"));
                assert_eq!(c.sources.len(), 2);
                assert_eq!(c.dest, "/d/");
            }
            other => panic!("{other:?}"),
        }
        match &s.instructions[17].command {
            Command::Healthcheck(Health::Check {
                interval, retries, ..
            }) => {
                assert_eq!((*interval, *retries), (Some(5_000_000_000), Some(3)));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn heredoc_sources_and_run() {
        let df =
            parse("FROM scratch\nCOPY <<EOF /f\nhello\nEOF\nRUN <<EOF\necho a\nEOF\n").unwrap();
        let i = &df.stages[0].instructions;
        assert!(
            matches!(&i[0].command, Command::Copy(c) if matches!(&c.sources[0], Source::Heredoc(h) if h.body == "hello\n"))
        );
        assert_eq!(i[0].text, "COPY <<EOF /f");
        assert!(matches!(&i[1].command, Command::Run(r) if r.heredocs.len() == 1));
        assert_eq!((i[1].line, i[1].end_line), (5, 7));
    }

    #[test]
    fn errors_name_line_and_column() {
        let e = err("FROM a\n  FOO bar\n");
        assert_eq!((e.line, e.column), (2, 3));
        assert_eq!(e.message, "unknown instruction: FOO");
        let e = err("FROM a\nENV A=\"x\n");
        assert_eq!((e.line, e.column), (2, 7));
        assert!(e.message.contains("double-quote"));
        let e = err("FROM a\nRUN echo \\\n  ok\nCOPY ${x /y\n");
        assert_eq!((e.line, e.column), (4, 6));
        let e = err("FROM a\nCOPY --chwn=1 a b\n");
        assert_eq!((e.line, e.column), (2, 6));
        assert!(e.message.contains("--chwn"));
        let e = err("RUN x\n");
        assert!(e.message.contains("no build stage"), "{}", e.message);
        assert!(err("").message.contains("empty"));
        let e = err("FROM a AS 1x\n");
        assert_eq!((e.line, e.column), (1, 11));
        assert!(err("FROM a\nSHELL sh -c\n").message.contains("JSON"));
        assert!(err("FROM a\nCOPY onlyone\n")
            .message
            .contains("at least two"));
        assert!(err("FROM a\nONBUILD FROM x\n").message.contains("ONBUILD"));
        assert!(err("FROM a AS x\nFROM b AS X\n")
            .message
            .contains("duplicate"));
        let e = err("FROM a\nENV A=1 B\n");
        assert_eq!((e.line, e.column), (2, 9));
    }

    #[test]
    fn instruction_text_and_case() {
        let i = one("run echo a \\\n  b");
        assert_eq!(i.text, "run echo a   b");
        assert_eq!(i.command.keyword(), "RUN");
        assert!(matches!(
            one("CMD [\"a\" oops").command,
            Command::Cmd(CmdLine::Shell(_))
        ));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_duration("500ms"), Some(500_000_000));
        assert_eq!(parse_duration("x"), None);
    }
}
