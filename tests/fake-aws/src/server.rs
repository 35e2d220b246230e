//! The HTTP side: accept loop, one hyper HTTP/1.1 connection per task, routing of a request
//! to its operation, fault injection, request recording and the per-request log line.
//! Must not: decide an operation's outcome (the handlers do) or log a secret value.

use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response};
use http_body_util::{BodyExt, Limited};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::stream::Body;
use crate::wire::{self, Incoming, Resp};
use crate::{Fault, Inner, Op, Recorded, authorize, control, oidc, portal};

/// What the service answers: a buffered `Resp`, or a streamed body for the body faults.
type Answer = Response<Body>;

/// Larger bodies are refused; no real request comes close.
const MAX_BODY: usize = 1 << 20;

/// Returned by the service to make hyper drop the connection without answering.
#[derive(Debug)]
struct ResetConnection;

impl std::fmt::Display for ResetConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection reset by fault injection")
    }
}

impl std::error::Error for ResetConnection {}

pub(crate) async fn serve(listener: TcpListener, inner: Arc<Inner>, stop: watch::Receiver<()>) {
    let mut accept_stop = stop.clone();
    loop {
        tokio::select! {
            _ = accept_stop.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(connection(stream, Arc::clone(&inner), stop.clone()));
                }
                // e.g. out of file descriptors: back off briefly and keep serving.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            },
        }
    }
}

async fn connection(stream: TcpStream, inner: Arc<Inner>, mut stop: watch::Receiver<()>) {
    let svc = service_fn(move |req| handle(Arc::clone(&inner), req));
    let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
    tokio::select! {
        _ = conn => {}
        _ = stop.changed() => {}
    }
}

/// Where a request goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Route {
    Api(Op),
    AuthorizeDecision,
    Federation,
    DevicePage,
    DeviceDecision,
    Control,
    Unknown,
}

fn route(method: &Method, path: &str, query: Option<&str>) -> Route {
    let post = method == Method::POST;
    let get = method == Method::GET;
    match path {
        "/client/register" if post => Route::Api(Op::RegisterClient),
        "/device_authorization" if post => Route::Api(Op::StartDeviceAuthorization),
        // `/token?aws_iam=t` is CreateTokenWithIAM, which the fake does not offer.
        "/token" if post && query.is_none_or(|q| !q.contains("aws_iam")) => {
            Route::Api(Op::CreateToken)
        }
        "/authorize" if get => Route::Api(Op::Authorize),
        "/authorize/decision" if get => Route::AuthorizeDecision,
        "/device" if get => Route::DevicePage,
        "/device" if post => Route::DeviceDecision,
        "/federation/credentials" if get => Route::Api(Op::GetRoleCredentials),
        // The sign-in endpoint (console), on the same port: AWS_ENDPOINT_URL_SIGNIN.
        "/federation" if get => Route::Federation,
        "/assignment/accounts" if get => Route::Api(Op::ListAccounts),
        "/assignment/roles" if get => Route::Api(Op::ListAccountRoles),
        "/logout" if post => Route::Api(Op::Logout),
        p if p.starts_with("/_fake/") => Route::Control,
        _ => Route::Unknown,
    }
}

impl Route {
    fn op(self) -> Op {
        match self {
            Route::Api(op) => op,
            _ => Op::Other,
        }
    }
}

fn dispatch(st: &mut crate::state::State, route: Route, req: &Incoming<'_>, base: &str) -> Resp {
    match route {
        Route::Api(Op::RegisterClient) => oidc::register_client(st, req),
        Route::Api(Op::StartDeviceAuthorization) => oidc::start_device_authorization(st, req, base),
        Route::Api(Op::CreateToken) => oidc::create_token(st, req),
        Route::Api(Op::Authorize) => authorize::authorize(st, req),
        Route::Api(op) if op.is_portal() => portal::handle(st, op, req),
        Route::AuthorizeDecision => authorize::authorize_decision(st, req),
        Route::Federation => crate::signin::handle(st, req),
        Route::DevicePage => authorize::device_page(req),
        Route::DeviceDecision => authorize::device_decision(st, req),
        _ => wire::portal_error(
            404,
            "UnknownOperationException",
            &format!("No operation matches {} {}", req.method, req.path),
        ),
    }
}

/// The answer a non-delaying fault gives.
fn fault_response(op: Op, fault: &Fault) -> Answer {
    // A JSON 200's status and headers (request id included) around a misbehaving body.
    let streamed = |body: Body| wire::json_ok(&serde_json::Value::Null).map(|_| body);
    let buffered = match fault {
        Fault::Error {
            status,
            error_type,
            error,
            description,
        } if op.is_portal() => {
            let _ = error;
            wire::portal_error(*status, error_type, description)
        }
        Fault::Error {
            status,
            error_type,
            error,
            description,
        } => wire::oidc_error(*status, error_type, error, description),
        Fault::Garbage => wire::garbage(),
        Fault::Html(status) => wire::html_error(*status),
        Fault::Redirect(status, location) => wire::redirect_with(*status, location),
        Fault::HugeBody(len) => return streamed(Body::huge(*len)),
        Fault::Drip(every) => return streamed(Body::drip(*every)),
        // Delay, Reset and Hang do not produce a response here.
        Fault::Delay(_) | Fault::Reset | Fault::Hang => wire::html_error(500),
    };
    buffered.map(Body::Full)
}

/// `200`, `400 InvalidGrantException`, … for the log line (the error name only).
fn outcome<B>(resp: &Response<B>) -> String {
    let name = resp
        .headers()
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(':').next())
        .unwrap_or("");
    format!("{} {name}", resp.status().as_u16())
        .trim_end()
        .to_owned()
}

/// Logs method, path (never the query: it may carry codes) and outcome.
fn log(enabled: bool, op: Op, method: &Method, path: &str, outcome: &str) {
    if enabled {
        eprintln!("fake-aws: {} {method} {path} -> {outcome}", op.name());
    }
}

async fn handle(
    inner: Arc<Inner>,
    req: Request<hyper::body::Incoming>,
) -> Result<Answer, ResetConnection> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return Ok(wire::oidc_error(
                400,
                "InvalidRequestException",
                "invalid_request",
                "Request body is too large or could not be read",
            )
            .map(Body::Full));
        }
    };
    let path = parts.uri.path();
    let route = route(&parts.method, path, parts.uri.query());
    let req = Incoming {
        method: &parts.method,
        path,
        query: parts.uri.query(),
        headers: &parts.headers,
        body: &body,
    };
    if route == Route::Control {
        return Ok(control::handle(&inner, &req).map(Body::Full));
    }
    let op = route.op();
    let recorded = Recorded {
        op,
        method: parts.method.to_string(),
        path: parts
            .uri
            .path_and_query()
            .map_or(path, |p| p.as_str())
            .to_owned(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
    };
    let base = inner.url();
    let fault = inner.lock().pop_fault(op);
    let answered = |inner: &Inner, resp: Answer, recorded: Option<Recorded>| {
        let mut st = inner.lock();
        if let Some(rec) = recorded {
            st.record(rec);
        }
        log(
            st.cfg.log_requests,
            op,
            &parts.method,
            path,
            &outcome(&resp),
        );
        drop(st);
        inner.notify();
        resp
    };
    let arrived = |inner: &Inner, recorded: Recorded, what: &str| {
        let mut st = inner.lock();
        st.record(recorded);
        log(st.cfg.log_requests, op, &parts.method, path, what);
        drop(st);
        inner.notify();
    };
    match fault {
        None => {
            let mut st = inner.lock();
            let resp = dispatch(&mut st, route, &req, &base);
            drop(st);
            Ok(answered(&inner, resp.map(Body::Full), Some(recorded)))
        }
        Some(Fault::Delay(d)) => {
            arrived(&inner, recorded, &format!("delaying {} ms", d.as_millis()));
            tokio::time::sleep(d).await;
            let mut st = inner.lock();
            let resp = dispatch(&mut st, route, &req, &base);
            drop(st);
            Ok(answered(&inner, resp.map(Body::Full), None))
        }
        Some(Fault::Reset) => {
            arrived(&inner, recorded, "reset (fault)");
            Err(ResetConnection)
        }
        Some(Fault::Hang) => {
            arrived(&inner, recorded, "hanging (fault)");
            // The connection task drops this future when the client leaves or the fake stops.
            std::future::pending::<()>().await;
            Err(ResetConnection)
        }
        Some(fault) => {
            if op == Op::CreateToken
                && is_slow_down(&fault)
                && let Some(dc) = device_code_in(&body)
            {
                inner.lock().note_slow_down(&dc);
            }
            Ok(answered(&inner, fault_response(op, &fault), Some(recorded)))
        }
    }
}

fn is_slow_down(fault: &Fault) -> bool {
    matches!(fault, Fault::Error { error_type, .. } if error_type == "SlowDownException")
}

fn device_code_in(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v.get("deviceCode")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_follow_the_models() {
        assert!(route(&Method::POST, "/token", None) == Route::Api(Op::CreateToken));
        assert!(route(&Method::POST, "/token", Some("aws_iam=t")) == Route::Unknown);
        assert!(route(&Method::GET, "/token", None) == Route::Unknown);
        assert!(route(&Method::POST, "/logout", None) == Route::Api(Op::Logout));
        assert!(route(&Method::GET, "/logout", None) == Route::Unknown);
        assert!(route(&Method::GET, "/_fake/state", None) == Route::Control);
    }
}
