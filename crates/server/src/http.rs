//! The listener: one TCP port serving `/health` and the SigV4-signed AWS protocols, routed by the
//! service name in the credential scope. Every request size, count and wait is bounded.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tresor_kms::{CallContext, Kms};

use crate::auth::{AuthError, SigningKeyCache, authenticate};
use crate::config::{FileConfig, Limits};
use crate::{cloudtrail_edge, kms_edge, sts};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Shared state of the listener.
pub struct AppState {
    pub kms: Arc<Kms>,
    /// The last store reachability check of `/health` and when it was made.
    pub health: std::sync::Mutex<Option<(std::time::Instant, bool)>>,
    /// Wall-clock time for SigV4 and the `Date` header (the `--clock-offset-seconds` shift only).
    pub wall_clock: Arc<tresor_kms::clock::SystemClock>,
    /// With `--test-clock`: the core's clock, which `PUT /_tresor/test/clock-offset` moves.
    pub test_clock: Option<Arc<tresor_kms::clock::SystemClock>>,
    pub audit: Arc<dyn tresor_kms::audit_log::AuditBackend>,
    pub signing_keys: SigningKeyCache,
    pub file: FileConfig,
    pub limits: Limits,
    /// Per-principal and per-key request rates (off unless configured).
    pub throttle: crate::throttle::Throttle,
}

type Body = Full<Bytes>;

fn now_unix_seconds(state: &AppState) -> i64 {
    use tresor_kms::clock::Clock as _;
    state.wall_clock.now().unix_seconds()
}

/// RFC 7231 IMF-fixdate for the `Date` header (SDKs correct their clock skew from it).
fn http_date(unix_seconds: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(unix_seconds)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let day = DAYS
        .get(usize::from(t.weekday().number_days_from_monday()))
        .copied()
        .unwrap_or("Mon");
    let month = MONTHS
        .get(usize::from(u8::from(t.month())).saturating_sub(1))
        .copied()
        .unwrap_or("Jan");
    format!(
        "{day}, {:02} {month} {:04} {:02}:{:02}:{:02} GMT",
        t.day(),
        t.year(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn response(
    state: &AppState,
    status: StatusCode,
    content_type: &'static str,
    request_id: &str,
    body: Bytes,
) -> Response<Body> {
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert(X_AMZN_REQUESTID, v);
    }
    if let Some(v) = date_header(now_unix_seconds(state)) {
        h.insert(header::DATE, v);
    }
    resp
}

const X_AMZN_REQUESTID: HeaderName = HeaderName::from_static("x-amzn-requestid");

/// The `Date` header for `unix_seconds`, formatted once per second per thread.
fn date_header(unix_seconds: i64) -> Option<HeaderValue> {
    thread_local! {
        static LAST: std::cell::RefCell<Option<(i64, HeaderValue)>> =
            const { std::cell::RefCell::new(None) };
    }
    LAST.with(|last| {
        let mut last = last.try_borrow_mut().ok()?;
        match &*last {
            Some((at, v)) if *at == unix_seconds => Some(v.clone()),
            _ => {
                let v = HeaderValue::from_str(&http_date(unix_seconds)).ok()?;
                *last = Some((unix_seconds, v.clone()));
                Some(v)
            }
        }
    })
}

fn json_reply(state: &AppState, request_id: &str, reply: kms_edge::JsonReply) -> Response<Body> {
    let mut resp = response(
        state,
        reply.status,
        kms_edge::CONTENT_TYPE,
        request_id,
        reply.body,
    );
    if let Some(ty) = reply.error_type {
        resp.headers_mut()
            .insert("x-amzn-errortype", HeaderValue::from_static(ty));
    }
    resp
}

/// Which protocol an (unauthenticated, possibly malformed) request speaks, for shaping errors.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Json,
    Query,
}

fn guess_protocol(service: Option<&str>, headers: &http::HeaderMap) -> Protocol {
    match service {
        Some("sts") => Protocol::Query,
        Some(_) => Protocol::Json,
        None => {
            let form = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
            if form && !headers.contains_key("x-amz-target") {
                Protocol::Query
            } else {
                Protocol::Json
            }
        }
    }
}

/// An error before the operation runs, in the request's protocol.
fn early_error(
    state: &AppState,
    protocol: Protocol,
    request_id: &str,
    status: StatusCode,
    json_type: &'static str,
    query_code: &'static str,
    message: &str,
) -> Response<Body> {
    match protocol {
        Protocol::Json => json_reply(
            state,
            request_id,
            kms_edge::JsonReply::error(status, json_type, message),
        ),
        Protocol::Query => {
            let query_status = if status == StatusCode::BAD_REQUEST
                && !matches!(query_code, "IncompleteSignature" | "Throttling")
            {
                StatusCode::FORBIDDEN
            } else {
                status
            };
            let (status, body) = sts::error(query_status, query_code, message, request_id);
            response(
                state,
                status,
                sts::CONTENT_TYPE,
                request_id,
                Bytes::from(body),
            )
        }
    }
}

fn auth_error(
    state: &AppState,
    protocol: Protocol,
    request_id: &str,
    e: AuthError,
) -> Response<Body> {
    match e {
        AuthError::SigV4(e) => {
            let json_type = e.aws_error_code();
            let query_code = match json_type {
                "MissingAuthenticationTokenException" => "MissingAuthenticationToken",
                "IncompleteSignatureException" => "IncompleteSignature",
                _ => "SignatureDoesNotMatch",
            };
            early_error(
                state,
                protocol,
                request_id,
                StatusCode::BAD_REQUEST,
                json_type,
                query_code,
                &e.to_string(),
            )
        }
        AuthError::UnrecognizedClient => early_error(
            state,
            protocol,
            request_id,
            StatusCode::BAD_REQUEST,
            "UnrecognizedClientException",
            "InvalidClientTokenId",
            "The security token included in the request is invalid.",
        ),
        AuthError::InvalidRegion(region) => early_error(
            state,
            protocol,
            request_id,
            StatusCode::BAD_REQUEST,
            "InvalidSignatureException",
            "SignatureDoesNotMatch",
            &format!("Credential should be scoped to a valid region, not '{region}'. "),
        ),
        AuthError::Internal(e) => {
            let reply = kms_edge::error_reply(&e);
            json_reply(state, request_id, reply)
        }
    }
}

/// How long a store reachability check is reused by `/health` (health checks and load balancers
/// probe often; the store is asked at most once per interval).
const HEALTH_CHECK_INTERVAL: Duration = Duration::from_secs(1);

async fn health(state: &AppState, request_id: &str) -> Response<Body> {
    let cached = state.health.lock().ok().and_then(|h| {
        h.filter(|(at, _)| at.elapsed() < HEALTH_CHECK_INTERVAL)
            .map(|(_, ok)| ok)
    });
    let reachable = match cached {
        Some(ok) => ok,
        None => {
            let ok = state.kms.store().ping().await.is_ok();
            if let Ok(mut h) = state.health.lock() {
                *h = Some((std::time::Instant::now(), ok));
            }
            ok
        }
    };
    let body = serde_json::json!({
        "status": if reachable { "ok" } else { "degraded" },
        "version": VERSION,
        "store": if reachable { "reachable" } else { "unreachable" },
    });
    let status = if reachable {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    response(
        state,
        status,
        "application/json",
        request_id,
        Bytes::from(body.to_string()),
    )
}

/// Test mode only (`--test-clock`): sets the core clock to wall time plus the body's seconds, so
/// tests move key-lifecycle time (deletion, rotation, expiry) without sleeping and without
/// disturbing SigV4's clock-skew check.
async fn set_test_clock(
    state: &AppState,
    clock: &tresor_kms::clock::SystemClock,
    request_id: &str,
    body: Incoming,
) -> Response<Body> {
    let bytes = match Limited::new(body, 64).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    match std::str::from_utf8(&bytes)
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
    {
        Some(seconds) => {
            // Relative to the wall clock the server runs on (which `--clock-offset-seconds` shifts).
            let base = state.wall_clock.offset_seconds();
            clock.set_offset_seconds(base.saturating_add(seconds));
            state.kms.run_due_work().await;
            response(
                state,
                StatusCode::OK,
                "application/json",
                request_id,
                Bytes::from_static(b"{}"),
            )
        }
        None => response(
            state,
            StatusCode::BAD_REQUEST,
            "application/json",
            request_id,
            Bytes::from_static(b"{}"),
        ),
    }
}

/// Handles one request; never fails (every error becomes an AWS-shaped response).
async fn handle(
    state: Arc<AppState>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let request_id = tresor_crypto::random_uuid().to_string();
    let (parts, body) = req.into_parts();
    if parts.method == http::Method::GET && parts.uri.path() == "/health" {
        return Ok(health(&state, &request_id).await);
    }
    if let Some(clock) = &state.test_clock
        && parts.method == http::Method::PUT
        && parts.uri.path() == "/_tresor/test/clock-offset"
    {
        return Ok(set_test_clock(&state, clock, &request_id, body).await);
    }

    // Parsed once: its service picks the error shape here, and `authenticate` checks it.
    let authorization = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(tresor_sigv4::parse_authorization);
    let scope_service = authorization
        .as_ref()
        .and_then(|a| a.as_ref().ok())
        .map(|a| a.service.as_str());
    let protocol = guess_protocol(scope_service, &parts.headers);

    // Read the body within its size and time bounds (the signature covers its hash).
    let limited = Limited::new(body, state.limits.max_body_bytes);
    let body = match tokio::time::timeout(state.limits.body_read_timeout, limited.collect()).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e))
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            // AWS-DEVIATION (unverified): AWS's exact answer to an oversized request body.
            return Ok(early_error(
                &state,
                protocol,
                &request_id,
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLargeException",
                "RequestEntityTooLarge",
                &format!(
                    "Request body is larger than {} bytes.",
                    state.limits.max_body_bytes
                ),
            ));
        }
        Err(_) => {
            // The client stopped sending mid-body. The connection is closed after this answer
            // (the rest of the body is never read).
            // AWS-DEVIATION (unverified): AWS's answer to a stalled upload.
            let mut resp = early_error(
                &state,
                protocol,
                &request_id,
                StatusCode::REQUEST_TIMEOUT,
                "RequestTimeoutException",
                "RequestTimeout",
                "Your socket connection to the server was not read from or written to within the timeout period.",
            );
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return Ok(resp);
        }
        Ok(Err(_)) => {
            return Ok(early_error(
                &state,
                protocol,
                &request_id,
                StatusCode::BAD_REQUEST,
                "SerializationException",
                "MalformedInput",
                "The request body could not be read.",
            ));
        }
    };
    let payload_hash = tresor_sigv4::sha256_hex(&body);

    // Header values that are not visible ASCII cannot be part of a valid signature.
    let mut header_pairs: Vec<(&str, &str)> = Vec::with_capacity(parts.headers.len());
    for (name, value) in &parts.headers {
        match value.to_str() {
            Ok(v) => header_pairs.push((name.as_str(), v)),
            Err(_) => {
                return Ok(early_error(
                    &state,
                    protocol,
                    &request_id,
                    StatusCode::BAD_REQUEST,
                    "InvalidSignatureException",
                    "SignatureDoesNotMatch",
                    "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
                ));
            }
        }
    }
    let authenticated = match authenticate(
        &state.kms,
        &state.signing_keys,
        |r| state.file.region_allowed(r),
        authorization,
        parts.method.as_str(),
        parts.uri.path(),
        parts.uri.query().unwrap_or(""),
        &header_pairs,
        &payload_hash,
        now_unix_seconds(&state),
    )
    .await
    {
        Ok(a) => a,
        Err(e) => return Ok(auth_error(&state, protocol, &request_id, e)),
    };

    let user_agent = parts
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(512).collect::<String>());
    // KMS calls are throttled (and audited) by the KMS edge; the other services here.
    if authenticated.service != "kms" && !state.throttle.allow_principal(&authenticated.caller.arn)
    {
        return Ok(early_error(
            &state,
            protocol,
            &request_id,
            StatusCode::BAD_REQUEST,
            "ThrottlingException",
            "Throttling",
            "Rate exceeded",
        ));
    }
    match authenticated.service.as_str() {
        "kms" => {
            let mut ctx = CallContext::direct(
                authenticated.caller,
                authenticated.region,
                request_id.clone(),
            );
            ctx.source_ip = Some(peer.ip());
            ctx.user_agent = user_agent;
            let target = parts
                .headers
                .get("x-amz-target")
                .and_then(|v| v.to_str().ok());
            let reply = kms_edge::handle(&state.kms, &state.throttle, &ctx, target, &body).await;
            Ok(json_reply(&state, &request_id, reply))
        }
        "cloudtrail" => {
            let target = parts
                .headers
                .get("x-amz-target")
                .and_then(|v| v.to_str().ok());
            let reply = cloudtrail_edge::handle(
                &*state.audit,
                &authenticated.caller,
                &authenticated.region,
                target,
                &body,
            )
            .await;
            Ok(json_reply(&state, &request_id, reply))
        }
        "sts" => {
            let (status, xml) = sts::handle(&authenticated.caller, &body, &request_id);
            Ok(response(
                &state,
                status,
                sts::CONTENT_TYPE,
                &request_id,
                Bytes::from(xml),
            ))
        }
        other => Ok(early_error(
            &state,
            protocol,
            &request_id,
            StatusCode::BAD_REQUEST,
            "IncompleteSignatureException",
            "IncompleteSignature",
            &format!(
                "Credential should be scoped to correct service: 'kms'. Service '{other}' is not served here."
            ),
        )),
    }
}

/// Serves connections until `shutdown` resolves, then lets in-flight requests finish (up to
/// `grace`).
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()>,
    grace: Duration,
) {
    let permits = Arc::new(Semaphore::new(state.limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let limits = state.limits.clone();
        let svc = service_fn(move |req| handle(state.clone(), peer, req));
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            // The header bound is exact (max_buf_size alone lets a header that arrives in one
            // read grow to twice the buffer); both answer 431 and close.
            // AWS-DEVIATION: hyper answers these (and malformed requests) itself, without an
            // AWS error body or request id.
            .max_header_size(limits.max_header_bytes)
            .max_buf_size(limits.max_header_bytes.max(8192))
            .keep_alive(true)
            .serve_connection(TokioIo::new(stream), svc);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
            drop(permit);
        });
    }
    tracing::info!("shutting down: waiting for in-flight requests");
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("grace period over; closing remaining connections");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn http_dates() {
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        // The per-second cache gives each second its own date.
        for secs in [784_111_777, 784_111_777, 784_111_778, 784_111_777] {
            assert_eq!(
                date_header(secs).unwrap().to_str().unwrap(),
                http_date(secs)
            );
        }
    }
}
