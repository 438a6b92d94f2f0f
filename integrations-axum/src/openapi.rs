//! The OpenAPI 3.1 document of the API router: the routes, bodies and route-specific
//! answers come from the handlers' `#[utoipa::path]` annotations (`api.rs`); this module
//! adds what every route shares (the guards' answers, the host's authentication) and the
//! schema of a status item, [`IntegrationView`], whose crate does not depend on utoipa.

use crate::api::{self, ErrorBody};
use crate::{bulk, health};
use integrations_core::{IntegrationStatus, IntegrationView};
use std::borrow::Cow;
use utoipa::openapi::path::{HttpMethod, Operation};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{AdditionalProperties, KnownFormat, SchemaFormat, SchemaType};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::openapi::{ContentBuilder, ObjectBuilder, OpenApi, Ref, RefOr, Schema, Type};
use utoipa::{Modify, PartialSchema, ToSchema};

/// The name of the security scheme every route but `GET /openapi.json` requires.
pub(crate) const SECURITY_SCHEME: &str = "session";

/// The cookie of the example server's demo sign-in, named by the security scheme.
pub(crate) const DEMO_COOKIE: &str = "integrations_session";

/// The prefix the example server (and [`PageConfig::api_base`](crate::PageConfig)) mounts
/// the router under: the document's server.
pub(crate) const DEFAULT_MOUNT: &str = "/api/integrations";

const SERVER_DESCRIPTION: &str = "Where the router is mounted.";

const DESCRIPTION: &str = "\
Connect a signed-in user's accounts on other platforms (OAuth 2.0), see their status, \
refresh and disconnect them. The routes are relative to where the host mounts the router \
(the server below).

**Authentication** is the host's: every route but `GET /openapi.json` needs a signed-in \
user and answers `401 unauthenticated` without one. The `session` scheme describes the \
example server's demo sign-in (`POST /api/session {\"userId\": 1}` sets the cookie); a \
host with other authentication (a bearer token, a proxy header) documents its own.

**Errors** are JSON, `{\"success\": false, \"code\", \"message\"}` (`ApiError`): a stable \
code and the message to show the user, never internal detail. An account of another user \
answers exactly like one that does not exist. Besides the answers each route lists: an \
address under the router that has no route answers `404 not_found`, a route asked with a \
method it does not take `405 method_not_allowed`, and a request that takes too long under \
`integrations_axum::serve` `408 request_timeout`.

**State-changing requests** (`POST`, `DELETE`) must come from the same site \
(`Sec-Fetch-Site: same-origin` or `none`, else an `Origin` matching `Host`; otherwise \
`403 cross_site`), and `POST`s must say `Content-Type: application/json` (otherwise \
`415 unsupported_media_type`), so a cross-site form cannot reach them.";

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Integrations API",
        description = DESCRIPTION,
        license(name = "MIT OR Apache-2.0", identifier = "MIT OR Apache-2.0"),
    ),
    servers((url = "/api/integrations", description = "Where the router is mounted.")),
    paths(
        api::providers,
        api::status,
        api::connect,
        api::callback,
        api::refresh,
        api::disconnect,
        bulk::bulk,
        health::health,
        api::openapi_json,
    ),
    components(schemas(ErrorBody, IntegrationViewSchema, IntegrationStatusSchema)),
    modifiers(&Shared),
    tags(
        (name = "integrations", description = "A user's connected accounts."),
        (name = "operations", description = "How the platforms answer this app."),
        (name = "documentation", description = "This document."),
    )
)]
struct ApiDoc;

/// The document, with `mount` as its server.
pub(crate) fn document(mount: &str) -> OpenApi {
    let mut doc = <ApiDoc as utoipa::OpenApi>::openapi();
    doc.servers = Some(vec![
        utoipa::openapi::server::ServerBuilder::new()
            .url(mount)
            .description(Some(SERVER_DESCRIPTION))
            .build(),
    ]);
    doc
}

/// What every route shares: the security scheme, and the answers of the router's own
/// layers (`guard.rs`) and of the sign-in check, added to each operation they apply to.
struct Shared;

impl Modify for Shared {
    fn modify(&self, doc: &mut OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            SECURITY_SCHEME,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                DEMO_COOKIE,
                "Host-defined: the router asks the host's `Authenticate` who is signed in. \
                 This is the example server's demo sign-in, a signed session cookie that \
                 `POST /api/session` sets; a host describes its own authentication here.",
            ))),
        );
        for item in doc.paths.paths.values_mut() {
            for (method, operation) in [
                (HttpMethod::Get, &mut item.get),
                (HttpMethod::Post, &mut item.post),
                (HttpMethod::Delete, &mut item.delete),
                (HttpMethod::Put, &mut item.put),
                (HttpMethod::Patch, &mut item.patch),
            ] {
                if let Some(operation) = operation {
                    add_shared_answers(method, operation);
                }
            }
        }
    }
}

fn add_shared_answers(method: HttpMethod, operation: &mut Operation) {
    let signed_in = operation.security.as_ref().is_some_and(|s| !s.is_empty());
    let mut shared = vec![
        ("414", "`uri_too_long`: the address is over 8 KiB."),
        (
            "431",
            "`headers_too_large`: the request headers are over 32 KiB.",
        ),
    ];
    if signed_in {
        shared.push(("401", "`unauthenticated`: nobody is signed in."));
    }
    if !matches!(
        method,
        HttpMethod::Get | HttpMethod::Head | HttpMethod::Options
    ) {
        shared.push((
            "403",
            "`cross_site`: the request says it comes from another site (`Sec-Fetch-Site`, \
             `Origin`).",
        ));
    }
    if method == HttpMethod::Post {
        shared.push((
            "415",
            "`unsupported_media_type`: the request does not say `Content-Type: \
             application/json`.",
        ));
    }
    for (status, description) in shared {
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| error_response(description).into());
    }
}

/// An answer with the `ApiError` body.
pub(crate) fn error_response(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(ErrorBody::name())))
                .build(),
        )
        .build()
}

/// The schema of [`IntegrationView`] (a status item), written here because
/// integrations-core does not depend on utoipa. Every field of the view is named below (a
/// new one does not compile until it is described), and a test compares the names with
/// the view's JSON.
pub(crate) struct IntegrationViewSchema;

/// Fails to compile when [`IntegrationView`] gains a field the schema does not describe.
const _: fn(&IntegrationView) = |view| {
    let IntegrationView {
        provider: _,
        provider_account_id: _,
        username: _,
        status: _,
        is_connected: _,
        expires_at: _,
        scope: _,
        metadata: _,
        last_error: _,
        created_at: _,
        updated_at: _,
    } = view;
};

fn string(description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
}

fn nullable_string(description: &str) -> ObjectBuilder {
    string(description).schema_type(SchemaType::from_iter([Type::String, Type::Null]))
}

fn date_time() -> Option<SchemaFormat> {
    Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))
}

impl PartialSchema for IntegrationViewSchema {
    fn schema() -> RefOr<Schema> {
        let properties: [(&str, RefOr<Schema>); 11] = [
            (
                "provider",
                string("The provider id.")
                    .pattern(Some("^[a-z0-9_-]{1,50}$"))
                    .examples(["reddit"])
                    .into(),
            ),
            (
                "providerAccountId",
                string("The platform's account id.")
                    .examples(["t2_1w72"])
                    .into(),
            ),
            (
                "username",
                nullable_string("The handle the platform stated.")
                    .examples(["demo"])
                    .into(),
            ),
            (
                "status",
                Ref::from_schema_name(IntegrationStatusSchema::name()).into(),
            ),
            (
                "isConnected",
                ObjectBuilder::new()
                    .schema_type(Type::Boolean)
                    .description(Some("`status == \"connected\"`."))
                    .into(),
            ),
            (
                "expiresAt",
                nullable_string(
                    "When the stored access token expires: `null` for a token that does not \
                     expire, and for a `needs_reconnect` connection, whose tokens were \
                     cleared.",
                )
                .format(date_time())
                .into(),
            ),
            (
                "scope",
                nullable_string("The granted scopes, space-separated.").into(),
            ),
            (
                "metadata",
                ObjectBuilder::new()
                    .schema_type(Type::Object)
                    .additional_properties(Some(AdditionalProperties::FreeForm(true)))
                    .description(Some(
                        "What the platform's profile returned at connection time, with \
                         `username`.",
                    ))
                    .examples([serde_json::json!({"username": "demo", "karma": 1200})])
                    .into(),
            ),
            (
                "lastError",
                nullable_string(
                    "The user message of the last failed refresh (cleared by a successful \
                     one).",
                )
                .into(),
            ),
            (
                "createdAt",
                string("When the account was connected.")
                    .format(date_time())
                    .into(),
            ),
            (
                "updatedAt",
                string("The last change.").format(date_time()).into(),
            ),
        ];
        let mut object = ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some("One connection as shown to its user: never a token."));
        for (name, schema) in properties {
            object = object.property(name, schema).required(name);
        }
        object.into()
    }
}

impl ToSchema for IntegrationViewSchema {
    fn name() -> Cow<'static, str> {
        "IntegrationView".into()
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((
            IntegrationStatusSchema::name().into_owned(),
            IntegrationStatusSchema::schema(),
        ));
    }
}

/// The schema of [`IntegrationStatus`].
pub(crate) struct IntegrationStatusSchema;

/// Every status, in the order the document lists them.
pub(crate) const STATUSES: [IntegrationStatus; 3] = [
    IntegrationStatus::Connected,
    IntegrationStatus::Expired,
    IntegrationStatus::NeedsReconnect,
];

/// Fails to compile when [`IntegrationStatus`] gains a variant [`STATUSES`] lacks.
const _: fn(IntegrationStatus) = |status| match status {
    IntegrationStatus::Connected
    | IntegrationStatus::Expired
    | IntegrationStatus::NeedsReconnect => {}
};

impl PartialSchema for IntegrationStatusSchema {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(STATUSES.map(IntegrationStatus::as_str)))
            .description(Some(
                "`connected`: usable now, or refreshable without the user; `expired`: the \
                 access token expired and cannot be refreshed; `needs_reconnect`: the \
                 platform refused a refresh (the user removed the app, the grant was \
                 revoked). Computed at every call from the stored row and the clock.",
            ))
            .into()
    }
}

impl ToSchema for IntegrationStatusSchema {
    fn name() -> Cow<'static, str> {
        "IntegrationStatus".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_but_the_document_needs_the_session() {
        let doc = document(DEFAULT_MOUNT);
        for (path, item) in &doc.paths.paths {
            for op in [&item.get, &item.post, &item.delete].into_iter().flatten() {
                let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
                assert_eq!(secured, path != "/openapi.json", "{path}");
                assert_eq!(
                    op.responses.responses.contains_key("401"),
                    secured,
                    "{path}"
                );
            }
        }
    }

    #[cfg(feature = "demo-session")]
    #[test]
    fn the_scheme_names_the_demo_cookie() {
        assert_eq!(DEMO_COOKIE, crate::session::COOKIE);
    }

    #[test]
    fn statuses_are_named_as_serialized() {
        for s in STATUSES {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }
}
