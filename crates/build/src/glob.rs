//! Path patterns: Go's `filepath.Match` (COPY/ADD sources) and, with `**`, the
//! `.dockerignore` dialect of moby's patternmatcher. `*` and `?` never match `/`; `[a-z]`,
//! `[^a]` are classes; the escape `\` makes the next character literal; `**` matches any
//! number of directories (`**/x` also matches `x`; a trailing `**` matches everything).

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Lit(char),
    Any,
    One,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// `**/`: nothing or any path ending in `/`.
    Dirs,
    /// A trailing `**`: anything.
    Rest,
}

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    toks: Vec<Tok>,
}

impl Pattern {
    /// Compiles `p`; `double_star` enables `**`. A malformed class is an error.
    pub fn new(p: &str, double_star: bool) -> Result<Pattern, String> {
        let cs: Vec<char> = p.chars().collect();
        let mut toks = Vec::new();
        let mut i = 0;
        while i < cs.len() {
            match cs[i] {
                '*' if double_star && cs.get(i + 1) == Some(&'*') => {
                    i += 2;
                    if cs.get(i) == Some(&'/') {
                        i += 1;
                    }
                    toks.push(if i >= cs.len() { Tok::Rest } else { Tok::Dirs });
                    continue;
                }
                '*' => toks.push(Tok::Any),
                '?' => toks.push(Tok::One),
                '\\' => {
                    i += 1;
                    toks.push(Tok::Lit(cs.get(i).copied().unwrap_or('\\')));
                }
                '[' => {
                    let (tok, next) = class(&cs, i + 1)
                        .ok_or_else(|| format!("syntax error in pattern {p:?}"))?;
                    toks.push(tok);
                    i = next;
                    continue;
                }
                c => toks.push(Tok::Lit(c)),
            }
            i += 1;
        }
        Ok(Pattern { toks })
    }

    /// Whether the whole of `path` matches.
    pub fn matches(&self, path: &str) -> bool {
        let s: Vec<char> = path.chars().collect();
        match_at(&self.toks, &s)
    }
}

/// Whether `p` has glob characters at all (an unescaped `*`, `?` or `[`).
pub fn has_magic(p: &str) -> bool {
    let mut esc = false;
    for c in p.chars() {
        if esc {
            esc = false;
            continue;
        }
        match c {
            '\\' => esc = true,
            '*' | '?' | '[' => return true,
            _ => {}
        }
    }
    false
}

fn class(cs: &[char], mut i: usize) -> Option<(Tok, usize)> {
    let mut negated = false;
    if matches!(cs.get(i), Some('^') | Some('!')) {
        negated = true;
        i += 1;
    }
    let mut ranges = Vec::new();
    let mut first = true;
    loop {
        let c = *cs.get(i)?;
        if c == ']' && !first {
            return Some((Tok::Class { negated, ranges }, i + 1));
        }
        first = false;
        let lo = if c == '\\' {
            i += 1;
            *cs.get(i)?
        } else {
            c
        };
        i += 1;
        let mut hi = lo;
        if cs.get(i) == Some(&'-') && cs.get(i + 1).is_some_and(|c| *c != ']') {
            hi = if cs[i + 1] == '\\' {
                i += 1;
                *cs.get(i + 1)?
            } else {
                cs[i + 1]
            };
            i += 2;
        }
        ranges.push((lo, hi));
    }
}

fn match_at(toks: &[Tok], s: &[char]) -> bool {
    let Some((t, rest)) = toks.split_first() else {
        return s.is_empty();
    };
    match t {
        Tok::Lit(c) => s.first() == Some(c) && match_at(rest, &s[1..]),
        Tok::One => s.first().is_some_and(|c| *c != '/') && match_at(rest, &s[1..]),
        Tok::Class { negated, ranges } => match s.first() {
            Some(&c) if c != '/' => {
                let inside = ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi);
                inside != *negated && match_at(rest, &s[1..])
            }
            _ => false,
        },
        Tok::Any => {
            for k in 0..=s.len() {
                if match_at(rest, &s[k..]) {
                    return true;
                }
                if k < s.len() && s[k] == '/' {
                    return false;
                }
            }
            false
        }
        Tok::Rest => true,
        Tok::Dirs => {
            if match_at(rest, s) {
                return true;
            }
            (0..s.len()).any(|k| s[k] == '/' && match_at(rest, &s[k + 1..]))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        Pattern::new(p, true).unwrap().matches(s)
    }

    #[test]
    fn go_match_rules() {
        assert!(m("*.txt", "a.txt"));
        assert!(!m("*.txt", "d/a.txt"));
        assert!(m("d/*.txt", "d/a.txt"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "a/c"));
        assert!(m("[a-c]x", "bx"));
        assert!(!m("[^a-c]x", "bx"));
        assert!(m("\\*", "*"));
        assert!(Pattern::new("[a-", false).is_err());
        assert!(has_magic("a/*.go") && !has_magic("a\\*b") && !has_magic("plain/path"));
    }

    #[test]
    fn double_star() {
        assert!(m("**/*.log", "a.log"));
        assert!(m("**/*.log", "x/y/a.log"));
        assert!(m("a/**/b", "a/b"));
        assert!(m("a/**/b", "a/x/y/b"));
        assert!(m("a/**", "a/x/y"));
        assert!(m("**", "anything/at/all"));
        assert!(!m("a/**/b", "ab"));
    }
}
