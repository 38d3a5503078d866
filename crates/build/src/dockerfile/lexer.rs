//! From text to logical lines: parser directives at the top, comments, line continuations
//! (the escape character at the end of a line, trailing blanks allowed) and heredoc bodies.
//! Each logical line remembers where each of its pieces came from, so an error found later
//! at an offset of the joined line is reported at the right line and column.

use super::{Heredoc, ParseError};

/// One instruction's text, joined from its physical lines.
#[derive(Debug, Clone)]
pub(crate) struct Logical {
    pub text: String,
    /// (offset in `text`, 1-based line, 1-based column) of each physical piece.
    segments: Vec<(usize, usize, usize)>,
    pub end_line: usize,
    pub heredocs: Vec<Heredoc>,
}

impl Logical {
    #[cfg(test)]
    pub fn line(&self) -> usize {
        self.segments.first().map(|s| s.1).unwrap_or(1)
    }

    /// Line and column of a byte offset of `text`.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let seg = self
            .segments
            .iter()
            .rev()
            .find(|s| s.0 <= offset)
            .or(self.segments.first());
        match seg {
            Some(&(start, line, col)) => {
                let chars = self
                    .text
                    .get(start..offset.min(self.text.len()))
                    .map(|s| s.chars().count())
                    .unwrap_or(0);
                (line, col + chars)
            }
            None => (1, 1),
        }
    }

    pub fn error(&self, offset: usize, message: impl Into<String>) -> ParseError {
        let (line, column) = self.position(offset);
        ParseError {
            line,
            column,
            message: message.into(),
        }
    }
}

/// The directives and the logical lines of a Dockerfile.
#[derive(Debug)]
pub(crate) struct Lexed {
    pub escape: char,
    pub syntax: Option<String>,
    pub lines: Vec<Logical>,
}

/// Instructions whose lines may carry heredocs.
const HEREDOC_INSTRUCTIONS: [&str; 3] = ["RUN", "COPY", "ADD"];

pub(crate) fn lex(text: &str) -> Result<Lexed, ParseError> {
    let physical: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let mut escape = '\\';
    let mut syntax = None;
    let mut seen_escape = false;
    let mut i = 0;
    // Directives: `# key=value` lines at the very top; the first other line ends them.
    while i < physical.len() {
        let Some((key, value)) = directive(physical[i]) else {
            break;
        };
        let err = |message: String| ParseError {
            line: i + 1,
            column: 1,
            message,
        };
        match key.as_str() {
            "escape" => {
                if seen_escape {
                    return Err(err("only one escape parser directive can be used".into()));
                }
                seen_escape = true;
                escape = match value.as_str() {
                    "\\" => '\\',
                    "`" => '`',
                    other => {
                        return Err(err(format!(
                            "invalid escape token '{other}' does not match ` or \\"
                        )))
                    }
                };
            }
            "syntax" => {
                if syntax.is_some() {
                    return Err(err("only one syntax parser directive can be used".into()));
                }
                syntax = Some(value);
            }
            // `check` and unknown directives are comments to this frontend.
            _ => {}
        }
        i += 1;
    }

    let mut lines = Vec::new();
    while i < physical.len() {
        let raw = physical[i];
        let trimmed = raw.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            i += 1;
            continue;
        }
        let lead = raw.len() - trimmed.len();
        let mut logical = Logical {
            text: String::new(),
            segments: vec![(0, i + 1, lead + 1)],
            end_line: i + 1,
            heredocs: Vec::new(),
        };
        let (piece, mut more) = strip_continuation(trimmed, escape);
        logical.text.push_str(piece);
        i += 1;
        while more && i < physical.len() {
            let next = physical[i];
            let t = next.trim_start();
            i += 1;
            // Comments and blank lines inside a continued instruction are skipped.
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            logical.segments.push((logical.text.len(), i, 1));
            let (piece, again) = strip_continuation(next, escape);
            logical.text.push_str(piece);
            logical.end_line = i;
            more = again;
        }
        let keyword = logical
            .text
            .split(|c: char| c.is_whitespace())
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        if HEREDOC_INSTRUCTIONS.contains(&keyword.as_str()) {
            for (offset, name, strip_tabs, expand) in heredoc_markers(&logical.text, escape) {
                let mut body = String::new();
                let mut closed = false;
                while i < physical.len() {
                    let l = physical[i];
                    i += 1;
                    let l = if strip_tabs {
                        l.trim_start_matches('\t')
                    } else {
                        l
                    };
                    if l == name {
                        closed = true;
                        break;
                    }
                    body.push_str(l);
                    body.push('\n');
                }
                if !closed {
                    return Err(logical.error(
                        offset,
                        format!("unterminated heredoc {name}: no line \"{name}\" ends it"),
                    ));
                }
                logical.end_line = i;
                logical.heredocs.push(Heredoc { name, body, expand });
            }
        }
        lines.push(logical);
    }
    Ok(Lexed {
        escape,
        syntax,
        lines,
    })
}

/// `# key=value` → (lowercased key, value).
fn directive(line: &str) -> Option<(String, String)> {
    let rest = line.trim_start().strip_prefix('#')?;
    let (key, value) = rest.split_once('=')?;
    let key = key.trim();
    if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    if !key.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    Some((key.to_ascii_lowercase(), value.trim().to_string()))
}

/// Removes a trailing escape character (and the blanks after it): (the line, continued?).
fn strip_continuation(line: &str, escape: char) -> (&str, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    match t.strip_suffix(escape) {
        Some(rest) => (rest, true),
        None => (line, false),
    }
}

/// The heredoc markers of a line, outside quotes: (offset, name, `<<-`, unquoted).
fn heredoc_markers(text: &str, escape: char) -> Vec<(usize, String, bool, bool)> {
    let b: Vec<(usize, char)> = text.char_indices().collect();
    let mut out = Vec::new();
    let mut quote: Option<char> = None;
    let mut i = 0;
    while i < b.len() {
        let c = b[i].1;
        if let Some(q) = quote {
            if c == escape && q == '"' {
                i += 1;
            } else if c == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        if c == escape {
            i += 2;
            continue;
        }
        if c == '"' || c == '\'' {
            quote = Some(c);
            i += 1;
            continue;
        }
        if c == '<' && b.get(i + 1).map(|x| x.1) == Some('<') {
            let offset = b[i].0;
            let mut j = i + 2;
            let strip = b.get(j).map(|x| x.1) == Some('-');
            if strip {
                j += 1;
            }
            let (name, expand, end) = marker_name(&b, j);
            if !name.is_empty() {
                out.push((offset, name, strip, expand));
            }
            i = end.max(i + 2);
            continue;
        }
        i += 1;
    }
    out
}

fn marker_name(b: &[(usize, char)], start: usize) -> (String, bool, usize) {
    let mut j = start;
    let mut name = String::new();
    match b.get(j).map(|x| x.1) {
        Some(q @ ('"' | '\'')) => {
            j += 1;
            while let Some(&(_, c)) = b.get(j) {
                j += 1;
                if c == q {
                    return (name, false, j);
                }
                name.push(c);
            }
            (String::new(), false, j)
        }
        // `<<<` is a here-string, not a heredoc.
        Some('<') => (String::new(), true, j),
        _ => {
            while let Some(&(_, c)) = b.get(j) {
                if c.is_whitespace() || "<>|;&()\"'".contains(c) {
                    break;
                }
                name.push(c);
                j += 1;
            }
            (name, true, j)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn directives_comments_and_continuations() {
        let l = lex(
            "# syntax=docker/dockerfile:1\n# escape=`\n\n# c\nRUN a `\n  # inside\n\n  b\nCMD x\n",
        )
        .unwrap();
        assert_eq!(l.escape, '`');
        assert_eq!(l.syntax.as_deref(), Some("docker/dockerfile:1"));
        assert_eq!(l.lines.len(), 2);
        assert_eq!(l.lines[0].text, "RUN a   b");
        assert_eq!(l.lines[0].line(), 5);
        assert_eq!(l.lines[0].end_line, 8);
        assert_eq!(l.lines[0].position(8), (8, 3));
        assert_eq!(l.lines[1].line(), 9);
    }

    #[test]
    fn directives_only_at_the_top() {
        let l = lex("FROM x\n# escape=`\nRUN a \\\n b\n").unwrap();
        assert_eq!(l.escape, '\\');
        assert_eq!(l.lines[1].text, "RUN a  b");
        let e = lex("# escape=x\nFROM a\n").unwrap_err();
        assert_eq!((e.line, e.column), (1, 1));
    }

    #[test]
    fn heredocs() {
        let l =
            lex("RUN <<EOF\necho a\necho b\nEOF\nCOPY <<-\"X\" <<Y /d/\n\tone $A\n\tX\ntwo\nY\n")
                .unwrap();
        assert_eq!(l.lines.len(), 2);
        assert_eq!(l.lines[0].heredocs[0].body, "echo a\necho b\n");
        assert_eq!(l.lines[0].end_line, 4);
        let h = &l.lines[1].heredocs;
        assert_eq!(
            (h[0].name.as_str(), h[0].body.as_str(), h[0].expand),
            ("X", "one $A\n", false)
        );
        assert_eq!(
            (h[1].name.as_str(), h[1].body.as_str(), h[1].expand),
            ("Y", "two\n", true)
        );
        let e = lex("FROM a\nRUN cat <<END\nx\n").unwrap_err();
        assert_eq!((e.line, e.column), (2, 9));
        // Not a heredoc: quoted, or a here-string.
        let l = lex("RUN echo '<<A' <<<x\n").unwrap();
        assert!(l.lines[0].heredocs.is_empty());
    }
}
