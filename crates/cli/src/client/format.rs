//! `--format`: the subset of Go's text/template that scripts written for docker use, evaluated
//! over JSON values, and the tab-aligned tables docker prints (Go's tabwriter with docker's
//! settings: minimum width 10, padding 3).
//!
//! Supported: `{{.A.B}}`, `{{.}}`, `{{json .X}}`, `{{index .M "k"}}`, `{{.Label "k"}}`,
//! `{{join .L ","}}`, `upper`, `lower`, `title`, `split`, `len`, `truncate`, `println`,
//! `printf` (%s %d %v %q), `eq`/`ne`/`not`/`and`/`or`, pipes, parentheses,
//! `{{if}}…{{else}}…{{end}}`, `{{range}}`, `{{with}}`, `{{- -}}` trimming.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Result};
use serde_json::Value;

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipeline),
    If(Pipeline, Vec<Node>, Vec<Node>),
    Range(Pipeline, Vec<Node>, Vec<Node>),
    With(Pipeline, Vec<Node>, Vec<Node>),
}

type Pipeline = Vec<Command>;

#[derive(Debug, Clone)]
struct Command {
    args: Vec<Arg>,
}

#[derive(Debug, Clone)]
enum Arg {
    Dot,
    Root,
    Field(Vec<String>),
    Str(String),
    Num(f64),
    Bool(bool),
    Nil,
    Ident(String),
    Sub(Pipeline),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Str(String),
    Num(f64),
    Field(Vec<String>),
    Dot,
    Dollar,
    Ident(String),
    Pipe,
    Open,
    Close,
}

impl Template {
    /// Parses `src`.
    pub fn parse(src: &str) -> Result<Template> {
        let pieces = split_actions(src)?;
        let mut iter = pieces.into_iter().peekable();
        let (nodes, end) = parse_nodes(&mut iter)?;
        if let Some(e) = end {
            bail!("template: unexpected {{{{{e}}}}}");
        }
        Ok(Template { nodes })
    }

    /// Executes against `data`.
    pub fn execute(&self, data: &Value) -> Result<String> {
        let mut out = String::new();
        exec_nodes(&self.nodes, data, data, &mut out)?;
        Ok(out)
    }
}

enum Piece {
    Text(String),
    Action(String),
}

fn split_actions(src: &str) -> Result<Vec<Piece>> {
    let mut pieces = Vec::new();
    let mut rest = src;
    let mut trim_next = false;
    while let Some(start) = rest.find("{{") {
        let mut text = rest[..start].to_string();
        if trim_next {
            text = text.trim_start().to_string();
        }
        let after = &rest[start + 2..];
        let trim_prev = after.starts_with("- ") || after.starts_with("-\t");
        if trim_prev {
            text = text.trim_end().to_string();
        }
        pieces.push(Piece::Text(text));
        let end = find_action_end(after).ok_or_else(|| anyhow!("template: unclosed action"))?;
        let mut inner = &after[..end];
        if trim_prev {
            inner = &inner[1..];
        }
        trim_next = inner.ends_with(" -") || inner.ends_with("\t-");
        if trim_next {
            inner = &inner[..inner.len() - 1];
        }
        pieces.push(Piece::Action(inner.trim().to_string()));
        rest = &after[end + 2..];
    }
    let mut text = rest.to_string();
    if trim_next {
        text = text.trim_start().to_string();
    }
    pieces.push(Piece::Text(text));
    Ok(pieces)
}

/// The end of an action, skipping `}}` inside quoted strings.
fn find_action_end(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut quote: Option<u8> = None;
    while i < b.len() {
        match quote {
            Some(q) => {
                if b[i] == b'\\' && q == b'"' {
                    i += 1;
                } else if b[i] == q {
                    quote = None;
                }
            }
            None => {
                if b[i] == b'"' || b[i] == b'`' {
                    quote = Some(b[i]);
                } else if b[i] == b'}' && b.get(i + 1) == Some(&b'}') {
                    return Some(i);
                }
            }
        }
        i += 1;
    }
    None
}

type Pieces = std::iter::Peekable<std::vec::IntoIter<Piece>>;

/// Parses until `end` or `else`; returns the nodes and the keyword that stopped it.
fn parse_nodes(iter: &mut Pieces) -> Result<(Vec<Node>, Option<String>)> {
    let mut nodes = Vec::new();
    while let Some(p) = iter.next() {
        match p {
            Piece::Text(t) => {
                if !t.is_empty() {
                    nodes.push(Node::Text(t));
                }
            }
            Piece::Action(a) => {
                if a.starts_with("/*") {
                    continue;
                }
                let (kw, rest) = match a.split_once(char::is_whitespace) {
                    Some((k, r)) => (k, r.trim()),
                    None => (a.as_str(), ""),
                };
                match kw {
                    "end" => return Ok((nodes, Some("end".into()))),
                    "else" => return Ok((nodes, Some(format!("else {rest}").trim().to_string()))),
                    "if" | "range" | "with" => {
                        let pipe = parse_pipeline(rest)?;
                        let node = parse_block(kw, pipe, iter)?;
                        nodes.push(node);
                    }
                    _ => nodes.push(Node::Action(parse_pipeline(&a)?)),
                }
            }
        }
    }
    Ok((nodes, None))
}

fn parse_block(kw: &str, pipe: Pipeline, iter: &mut Pieces) -> Result<Node> {
    let (body, end) = parse_nodes(iter)?;
    let mut alt = Vec::new();
    match end.as_deref() {
        Some("end") => {}
        Some("else") => {
            let (a, end2) = parse_nodes(iter)?;
            if end2.as_deref() != Some("end") {
                bail!("template: missing {{{{end}}}}");
            }
            alt = a;
        }
        Some(e) if e.starts_with("else if ") => {
            // `else if X` is an `if` nested in the else branch sharing the `end`.
            let inner = parse_pipeline(&e["else if ".len()..])?;
            alt = vec![parse_block("if", inner, iter)?];
        }
        _ => bail!("template: missing {{{{end}}}}"),
    }
    Ok(match kw {
        "if" => Node::If(pipe, body, alt),
        "range" => Node::Range(pipe, body, alt),
        _ => Node::With(pipe, body, alt),
    })
}

fn lex(src: &str) -> Result<Vec<Tok>> {
    let mut toks = Vec::new();
    let chars: Vec<char> = src.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '|' {
            toks.push(Tok::Pipe);
            i += 1;
        } else if c == '(' {
            toks.push(Tok::Open);
            i += 1;
        } else if c == ')' {
            toks.push(Tok::Close);
            i += 1;
        } else if c == '"' {
            let mut s = String::new();
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    i += 1;
                    s.push(match chars[i] {
                        'n' => '\n',
                        't' => '\t',
                        other => other,
                    });
                } else {
                    s.push(chars[i]);
                }
                i += 1;
            }
            if i >= chars.len() {
                bail!("template: unterminated quoted string");
            }
            i += 1;
            toks.push(Tok::Str(s));
        } else if c == '`' {
            let start = i + 1;
            i = start;
            while i < chars.len() && chars[i] != '`' {
                i += 1;
            }
            toks.push(Tok::Str(chars[start..i.min(chars.len())].iter().collect()));
            i += 1;
        } else if c == '.' || c == '$' {
            let start = i;
            i += 1;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '.')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let (head, path) = if let Some(p) = word.strip_prefix('$') {
                toks.push(Tok::Dollar);
                ("$", p.to_string())
            } else {
                (".", word)
            };
            let fields: Vec<String> = path
                .split('.')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
            if fields.is_empty() {
                if head == "." {
                    toks.push(Tok::Dot);
                }
            } else {
                toks.push(Tok::Field(fields));
            }
        } else if c.is_ascii_digit()
            || (c == '-' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let start = i;
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let s: String = chars[start..i].iter().collect();
            toks.push(Tok::Num(
                s.parse().map_err(|_| anyhow!("template: bad number {s}"))?,
            ));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            toks.push(Tok::Ident(chars[start..i].iter().collect()));
        } else {
            bail!("template: unexpected {c:?} in action");
        }
    }
    Ok(toks)
}

fn parse_pipeline(src: &str) -> Result<Pipeline> {
    let toks = lex(src)?;
    let mut pos = 0;
    let p = parse_pipe_toks(&toks, &mut pos)?;
    if pos != toks.len() {
        bail!("template: unexpected token in {src:?}");
    }
    Ok(p)
}

fn parse_pipe_toks(toks: &[Tok], pos: &mut usize) -> Result<Pipeline> {
    let mut cmds = Vec::new();
    let mut args = Vec::new();
    while *pos < toks.len() {
        let t = &toks[*pos];
        *pos += 1;
        match t {
            Tok::Pipe => {
                if args.is_empty() {
                    bail!("template: missing command before |");
                }
                cmds.push(Command {
                    args: std::mem::take(&mut args),
                });
            }
            Tok::Close => {
                *pos -= 1;
                break;
            }
            Tok::Open => {
                let sub = parse_pipe_toks(toks, pos)?;
                if toks.get(*pos) != Some(&Tok::Close) {
                    bail!("template: unclosed (");
                }
                *pos += 1;
                args.push(Arg::Sub(sub));
            }
            Tok::Str(s) => args.push(Arg::Str(s.clone())),
            Tok::Num(n) => args.push(Arg::Num(*n)),
            Tok::Dot => args.push(Arg::Dot),
            Tok::Dollar => {
                if let Some(Tok::Field(f)) = toks.get(*pos) {
                    *pos += 1;
                    args.push(Arg::Sub(vec![Command {
                        args: vec![Arg::Ident("__root_field".into()), Arg::Str(f.join("."))],
                    }]));
                } else {
                    args.push(Arg::Root);
                }
            }
            Tok::Field(f) => args.push(Arg::Field(f.clone())),
            Tok::Ident(id) => args.push(match id.as_str() {
                "true" => Arg::Bool(true),
                "false" => Arg::Bool(false),
                "nil" => Arg::Nil,
                _ => Arg::Ident(id.clone()),
            }),
        }
    }
    if args.is_empty() {
        bail!("template: missing value for command");
    }
    cmds.push(Command { args });
    Ok(cmds)
}

fn truthy(v: &Option<Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
    }
}

fn exec_nodes(nodes: &[Node], dot: &Value, root: &Value, out: &mut String) -> Result<()> {
    for n in nodes {
        match n {
            Node::Text(t) => out.push_str(t),
            Node::Action(p) => {
                let v = eval_pipeline(p, dot, root)?;
                out.push_str(&print_value(&v));
            }
            Node::If(p, body, alt) => {
                let v = eval_pipeline(p, dot, root)?;
                exec_nodes(if truthy(&v) { body } else { alt }, dot, root, out)?;
            }
            Node::With(p, body, alt) => {
                let v = eval_pipeline(p, dot, root)?;
                if truthy(&v) {
                    exec_nodes(body, v.as_ref().unwrap_or(&Value::Null), root, out)?;
                } else {
                    exec_nodes(alt, dot, root, out)?;
                }
            }
            Node::Range(p, body, alt) => {
                let v = eval_pipeline(p, dot, root)?;
                let items: Vec<Value> = match v {
                    Some(Value::Array(a)) => a,
                    Some(Value::Object(o)) => {
                        let sorted: BTreeMap<String, Value> = o.into_iter().collect();
                        sorted.into_values().collect()
                    }
                    Some(Value::Number(n)) => {
                        (0..n.as_i64().unwrap_or(0)).map(Value::from).collect()
                    }
                    _ => Vec::new(),
                };
                if items.is_empty() {
                    exec_nodes(alt, dot, root, out)?;
                }
                for item in &items {
                    exec_nodes(body, item, root, out)?;
                }
            }
        }
    }
    Ok(())
}

fn lookup(v: &Value, path: &[String]) -> Option<Value> {
    let mut cur = v;
    for key in path {
        cur = match cur {
            Value::Object(o) => o.get(key)?,
            _ => return None,
        };
    }
    Some(cur.clone())
}

fn eval_pipeline(p: &Pipeline, dot: &Value, root: &Value) -> Result<Option<Value>> {
    let mut prev: Option<Option<Value>> = None;
    for cmd in p {
        prev = Some(eval_command(cmd, dot, root, prev)?);
    }
    Ok(prev.unwrap_or(None))
}

fn eval_arg(a: &Arg, dot: &Value, root: &Value) -> Result<Option<Value>> {
    Ok(match a {
        Arg::Dot => Some(dot.clone()),
        Arg::Root => Some(root.clone()),
        Arg::Field(f) => lookup(dot, f),
        Arg::Str(s) => Some(Value::String(s.clone())),
        Arg::Num(n) => Some(num_value(*n)),
        Arg::Bool(b) => Some(Value::Bool(*b)),
        Arg::Nil => Some(Value::Null),
        Arg::Sub(p) => eval_pipeline(p, dot, root)?,
        Arg::Ident(id) => return eval_func(id, Vec::new(), root),
    })
}

fn num_value(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9e15 {
        Value::from(n as i64)
    } else {
        Value::from(n)
    }
}

fn eval_command(
    cmd: &Command,
    dot: &Value,
    root: &Value,
    piped: Option<Option<Value>>,
) -> Result<Option<Value>> {
    let first = &cmd.args[0];
    let rest = &cmd.args[1..];
    let mut args = Vec::with_capacity(rest.len() + 1);
    for a in rest {
        args.push(eval_arg(a, dot, root)?);
    }
    if let Some(p) = piped {
        args.push(p);
    }
    match first {
        Arg::Ident(id) => eval_func(id, args, root),
        // A method call such as `.Label "com.example"` on ps and images rows.
        Arg::Field(f) if !args.is_empty() && f.last().map(String::as_str) == Some("Label") => {
            let key = str_of(&args[0]);
            let mut base = f[..f.len() - 1].to_vec();
            base.push("__labels".into());
            Ok(Some(
                lookup(dot, &base)
                    .and_then(|m| m.get(&key).cloned())
                    .unwrap_or(Value::String(String::new())),
            ))
        }
        _ if !args.is_empty() => bail!("template: can't give arguments to a non-function"),
        other => eval_arg(other, dot, root),
    }
}

fn str_of(v: &Option<Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        other => print_value(other),
    }
}

fn eval_func(name: &str, args: Vec<Option<Value>>, root: &Value) -> Result<Option<Value>> {
    let arg = |i: usize| args.get(i).cloned().unwrap_or(None);
    let s = |v: String| Ok(Some(Value::String(v)));
    match name {
        "__root_field" => {
            let path: Vec<String> = str_of(&arg(0)).split('.').map(String::from).collect();
            Ok(lookup(root, &path))
        }
        "json" => s(serde_json::to_string(&strip_hidden(
            &arg(0).unwrap_or(Value::Null),
        ))?),
        "index" => {
            let mut cur = arg(0);
            for key in args.iter().skip(1) {
                cur = match (&cur, key) {
                    (Some(Value::Object(o)), k) => o.get(&str_of(k)).cloned(),
                    (Some(Value::Array(a)), Some(Value::Number(n))) => {
                        n.as_u64().and_then(|i| a.get(i as usize).cloned())
                    }
                    _ => bail!("template: index of untyped nil"),
                };
            }
            Ok(cur)
        }
        "join" => {
            let sep = str_of(&arg(1));
            match arg(0) {
                Some(Value::Array(a)) => s(a
                    .iter()
                    .map(|v| str_of(&Some(v.clone())))
                    .collect::<Vec<_>>()
                    .join(&sep)),
                other => s(str_of(&other)),
            }
        }
        "split" => Ok(Some(Value::Array(
            str_of(&arg(0))
                .split(str_of(&arg(1)).as_str())
                .map(|x| Value::String(x.into()))
                .collect(),
        ))),
        "upper" => s(str_of(&arg(0)).to_uppercase()),
        "lower" => s(str_of(&arg(0)).to_lowercase()),
        "title" => s(str_of(&arg(0))
            .split(' ')
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_uppercase().chain(c).collect())
                    .unwrap_or_default()
            })
            .collect::<Vec<String>>()
            .join(" ")),
        "len" => Ok(Some(Value::from(match arg(0) {
            Some(Value::Array(a)) => a.len(),
            Some(Value::Object(o)) => o.len(),
            Some(Value::String(x)) => x.len(),
            _ => 0,
        }))),
        "truncate" => {
            let n = arg(1).and_then(|v| v.as_u64()).unwrap_or(0) as usize;
            s(str_of(&arg(0)).chars().take(n).collect())
        }
        "pad" => {
            let l = arg(1).and_then(|v| v.as_u64()).unwrap_or(0) as usize;
            let r = arg(2).and_then(|v| v.as_u64()).unwrap_or(0) as usize;
            s(format!(
                "{}{}{}",
                " ".repeat(l),
                str_of(&arg(0)),
                " ".repeat(r)
            ))
        }
        "println" => s(format!(
            "{}\n",
            args.iter().map(print_value).collect::<Vec<_>>().join(" ")
        )),
        "print" => s(args.iter().map(print_value).collect::<Vec<_>>().join("")),
        "printf" => s(printf(&str_of(&arg(0)), &args[1.min(args.len())..])),
        "eq" => Ok(Some(Value::Bool(args.iter().skip(1).any(|a| *a == arg(0))))),
        "ne" => Ok(Some(Value::Bool(arg(0) != arg(1)))),
        "not" => Ok(Some(Value::Bool(!truthy(&arg(0))))),
        "and" => Ok(args
            .iter()
            .find(|a| !truthy(a))
            .cloned()
            .unwrap_or_else(|| args.last().cloned().unwrap_or(None))),
        "or" => Ok(args
            .iter()
            .find(|a| truthy(a))
            .cloned()
            .unwrap_or_else(|| args.last().cloned().unwrap_or(None))),
        "table" => Ok(arg(0)),
        _ => bail!("template: function {name:?} not defined"),
    }
}

fn printf(fmt: &str, args: &[Option<Value>]) -> String {
    let mut out = String::new();
    let mut it = args.iter();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some('q') => out.push_str(&format!("{:?}", str_of(it.next().unwrap_or(&None)))),
            Some(_) => out.push_str(&str_of(it.next().unwrap_or(&None))),
            None => out.push('%'),
        }
    }
    out
}

/// Go's `%v` of a value: strings raw, maps as `map[k:v]`, slices as `[a b]`.
fn print_value(v: &Option<Value>) -> String {
    match v {
        None => "<no value>".into(),
        Some(v) => go_value(v),
    }
}

fn go_value(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_value).collect::<Vec<_>>().join(" ")),
        Value::Object(o) => {
            let sorted: BTreeMap<&String, &Value> = o.iter().collect();
            format!(
                "map[{}]",
                sorted
                    .iter()
                    .filter(|(k, _)| !k.starts_with("__"))
                    .map(|(k, v)| format!("{k}:{}", go_value(v)))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        }
    }
}

/// Go's tabwriter as docker configures it (minwidth 10, padding 3): cells ended by a tab
/// are aligned; the last cell of a line is not padded.
pub fn tabwrite(text: &str) -> String {
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    let mut widths: Vec<usize> = Vec::new();
    for cells in &lines {
        for (i, c) in cells.iter().enumerate().take(cells.len().saturating_sub(1)) {
            let w = (c.chars().count() + 3).max(10);
            if widths.len() <= i {
                widths.push(w);
            } else if widths[i] < w {
                widths[i] = w;
            }
        }
    }
    let mut out = String::new();
    for cells in &lines {
        for (i, c) in cells.iter().enumerate() {
            out.push_str(c);
            if i + 1 < cells.len() {
                out.push_str(&" ".repeat(widths[i] - c.chars().count()));
            }
        }
        out.push('\n');
    }
    out
}

/// How a list command prints its rows: the default table, a user's `--format`, `json`.
#[derive(Debug)]
pub struct Formatter<'a> {
    /// The format as given (`table …`, `json`, a template), `\t` and `\n` unescaped.
    pub format: String,
    /// Field name → column header, for the `table` prefix.
    pub headers: &'a [(&'a str, &'a str)],
}

impl Formatter<'_> {
    /// Renders all rows to the string to print.
    pub fn render(&self, rows: &[Value]) -> Result<String> {
        let f = self.format.replace("\\t", "\t").replace("\\n", "\n");
        if f.trim() == "json" {
            let mut out = String::new();
            for r in rows {
                out.push_str(&serde_json::to_string(&strip_hidden(r))?);
                out.push('\n');
            }
            return Ok(out);
        }
        let (table, body) = match f.strip_prefix("table") {
            Some(b) => (true, b.trim_matches(' ').to_string()),
            None => (false, f.trim_matches(' ').to_string()),
        };
        let tpl = Template::parse(&body)?;
        let mut out = String::new();
        if table {
            let mut header = serde_json::Map::new();
            for (k, h) in self.headers {
                header.insert((*k).into(), Value::String((*h).into()));
            }
            let hv = Value::Object(header);
            // A field with no header (a nested or unknown one) shows its name upper-cased.
            let line = Template::parse(&header_template(&body))?.execute(&hv)?;
            out.push_str(&line);
            out.push('\n');
        }
        for r in rows {
            out.push_str(&tpl.execute(r)?);
            out.push('\n');
        }
        Ok(if table { tabwrite(&out) } else { out })
    }
}

/// The header row's template: every `{{…}}` whose first field has a header becomes that
/// field; anything else becomes its name in capitals.
fn header_template(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = find_action_end(after).unwrap_or(after.len());
        let inner = after[..end].trim().trim_matches('-').trim();
        let field = inner
            .split_whitespace()
            .find(|w| w.starts_with('.'))
            .unwrap_or("")
            .trim_start_matches('.');
        let first = field.split('.').next().unwrap_or("");
        if !first.is_empty() && !inner.contains(char::is_whitespace) {
            out.push_str(&format!(
                "{{{{or (index . \"{first}\") \"{}\"}}}}",
                first.to_uppercase()
            ));
        } else {
            out.push_str(&first.to_uppercase());
        }
        rest = after.get(end + 2..).unwrap_or("");
    }
    out.push_str(rest);
    out
}

fn strip_hidden(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .filter(|(k, _)| !k.starts_with("__"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Applies `-f` to one inspected object, as `docker inspect -f` does (a newline after each).
pub fn execute_one(format: &str, v: &Value) -> Result<String> {
    let f = format.replace("\\t", "\t").replace("\\n", "\n");
    let mut s = Template::parse(&f)?.execute(v)?;
    s.push('\n');
    Ok(s)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(t: &str, v: &Value) -> String {
        Template::parse(t).unwrap().execute(v).unwrap()
    }

    #[test]
    fn fields_and_nesting() {
        let v = json!({"State": {"Status": "running", "Pid": 42}, "Name": "/web"});
        assert_eq!(run("{{.State.Status}}", &v), "running");
        assert_eq!(run("{{.State.Pid}} {{.Name}}", &v), "42 /web");
        assert_eq!(run("{{.Missing}}", &v), "<no value>");
        assert_eq!(
            run("{{json .State}}", &v),
            r#"{"Pid":42,"Status":"running"}"#
        );
    }

    #[test]
    fn functions() {
        let v = json!({"Labels": {"a.b": "x"}, "L": ["p", "q"], "M": {"k": 1}, "__labels": {"a.b": "x"}});
        assert_eq!(run(r#"{{index .Labels "a.b"}}"#, &v), "x");
        assert_eq!(run(r#"{{.Label "a.b"}}"#, &v), "x");
        assert_eq!(run(r#"{{join .L ", "}}"#, &v), "p, q");
        assert_eq!(run("{{.L}} {{.M}}", &v), "[p q] map[k:1]");
        assert_eq!(run(r#"{{upper (index .Labels "a.b")}}"#, &v), "X");
        assert_eq!(run(r#"{{.L | len}}"#, &v), "2");
        assert_eq!(run(r#"{{printf "%s-%d" "a" 3}}"#, &v), "a-3");
    }

    #[test]
    fn control_flow() {
        let v = json!({"L": ["a", "b"], "M": {"x": {"IP": "1.2.3.4"}}, "T": true, "E": ""});
        assert_eq!(run("{{range .L}}[{{.}}]{{end}}", &v), "[a][b]");
        assert_eq!(run("{{range .M}}{{.IP}}{{end}}", &v), "1.2.3.4");
        assert_eq!(run("{{if .T}}y{{else}}n{{end}}", &v), "y");
        assert_eq!(run("{{if .E}}y{{else if .T}}t{{else}}n{{end}}", &v), "t");
        assert_eq!(run("{{with .M.x}}{{.IP}}{{end}}", &v), "1.2.3.4");
        assert_eq!(run("{{range .L}}{{$.T}}{{end}}", &v), "truetrue");
        assert_eq!(run("a {{- \" b \" -}} c", &v), "a b c");
        assert_eq!(run(r#"{{if eq .E ""}}empty{{end}}"#, &v), "empty");
    }

    #[test]
    fn tabwriter_matches_docker_padding() {
        let out = tabwrite("CONTAINER ID\tIMAGE\tNAMES\nabc\tbusybox\tx\n");
        assert_eq!(
            out,
            "CONTAINER ID   IMAGE     NAMES\nabc            busybox   x\n"
        );
    }

    #[test]
    fn table_and_json_formats() {
        let rows = vec![json!({"ID": "abc", "Names": "web", "__labels": {}})];
        let f = Formatter {
            format: "table {{.ID}}\\t{{.Names}}".into(),
            headers: &[("ID", "CONTAINER ID"), ("Names", "NAMES")],
        };
        assert_eq!(
            f.render(&rows).unwrap(),
            "CONTAINER ID   NAMES\nabc            web\n"
        );
        let f = Formatter {
            format: "json".into(),
            headers: &[],
        };
        assert_eq!(
            f.render(&rows).unwrap(),
            "{\"ID\":\"abc\",\"Names\":\"web\"}\n"
        );
        let f = Formatter {
            format: "{{.Names}}".into(),
            headers: &[],
        };
        assert_eq!(f.render(&rows).unwrap(), "web\n");
    }
}
