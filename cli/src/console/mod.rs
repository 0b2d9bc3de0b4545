//! `mvsync console`: a local web page over the store, served by the binary
//! (axum; the stylesheet compiled in; no script at all). Run history,
//! connector-space and metaverse search, one object with its lineage,
//! pending exports and the saved plan, each at a stable URL.
//!
//! - `source.rs` — the store, held between requests and given up to any
//!   run that asks for it.
//! - `views.rs` — one function per view, reading one page through
//!   [`engine::Browser`] (never writing).
//! - `page.rs` — the layout and the shared pieces; values are escaped by
//!   maud and secret-looking attributes redacted.
//! - `chart.rs` — the run history's chart, inline SVG.
//!
//! Safety: loopback by default; any other address needs a token (the
//! secret type: `[console] token = { env | file }`), presented as a bearer
//! header or through the login form's cookie. Every response carries a
//! Content-Security-Policy that allows the console's own stylesheet and
//! nothing else (no script, no frame, forms only to itself).

mod chart;
mod page;
mod source;
mod views;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use connectors::common::Secret;
use maud::{html, Markup};

use crate::config::Config;
use crate::Outcome;
use source::{Source, Unavailable};
use views::ViewError;

/// Where the console listens unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8470";

const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";
const COOKIE: &str = "mvsync_console";
const STYLESHEET: &str = include_str!("console.css");

/// Whether the console may listen on `addr`: anywhere but loopback only
/// with a token.
pub fn check_listen(addr: SocketAddr, has_token: bool) -> Result<(), String> {
    if addr.ip().is_loopback() || has_token {
        Ok(())
    } else {
        Err(format!(
            "the console would listen on {addr}, which is not a loopback address, without a token: anyone who can reach it could read every identity"
        ))
    }
}

struct App {
    source: Arc<Source>,
    token: Option<Secret>,
    plan: std::path::PathBuf,
}

/// The saved plan's file beside the store.
pub fn plan_path(store: &std::path::Path) -> std::path::PathBuf {
    engine::store::beside(store, ".plan.json")
}

/// Runs the console until SIGTERM or Ctrl-C.
pub async fn command(config: &Config, listen: Option<&str>) -> Outcome {
    let addr = match listen {
        Some(text) => match text.parse::<SocketAddr>() {
            Ok(a) => a,
            Err(_) => {
                eprintln!("error: --listen {text:?} is not an address and port (for example 127.0.0.1:8470)");
                return Outcome::ConfigError;
            }
        },
        None => match config.console.listen {
            Some(a) => a,
            None => DEFAULT_LISTEN
                .parse()
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8470))),
        },
    };
    let token = match &config.console.token {
        Some(r) => match r.resolve(&config.base_dir) {
            Ok(t) if t.expose().len() >= 16 => Some(t),
            Ok(_) => {
                eprintln!("error: [console] token: the token is shorter than 16 characters; use a long random one (for example `openssl rand -hex 32`)");
                return Outcome::ConfigError;
            }
            Err(e) => {
                eprintln!("error: [console] token: {e}");
                return Outcome::ConfigError;
            }
        },
        None => None,
    };
    if let Err(message) = check_listen(addr, token.is_some()) {
        eprintln!("error: {message}; set `[console] token = {{ env = \"MVSYNC_CONSOLE_TOKEN\" }}` (or `{{ file = … }}`), or listen on 127.0.0.1");
        return Outcome::ConfigError;
    }
    if !config.store_path.is_dir() {
        eprintln!(
            "error: there is no store at {} yet; run a profile first",
            config.store_path.display()
        );
        return Outcome::Failed;
    }
    let app = Arc::new(App {
        source: Source::new(
            config.store_path.clone(),
            config.store_options.clone(),
            config.engine.clone(),
        ),
        token,
        plan: plan_path(&config.store_path),
    });
    // Open the store now, so the first page does not pay sled's open
    // (a second at 1M identities); a run holding it is no reason to wait.
    let opening = app.source.clone();
    let _ = tokio::task::spawn_blocking(move || opening.get().is_ok()).await;
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {addr}: {e}");
            return Outcome::Failed;
        }
    };
    let shown = listener.local_addr().unwrap_or(addr);
    println!("mvsync console on http://{shown}/ (Ctrl-C stops it)");
    if !shown.ip().is_loopback() {
        eprintln!("warning: the console is served over plain HTTP on {shown}; put a TLS-terminating proxy in front so that the token is never sent in the clear");
    }
    let served = axum::serve(listener, router(app))
        .with_graceful_shutdown(stopped())
        .await;
    match served {
        Ok(()) => Outcome::Ok,
        Err(e) => {
            eprintln!("error: the console stopped: {e}");
            Outcome::Failed
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C.
async fn stopped() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/runs") }))
        .route("/runs", get(runs))
        .route("/runs/{id}", get(run))
        .route("/connectors", get(connectors))
        .route("/connectors/{name}", get(search_cs))
        .route("/connectors/{name}/objects/{id}", get(cs_object))
        .route("/connectors/{name}/find", get(find_cs))
        .route("/connectors/{name}/exports", get(exports))
        .route("/metaverse", get(search_mv))
        .route("/metaverse/{id}", get(mv_object))
        .route("/plan", get(plan))
        .route_layer(middleware::from_fn_with_state(app.clone(), authorize))
        .route("/login", get(login_form).post(login))
        .route("/assets/console.css", get(stylesheet))
        .fallback(|| async { answer(Err(ViewError::NotFound("There is no such page.".into()))) })
        .layer(middleware::from_fn(secure_headers))
        .with_state(app)
}

async fn secure_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// Lets a request through when no token is configured, or when it
/// presents the token (bearer header or the login cookie).
async fn authorize(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let Some(token) = &app.token else {
        return next.run(request).await;
    };
    let headers = request.headers();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .next();
    if bearer
        .or(cookie)
        .is_some_and(|given| same(given, token.expose()))
    {
        return next.run(request).await;
    }
    Redirect::to("/login").into_response()
}

/// Compares without leaking, through timing, how much of the token matched.
fn same(given: &str, token: &str) -> bool {
    let (a, b) = (given.as_bytes(), token.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

fn login_page(failed: bool) -> Markup {
    page::layout(
        "Sign in",
        page::Section::None,
        html! {
            @if failed { p.problem { "That is not the console's token." } }
            form.login method="post" action="/login" {
                label { "Token " input type="password" name="token" autocomplete="current-password" autofocus; }
                button type="submit" { "Sign in" }
            }
        },
    )
}

async fn login_form() -> Response {
    html_response(StatusCode::OK, login_page(false))
}

#[derive(serde::Deserialize)]
struct Login {
    token: String,
}

async fn login(State(app): State<Arc<App>>, Form(form): Form<Login>) -> Response {
    let Some(token) = &app.token else {
        return Redirect::to("/runs").into_response();
    };
    if !same(&form.token, token.expose()) {
        return html_response(StatusCode::UNAUTHORIZED, login_page(true));
    }
    let cookie = format!("{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/", form.token);
    let mut response = Redirect::to("/runs").into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}

fn html_response(status: StatusCode, body: Markup) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body.into_string(),
    )
        .into_response()
}

fn answer(result: Result<Markup, ViewError>) -> Response {
    match result {
        Ok(body) => html_response(StatusCode::OK, body),
        Err(ViewError::NotFound(m)) => {
            html_response(StatusCode::NOT_FOUND, page::problem("Not found", &m))
        }
        Err(ViewError::BadRequest(m)) => html_response(
            StatusCode::BAD_REQUEST,
            page::problem("Cannot show that", &m),
        ),
        Err(ViewError::Store(m)) => html_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            page::problem("The store could not be read", &m),
        ),
    }
}

/// Runs `view` on the store off the async threads, or says why it cannot.
async fn with_store<T: Send + 'static>(
    app: &App,
    view: impl FnOnce(&engine::Browser) -> Result<T, ViewError> + Send + 'static,
) -> Result<Result<T, ViewError>, Response> {
    let source = app.source.clone();
    let joined = tokio::task::spawn_blocking(move || source.get().map(|b| view(&b))).await;
    match joined {
        Ok(Ok(result)) => Ok(result),
        Ok(Err(Unavailable::Busy(holder))) => Err(html_response(
            StatusCode::SERVICE_UNAVAILABLE,
            page::busy(&holder),
        )),
        Ok(Err(Unavailable::Failed(m))) => Err(answer(Err(ViewError::Store(m)))),
        Err(e) => Err(answer(Err(ViewError::Store(format!(
            "the view failed: {e}"
        ))))),
    }
}

async fn render(
    app: &App,
    view: impl FnOnce(&engine::Browser) -> Result<Markup, ViewError> + Send + 'static,
) -> Response {
    match with_store(app, view).await {
        Ok(result) => answer(result),
        Err(response) => response,
    }
}

async fn runs(State(app): State<Arc<App>>, Query(q): Query<views::RunsQuery>) -> Response {
    render(&app, move |b| views::runs(b, &q)).await
}

async fn run(
    State(app): State<Arc<App>>,
    Path(id): Path<u64>,
    Query(q): Query<views::AfterQuery>,
) -> Response {
    render(&app, move |b| views::run(b, id, &q)).await
}

async fn connectors(State(app): State<Arc<App>>) -> Response {
    render(&app, views::connectors).await
}

async fn search_cs(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    Query(q): Query<views::CsSearch>,
) -> Response {
    render(&app, move |b| views::search_cs(b, &name, &q)).await
}

async fn cs_object(State(app): State<Arc<App>>, Path((name, id)): Path<(String, u64)>) -> Response {
    render(&app, move |b| views::cs_object(b, &name, id)).await
}

#[derive(serde::Deserialize)]
struct FindQuery {
    object: String,
}

async fn find_cs(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    Query(q): Query<FindQuery>,
) -> Response {
    let target = name.clone();
    match with_store(&app, move |b| views::find_cs(b, &name, &q.object)).await {
        Ok(Ok(id)) => Redirect::to(&format!(
            "/connectors/{}/objects/{id}",
            page::encode(&target)
        ))
        .into_response(),
        Ok(Err(e)) => answer(Err(e)),
        Err(response) => response,
    }
}

async fn exports(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    Query(q): Query<views::ExportsQuery>,
) -> Response {
    render(&app, move |b| views::exports(b, &name, &q)).await
}

async fn search_mv(State(app): State<Arc<App>>, Query(q): Query<views::MvSearch>) -> Response {
    render(&app, move |b| views::search_mv(b, &q)).await
}

async fn mv_object(State(app): State<Arc<App>>, Path(id): Path<u64>) -> Response {
    render(&app, move |b| views::mv_object(b, id)).await
}

async fn plan(State(app): State<Arc<App>>) -> Response {
    answer(views::plan(&app.plan))
}
