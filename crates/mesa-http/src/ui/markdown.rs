//! Markdown to safe HTML for descriptions, comments and wiki pages (SPEC §13): CommonMark with
//! tables, strikethrough and task lists; raw HTML in the source is shown as text, and the
//! result is sanitized with ammonia as well, so no script or `javascript:` link survives.
//! In text (not in code or inside links), `[[slug]]` becomes a wiki link and an issue key
//! (`MESA-12`) a link to the issue.

use std::sync::LazyLock;

use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, TagEnd, html};
use regex::Regex;

/// `[[slug]]` (group 1) or an issue key (group 2) standing alone.
static REFERENCE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\[\[([a-z0-9][a-z0-9-]{0,99})\]\]|\b([A-Z][A-Z0-9]{1,9}-[1-9][0-9]{0,9})\b")
        .expect("valid regex")
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

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Text with its references linked, as HTML; `None` when it has none.
fn link_references(text: &str) -> Option<String> {
    let mut out = String::new();
    let mut last = 0;
    for caps in REFERENCE.captures_iter(text) {
        let whole = caps.get(0).expect("a match has group 0");
        out.push_str(&escape(&text[last..whole.start()]));
        match (caps.get(1), caps.get(2)) {
            (Some(slug), _) => {
                let slug = slug.as_str();
                out.push_str(&format!("<a href=\"/wiki/{slug}\">{slug}</a>"));
            }
            (None, Some(key)) => {
                let key = key.as_str();
                out.push_str(&format!("<a href=\"/issues/{key}\">{key}</a>"));
            }
            (None, None) => out.push_str(&escape(whole.as_str())),
        }
        last = whole.end();
    }
    if last == 0 {
        return None;
    }
    out.push_str(&escape(&text[last..]));
    Some(out)
}

/// Markdown → sanitized HTML.
pub(crate) fn render(text: &str) -> String {
    let mut options = Options::empty();
    options.insert(Options::ENABLE_TABLES);
    options.insert(Options::ENABLE_STRIKETHROUGH);
    options.insert(Options::ENABLE_TASKLISTS);
    let mut events: Vec<Event<'_>> = Vec::new();
    // Adjacent text events are merged first (the parser splits text at brackets), so a
    // `[[slug]]` is seen whole.
    let mut pending: Option<String> = None;
    let mut link_depth = 0_u32;
    let flush = |pending: &mut Option<String>, events: &mut Vec<Event<'_>>, linkable: bool| {
        if let Some(text) = pending.take() {
            match linkable.then(|| link_references(&text)).flatten() {
                Some(html) => events.push(Event::InlineHtml(CowStr::from(html))),
                None => events.push(Event::Text(CowStr::from(text))),
            }
        }
    };
    for event in Parser::new_ext(text, options) {
        match event {
            // No raw HTML (SPEC §13): tags written in the source show as text.
            Event::Text(t) | Event::Html(t) | Event::InlineHtml(t) => {
                pending.get_or_insert_with(String::new).push_str(&t);
            }
            other => {
                flush(&mut pending, &mut events, link_depth == 0);
                match &other {
                    Event::Start(Tag::Link { .. } | Tag::CodeBlock(_)) => link_depth += 1,
                    Event::End(TagEnd::Link | TagEnd::CodeBlock) => {
                        link_depth = link_depth.saturating_sub(1);
                    }
                    _ => {}
                }
                events.push(other);
            }
        }
    }
    flush(&mut pending, &mut events, link_depth == 0);
    let mut out = String::with_capacity(text.len() * 3 / 2);
    html::push_html(&mut out, events.into_iter());
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
        assert!(!out.contains("<img"), "{out}");
        assert!(!out.contains("javascript:"), "{out}");
        let bold = render("a <b>raw</b> tag");
        assert!(
            bold.contains("&lt;b&gt;raw&lt;/b&gt;"),
            "raw HTML shows as text: {bold}"
        );
    }

    #[test]
    fn wiki_links_issue_keys_and_task_lists_render() {
        let out = render("See [[deploy-guide]] and MESA-12.\n\n- [x] done\n- [ ] open\n");
        assert!(out.contains(r#"<a href="/wiki/deploy-guide""#), "{out}");
        assert!(out.contains(r#"<a href="/issues/MESA-12""#), "{out}");
        assert!(out.contains(r#"type="checkbox""#), "{out}");
    }

    #[test]
    fn references_in_code_and_links_stay_as_written() {
        let out = render(
            "`MESA-3` and [MESA-4](https://x.example) but MESA-5\n\n```\n[[x]] MESA-6\n```\n",
        );
        assert!(out.contains("<code>MESA-3</code>"), "{out}");
        assert!(!out.contains("/issues/MESA-4"), "{out}");
        assert!(out.contains(r#"<a href="/issues/MESA-5""#), "{out}");
        assert!(
            !out.contains("/wiki/x") && !out.contains("/issues/MESA-6"),
            "{out}"
        );
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
