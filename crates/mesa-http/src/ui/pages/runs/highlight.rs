//! A run's diff as HTML: file headers, hunks, added, removed and context lines with the
//! classes of `app.css` (`.diff-file`, `.diff-hunk`, `.diff-add`, `.diff-del`, `.diff-ctx`),
//! and light syntax highlighting of each line's code (keywords `.tok-k`, strings `.tok-s`,
//! comments `.tok-c`, numbers `.tok-n`) chosen by the file's extension. Every character of the
//! input is escaped; the only markup is the spans written here.

/// A language's highlighting rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Lang {
    keywords: &'static [&'static str],
    /// Line-comment starts.
    comments: &'static [&'static str],
    /// Keywords match case-insensitively (SQL).
    any_case: bool,
    /// `'` quotes only one character (Rust: lifetimes are not strings).
    char_quotes: bool,
}

const RUST: Lang = Lang {
    keywords: &[
        "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum",
        "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut",
        "pub", "ref", "return", "self", "Self", "static", "struct", "super", "trait", "true",
        "type", "unsafe", "use", "where", "while", "Some", "None", "Ok", "Err",
    ],
    comments: &["//"],
    any_case: false,
    char_quotes: true,
};
const PYTHON: Lang = Lang {
    keywords: &[
        "and", "as", "async", "await", "break", "class", "continue", "def", "elif", "else",
        "except", "False", "finally", "for", "from", "global", "if", "import", "in", "is",
        "lambda", "None", "not", "or", "pass", "raise", "return", "True", "try", "while", "with",
        "yield",
    ],
    comments: &["#"],
    any_case: false,
    char_quotes: false,
};
const JS: Lang = Lang {
    keywords: &[
        "async",
        "await",
        "break",
        "case",
        "catch",
        "class",
        "const",
        "continue",
        "default",
        "else",
        "export",
        "extends",
        "false",
        "finally",
        "for",
        "from",
        "function",
        "if",
        "implements",
        "import",
        "in",
        "instanceof",
        "interface",
        "let",
        "new",
        "null",
        "of",
        "return",
        "switch",
        "this",
        "throw",
        "true",
        "try",
        "type",
        "typeof",
        "undefined",
        "var",
        "while",
        "yield",
    ],
    comments: &["//"],
    any_case: false,
    char_quotes: false,
};
const GO: Lang = Lang {
    keywords: &[
        "break",
        "case",
        "chan",
        "const",
        "continue",
        "default",
        "defer",
        "else",
        "false",
        "for",
        "func",
        "go",
        "if",
        "import",
        "interface",
        "map",
        "nil",
        "package",
        "range",
        "return",
        "select",
        "struct",
        "switch",
        "true",
        "type",
        "var",
    ],
    comments: &["//"],
    any_case: false,
    char_quotes: false,
};
const C_LIKE: Lang = Lang {
    keywords: &[
        "bool",
        "break",
        "case",
        "char",
        "class",
        "const",
        "continue",
        "default",
        "double",
        "else",
        "enum",
        "false",
        "final",
        "float",
        "for",
        "if",
        "import",
        "int",
        "long",
        "new",
        "null",
        "nullptr",
        "package",
        "private",
        "protected",
        "public",
        "return",
        "static",
        "struct",
        "switch",
        "this",
        "true",
        "void",
        "while",
    ],
    comments: &["//"],
    any_case: false,
    char_quotes: false,
};
const SHELL: Lang = Lang {
    keywords: &[
        "case", "do", "done", "elif", "else", "esac", "export", "fi", "for", "function", "if",
        "in", "local", "return", "then", "while",
    ],
    comments: &["#"],
    any_case: false,
    char_quotes: false,
};
const RUBY: Lang = Lang {
    keywords: &[
        "class", "def", "do", "else", "elsif", "end", "false", "if", "module", "nil", "require",
        "return", "self", "true", "unless", "while", "yield",
    ],
    comments: &["#"],
    any_case: false,
    char_quotes: false,
};
const CONFIG: Lang = Lang {
    keywords: &["true", "false", "null"],
    comments: &["#"],
    any_case: false,
    char_quotes: false,
};
const SQL: Lang = Lang {
    keywords: &[
        "and", "as", "by", "create", "delete", "from", "group", "index", "insert", "into", "join",
        "limit", "not", "null", "on", "or", "order", "select", "set", "table", "update", "values",
        "where",
    ],
    comments: &["--"],
    any_case: true,
    char_quotes: false,
};

/// The rules for a path, by its extension; `None` = no highlighting.
fn lang_of(path: &str) -> Option<Lang> {
    let ext = path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase())?;
    Some(match ext.as_str() {
        "rs" => RUST,
        "py" => PYTHON,
        "js" | "mjs" | "cjs" | "jsx" | "ts" | "tsx" => JS,
        "go" => GO,
        "c" | "h" | "cc" | "cpp" | "hpp" | "java" | "cs" | "kt" | "swift" => C_LIKE,
        "sh" | "bash" | "zsh" => SHELL,
        "rb" => RUBY,
        "toml" | "yaml" | "yml" => CONFIG,
        "sql" => SQL,
        _ => return None,
    })
}

/// Appends `text` HTML-escaped.
fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
}

fn span(out: &mut String, class: &str, text: &str) {
    out.push_str("<span class=\"");
    out.push_str(class);
    out.push_str("\">");
    escape_into(out, text);
    out.push_str("</span>");
}

/// The end (exclusive, in chars) of a string starting at `start` with quote `chars[start]`.
fn string_end(chars: &[char], start: usize) -> usize {
    let quote = chars[start];
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            c if c == quote => return i + 1,
            _ => i += 1,
        }
    }
    chars.len()
}

/// True when `chars[at..]` starts with `prefix`.
fn starts_with_at(chars: &[char], at: usize, prefix: &str) -> bool {
    prefix
        .chars()
        .enumerate()
        .all(|(k, p)| chars.get(at + k) == Some(&p))
}

/// One line of code, escaped, with token spans.
fn highlight(code: &str, lang: Lang) -> String {
    let chars: Vec<char> = code.chars().collect();
    let mut out = String::with_capacity(code.len() + 16);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if lang.comments.iter().any(|p| starts_with_at(&chars, i, p)) {
            span(&mut out, "tok-c", &chars[i..].iter().collect::<String>());
            break;
        }
        let quoted = match c {
            '"' | '`' => true,
            '\'' if lang.char_quotes => {
                chars.get(i + 1) == Some(&'\\') || chars.get(i + 2) == Some(&'\'')
            }
            '\'' => true,
            _ => false,
        };
        if quoted {
            let end = string_end(&chars, i);
            span(&mut out, "tok-s", &chars[i..end].iter().collect::<String>());
            i = end;
        } else if c.is_ascii_digit() {
            let end = (i..chars.len())
                .find(|&j| !(chars[j].is_ascii_alphanumeric() || matches!(chars[j], '.' | '_')))
                .unwrap_or(chars.len());
            span(&mut out, "tok-n", &chars[i..end].iter().collect::<String>());
            i = end;
        } else if c.is_alphabetic() || c == '_' {
            let end = (i..chars.len())
                .find(|&j| !(chars[j].is_alphanumeric() || chars[j] == '_'))
                .unwrap_or(chars.len());
            let word: String = chars[i..end].iter().collect();
            let keyword = if lang.any_case {
                lang.keywords.contains(&word.to_ascii_lowercase().as_str())
            } else {
                lang.keywords.contains(&word.as_str())
            };
            if keyword {
                span(&mut out, "tok-k", &word);
            } else {
                escape_into(&mut out, &word);
            }
            i = end;
        } else {
            escape_into(&mut out, &c.to_string());
            i += 1;
        }
    }
    out
}

/// One diff line of `class` with its code highlighted for `lang`.
fn code_line(out: &mut String, class: &str, code: &str, lang: Option<Lang>) {
    out.push_str("<span class=\"");
    out.push_str(class);
    out.push_str("\">");
    match lang {
        Some(l) => out.push_str(&highlight(code, l)),
        None => escape_into(out, code),
    }
    out.push_str("</span>");
}

/// The path of a `diff --git a/x b/y` header (the new side).
fn header_path(line: &str) -> &str {
    line.rsplit_once(" b/").map_or(line, |(_, p)| p)
}

/// A unified diff (as `git diff` writes it) as HTML.
pub(super) fn render_diff(diff: &str) -> String {
    let mut out = String::with_capacity(diff.len() * 2);
    let mut lang = None;
    for line in diff.lines() {
        if let Some(rest) = line.strip_prefix("diff --git ") {
            let path = header_path(rest);
            lang = lang_of(path);
            span(&mut out, "diff-file", path);
        } else if line.starts_with("@@") {
            span(&mut out, "diff-hunk", line);
        } else if line.starts_with("+++ ") || line.starts_with("--- ") || line.starts_with("index ")
        {
            // The file header already names the file.
        } else if let Some(code) = line.strip_prefix('+') {
            code_line(&mut out, "diff-add", code, lang);
        } else if let Some(code) = line.strip_prefix('-') {
            code_line(&mut out, "diff-del", code, lang);
        } else if let Some(code) = line.strip_prefix(' ') {
            code_line(&mut out, "diff-ctx", code, lang);
        } else {
            // Mode lines, "\ No newline at end of file", truncation notes.
            span(&mut out, "diff-hunk", line);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_keywords_strings_comments_and_numbers_get_token_spans() {
        let html = highlight(r#"let x = "a<b"; // 1 < 2"#, RUST);
        assert_eq!(
            html,
            "<span class=\"tok-k\">let</span> x = <span class=\"tok-s\">&quot;a&lt;b&quot;</span>; \
             <span class=\"tok-c\">// 1 &lt; 2</span>"
        );
        assert_eq!(
            highlight("fn f<'a>(n: u8) -> u8 { 42 }", RUST),
            "<span class=\"tok-k\">fn</span> f&lt;&#x27;a&gt;(n: u8) -&gt; u8 { <span class=\"tok-n\">42</span> }"
        );
        assert_eq!(
            highlight("SELECT 1 -- x", SQL),
            "<span class=\"tok-k\">SELECT</span> <span class=\"tok-n\">1</span> <span class=\"tok-c\">-- x</span>"
        );
    }

    #[test]
    fn a_diff_gets_file_hunk_and_line_classes_and_everything_is_escaped() {
        let diff = "diff --git a/src/a.py b/src/a.py\nindex 1..2 100644\n--- a/src/a.py\n+++ b/src/a.py\n\
                    @@ -1,2 +1,2 @@\n-x = 1\n+x = '<script>'\n keep # c\ndiff --git a/n.txt b/n.txt\n+<b>\n";
        let html = render_diff(diff);
        assert!(html.starts_with("<span class=\"diff-file\">src/a.py</span><span class=\"diff-hunk\">@@ -1,2 +1,2 @@</span>"));
        assert!(
            html.contains("<span class=\"diff-del\">x = <span class=\"tok-n\">1</span></span>")
        );
        assert!(html.contains("<span class=\"diff-add\">x = <span class=\"tok-s\">&#x27;&lt;script&gt;&#x27;</span></span>"));
        assert!(
            html.contains("<span class=\"diff-ctx\">keep <span class=\"tok-c\"># c</span></span>")
        );
        assert!(html.ends_with(
            "<span class=\"diff-file\">n.txt</span><span class=\"diff-add\">&lt;b&gt;</span>"
        ));
        assert!(!html.contains("<script") && !html.contains("<b>"));
        assert!(!html.contains("index 1..2"));
    }
}
