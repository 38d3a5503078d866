//! `.dockerignore`, with Docker's rules (moby's ignorefile and patternmatcher): one pattern per
//! line, `#` comments, blanks trimmed, paths cleaned and made relative (`/a` is `a`), `!`
//! re-includes, the last matching pattern wins, and a pattern that matches a directory
//! excludes everything under it.

use crate::glob::Pattern;

/// The patterns of a `.dockerignore`.
#[derive(Debug, Clone, Default)]
pub struct Ignore {
    patterns: Vec<(Pattern, bool)>,
    /// The cleaned lines, `!` kept (for the record and for error messages).
    pub lines: Vec<String>,
}

impl Ignore {
    /// Parses a `.dockerignore`; a malformed pattern is an error naming its line.
    pub fn parse(text: &str) -> Result<Ignore, String> {
        let mut out = Ignore::default();
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        for (n, line) in text.lines().enumerate() {
            let mut p = line.trim();
            if p.is_empty() || p.starts_with('#') {
                continue;
            }
            let exclusion = p.starts_with('!');
            if exclusion {
                p = p[1..].trim();
            }
            if p.is_empty() {
                continue;
            }
            let mut cleaned = clean(p);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
            let pat = Pattern::new(&cleaned, true)
                .map_err(|e| format!(".dockerignore line {}: {e}", n + 1))?;
            out.lines.push(if exclusion {
                format!("!{cleaned}")
            } else {
                cleaned
            });
            out.patterns.push((pat, exclusion));
        }
        Ok(out)
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether `path` (relative to the context, `/`-separated, clean) is excluded: by a
    /// pattern on itself or on one of its parent directories; later patterns win.
    pub fn excludes(&self, path: &str) -> bool {
        let mut matched = false;
        let parents: Vec<&str> = match path.rfind('/') {
            Some(i) => path[..i].split('/').collect(),
            None => Vec::new(),
        };
        for (pat, exclusion) in &self.patterns {
            // An exclusion can only change a match, an inclusion only a non-match.
            if *exclusion != matched {
                continue;
            }
            let mut hit = pat.matches(path);
            if !hit {
                for i in 0..parents.len() {
                    if pat.matches(&parents[..=i].join("/")) {
                        hit = true;
                        break;
                    }
                }
            }
            if hit {
                matched = !exclusion;
            }
        }
        matched
    }
}

/// Go's `filepath.Clean` for `/`-separated paths.
pub fn clean(p: &str) -> String {
    let rooted = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            c => out.push(c),
        }
    }
    let body = out.join("/");
    match (rooted, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".to_string(),
        (false, false) => body,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn docker_rules() {
        let i = Ignore::parse(
            "# comment\n  *.log \n/secret/\n!keep.log\nbuild/**\n!build/out/ship\ndocs\n**/tmp\n",
        )
        .unwrap();
        assert!(i.excludes("a.log"));
        assert!(!i.excludes("keep.log"));
        assert!(!i.excludes("x/a.log"), "*.log is for the top level only");
        assert!(
            i.excludes("secret/key"),
            "a directory excludes what is under it"
        );
        assert!(i.excludes("build/a/b"));
        assert!(!i.excludes("build/out/ship"));
        assert!(i.excludes("docs/x/y.md"));
        assert!(i.excludes("a/b/tmp/f"));
        assert!(!i.excludes("Dockerfile"));
        assert_eq!(i.lines[1], "secret");
    }

    #[test]
    fn cleaning() {
        assert_eq!(clean("a/./b/../c/"), "a/c");
        assert_eq!(clean("/../x"), "/x");
        assert_eq!(clean("../x"), "../x");
        assert_eq!(clean(""), ".");
    }
}
