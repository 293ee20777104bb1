//! Markdown to safe HTML for descriptions, comments and wiki pages (SPEC §13): CommonMark with
//! tables, strikethrough and task lists, then sanitized with ammonia, so no raw HTML, script or
//! `javascript:` link survives. `[[slug]]` becomes a wiki link and an issue key (`MESA-12`) a
//! link to the issue.

use std::sync::LazyLock;

use pulldown_cmark::{Options, Parser, html};
use regex::Regex;

static WIKI_LINK: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\[\[([a-z0-9][a-z0-9-]{0,99})\]\]").expect("valid regex"));
static ISSUE_KEY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(^|[\s(\[,;:])([A-Z][A-Z0-9]{1,9}-[1-9][0-9]{0,9})\b").expect("valid regex")
});

static SANITIZER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut b = ammonia::Builder::default();
    b.add_tags(["input"])
        .add_tag_attributes("input", ["type", "checked", "disabled"])
        .add_tag_attributes("code", ["class"])
        .link_rel(Some("noopener noreferrer nofollow"))
        .url_schemes(["http", "https", "mailto"].into_iter().collect());
    b
});

/// Links `[[slug]]` and issue keys in Markdown source (outside code is not distinguished:
/// a key inside inline code stays text because Markdown does not parse links there).
fn link_references(text: &str) -> String {
    let text = WIKI_LINK.replace_all(text, "[$1](/wiki/$1)");
    ISSUE_KEY
        .replace_all(&text, "$1[$2](/issues/$2)")
        .into_owned()
}

/// Markdown → sanitized HTML.
pub(crate) fn render(text: &str) -> String {
    let source = link_references(text);
    let mut options = Options::empty();
    options.insert(Options::ENABLE_TABLES);
    options.insert(Options::ENABLE_STRIKETHROUGH);
    options.insert(Options::ENABLE_TASKLISTS);
    let mut out = String::with_capacity(source.len() * 3 / 2);
    html::push_html(&mut out, Parser::new_ext(&source, options));
    SANITIZER.clean(&out).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_html_and_script_links_are_removed() {
        let out = render(
            "hi <script>alert(1)</script> <img src=x onerror=alert(1)> [x](javascript:alert(1))",
        );
        assert!(!out.contains("<script"), "{out}");
        assert!(!out.contains("onerror"), "{out}");
        assert!(!out.contains("javascript:"), "{out}");
    }

    #[test]
    fn wiki_links_issue_keys_and_task_lists_render() {
        let out = render("See [[deploy-guide]] and MESA-12.\n\n- [x] done\n- [ ] open\n");
        assert!(out.contains(r#"<a href="/wiki/deploy-guide""#), "{out}");
        assert!(out.contains(r#"<a href="/issues/MESA-12""#), "{out}");
        assert!(out.contains(r#"type="checkbox""#), "{out}");
    }

    #[test]
    fn tables_survive_sanitizing() {
        let out = render("| a | b |\n|---|---|\n| 1 | 2 |\n");
        assert!(
            out.contains("<table>") && out.contains("<td>1</td>"),
            "{out}"
        );
    }
}
