//! `/wiki`: the list of pages with search, a page rendered from Markdown, create and edit
//! forms (with a version check), revisions with a line diff, and delete (SPEC §10, §13).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use mesa_core::domain::entity::WikiPage;
use mesa_core::domain::{Markdown, Title, ValidationError, Version, WikiSlug};
use mesa_core::store::PageRequest;
use mesa_core::{ErrorKind, Mesa, SessionUser};
use minijinja::context;
use serde::{Deserialize, Serialize};

use super::form_error;
use crate::AppState;
use crate::api::wiki::{WikiPageDto, WikiRevisionDto};
use crate::ui::diff::line_diff;
use crate::ui::error::UiError;
use crate::ui::session::Board;
use crate::ui::{Ui, view};

/// Pages per list page.
const PAGE_SIZE: u32 = 50;
/// Search hits shown.
const SEARCH_LIMIT: u32 = 20;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/wiki", get(list).post(create))
        .route("/wiki/new", get(new_form))
        .route("/wiki/{slug}", get(show).post(update))
        .route("/wiki/{slug}/edit", get(edit_form))
        .route("/wiki/{slug}/revisions", get(revisions))
        .route("/wiki/{slug}/delete", post(delete))
}

/// A slug from the URL, or 404 (never used as a path on disk).
fn slug_of(text: &str) -> Result<WikiSlug, UiError> {
    WikiSlug::parse(text).map_err(|_| UiError::not_found("no such wiki page"))
}

/// `GET /wiki` query: a search text or a page cursor.
#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    q: Option<String>,
    cursor: Option<String>,
}

/// A search hit as the template shows it.
#[derive(Debug, Serialize)]
struct Hit {
    slug: String,
    title: String,
    /// Safe HTML: escaped text with only `<mark>` highlights.
    snippet: String,
}

/// Turns the store's snippet (escaped text with `<mark>` highlights) into HTML in which the
/// only tags are the `<mark>`/`</mark>` pairs written here: every other `<`, `>` or quote is
/// escaped again (existing entities are kept), and an unclosed highlight is closed.
fn safe_snippet(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len() + 16);
    let mut open = false;
    let mut rest = raw;
    loop {
        let marker = if open { "</mark>" } else { "<mark>" };
        let (text, next) = match rest.find(marker) {
            Some(at) => (&rest[..at], Some(&rest[at + marker.len()..])),
            None => (rest, None),
        };
        out.push_str(&escape_keeping_entities(text));
        match next {
            Some(tail) => {
                out.push_str(marker);
                open = !open;
                rest = tail;
            }
            None => break,
        }
    }
    if open {
        out.push_str("</mark>");
    }
    out
}

/// Escapes markup characters but leaves `&` alone (the text is already entity-encoded).
fn escape_keeping_entities(text: &str) -> String {
    text.replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn list(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
    Query(q): Query<ListQuery>,
) -> Result<Html<String>, UiError> {
    let query = q.q.as_deref().map(str::trim).unwrap_or_default().to_owned();
    let (pages, hits, next) = if query.is_empty() {
        let page = mesa
            .wiki_pages(&PageRequest::new(Some(PAGE_SIZE), q.cursor))
            .await?;
        let pages: Vec<WikiPageDto> = page.items.iter().map(summary_dto).collect();
        let next = page
            .next_cursor
            .map(|c| format!("/wiki?cursor={}", urlencode(&c)));
        (pages, Vec::new(), next)
    } else {
        let hits = mesa
            .search_wiki(&query, SEARCH_LIMIT)
            .await?
            .iter()
            .map(|(p, snippet)| Hit {
                slug: p.slug.to_string(),
                title: p.title.to_string(),
                snippet: safe_snippet(snippet),
            })
            .collect();
        (Vec::new(), hits, None)
    };
    let ctx = context! {
        q => query,
        pages => view(&pages),
        hits => view(&hits),
        next_url => next,
    };
    ui.page(&mesa, &user, "wiki", "pages/wiki.html", ctx).await
}

/// A page for a list: without its (possibly large) content.
fn summary_dto(p: &WikiPage) -> WikiPageDto {
    let mut dto = WikiPageDto::from(p);
    dto.content = String::new();
    dto
}

fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// The create and edit forms' fields.
#[derive(Debug, Default, Deserialize)]
struct WikiForm {
    #[serde(default)]
    title: String,
    #[serde(default)]
    slug: String,
    #[serde(default)]
    content: String,
    /// The version the edit was made on.
    version: Option<i64>,
    #[serde(rename = "_csrf")]
    _csrf: Option<String>,
}

/// What the form template shows: the values, errors by field, and for a conflict the
/// version saved meanwhile.
struct FormView<'a> {
    form: &'a WikiForm,
    /// `None` to create, the page's slug to edit.
    slug: Option<&'a str>,
    errors: Vec<(String, String)>,
    conflict: Option<WikiPageDto>,
}

async fn render_form(
    mesa: &Mesa,
    ui: &Ui,
    user: &SessionUser,
    v: FormView<'_>,
    status: StatusCode,
) -> Result<Response, UiError> {
    let errors: std::collections::BTreeMap<String, String> = v.errors.into_iter().collect();
    let ctx = context! {
        slug => v.slug,
        form => context! {
            title => v.form.title.as_str(),
            slug => v.form.slug.as_str(),
            content => v.form.content.as_str(),
            version => v.form.version,
        },
        errors => view(&errors),
        conflict => view(&v.conflict),
    };
    let html = ui
        .page(mesa, user, "wiki", "pages/wiki_form.html", ctx)
        .await?;
    Ok((status, html).into_response())
}

async fn new_form(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
) -> Result<Response, UiError> {
    let form = WikiForm::default();
    let v = FormView {
        form: &form,
        slug: None,
        errors: Vec::new(),
        conflict: None,
    };
    render_form(&mesa, &ui, &user, v, StatusCode::OK).await
}

/// Errors by field: `(field, message)`.
type FieldErrors = Vec<(String, String)>;

fn field_error(e: ValidationError) -> (String, String) {
    (e.field.to_string(), e.message)
}

/// Parses title and content (and the slug when given), collecting every field's error.
fn parse_form(
    form: &WikiForm,
    with_slug: bool,
) -> Result<(Option<WikiSlug>, Title, Markdown), FieldErrors> {
    let mut errors = Vec::new();
    let title = Title::parse(form.title.trim()).map_err(|mut e| {
        e.field = "title".into();
        errors.push(field_error(e));
    });
    let content = Markdown::parse_field("content", &form.content).map_err(|e| {
        errors.push(field_error(e));
    });
    let slug = match form.slug.trim() {
        s if !with_slug || s.is_empty() => Ok(None),
        s => WikiSlug::parse(s).map(Some).map_err(|mut e| {
            e.field = "slug".into();
            errors.push(field_error(e));
        }),
    };
    match (slug, title, content) {
        (Ok(s), Ok(t), Ok(c)) => Ok((s, t, c)),
        _ => Err(errors),
    }
}

async fn create(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
    Form(form): Form<WikiForm>,
) -> Result<Response, UiError> {
    let (slug, title, content) = match parse_form(&form, true) {
        Ok(parts) => parts,
        Err(errors) => {
            let v = new_view(&form, errors);
            return render_form(&mesa, &ui, &user, v, StatusCode::UNPROCESSABLE_ENTITY).await;
        }
    };
    match mesa
        .create_wiki_page(&user.principal.actor, slug, title, content)
        .await
    {
        Ok(page) => Ok(Redirect::to(&format!("/wiki/{}", page.slug)).into_response()),
        Err(err) => match form_error(&err) {
            Some((status, field, message)) => {
                let field = if status == StatusCode::CONFLICT {
                    "slug".to_owned()
                } else {
                    field
                };
                let v = new_view(&form, vec![(field, message)]);
                render_form(&mesa, &ui, &user, v, status).await
            }
            None => Err(err.into()),
        },
    }
}

/// The create form with `errors`.
fn new_view(form: &WikiForm, errors: Vec<(String, String)>) -> FormView<'_> {
    FormView {
        form,
        slug: None,
        errors,
        conflict: None,
    }
}

async fn show(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
    Path(slug): Path<String>,
) -> Result<Html<String>, UiError> {
    let page = mesa.wiki_page(&slug_of(&slug)?).await?;
    let ctx = context! { wiki => view(&WikiPageDto::from(&page)) };
    ui.page(&mesa, &user, "wiki", "pages/wiki_page.html", ctx)
        .await
}

async fn edit_form(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
    Path(slug): Path<String>,
) -> Result<Response, UiError> {
    let page = mesa.wiki_page(&slug_of(&slug)?).await?;
    let form = WikiForm {
        title: page.title.to_string(),
        slug: page.slug.to_string(),
        content: page.content.clone(),
        version: Some(page.version.0),
        _csrf: None,
    };
    let v = FormView {
        form: &form,
        slug: Some(page.slug.as_str()),
        errors: Vec::new(),
        conflict: None,
    };
    render_form(&mesa, &ui, &user, v, StatusCode::OK).await
}

async fn update(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
    Path(slug): Path<String>,
    Form(mut form): Form<WikiForm>,
) -> Result<Response, UiError> {
    let slug = slug_of(&slug)?;
    let (_, title, content) = match parse_form(&form, false) {
        Ok(parts) => parts,
        Err(errors) => {
            let v = FormView {
                form: &form,
                slug: Some(slug.as_str()),
                errors,
                conflict: None,
            };
            return render_form(&mesa, &ui, &user, v, StatusCode::UNPROCESSABLE_ENTITY).await;
        }
    };
    let expected = form.version.map(Version);
    let result = mesa
        .update_wiki_page(
            &user.principal.actor,
            &slug,
            Some(title),
            Some(content),
            expected,
        )
        .await;
    let err = match result {
        Ok(page) => return Ok(Redirect::to(&format!("/wiki/{}", page.slug)).into_response()),
        Err(err) => err,
    };
    if err.kind() == ErrorKind::StaleVersion {
        // Someone saved meanwhile: keep this person's text in the form, show the other text,
        // and let a second save (now on the current version) overwrite it deliberately.
        let current = mesa.wiki_page(&slug).await?;
        form.version = Some(current.version.0);
        let message = format!(
            "{} saved this page meanwhile (version {}); your text is kept below. \
             Compare, then save again to replace their version.",
            current.updated_by, current.version.0
        );
        let v = FormView {
            form: &form,
            slug: Some(slug.as_str()),
            errors: vec![("form".to_owned(), message)],
            conflict: Some(WikiPageDto::from(&current)),
        };
        return render_form(&mesa, &ui, &user, v, StatusCode::CONFLICT).await;
    }
    match form_error(&err) {
        Some((status, field, message)) => {
            let v = FormView {
                form: &form,
                slug: Some(slug.as_str()),
                errors: vec![(field, message)],
                conflict: None,
            };
            render_form(&mesa, &ui, &user, v, status).await
        }
        None => Err(err.into()),
    }
}

/// `GET /wiki/{slug}/revisions?v=N`: which revision to diff against its predecessor.
#[derive(Debug, Default, Deserialize)]
struct RevisionQuery {
    v: Option<i64>,
}

async fn revisions(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
    Path(slug): Path<String>,
    Query(q): Query<RevisionQuery>,
) -> Result<Html<String>, UiError> {
    let slug = slug_of(&slug)?;
    let page = mesa.wiki_page(&slug).await?;
    let revs = mesa.wiki_revisions(&slug).await?;
    // Newest first: the selected revision and the one before it.
    let at =
        q.v.and_then(|v| revs.iter().position(|r| r.version.0 == v))
            .unwrap_or(0);
    let diff = revs.get(at).map(|r| {
        let before = revs.get(at + 1).map_or("", |p| p.content.as_str());
        context! {
            version => r.version.0,
            previous => revs.get(at + 1).map(|p| p.version.0),
            lines => view(&line_diff(before, &r.content)),
        }
    });
    let list: Vec<WikiRevisionDto> = revs
        .iter()
        .map(|r| {
            let mut dto = WikiRevisionDto::from(r);
            dto.content = String::new();
            dto
        })
        .collect();
    let ctx = context! {
        wiki => view(&summary_dto(&page)),
        revisions => view(&list),
        diff => diff,
    };
    ui.page(&mesa, &user, "wiki", "pages/wiki_revisions.html", ctx)
        .await
}

async fn delete(
    State(mesa): State<Mesa>,
    Board(user): Board,
    Path(slug): Path<String>,
) -> Result<Response, UiError> {
    mesa.delete_wiki_page(&user.principal.actor, &slug_of(&slug)?)
        .await?;
    Ok(Redirect::to("/wiki").into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippets_keep_only_their_own_marks() {
        assert_eq!(
            safe_snippet("a <mark>b</mark> &lt;i&gt;"),
            "a <mark>b</mark> &lt;i&gt;"
        );
        assert_eq!(
            safe_snippet("<script>x</script> <mark>y"),
            "&lt;script&gt;x&lt;/script&gt; <mark>y</mark>"
        );
    }
}
