//! Acceptance-criteria hints (SPEC §2): warnings on issues whose description lacks the usual
//! acceptance criteria. Warnings never block. Pure text analysis.

use mesa_domain::IssueType;

/// The warnings for an issue of `issue_type` with `description`.
pub(crate) fn acceptance_warnings(issue_type: IssueType, description: &str) -> Vec<String> {
    let section = ac_section(description);
    let needs_section = matches!(issue_type, IssueType::Api | IssueType::Backend);
    let Some(section) = section else {
        return if needs_section {
            vec![format!(
                "issues of type {issue_type} should have an \"## Acceptance Criteria\" section"
            )]
        } else {
            Vec::new()
        };
    };
    let items: Vec<String> = section
        .lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with("- ") || l.starts_with("* ") || starts_numbered(l))
        .map(str::to_lowercase)
        .collect();
    if items.is_empty() {
        return vec!["the acceptance criteria section has no list items".to_owned()];
    }
    let text = items.join("\n");
    let mut missing = Vec::new();
    match issue_type {
        IssueType::Api => {
            if !mentions_endpoint(&text) {
                missing.push("an endpoint with its method (e.g. POST /api/v1/items)");
            }
            if !["request", "response", "body", "payload", "returns"]
                .iter()
                .any(|w| text.contains(w))
            {
                missing.push("the request and response");
            }
            if !mentions_status_code(&text) {
                missing.push("status codes");
            }
        }
        IssueType::Backend => {
            if ![
                "logic", "rule", "compute", "calculat", "validat", "when ", "should",
            ]
            .iter()
            .any(|w| text.contains(w))
            {
                missing.push("the logic");
            }
            if ![
                "persist",
                "store",
                "database",
                "table",
                "migration",
                "saved",
                "db",
            ]
            .iter()
            .any(|w| text.contains(w))
            {
                missing.push("persistence");
            }
            if !["depend", "requires", "uses ", "service", "after "]
                .iter()
                .any(|w| text.contains(w))
            {
                missing.push("dependencies");
            }
        }
        _ => {}
    }
    missing
        .into_iter()
        .map(|m| format!("the acceptance criteria do not mention {m}"))
        .collect()
}

fn starts_numbered(line: &str) -> bool {
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0 && line[digits..].starts_with(". ")
}

/// The text under an `## Acceptance Criteria` or `## AC` heading, up to the next heading of the
/// same or higher level.
fn ac_section(description: &str) -> Option<String> {
    let mut lines = description.lines();
    let mut level = 0;
    for line in lines.by_ref() {
        let t = line.trim();
        let hashes = t.bytes().take_while(|b| *b == b'#').count();
        if hashes >= 2 {
            let title = t[hashes..].trim().trim_end_matches(':').to_lowercase();
            if title == "acceptance criteria" || title == "ac" {
                level = hashes;
                break;
            }
        }
    }
    if level == 0 {
        return None;
    }
    let mut out = String::new();
    for line in lines {
        let t = line.trim();
        let hashes = t.bytes().take_while(|b| *b == b'#').count();
        if hashes > 0 && hashes <= level && t[hashes..].starts_with(' ') {
            break;
        }
        out.push_str(line);
        out.push('\n');
    }
    Some(out)
}

fn mentions_endpoint(text: &str) -> bool {
    ["get ", "post ", "put ", "patch ", "delete "]
        .iter()
        .any(|m| {
            text.match_indices(m)
                .any(|(i, _)| text[i + m.len()..].trim_start_matches('`').starts_with('/'))
        })
}

fn mentions_status_code(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.windows(3).enumerate().any(|(i, w)| {
        matches!(w[0], b'2' | b'3' | b'4' | b'5')
            && w[1].is_ascii_digit()
            && w[2].is_ascii_digit()
            && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric())
            && bytes.get(i + 3).is_none_or(|b| !b.is_ascii_alphanumeric())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_issue_without_section_warns() {
        let w = acceptance_warnings(IssueType::Api, "Add an endpoint");
        assert_eq!(
            w,
            ["issues of type api should have an \"## Acceptance Criteria\" section"]
        );
        assert!(acceptance_warnings(IssueType::Task, "Anything").is_empty());
    }

    #[test]
    fn complete_api_section_has_no_warning() {
        let d = "Intro\n\n## Acceptance Criteria\n- POST /api/v1/items creates an item\n\
                 - request body {name}; response is the item\n- returns 201, 422 on bad input\n";
        assert!(
            acceptance_warnings(IssueType::Api, d).is_empty(),
            "{:?}",
            acceptance_warnings(IssueType::Api, d)
        );
    }

    #[test]
    fn incomplete_sections_name_what_is_missing() {
        let d = "## AC\n- it works\n";
        let w = acceptance_warnings(IssueType::Api, d);
        assert_eq!(w.len(), 3, "{w:?}");
        let w = acceptance_warnings(IssueType::Backend, "## AC\n- persist rows in the table\n");
        assert_eq!(w.len(), 2, "{w:?}");
        let w = acceptance_warnings(
            IssueType::Task,
            "## Acceptance Criteria\nnothing listed\n## Notes\n- x",
        );
        assert_eq!(w, ["the acceptance criteria section has no list items"]);
    }
}
