//! The embedded catalog: built-in archetypes (`archetypes/*.md`) and org templates
//! (`archetypes/orgs/*.toml`), compiled into the binary.
//!
//! These are file formats, so they have their own types ([`ArchetypeSpec`], [`OrgTemplate`])
//! that convert to domain values; a test parses every embedded file.

use std::collections::{BTreeMap, BTreeSet};

use include_dir::{Dir, include_dir};
use mesa_domain::{Markdown, Name, Slug, Title};

use crate::error::{CoreError, Result};

static ARCHETYPES: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../../archetypes");

/// An archetype file: TOML front matter between `+++` lines, then the Markdown body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchetypeSpec {
    /// Slug (must match the file name).
    pub slug: Slug,
    /// Title.
    pub title: Title,
    /// One-sentence summary.
    pub summary: String,
    /// The role prompt.
    pub body: Markdown,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FrontMatter {
    slug: String,
    title: String,
    summary: String,
}

impl ArchetypeSpec {
    /// Parses an archetype file. `name` is used in error messages.
    pub fn parse(name: &str, text: &str) -> Result<Self> {
        let bad = |why: String| CoreError::Embedded(format!("archetype {name}: {why}"));
        let text = text.replace("\r\n", "\n");
        let rest = text
            .strip_prefix("+++\n")
            .ok_or_else(|| bad("must start with a +++ front matter line".to_owned()))?;
        let (front, body) = rest
            .split_once("\n+++\n")
            .ok_or_else(|| bad("front matter is not closed by +++".to_owned()))?;
        let fm: FrontMatter = toml::from_str(front).map_err(|e| bad(e.to_string()))?;
        Ok(ArchetypeSpec {
            slug: Slug::parse(&fm.slug).map_err(|e| bad(e.to_string()))?,
            title: Title::parse(&fm.title).map_err(|e| bad(e.to_string()))?,
            summary: fm.summary,
            body: Markdown::parse(body.trim_start_matches('\n')).map_err(|e| bad(e.to_string()))?,
        })
    }
}

/// Every built-in archetype, by slug.
pub fn builtin_archetypes() -> Result<Vec<ArchetypeSpec>> {
    let mut out = Vec::new();
    for file in ARCHETYPES.files() {
        let path = file.path();
        if path.extension().and_then(|e| e.to_str()) != Some("md") {
            continue;
        }
        let name = path.display().to_string();
        let text = file
            .contents_utf8()
            .ok_or_else(|| CoreError::Embedded(format!("archetype {name} is not UTF-8")))?;
        let spec = ArchetypeSpec::parse(&name, text)?;
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        if spec.slug.as_str() != stem {
            return Err(CoreError::Embedded(format!(
                "archetype {name} declares slug {} but the file is named {stem}",
                spec.slug
            )));
        }
        out.push(spec);
    }
    out.sort_by(|a, b| a.slug.cmp(&b.slug));
    Ok(out)
}

/// One agent of an org template.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateAgent {
    /// Slug.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Archetype slug.
    pub archetype: String,
    /// Manager slug; omitted = the CEO.
    #[serde(default)]
    pub reports_to: Option<String>,
    /// Reviewer slug.
    #[serde(default)]
    pub reviewer: Option<String>,
    /// Heartbeats on.
    #[serde(default)]
    pub heartbeat_enabled: bool,
}

/// An org template (SPEC §4.4).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgTemplate {
    /// Template name (`startup`).
    pub name: String,
    /// Human title.
    pub title: String,
    /// What the org is.
    pub description: String,
    /// The agents, CEO first.
    pub agents: Vec<TemplateAgent>,
}

/// A template agent with its values parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedAgent {
    /// Slug.
    pub slug: Slug,
    /// Display name.
    pub name: Name,
    /// Archetype.
    pub archetype: Slug,
    /// Manager slug (`None` only for the CEO).
    pub reports_to: Option<Slug>,
    /// Reviewer slug.
    pub reviewer: Option<Slug>,
    /// Heartbeats on.
    pub heartbeat_enabled: bool,
}

impl OrgTemplate {
    /// Parses a template file and checks it: exactly one CEO, first, reporting to nobody; every
    /// slug valid and unique; every manager and reviewer named in the file; no cycles; no agent
    /// reviews itself; every archetype in `known_archetypes`.
    pub fn parse(text: &str, known_archetypes: &BTreeSet<String>) -> Result<Self> {
        let t: OrgTemplate =
            toml::from_str(text).map_err(|e| CoreError::Embedded(format!("org template: {e}")))?;
        t.plan(known_archetypes)?;
        Ok(t)
    }

    /// The agents in creation order, with reporting lines resolved (missing `reports_to` = CEO).
    pub fn plan(&self, known_archetypes: &BTreeSet<String>) -> Result<Vec<PlannedAgent>> {
        let bad = |why: String| CoreError::Embedded(format!("org template {}: {why}", self.name));
        let ceo = match self.agents.first() {
            Some(a) if a.archetype == "ceo" && a.reports_to.is_none() => a.slug.clone(),
            _ => {
                return Err(bad(
                    "the first agent must be the CEO, reporting to nobody".into()
                ));
            }
        };
        if self.agents.iter().filter(|a| a.archetype == "ceo").count() != 1 {
            return Err(bad(
                "there must be exactly one agent with archetype ceo".into()
            ));
        }
        let slugs: BTreeSet<&str> = self.agents.iter().map(|a| a.slug.as_str()).collect();
        if slugs.len() != self.agents.len() {
            return Err(bad("agent slugs must be unique".into()));
        }
        let mut managers: BTreeMap<&str, &str> = BTreeMap::new();
        let mut out = Vec::with_capacity(self.agents.len());
        for a in &self.agents {
            let parse_slug = |s: &str| Slug::parse(s).map_err(|e| bad(format!("{}: {e}", a.slug)));
            if !known_archetypes.contains(&a.archetype) {
                return Err(bad(format!(
                    "{} has unknown archetype {}",
                    a.slug, a.archetype
                )));
            }
            let reports_to = match (&a.reports_to, a.slug == ceo) {
                (_, true) => None,
                (Some(m), false) => Some(m.clone()),
                (None, false) => Some(ceo.clone()),
            };
            for other in reports_to.iter().chain(a.reviewer.iter()) {
                if !slugs.contains(other.as_str()) {
                    return Err(bad(format!(
                        "{} names {other}, who is not in the template",
                        a.slug
                    )));
                }
            }
            if a.reviewer.as_deref() == Some(a.slug.as_str()) {
                return Err(bad(format!("{} cannot review itself", a.slug)));
            }
            if let Some(m) = &reports_to {
                managers.insert(a.slug.as_str(), self.slug_ref(m));
            }
            out.push(PlannedAgent {
                slug: parse_slug(&a.slug)?,
                name: Name::parse_field("name", &a.name)
                    .map_err(|e| bad(format!("{}: {e}", a.slug)))?,
                archetype: parse_slug(&a.archetype)?,
                reports_to: reports_to.as_deref().map(parse_slug).transpose()?,
                reviewer: a.reviewer.as_deref().map(parse_slug).transpose()?,
                heartbeat_enabled: a.heartbeat_enabled,
            });
        }
        for start in managers.keys() {
            let mut seen = BTreeSet::from([*start]);
            let mut at = *start;
            while let Some(next) = managers.get(at) {
                if !seen.insert(*next) {
                    return Err(bad(format!("reporting lines form a cycle through {start}")));
                }
                at = next;
            }
        }
        Ok(out)
    }

    fn slug_ref<'a>(&'a self, slug: &str) -> &'a str {
        self.agents
            .iter()
            .find(|a| a.slug == slug)
            .map_or("", |a| a.slug.as_str())
    }
}

/// Names of the embedded org templates, sorted.
pub fn template_names() -> Vec<String> {
    let mut names: Vec<String> = ARCHETYPES
        .get_dir("orgs")
        .map(|d| {
            d.files()
                .filter_map(|f| {
                    f.path()
                        .file_stem()
                        .and_then(|s| s.to_str())
                        .map(str::to_owned)
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The embedded org template `name`, parsed and checked against the built-in archetypes.
pub fn org_template(name: &str, known_archetypes: &BTreeSet<String>) -> Result<OrgTemplate> {
    let file = ARCHETYPES
        .get_file(format!("orgs/{name}.toml"))
        .ok_or_else(|| {
            CoreError::Invalid(mesa_domain::ValidationError::new(
                "template",
                format!(
                    "template must be one of {}, got {name:?}",
                    template_names().join(", ")
                ),
            ))
        })?;
    let text = file
        .contents_utf8()
        .ok_or_else(|| CoreError::Embedded(format!("template {name} is not UTF-8")))?;
    OrgTemplate::parse(text, known_archetypes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> BTreeSet<String> {
        builtin_archetypes()
            .unwrap()
            .into_iter()
            .map(|a| a.slug.into_string())
            .collect()
    }

    #[test]
    fn every_builtin_archetype_parses() {
        let all = builtin_archetypes().unwrap();
        assert!(
            all.len() >= 23,
            "SPEC §5.1 asks for at least 23, found {}",
            all.len()
        );
        for slug in [
            "ceo",
            "auditor",
            "architect",
            "backend",
            "frontend",
            "fullstack",
            "devops",
            "qa",
            "designer",
            "product",
            "marketing",
            "sales",
            "support",
            "legal",
            "finance",
            "operations",
            "hr",
            "admin",
            "pr",
            "social-media",
            "design-partner",
            "annoyed-customer",
            "other",
        ] {
            let a = all
                .iter()
                .find(|a| a.slug.as_str() == slug)
                .unwrap_or_else(|| panic!("{slug}"));
            let lines = a.body.as_str().lines().count();
            assert!((10..=60).contains(&lines), "{slug} has {lines} lines");
        }
    }

    #[test]
    fn every_template_parses_and_startup_has_six() {
        let known = known();
        let names = template_names();
        for expected in [
            "startup",
            "dev-team",
            "saas",
            "agency",
            "enterprise",
            "media",
            "blank",
        ] {
            assert!(
                names.iter().any(|n| n == expected),
                "missing template {expected}"
            );
        }
        for name in &names {
            let t = org_template(name, &known).unwrap();
            assert_eq!(&t.name, name);
        }
        let startup = org_template("startup", &known)
            .unwrap()
            .plan(&known)
            .unwrap();
        assert_eq!(startup.len(), 6);
        assert!(
            startup[1..]
                .iter()
                .all(|a| a.reports_to.as_ref().is_some_and(|m| m.as_str() == "ceo"))
        );
        let enterprise = org_template("enterprise", &known)
            .unwrap()
            .plan(&known)
            .unwrap();
        assert!(enterprise.iter().any(|a| a.archetype.as_str() == "auditor"));
        assert_eq!(org_template("blank", &known).unwrap().agents.len(), 1);
    }

    #[test]
    fn broken_templates_are_refused() {
        let known = known();
        let cycle = r#"
            name = "x"
            title = "X"
            description = "x"
            [[agents]]
            slug = "ceo"
            name = "CEO"
            archetype = "ceo"
            [[agents]]
            slug = "a"
            name = "A"
            archetype = "qa"
            reports_to = "b"
            [[agents]]
            slug = "b"
            name = "B"
            archetype = "qa"
            reports_to = "a"
        "#;
        let err = OrgTemplate::parse(cycle, &known).unwrap_err().to_string();
        assert!(err.contains("cycle"), "{err}");
        let unknown = cycle.replace("reports_to = \"a\"", "reports_to = \"zed\"");
        assert!(OrgTemplate::parse(&unknown, &known).is_err());
        assert!(org_template("nope", &known).is_err());
    }
}
