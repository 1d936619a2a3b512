//! The HTTP JSON API: the seed's resources in the seed's shapes, on axum.
//!
//! | method | path | body | answer |
//! | --- | --- | --- | --- |
//! | GET | `/messages` | | `Message[]` (paginated) |
//! | POST | `/messages` | [`NewMessage`] | 201 `Message` |
//! | GET, PUT, DELETE | `/messages/{id}` | `NewMessage` (PUT) | `Message`, 204 |
//! | GET | `/messages/{id}/sendings` | | `Sending[]` (paginated) |
//! | POST | `/messages/{id}/sendings` | [`SendingPayload`] | 201 `Sending` |
//! | GET, PUT | `/messages/{id}/sendings/{sid}` | [`SchedulePayload`] (PUT) | `Sending` |
//! | POST | `/messages/{id}/sendings/{sid}/cancel` | | `Sending` |
//! | POST | `/messages/{id}/sendings/{sid}/clone` | | 201 `Sending` |
//! | GET | `/messages/{id}/sendings/{sid}/recipients` | | `Recipient[]` (paginated) |
//! | GET | `/messages/{id}/sendings/{sid}/progress` | | [`Progress`](crate::Progress) |
//! | GET | `/messages/{id}/sendings/{sid}/dispatches` | | [`Dispatch`](crate::Dispatch)`[]` (paginated) |
//! | GET | `/audiences` | | `Audience[]` (paginated) |
//! | POST | `/audiences` | [`AudiencePayload`] | 201 `Audience` |
//! | GET, PUT, DELETE | `/audiences/{id}` | `AudiencePayload` (PUT) | `Audience`, 204 |
//! | GET | `/audiences/{id}/recipients` | | `Recipient[]` (paginated) |
//!
//! Every request carries the API key as `Authorization: Bearer <key>` or `X-Api-Key: <key>`
//! (else 401). Lists take `?page=1&per_page=50` (at most 500) and answer a JSON array with the
//! total in the `X-Total-Count` header. Errors are JSON:
//! `{"error": {"code": "...", "message": "...", "field": "..."}}` with 400 (malformed JSON,
//! bad query), 401, 404, 409 (illegal transition, conflict), 422 (invalid field), 500, 503.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use serde_json::json;

use crate::engine::{Campaigns, Page};
use crate::error::CampaignError;
use crate::json::{JsonError, from_slice};
use crate::model::{AudiencePayload, NewMessage, SchedulePayload, SendingPayload};

/// Largest request body (a sending with many inline recipients).
const BODY_LIMIT: usize = 64 << 20;

#[derive(Clone)]
struct Api {
    campaigns: Campaigns,
    api_key: std::sync::Arc<str>,
}

/// An error answered as JSON with its status code.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    field: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }
}

impl From<CampaignError> for ApiError {
    fn from(e: CampaignError) -> Self {
        let message = e.to_string();
        match e {
            CampaignError::NotFound { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
            }
            CampaignError::Invalid { field, .. } => ApiError {
                field: Some(field),
                ..ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
            },
            CampaignError::IllegalTransition(_) => {
                ApiError::new(StatusCode::CONFLICT, "illegal_transition", message)
            }
            CampaignError::Conflict(_) => ApiError::new(StatusCode::CONFLICT, "conflict", message),
            CampaignError::Store(_) => {
                tracing::error!(error = %message, "campaign store failure");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "store", message)
            }
            CampaignError::Closed => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "closed", message)
            }
        }
    }
}

impl From<JsonError> for ApiError {
    fn from(e: JsonError) -> Self {
        ApiError {
            field: Some(e.path.clone()),
            ..ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", e.to_string())
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(field) = self.field {
            error["field"] = field.into();
        }
        (self.status, axum::Json(json!({ "error": error }))).into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// Proof that the request carried the API key.
struct Authorized;

fn same(a: &[u8], b: &[u8]) -> bool {
    // Constant time in the key's content, so the comparison does not leak a prefix.
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl FromRequestParts<Api> for Authorized {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Api) -> Result<Self, Self::Rejection> {
        let given = parts
            .headers
            .get("x-api-key")
            .map(HeaderValue::as_bytes)
            .or_else(|| {
                parts
                    .headers
                    .get("authorization")
                    .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
            });
        match given {
            Some(key) if same(key, state.api_key.as_bytes()) => Ok(Authorized),
            _ => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing or wrong API key (Authorization: Bearer <key>, or X-Api-Key)",
            )),
        }
    }
}

fn id(text: &str, name: &str) -> ApiResult<u64> {
    text.parse().map_err(|_| ApiError {
        field: Some(name.into()),
        ..ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{name} {text:?} is not an id"),
        )
    })
}

fn page(query: Option<String>) -> ApiResult<Page> {
    let mut page = Page::default();
    for pair in query
        .as_deref()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let bad = |f: &str| ApiError {
            field: Some(f.into()),
            ..ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                format!("{f} must be a positive integer"),
            )
        };
        match k {
            "page" => page.page = v.parse().map_err(|_| bad("page"))?,
            "per_page" => page.per_page = v.parse().map_err(|_| bad("per_page"))?,
            _ => {}
        }
    }
    if page.page == 0 || !(1..=500).contains(&page.per_page) {
        return Err(ApiError {
            field: Some("per_page".into()),
            ..ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                "page starts at 1; per_page is 1 to 500",
            )
        });
    }
    Ok(page)
}

fn body<T: serde::de::DeserializeOwned>(bytes: &Bytes) -> ApiResult<T> {
    Ok(from_slice(bytes)?)
}

fn listed<T: Serialize>(items: Vec<T>, total: u64, page: Page) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert("x-total-count", HeaderValue::from(total));
    headers.insert("x-page", HeaderValue::from(page.page));
    headers.insert("x-per-page", HeaderValue::from(page.per_page));
    (headers, axum::Json(items)).into_response()
}

fn created<T: Serialize>(value: T) -> Response {
    (StatusCode::CREATED, axum::Json(value)).into_response()
}

fn ok<T: Serialize>(value: T) -> Response {
    axum::Json(value).into_response()
}

/// The API's router for `campaigns`, guarded by `api_key`.
pub fn router(campaigns: Campaigns, api_key: &str) -> Router {
    let api = Api {
        campaigns,
        api_key: api_key.into(),
    };
    Router::new()
        .route("/messages", get(list_messages).post(create_message))
        .route(
            "/messages/{id}",
            get(get_message).put(update_message).delete(delete_message),
        )
        .route(
            "/messages/{id}/sendings",
            get(list_sendings).post(create_sending),
        )
        .route(
            "/messages/{id}/sendings/{sid}",
            get(get_sending).put(schedule_sending),
        )
        .route("/messages/{id}/sendings/{sid}/cancel", post(cancel_sending))
        .route("/messages/{id}/sendings/{sid}/clone", post(clone_sending))
        .route(
            "/messages/{id}/sendings/{sid}/recipients",
            get(sending_recipients),
        )
        .route(
            "/messages/{id}/sendings/{sid}/progress",
            get(sending_progress),
        )
        .route(
            "/messages/{id}/sendings/{sid}/dispatches",
            get(sending_dispatches),
        )
        .route("/audiences", get(list_audiences).post(create_audience))
        .route(
            "/audiences/{id}",
            get(get_audience)
                .put(update_audience)
                .delete(delete_audience),
        )
        .route("/audiences/{id}/recipients", get(audience_recipients))
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such resource")
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed on this resource",
            )
        })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(api)
}

/// Serves `router` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn list_messages(
    _: Authorized,
    State(api): State<Api>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let page = page(q)?;
    let list = api.campaigns.messages(page).await?;
    Ok(listed(list.items, list.total, page))
}

async fn create_message(
    _: Authorized,
    State(api): State<Api>,
    bytes: Bytes,
) -> ApiResult<Response> {
    let new: NewMessage = body(&bytes)?;
    Ok(created(api.campaigns.create_message(new).await?))
}

async fn get_message(
    _: Authorized,
    State(api): State<Api>,
    Path(mid): Path<String>,
) -> ApiResult<Response> {
    Ok(ok(api.campaigns.message(id(&mid, "message")?).await?))
}

async fn update_message(
    _: Authorized,
    State(api): State<Api>,
    Path(mid): Path<String>,
    bytes: Bytes,
) -> ApiResult<Response> {
    let mid = id(&mid, "message")?;
    let new: NewMessage = body(&bytes)?;
    Ok(ok(api.campaigns.update_message(mid, new).await?))
}

async fn delete_message(
    _: Authorized,
    State(api): State<Api>,
    Path(mid): Path<String>,
) -> ApiResult<Response> {
    api.campaigns.delete_message(id(&mid, "message")?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list_sendings(
    _: Authorized,
    State(api): State<Api>,
    Path(mid): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let page = page(q)?;
    let list = api.campaigns.sendings(id(&mid, "message")?, page).await?;
    Ok(listed(list.items, list.total, page))
}

async fn create_sending(
    _: Authorized,
    State(api): State<Api>,
    Path(mid): Path<String>,
    bytes: Bytes,
) -> ApiResult<Response> {
    let mid = id(&mid, "message")?;
    let payload: SendingPayload = body(&bytes)?;
    Ok(created(api.campaigns.create_sending(mid, payload).await?))
}

/// The sending id, after checking it belongs to the message in the path.
async fn sending_of(api: &Api, mid: &str, sid: &str) -> ApiResult<u64> {
    let (mid, sid) = (id(mid, "message")?, id(sid, "sending")?);
    if api.campaigns.sending_message_id(sid).await? != mid {
        return Err(CampaignError::NotFound {
            resource: "sending",
            id: sid,
        }
        .into());
    }
    Ok(sid)
}

async fn get_sending(
    _: Authorized,
    State(api): State<Api>,
    Path((mid, sid)): Path<(String, String)>,
) -> ApiResult<Response> {
    let sid = sending_of(&api, &mid, &sid).await?;
    Ok(ok(api.campaigns.sending(sid).await?))
}

async fn schedule_sending(
    _: Authorized,
    State(api): State<Api>,
    Path((mid, sid)): Path<(String, String)>,
    bytes: Bytes,
) -> ApiResult<Response> {
    let sid = sending_of(&api, &mid, &sid).await?;
    let payload: SchedulePayload = body(&bytes)?;
    Ok(ok(api.campaigns.schedule(sid, payload).await?))
}

async fn cancel_sending(
    _: Authorized,
    State(api): State<Api>,
    Path((mid, sid)): Path<(String, String)>,
) -> ApiResult<Response> {
    let sid = sending_of(&api, &mid, &sid).await?;
    Ok(ok(api.campaigns.cancel(sid).await?))
}

async fn clone_sending(
    _: Authorized,
    State(api): State<Api>,
    Path((mid, sid)): Path<(String, String)>,
) -> ApiResult<Response> {
    let sid = sending_of(&api, &mid, &sid).await?;
    Ok(created(api.campaigns.clone_sending(sid).await?))
}

async fn sending_recipients(
    _: Authorized,
    State(api): State<Api>,
    Path((mid, sid)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let page = page(q)?;
    let sid = sending_of(&api, &mid, &sid).await?;
    let all = api.campaigns.recipients(sid).await?;
    Ok(paged(all, page))
}

fn paged<T: Serialize>(all: Vec<T>, page: Page) -> Response {
    let total = all.len() as u64;
    let skip = (page.page.saturating_sub(1) as usize).saturating_mul(page.per_page as usize);
    let items: Vec<T> = all
        .into_iter()
        .skip(skip)
        .take(page.per_page as usize)
        .collect();
    listed(items, total, page)
}

async fn sending_progress(
    _: Authorized,
    State(api): State<Api>,
    Path((mid, sid)): Path<(String, String)>,
) -> ApiResult<Response> {
    let sid = sending_of(&api, &mid, &sid).await?;
    Ok(ok(api.campaigns.progress(sid).await?))
}

async fn sending_dispatches(
    _: Authorized,
    State(api): State<Api>,
    Path((mid, sid)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let page = page(q)?;
    let sid = sending_of(&api, &mid, &sid).await?;
    let list = api.campaigns.dispatches(sid, page).await?;
    Ok(listed(list.items, list.total, page))
}

async fn list_audiences(
    _: Authorized,
    State(api): State<Api>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let page = page(q)?;
    let list = api.campaigns.audiences(page).await?;
    Ok(listed(list.items, list.total, page))
}

async fn create_audience(
    _: Authorized,
    State(api): State<Api>,
    bytes: Bytes,
) -> ApiResult<Response> {
    let payload: AudiencePayload = body(&bytes)?;
    Ok(created(api.campaigns.create_audience(payload).await?))
}

async fn get_audience(
    _: Authorized,
    State(api): State<Api>,
    Path(aid): Path<String>,
) -> ApiResult<Response> {
    Ok(ok(api.campaigns.audience(id(&aid, "audience")?).await?))
}

async fn update_audience(
    _: Authorized,
    State(api): State<Api>,
    Path(aid): Path<String>,
    bytes: Bytes,
) -> ApiResult<Response> {
    let aid = id(&aid, "audience")?;
    let payload: AudiencePayload = body(&bytes)?;
    Ok(ok(api.campaigns.update_audience(aid, payload).await?))
}

async fn delete_audience(
    _: Authorized,
    State(api): State<Api>,
    Path(aid): Path<String>,
) -> ApiResult<Response> {
    api.campaigns.delete_audience(id(&aid, "audience")?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn audience_recipients(
    _: Authorized,
    State(api): State<Api>,
    Path(aid): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let page = page(q)?;
    let all = api
        .campaigns
        .audience_recipients(id(&aid, "audience")?)
        .await?;
    Ok(paged(all, page))
}
