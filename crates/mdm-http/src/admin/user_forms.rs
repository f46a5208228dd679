//! Adding and editing a user, and importing users from CSV — each a plain
//! form whose errors are shown next to the field they concern.

use super::{FormData, Nav, Posted, Signed, Users, fail, tenant_page};
use crate::AppState;
use crate::error::FORM_INVALID;
use crate::pages::{render, see_other};
use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use mdm_core::invites::AddUsersOptions;
use mdm_core::users::{NewUser, User, UserPatch};
use mdm_core::{CoreError, UserId};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/t/{slug}/users/new", get(new_page).post(create))
        .route(
            "/admin/t/{slug}/users/import",
            get(import_page).post(import),
        )
        .route("/admin/t/{slug}/users/{id}/edit", get(edit_page).post(edit))
}

/// Which field an error belongs to, and its text.
#[derive(Default)]
pub struct FieldErrors {
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub password: Option<String>,
    pub form: Option<String>,
}

impl FieldErrors {
    /// Places a domain error next to its field; other errors are not form errors.
    pub fn place(&mut self, e: CoreError) -> Result<(), CoreError> {
        match e {
            CoreError::Invalid { field, message } => {
                match field.as_str() {
                    "email" => self.email = Some(message),
                    "display_name" => self.display_name = Some(message),
                    "password" => self.password = Some(message),
                    _ => self.form = Some(message),
                }
                Ok(())
            }
            CoreError::Conflict {
                code: "user_email_taken",
                message,
            } => {
                self.email = Some(message);
                Ok(())
            }
            other => Err(other),
        }
    }
}

#[derive(Template)]
#[template(path = "admin/user_form.html")]
struct FormPage {
    title: &'static str,
    nav: Nav,
    action: String,
    editing: bool,
    email: String,
    display_name: String,
    enabled: bool,
    invite: bool,
    errors: FieldErrors,
}

fn blank(nav: Nav) -> FormPage {
    FormPage {
        title: "Add user",
        action: format!("{}/users/new", nav.base),
        nav,
        editing: false,
        email: String::new(),
        display_name: String::new(),
        enabled: true,
        invite: true,
        errors: FieldErrors::default(),
    }
}

async fn new_page(State(s): State<AppState>, signed: Signed, Path(slug): Path<String>) -> Response {
    match tenant_page(&s, &signed, &slug, "users").await {
        Ok((_, nav)) => render(StatusCode::OK, &blank(nav)),
        Err(r) => r,
    }
}

async fn create(
    State(s): State<AppState>,
    Posted {
        signed,
        form,
        tenant,
        nav,
        ..
    }: Posted<Users>,
) -> Response {
    let new = NewUser {
        email: form.get("email").to_string(),
        display_name: Some(form.get("display_name").to_string()).filter(|n| !n.is_empty()),
        password: Some(form.raw("password").to_string()).filter(|p| !p.is_empty()),
        enabled: true,
    };
    let options = AddUsersOptions {
        invite: form.checked("invite"),
        temporary_password: None,
    };
    match s
        .core
        .add_users(&signed.actor(), &tenant, vec![new], options)
        .await
    {
        Ok(users) => {
            let to = users.first().map_or_else(
                || format!("/admin/t/{}/users", tenant.slug),
                |u| format!("/admin/t/{}/users/{}", tenant.slug, u.id),
            );
            see_other(&to, None)
        }
        Err(e) => {
            let mut page = blank(nav);
            page.email = form.get("email").to_string();
            page.display_name = form.get("display_name").to_string();
            page.invite = form.checked("invite");
            match page.errors.place(e) {
                Ok(()) => render(FORM_INVALID, &page),
                Err(e) => fail(e),
            }
        }
    }
}

fn edit_form(nav: Nav, user: &User) -> FormPage {
    FormPage {
        title: "Edit user",
        action: format!("{}/users/{}/edit", nav.base, user.id),
        nav,
        editing: true,
        email: user.email.clone(),
        display_name: user.display_name.clone(),
        enabled: user.enabled,
        invite: false,
        errors: FieldErrors::default(),
    }
}

async fn edit_page(
    State(s): State<AppState>,
    signed: Signed,
    Path((slug, id)): Path<(String, String)>,
) -> Response {
    let (tenant, nav) = match tenant_page(&s, &signed, &slug, "users").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Ok(id) = id.parse::<UserId>() else {
        return fail(CoreError::NotFound("user"));
    };
    match s.core.user(&signed.actor(), &tenant, id).await {
        Ok(u) => render(StatusCode::OK, &edit_form(nav, &u)),
        Err(e) => fail(e),
    }
}

async fn edit(
    State(s): State<AppState>,
    Path((_, id)): Path<(String, String)>,
    Posted {
        signed,
        form,
        tenant,
        nav,
        ..
    }: Posted<Users>,
) -> Response {
    let Ok(id) = id.parse::<UserId>() else {
        return fail(CoreError::NotFound("user"));
    };
    let actor = signed.actor();
    let user = match s.core.user(&actor, &tenant, id).await {
        Ok(u) => u,
        Err(e) => return fail(e),
    };
    let patch = UserPatch {
        email: Some(form.get("email").to_string()).filter(|e| *e != user.email),
        display_name: Some(form.get("display_name").to_string())
            .filter(|n| *n != user.display_name),
        password: Some(form.raw("password").to_string()).filter(|p| !p.is_empty()),
        enabled: Some(form.checked("enabled")).filter(|e| *e != user.enabled),
    };
    match s.core.update_user(&actor, &tenant, id, patch).await {
        Ok(u) => see_other(&format!("/admin/t/{}/users/{}", tenant.slug, u.id), None),
        Err(e) => {
            let mut page = edit_form(nav, &user);
            page.email = form.get("email").to_string();
            page.display_name = form.get("display_name").to_string();
            page.enabled = form.checked("enabled");
            match page.errors.place(e) {
                Ok(()) => render(FORM_INVALID, &page),
                Err(e) => fail(e),
            }
        }
    }
}

pub struct RowError {
    pub line: u64,
    pub field: String,
    pub message: String,
}

#[derive(Template)]
#[template(path = "admin/import.html")]
struct ImportPage {
    title: &'static str,
    nav: Nav,
    file_error: Option<String>,
    rows: Vec<RowError>,
    created: Option<usize>,
}

async fn import_page(
    State(s): State<AppState>,
    signed: Signed,
    Path(slug): Path<String>,
) -> Response {
    match tenant_page(&s, &signed, &slug, "users").await {
        Ok((_, nav)) => render(
            StatusCode::OK,
            &ImportPage {
                title: "Import users from CSV",
                nav,
                file_error: None,
                rows: Vec::new(),
                created: None,
            },
        ),
        Err(r) => r,
    }
}

/// The CSV of an upload, or of the text field when no file was chosen.
pub fn csv_of(form: &FormData) -> Option<Vec<u8>> {
    match form.file("csv") {
        Some(f) if !f.is_empty() => Some(f.to_vec()),
        _ => Some(form.raw("csv_text").as_bytes().to_vec()).filter(|t| !t.trim_ascii().is_empty()),
    }
}

async fn import(
    State(s): State<AppState>,
    Posted {
        signed,
        form,
        tenant,
        nav,
        ..
    }: Posted<Users>,
) -> Response {
    let mut page = ImportPage {
        title: "Import users from CSV",
        nav,
        file_error: None,
        rows: Vec::new(),
        created: None,
    };
    let Some(csv) = csv_of(&form) else {
        page.file_error = Some("Choose a CSV file (or paste its contents).".into());
        return render(FORM_INVALID, &page);
    };
    let options = AddUsersOptions {
        invite: form.checked("invite"),
        temporary_password: None,
    };
    match s
        .core
        .import_users_inviting(&signed.actor(), &tenant, &csv, options)
        .await
    {
        Ok(Ok(report)) => {
            page.created = Some(report.created);
            render(StatusCode::OK, &page)
        }
        Ok(Err(rows)) => {
            page.file_error = Some("Nothing was imported: fix these rows and try again.".into());
            page.rows = rows
                .into_iter()
                .map(|r| RowError {
                    line: r.line,
                    field: r.field,
                    message: r.message,
                })
                .collect();
            render(FORM_INVALID, &page)
        }
        Err(CoreError::Invalid { message, .. }) => {
            page.file_error = Some(message);
            render(FORM_INVALID, &page)
        }
        Err(CoreError::Conflict { message, .. }) => {
            page.file_error = Some(format!("Nothing was imported: {message}"));
            render(FORM_INVALID, &page)
        }
        Err(e) => fail(e),
    }
}
