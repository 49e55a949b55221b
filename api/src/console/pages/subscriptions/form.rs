//! The create and edit form: the API's own request types and rules, their
//! messages next to each field, a secret made shown once.

use super::actions::show_once;
use super::{load, sub_id};
use crate::console::i18n::{field_error, Locale, M};
use crate::console::layout::{csrf, Nav};
use crate::console::pages::shell;
use crate::console::web::{see_other, Failure, FormData, PageResult, Posted, Viewer};
use crate::routes::subscriptions::dto::{CreateSubscriptionRequest, UpdateSubscriptionRequest};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use hookline_application::catalogue::EventTypeView;
use hookline_application::catalogue::ListEventTypes;
use hookline_application::subscriptions::{SubscriptionChanges, SubscriptionView};
use hookline_application::AppError;
use hookline_domain::SignatureScheme;
use maud::{html, Markup};
use std::collections::BTreeMap;

/// The rate-limit field: empty for no limit, else a whole number (its
/// range is checked with the rest of the request).
pub(super) fn rate_limit_of(text: &str) -> Result<Option<i64>, ()> {
    if text.is_empty() {
        return Ok(None);
    }
    text.parse::<i64>().map(Some).map_err(|_| ())
}

/// The catalogue, every page of it.
pub(super) async fn catalogue(
    state: &AppState,
    viewer: &Viewer,
) -> Result<Vec<EventTypeView>, Failure> {
    let tenant = viewer.require_tenant()?;
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..20 {
        let page = state
            .catalogue
            .list(
                tenant,
                ListEventTypes::parse(false, None, Some(100), cursor.as_deref())?,
            )
            .await?;
        out.extend(page.data);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    Ok(out)
}

/// What the form shows: the values entered and each field's error.
#[derive(Debug, Default)]
struct SubForm {
    url: String,
    description: String,
    events: Vec<String>,
    custom_events: String,
    scheme: String,
    headers: String,
    /// Attempts per second, as typed (empty: no limit).
    rate_limit: String,
    errors: BTreeMap<String, String>,
    general: Option<String>,
}

impl SubForm {
    fn of(view: &SubscriptionView) -> Self {
        Self {
            url: view.url.clone(),
            description: view.description.clone().unwrap_or_default(),
            events: view.events.clone(),
            scheme: view.signature_scheme.as_str().to_string(),
            rate_limit: view.rate_limit.map(|n| n.to_string()).unwrap_or_default(),
            ..Self::default()
        }
    }

    /// The values a posted form holds, to show again.
    fn posted(form: &FormData, events: Vec<String>, custom_events: String) -> Self {
        Self {
            url: form.get("url").unwrap_or("").to_string(),
            description: form.get("description").unwrap_or("").to_string(),
            events,
            custom_events,
            scheme: form.get("signature_scheme").unwrap_or("").to_string(),
            headers: form.get("headers").unwrap_or("").to_string(),
            rate_limit: form.get("rate_limit").unwrap_or("").trim().to_string(),
            ..Self::default()
        }
    }

    fn error(&self, field: &str) -> Option<&str> {
        self.errors.get(field).map(String::as_str)
    }
}

/// The event names the form selected: checkboxes, groups selected whole
/// (without JavaScript), and custom names, in order and without repeats.
fn selected_events(form: &FormData, catalogue: &[EventTypeView]) -> (Vec<String>, String) {
    let mut events: Vec<String> = Vec::new();
    let mut push = |e: &str| {
        if !e.is_empty() && !events.iter().any(|x| x == e) {
            events.push(e.to_string());
        }
    };
    for group in form.all("select_all") {
        for t in catalogue.iter().filter(|t| t.group == group) {
            push(&t.name);
        }
    }
    for e in form.all("events") {
        push(e.trim());
    }
    let custom = form.get("custom_events").unwrap_or("").to_string();
    for e in custom.split([',', ' ', '\n', '\r', '\t']) {
        push(e.trim());
    }
    (events, custom)
}

/// `Name: value` lines as a header map.
/// `Name: value` lines; the error is the message (in `locale`) naming the
/// line: not a header line, or a name given twice (any case; the API
/// refuses those too, and a map would keep only the last).
fn parse_headers(locale: Locale, text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut map = BTreeMap::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':').ok_or_else(|| {
            crate::console::i18n::fill(M::HeaderLineInvalid.text(locale), &[line])
        })?;
        let name = name.trim();
        if map.keys().any(|k: &String| k.eq_ignore_ascii_case(name)) {
            return Err(crate::console::i18n::fill(
                M::HeaderTwice.text(locale),
                &[name],
            ));
        }
        map.insert(name.to_string(), value.trim().to_string());
    }
    Ok(map)
}

/// The group's wildcards: one per first name segment its types share.
fn group_wildcards(types: &[&EventTypeView]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in types {
        if let Some((first, _)) = t.name.split_once('.') {
            let w = format!("{first}.*");
            if !out.contains(&w) {
                out.push(w);
            }
        }
    }
    out
}

fn field_msg(id: &str, error: Option<&str>) -> Markup {
    html! { p.error-text id={ (id) "-error" } role="alert" { @if let Some(e) = error { (e) } } }
}

fn render_form(
    viewer: &Viewer,
    catalogue: &[EventTypeView],
    form: &SubForm,
    editing: Option<&SubscriptionView>,
) -> Markup {
    let locale = viewer.locale;
    let t = |m: M| m.text(locale);
    let mut groups: Vec<(String, Vec<&EventTypeView>)> = Vec::new();
    for ty in catalogue {
        match groups.iter_mut().find(|(g, _)| *g == ty.group) {
            Some((_, list)) => list.push(ty),
            None => groups.push((ty.group.clone(), vec![ty])),
        }
    }
    // A wildcard is offered once, in the first group with a type it
    // matches: two checkboxes of one value would let the hidden one keep
    // it ticked when the other is unticked (and share an id).
    let mut wildcards: Vec<Vec<String>> = Vec::with_capacity(groups.len());
    for (_, types) in &groups {
        let offered: Vec<String> = group_wildcards(types)
            .into_iter()
            .filter(|w| !wildcards.iter().flatten().any(|seen| seen == w))
            .collect();
        wildcards.push(offered);
    }
    let known: Vec<String> = catalogue
        .iter()
        .map(|t| t.name.clone())
        .chain(wildcards.iter().flatten().cloned())
        .collect();
    let custom: Vec<&str> = if form.custom_events.is_empty() {
        form.events
            .iter()
            .filter(|e| !known.contains(e))
            .map(String::as_str)
            .collect()
    } else {
        vec![form.custom_events.as_str()]
    };
    let action = match editing {
        Some(s) => format!("/console/subscriptions/{}", s.id),
        None => "/console/subscriptions".to_string(),
    };
    let invalid = |f: &str| form.error(f).map(|_| "true");
    html! {
        @if let Some(g) = &form.general {
            div.notice.error role="alert" { (g) }
        }
        @if !form.errors.is_empty() {
            div.notice.error role="alert" #form-errors {
                p { (t(M::FixErrors)) }
            }
        }
        form method="post" action=(action) novalidate {
            (csrf(viewer))
            // The version the form shows: a save after another change is
            // refused instead of undoing that change.
            @if let Some(v) = editing { input type="hidden" name="_seen" value=(v.updated_at.timestamp_micros()); }
            div.field {
                label for="url" { (t(M::Url)) }
                input #url type="url" name="url" value=(form.url) required data-validate="url"
                    aria-describedby="url-hint url-error" aria-invalid=[invalid("url")]
                    placeholder="https://example.com/webhooks";
                p.hint #url-hint { (t(M::UrlHint)) }
                (field_msg("url", form.error("url")))
            }
            div.field {
                label for="description" { (t(M::Description)) }
                input #description type="text" name="description" value=(form.description)
                    aria-describedby="description-error" aria-invalid=[invalid("description")];
                (field_msg("description", form.error("description")))
            }
            fieldset #events-field aria-describedby="events-hint events-error" {
                legend { (t(M::Events)) }
                p.hint #events-hint { (t(M::EventsHint)) }
                div.groups {
                    @for (gi, (group, types)) in groups.iter().enumerate() {
                        fieldset.group {
                            legend { (group) }
                            div.checks {
                                div.check.all {
                                    input type="checkbox" id={ "all-" (gi) } name="select_all" value=(group) data-select-all=(group);
                                    label for={ "all-" (gi) } { (t(M::SelectAll)) " (" (group) ")" }
                                }
                                @for w in wildcards.get(gi).map(Vec::as_slice).unwrap_or_default() {
                                    div.check.wild {
                                        input type="checkbox" id={ "wild-" (w) } name="events" value=(w) checked[form.events.contains(w)];
                                        label for={ "wild-" (w) } { code { (w) } " " span.muted { (t(M::WildcardHint)) } }
                                    }
                                }
                                @for ty in types {
                                    div.check {
                                        input type="checkbox" id={ "ev-" (ty.name) } name="events" value=(ty.name)
                                            data-group=(group) checked[form.events.contains(&ty.name)];
                                        label for={ "ev-" (ty.name) } { code { (ty.name) } @if ty.deprecated { " " span.badge.muted { (t(M::Deprecated)) } } }
                                    }
                                }
                            }
                        }
                    }
                }
                div.field {
                    label for="custom_events" { (t(M::CustomEvents)) }
                    input #custom_events type="text" name="custom_events" value=(custom.join(", "))
                        placeholder="order.shipped, order.*" aria-describedby="custom_events-hint events-error"
                        aria-invalid=[invalid("events")];
                    p.hint #custom_events-hint { (t(M::CustomEventsHint)) }
                }
                (field_msg("events", form.error("events")))
            }
            @if editing.is_none() {
                div.field {
                    label for="secret" { (t(M::Secret)) }
                    input #secret type="password" name="secret" autocomplete="new-password" data-validate="secret"
                        aria-describedby="secret-hint secret-error" aria-invalid=[invalid("secret")];
                    p.hint #secret-hint { (t(M::SecretHint)) }
                    (field_msg("secret", form.error("secret")))
                }
            }
            div.field {
                label for="signature_scheme" { (t(M::SignatureScheme)) }
                select #signature_scheme name="signature_scheme" aria-describedby="signature_scheme-error" {
                    @for s in SignatureScheme::ALL {
                        option value=(s.as_str()) selected[form.scheme == s.as_str() || (form.scheme.is_empty() && s == SignatureScheme::default())] { (s.as_str()) }
                    }
                }
                (field_msg("signature_scheme", form.error("signature_scheme")))
            }
            div.field {
                label for="rate_limit" { (t(M::RateLimit)) }
                input #rate_limit type="number" name="rate_limit" min="1" max="10000" step="1" value=(form.rate_limit)
                    aria-describedby="rate_limit-hint rate_limit-error" aria-invalid=[invalid("rate_limit")];
                p.hint #rate_limit-hint { (t(M::RateLimitHint)) }
                (field_msg("rate_limit", form.error("rate_limit")))
            }
            div.field {
                label for="headers" { (t(M::CustomHeaders)) }
                textarea #headers name="headers" aria-describedby="headers-hint headers-error" aria-invalid=[invalid("headers")] { (form.headers) }
                p.hint #headers-hint {
                    (t(M::HeadersHint))
                    @if let Some(s) = editing { @if !s.headers.is_empty() { " " (t(M::HeadersKept)) " " @for (i, n) in s.headers.keys().enumerate() { @if i > 0 { ", " } code { (n) } } } }
                }
                (field_msg("headers", form.error("headers")))
                @if editing.is_some_and(|s| !s.headers.is_empty()) {
                    div.check {
                        input #clear_headers type="checkbox" name="clear_headers" value="1";
                        label for="clear_headers" { (t(M::ClearHeaders)) }
                    }
                }
            }
            div.actions {
                button type="submit" { @if editing.is_some() { (t(M::SaveChanges)) } @else { (t(M::CreateSubscription)) } }
                a.button.secondary href=(editing.map_or_else(|| "/console/subscriptions".to_string(), |s| format!("/console/subscriptions/{}", s.id))) { (t(M::Cancel)) }
            }
        }
    }
}

/// `GET /console/subscriptions/new`.
pub async fn new_form(State(state): State<AppState>, viewer: Viewer, uri: Uri) -> PageResult {
    if !viewer.can_create() {
        return Err(viewer.refuse_create());
    }
    let catalogue = catalogue(&state, &viewer).await?;
    let t = |m: M| viewer.t(m);
    let content = html! {
        h1 { (t(M::NewSubscription)) }
        (render_form(&viewer, &catalogue, &SubForm::default(), None))
    };
    Ok(shell(
        &state,
        &viewer,
        t(M::NewSubscription),
        Nav::Subscriptions,
        &uri,
        content,
    )
    .await)
}

/// The validation errors of an application error, by field (`None` when
/// it is not about fields).
/// The form's fields a request field belongs to: `events[0]` is the
/// events field, `headers.X-Bad` the headers field.
const FORM_FIELDS: [&str; 7] = [
    "url",
    "description",
    "events",
    "secret",
    "signature_scheme",
    "rate_limit",
    "headers",
];

fn form_field(field: &str) -> &str {
    let base = field.split(['[', '.']).next().unwrap_or(field);
    FORM_FIELDS
        .into_iter()
        .find(|f| *f == base)
        .unwrap_or("general")
}

/// The first error of each form field (`general` for one the form has no
/// place for).
fn field_errors(locale: Locale, e: &AppError) -> Option<BTreeMap<String, String>> {
    match e {
        AppError::Validation(list) => {
            let mut errors = BTreeMap::new();
            for v in list {
                errors
                    .entry(form_field(&v.field).to_string())
                    .or_insert_with(|| field_error(locale, v));
            }
            Some(errors)
        }
        _ => None,
    }
}

/// The form again with the errors already put in `form`, answered 400.
async fn field_refused(
    state: &AppState,
    viewer: &Viewer,
    uri: &Uri,
    form: SubForm,
    editing: Option<&SubscriptionView>,
) -> PageResult {
    form_failed(
        state,
        viewer,
        uri,
        form,
        AppError::Validation(vec![]),
        editing,
    )
    .await
    .map(|mut r| {
        *r.status_mut() = StatusCode::BAD_REQUEST;
        r
    })
}

async fn form_failed(
    state: &AppState,
    viewer: &Viewer,
    uri: &Uri,
    mut form: SubForm,
    e: AppError,
    editing: Option<&SubscriptionView>,
) -> PageResult {
    let catalogue = catalogue(state, viewer).await?;
    let status = match field_errors(viewer.locale, &e) {
        Some(mut errors) => {
            // The console's own errors (put in `form` before) are kept.
            if let Some(general) = errors.remove("general") {
                form.general.get_or_insert(general);
            }
            for (field, error) in errors {
                form.errors.entry(field).or_insert(error);
            }
            StatusCode::BAD_REQUEST
        }
        None => {
            let f = Failure::from(e);
            form.general =
                Some(crate::console::i18n::error_message(viewer.locale, &f.code).to_string());
            f.status
        }
    };
    let title = if editing.is_some() {
        M::EditSubscription
    } else {
        M::NewSubscription
    };
    let content = html! {
        h1 { (viewer.t(title)) }
        (render_form(viewer, &catalogue, &form, editing))
    };
    let mut r = shell(
        state,
        viewer,
        viewer.t(title),
        Nav::Subscriptions,
        uri,
        content,
    )
    .await;
    *r.status_mut() = status;
    Ok(r)
}

/// What both forms read from a post: the events chosen, the form to show
/// again, and the rate limit (`None`, with the error on the form, when it
/// is not a whole number).
async fn read_posted(
    state: &AppState,
    viewer: &Viewer,
    form: &FormData,
) -> Result<(Vec<String>, SubForm, Option<Option<i64>>), Failure> {
    let catalogue = catalogue(state, viewer).await?;
    let (events, custom) = selected_events(form, &catalogue);
    let mut shown = SubForm::posted(form, events.clone(), custom);
    let rate_limit = rate_limit_of(&shown.rate_limit).ok();
    if rate_limit.is_none() {
        shown.errors.insert(
            "rate_limit".into(),
            viewer.t(M::RateLimitInvalid).to_string(),
        );
    }
    Ok((events, shown, rate_limit))
}

/// `POST /console/subscriptions`.
pub async fn create(State(state): State<AppState>, uri: Uri, post: Posted) -> PageResult {
    let Posted { viewer, form } = post;
    if !viewer.can_create() {
        return Err(viewer.refuse_create());
    }
    let ctx = viewer.ctx()?;
    let (events, mut shown, rate_limit) = read_posted(&state, &viewer, &form).await?;
    // The console's own checks (rate limit, header lines) do not hide the
    // others: a field they refuse is left out and the rest is checked too.
    let headers = match parse_headers(viewer.locale, &shown.headers) {
        Ok(h) => Some(h),
        Err(message) => {
            shown.errors.insert("headers".into(), message);
            None
        }
    };
    let own_checks_passed = shown.errors.is_empty();
    let request = CreateSubscriptionRequest {
        url: Some(shown.url.clone()),
        events: Some(events),
        event: None,
        secret: form
            .get("secret")
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        headers: Some(headers.unwrap_or_default()),
        description: Some(shown.description.clone()),
        signature_scheme: form.text("signature_scheme"),
        payload_format: None,
        rate_limit: rate_limit.flatten(),
    };
    let result = match request.into_command(state.subscriptions.allow_list()) {
        Ok(_) if !own_checks_passed => {
            return field_refused(&state, &viewer, &uri, shown, None).await
        }
        Ok(command) => state.subscriptions.create(&ctx, command).await,
        Err(e) => Err(e),
    };
    let created = match result {
        Ok(c) => c.value,
        Err(e) => return form_failed(&state, &viewer, &uri, shown, e, None).await,
    };
    Ok(show_once(&state, &viewer, created, true))
}

/// `GET /console/subscriptions/{id}/edit`.
pub async fn edit_form(
    State(state): State<AppState>,
    viewer: Viewer,
    uri: Uri,
    Path(id): Path<String>,
) -> PageResult {
    if !viewer.can_write() {
        return Err(Failure::new(StatusCode::FORBIDDEN, "read_only"));
    }
    let view = load(&state, &viewer, sub_id(&id)?).await?;
    let catalogue = catalogue(&state, &viewer).await?;
    let content = html! {
        h1 { (viewer.t(M::EditSubscription)) }
        (render_form(&viewer, &catalogue, &SubForm::of(&view), Some(&view)))
    };
    Ok(shell(
        &state,
        &viewer,
        viewer.t(M::EditSubscription),
        Nav::Subscriptions,
        &uri,
        content,
    )
    .await)
}

/// `POST /console/subscriptions/{id}`: saves the edit form.
pub async fn update(
    State(state): State<AppState>,
    uri: Uri,
    Path(id): Path<String>,
    post: Posted,
) -> PageResult {
    let Posted { viewer, form } = post;
    let id = sub_id(&id)?;
    let current = load(&state, &viewer, id).await?;
    // The version the form was made from: the update is refused in the
    // same command that would record it when the subscription changed
    // since (two saves at once cannot both pass).
    let seen = form
        .get("_seen")
        .and_then(|seen| seen.parse::<i64>().ok())
        .and_then(chrono::DateTime::from_timestamp_micros)
        .ok_or_else(|| Failure::new(StatusCode::BAD_REQUEST, "stale_form"))?;
    let ctx = viewer.ctx()?;
    let (events, mut shown, rate_limit) = read_posted(&state, &viewer, &form).await?;
    if seen.timestamp_micros() != current.updated_at.timestamp_micros() {
        // Nothing is saved; what was typed is shown again, on a form of
        // the current version, so the user decides with both in view.
        shown.errors.clear();
        shown.general = Some(viewer.t(M::ErrChangedMeanwhileKept).to_string());
        return form_failed(
            &state,
            &viewer,
            &uri,
            shown,
            AppError::Validation(vec![]),
            Some(&current),
        )
        .await
        .map(|mut r| {
            *r.status_mut() = StatusCode::CONFLICT;
            r
        });
    }
    let headers = if form.checked("clear_headers") {
        Some(None)
    } else if shown.headers.trim().is_empty() {
        None
    } else {
        match parse_headers(viewer.locale, &shown.headers) {
            Ok(h) => Some(Some(h)),
            Err(message) => {
                shown.errors.insert("headers".into(), message);
                None
            }
        }
    };
    let own_checks_passed = shown.errors.is_empty();
    // As typed, as on create (trimming changed an unchanged description
    // and recorded an update); a blank field removes it.
    let description = shown.description.clone();
    let request = UpdateSubscriptionRequest {
        url: Some(shown.url.clone()),
        events: Some(events),
        headers,
        description: Some((!description.trim().is_empty()).then_some(description)),
        signature_scheme: form.text("signature_scheme"),
        secret: None,
        // An empty field removes the limit.
        rate_limit: rate_limit.map(Some).unwrap_or_default(),
    };
    let result = match request.into_changes(id, state.subscriptions.allow_list()) {
        Ok(_) if !own_checks_passed => {
            return field_refused(&state, &viewer, &uri, shown, Some(&current)).await
        }
        Ok(changes) => {
            let changes = SubscriptionChanges {
                unchanged_since: Some(seen),
                ..changes
            };
            state.subscriptions.update(&ctx, id, changes).await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => Ok(see_other(&format!(
            "/console/subscriptions/{id}?done=updated"
        ))),
        Err(e) => form_failed(&state, &viewer, &uri, shown, e, Some(&current)).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookline_domain::ValidationError;

    #[test]
    fn request_fields_belong_to_the_forms_fields_and_the_first_error_of_each_is_shown() {
        assert_eq!(form_field("events[3]"), "events");
        assert_eq!(form_field("headers.X Bad"), "headers");
        assert_eq!(form_field("rate_limit"), "rate_limit");
        assert_eq!(form_field("payload_format"), "general");
        let e = AppError::Validation(vec![
            ValidationError::new("events[0]", "'<b>.x' is not a valid event name"),
            ValidationError::new("events[1]", "second"),
            ValidationError::new("headers.Host", "is not allowed"),
        ]);
        let errors = field_errors(Locale::En, &e).unwrap();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors["events"].contains("not a valid event name"));
        assert!(errors["headers"].contains("not allowed"));
    }
}
