//! Word processing as the Dockerfile reference describes it (and BuildKit's shell lexer does):
//! single quotes are literal, double quotes allow `$` expansion, the escape character quotes
//! the next one, and `$VAR`, `${VAR}`, `${VAR:-word}`, `${VAR-word}`, `${VAR:+word}`,
//! `${VAR+word}`, `${VAR:?message}`, `${VAR?message}` expand from the build's variables.

/// Where the variables of an expansion come from.
pub trait Lookup {
    fn lookup(&self, name: &str) -> Option<&str>;
}

impl Lookup for Vec<(String, String)> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// No variables at all.
#[derive(Debug)]
pub struct NoVars;

impl Lookup for NoVars {
    fn lookup(&self, _name: &str) -> Option<&str> {
        None
    }
}

/// A word that cannot be processed: what is wrong and at which character (0-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WordError {
    pub pos: usize,
    pub message: String,
}

/// Processes one word: quotes removed, escapes applied, variables expanded.
pub fn process_word(s: &str, escape: char, vars: &dyn Lookup) -> Result<String, WordError> {
    let mut lx = Lex::new(s, escape, vars, false);
    let words = lx.run()?;
    Ok(words.into_iter().next().unwrap_or_default())
}

/// Processes a list of words separated by unquoted whitespace (EXPOSE, VOLUME, …).
pub fn process_words(s: &str, escape: char, vars: &dyn Lookup) -> Result<Vec<String>, WordError> {
    Lex::new(s, escape, vars, true).run()
}

/// Splits on unquoted whitespace without processing anything: the raw words, each with its
/// byte offset in `s` (ENV and LABEL split `k=v` pairs this way before expanding them).
pub fn split_raw(s: &str, escape: char) -> Result<Vec<(usize, String)>, WordError> {
    let chars: Vec<(usize, char)> = s.char_indices().collect();
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut start = None;
    let mut quote: Option<(char, usize)> = None;
    let mut i = 0;
    while i < chars.len() {
        let (off, c) = chars[i];
        match quote {
            Some((q, _)) => {
                cur.push(c);
                if c == escape && q == '"' && i + 1 < chars.len() {
                    cur.push(chars[i + 1].1);
                    i += 1;
                } else if c == q {
                    quote = None;
                }
            }
            None if c.is_whitespace() => {
                if let Some(st) = start.take() {
                    out.push((st, std::mem::take(&mut cur)));
                }
            }
            None => {
                start.get_or_insert(off);
                cur.push(c);
                if c == escape && i + 1 < chars.len() {
                    cur.push(chars[i + 1].1);
                    i += 1;
                } else if c == '"' || c == '\'' {
                    quote = Some((c, off));
                }
            }
        }
        i += 1;
    }
    if let Some((q, pos)) = quote {
        return Err(unterminated(q, pos));
    }
    if let Some(st) = start {
        out.push((st, cur));
    }
    Ok(out)
}

fn unterminated(q: char, pos: usize) -> WordError {
    let what = if q == '"' { "double" } else { "single" };
    WordError {
        pos,
        message: format!("unexpected end of statement while looking for matching {what}-quote"),
    }
}

struct Lex<'a> {
    chars: Vec<(usize, char)>,
    i: usize,
    len: usize,
    escape: char,
    vars: &'a dyn Lookup,
    split: bool,
}

impl<'a> Lex<'a> {
    fn new(s: &str, escape: char, vars: &'a dyn Lookup, split: bool) -> Lex<'a> {
        Lex {
            chars: s.char_indices().collect(),
            i: 0,
            len: s.len(),
            escape,
            vars,
            split,
        }
    }

    fn pos(&self) -> usize {
        self.chars.get(self.i).map(|c| c.0).unwrap_or(self.len)
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.i).map(|c| c.1)
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.i += 1;
        }
        c
    }

    fn run(&mut self) -> Result<Vec<String>, WordError> {
        let mut words = Vec::new();
        let mut cur = String::new();
        // A word exists once anything (even an empty pair of quotes) was seen.
        let mut in_word = false;
        while let Some(c) = self.peek() {
            if self.split && c.is_whitespace() {
                self.next();
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
                continue;
            }
            in_word = true;
            self.step(&mut cur, None)?;
        }
        if in_word || !self.split {
            words.push(cur);
        }
        Ok(words)
    }

    /// Consumes one unit (a char, a quoted string, an expansion) into `out`; inside a
    /// `${…}` word `stop` is the closing brace, which the caller consumes.
    fn step(&mut self, out: &mut String, stop: Option<char>) -> Result<(), WordError> {
        let Some(c) = self.peek() else { return Ok(()) };
        if Some(c) == stop {
            return Ok(());
        }
        match c {
            '\'' => self.single_quote(out),
            '"' => self.double_quote(out),
            '$' => self.dollar(out),
            c if c == self.escape => {
                self.next();
                match self.next() {
                    Some(n) => out.push(n),
                    None => out.push(c),
                }
                Ok(())
            }
            c => {
                self.next();
                out.push(c);
                Ok(())
            }
        }
    }

    fn single_quote(&mut self, out: &mut String) -> Result<(), WordError> {
        let start = self.pos();
        self.next();
        loop {
            match self.next() {
                None => return Err(unterminated('\'', start)),
                Some('\'') => return Ok(()),
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quote(&mut self, out: &mut String) -> Result<(), WordError> {
        let start = self.pos();
        self.next();
        loop {
            match self.peek() {
                None => return Err(unterminated('"', start)),
                Some('"') => {
                    self.next();
                    return Ok(());
                }
                Some('$') => self.dollar(out)?,
                Some(c) if c == self.escape => {
                    self.next();
                    match self.peek() {
                        Some(n) if n == '"' || n == '$' || n == self.escape => {
                            self.next();
                            out.push(n);
                        }
                        _ => out.push(c),
                    }
                }
                Some(c) => {
                    self.next();
                    out.push(c);
                }
            }
        }
    }

    fn dollar(&mut self, out: &mut String) -> Result<(), WordError> {
        let start = self.pos();
        self.next();
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                out.push('$');
            } else if let Some(v) = self.vars.lookup(&name) {
                out.push_str(v);
            }
            return Ok(());
        }
        self.next();
        let name = self.name();
        if name.is_empty() {
            return Err(WordError {
                pos: start,
                message: "bad substitution: missing variable name after '${'".into(),
            });
        }
        let value = self.vars.lookup(&name).map(str::to_owned);
        match self.next() {
            Some('}') => {
                out.push_str(value.as_deref().unwrap_or(""));
                Ok(())
            }
            Some(c) => {
                let colon = c == ':';
                let modifier = if colon { self.next() } else { Some(c) };
                let Some(m @ ('-' | '+' | '?')) = modifier else {
                    return Err(WordError {
                        pos: start,
                        message: format!(
                            "unsupported modifier ({}) in substitution",
                            modifier.map(String::from).unwrap_or_default()
                        ),
                    });
                };
                let mut word = String::new();
                while self.peek().is_some() && self.peek() != Some('}') {
                    self.step(&mut word, Some('}'))?;
                }
                if self.next() != Some('}') {
                    return Err(missing_brace(start));
                }
                let set = value.is_some();
                let non_empty = value.as_deref().is_some_and(|v| !v.is_empty());
                let present = if colon { non_empty } else { set };
                match m {
                    '-' => out.push_str(if present {
                        value.as_deref().unwrap_or("")
                    } else {
                        &word
                    }),
                    '+' => {
                        if present {
                            out.push_str(&word);
                        }
                    }
                    _ => {
                        if !present {
                            let message = if word.is_empty() {
                                format!("{name}: is not allowed to be unset")
                            } else {
                                format!("{name}: {word}")
                            };
                            return Err(WordError {
                                pos: start,
                                message,
                            });
                        }
                        out.push_str(value.as_deref().unwrap_or(""));
                    }
                }
                Ok(())
            }
            None => Err(missing_brace(start)),
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        if let Some(c) = self.peek() {
            if c.is_ascii_digit() {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    self.next();
                    name.push(d);
                }
                return name;
            }
            if "@*#?-$!0".contains(c) {
                self.next();
                name.push(c);
                return name;
            }
        }
        while let Some(c) = self.peek() {
            if !(c.is_alphanumeric() || c == '_') {
                break;
            }
            self.next();
            name.push(c);
        }
        name
    }
}

fn missing_brace(pos: usize) -> WordError {
    WordError {
        pos,
        message: "missing '}' in variable substitution".into(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn vars() -> Vec<(String, String)> {
        vec![
            ("A".into(), "one".into()),
            ("E".into(), String::new()),
            ("P".into(), "/usr/bin".into()),
        ]
    }

    fn w(s: &str) -> String {
        process_word(s, '\\', &vars()).unwrap()
    }

    #[test]
    fn expansions() {
        assert_eq!(w("$A"), "one");
        assert_eq!(w("${A}x"), "onex");
        assert_eq!(w("${B:-dflt}"), "dflt");
        assert_eq!(w("${E:-dflt}"), "dflt");
        assert_eq!(w("${E-dflt}"), "");
        assert_eq!(w("${A:+set}"), "set");
        assert_eq!(w("${E:+set}"), "");
        assert_eq!(w("${E+set}"), "set");
        assert_eq!(w("${B:-${A}}"), "one");
        assert_eq!(w("$P:/bin"), "/usr/bin:/bin");
        assert_eq!(w("a$"), "a$");
        assert_eq!(w("$1x"), "x");
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(w("'$A'"), "$A");
        assert_eq!(w("\"$A b\""), "one b");
        assert_eq!(w("\\$A"), "$A");
        assert_eq!(w("\"a\\\"b\""), "a\"b");
        assert_eq!(w("\"a\\nb\""), "a\\nb");
        assert_eq!(process_word("`$A", '`', &vars()).unwrap(), "$A");
    }

    #[test]
    fn words_split_on_unquoted_space() {
        let v = process_words("80 \"a b\" '' ${A}/udp", '\\', &vars()).unwrap();
        assert_eq!(v, ["80", "a b", "", "one/udp"]);
        assert!(process_words("   ", '\\', &NoVars).unwrap().is_empty());
    }

    #[test]
    fn errors_have_positions() {
        let e = process_word("ab ${A", '\\', &NoVars).unwrap_err();
        assert_eq!(e.pos, 3);
        assert!(e.message.contains("missing '}'"), "{}", e.message);
        let e = process_word("x \"abc", '\\', &NoVars).unwrap_err();
        assert_eq!(e.pos, 2);
        assert!(e.message.contains("double-quote"));
        let e = process_word("${B:?must be set}", '\\', &NoVars).unwrap_err();
        assert_eq!(e.message, "B: must be set");
        let e = process_word("${A%x}", '\\', &NoVars).unwrap_err();
        assert!(e.message.contains("unsupported modifier"));
    }

    #[test]
    fn raw_split_keeps_quotes() {
        let v = split_raw("a=\"x y\" b='1 2'  c", '\\').unwrap();
        assert_eq!(
            v,
            [
                (0, "a=\"x y\"".to_string()),
                (8, "b='1 2'".to_string()),
                (17, "c".to_string())
            ]
        );
    }
}
