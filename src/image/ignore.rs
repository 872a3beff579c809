//! `.dockerignore` patterns, matched the way the Docker CLI matches them, so a
//! context packed here holds the same files as `docker build` would send.

use regex::Regex;

/// Parsed `.dockerignore` rules; the last rule that matches a path decides.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ignore {
    rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
struct Rule {
    #[cfg_attr(not(test), allow(dead_code))]
    pattern: String,
    regex: Regex,
    /// `!pattern`: puts back what earlier rules excluded.
    include: bool,
}

impl Ignore {
    /// Parses the text of a `.dockerignore`: one pattern per line, `#` comments,
    /// `!` exceptions, leading `/` and `./` ignored.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let mut rules = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (include, pattern) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let pattern = clean(pattern);
            if pattern.is_empty() {
                continue;
            }
            let regex = to_regex(&pattern).map_err(|e| format!(".dockerignore pattern {line:?}: {e}"))?;
            rules.push(Rule {
                pattern,
                regex,
                include,
            });
        }
        Ok(Ignore { rules })
    }

    /// True when `path` (relative, `/`-separated) or one of its parent
    /// directories is excluded and no later exception puts it back.
    pub(crate) fn excludes(&self, path: &str) -> bool {
        let mut excluded = false;
        for rule in &self.rules {
            if rule.include != excluded {
                // This rule cannot change the verdict.
                continue;
            }
            if rule.matches(path) {
                excluded = !rule.include;
            }
        }
        excluded
    }

    /// True when an excluded directory must still be walked because an
    /// exception may put back something inside it.
    pub(crate) fn has_exceptions(&self) -> bool {
        self.rules.iter().any(|r| r.include)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rules as written after cleaning.
    #[cfg(test)]
    pub(crate) fn describe(&self) -> String {
        self.rules
            .iter()
            .map(|r| format!("{}{}", if r.include { "!" } else { "" }, r.pattern))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Rule {
    fn matches(&self, path: &str) -> bool {
        if self.regex.is_match(path) {
            return true;
        }
        // A pattern naming a directory excludes what is inside it.
        let mut parent = path;
        while let Some((up, _)) = parent.rsplit_once('/') {
            if self.regex.is_match(up) {
                return true;
            }
            parent = up;
        }
        false
    }
}

/// `filepath.Clean` without the leading `/`: the CLI treats `/a` and `a` alike.
fn clean(pattern: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in pattern.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

/// Go's `filepath.Match` syntax plus `**` for any number of directories.
fn to_regex(pattern: &str) -> Result<Regex, regex::Error> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::from("^");
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' if chars.get(i + 1) == Some(&'*') => {
                i += 1;
                if chars.get(i + 1) == Some(&'/') {
                    // `**/` also matches no directory at all.
                    i += 1;
                    out.push_str("(.*/)?");
                } else {
                    out.push_str(".*");
                }
            }
            '*' => out.push_str("[^/]*"),
            '?' => out.push_str("[^/]"),
            '\\' if i + 1 < chars.len() => {
                i += 1;
                out.push_str(&regex::escape(&chars[i].to_string()));
            }
            '[' => {
                let end = chars[i + 1..].iter().position(|&c| c == ']').map(|p| p + i + 1);
                match end {
                    Some(end) => {
                        let mut class: String = chars[i + 1..end].iter().collect();
                        if let Some(rest) = class.strip_prefix('^') {
                            class = format!("^{}", rest.replace('\\', "\\\\"));
                        } else {
                            class = class.replace('\\', "\\\\");
                        }
                        out.push('[');
                        out.push_str(&class);
                        out.push(']');
                        i = end;
                    }
                    None => out.push_str("\\["),
                }
            }
            c => out.push_str(&regex::escape(&c.to_string())),
        }
        i += 1;
    }
    out.push('$');
    Regex::new(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignore(text: &str) -> Ignore {
        Ignore::parse(text).unwrap()
    }

    #[test]
    fn plain_names_globs_and_directories() {
        let i = ignore("# build output\ntarget\n*.log\n/secret.txt\ndocs/*.md\n");
        assert!(i.excludes("target"));
        assert!(i.excludes("target/debug/app"), "inside an excluded directory");
        assert!(i.excludes("app.log"));
        assert!(!i.excludes("logs/app.log"), "* does not cross directories");
        assert!(i.excludes("secret.txt"));
        assert!(i.excludes("docs/readme.md"));
        assert!(!i.excludes("docs/deep/readme.md"));
        assert!(!i.excludes("src/main.rs"));
        assert!(!i.excludes("targets"));
    }

    #[test]
    fn double_star_and_exceptions() {
        let i = ignore("**/*.tmp\n*.md\n!README.md\n");
        assert!(i.excludes("a.tmp"), "**/ matches no directory too");
        assert!(i.excludes("a/b/c.tmp"));
        assert!(i.excludes("CHANGES.md"));
        assert!(!i.excludes("README.md"));
        assert!(i.has_exceptions());

        let last_wins = ignore("!keep\n*\n");
        assert!(
            last_wins.excludes("keep"),
            "a later rule overrides an earlier exception"
        );
        let back_in = ignore("data\n!data/schema.sql\n");
        assert!(back_in.excludes("data/rows.csv"));
        assert!(!back_in.excludes("data/schema.sql"));
    }

    #[test]
    fn classes_escapes_and_cleaning() {
        let i = ignore("file[0-9].txt\nq\\*\n./a/../b\n?x\n");
        assert!(i.excludes("file7.txt"));
        assert!(!i.excludes("fileX.txt"));
        assert!(i.excludes("q*"));
        assert!(!i.excludes("qq"));
        assert!(i.excludes("b/c"));
        assert!(i.excludes("ax"));
        assert!(!i.excludes("a/x"));
        assert_eq!(i.describe(), "file[0-9].txt\nq\\*\nb\n?x");
        assert!(ignore("\n# only comments\n").is_empty());
    }
}
