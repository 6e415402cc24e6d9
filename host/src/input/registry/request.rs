//! One registry GET (a manifest or a blob): authenticated at the
//! registry's own origin after its challenge, redirects followed by hand
//! under the rules of the registry module documentation, and an error
//! answer read only as far as its first [`MAX_ERROR_BYTES`].

use reqwest::header::{ACCEPT, LOCATION};
use reqwest::{StatusCode, Url};

use super::error::{status_error, transport};
use super::manifest::manifest_redirect_allowed;
use super::reach::{Purpose, Verdict, suggestion};
use super::shared::{Authorization, authorizations};
use super::{Ctx, FetchError, MAX_REDIRECTS};
use crate::retry::{Peer, Retry, Schedule};

/// How much of an error answer's body is read (for its message; the
/// message shows less still).
pub const MAX_ERROR_BYTES: usize = 4 << 10;

/// What is fetched: decides where redirects may lead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Manifest,
    Blob,
}

impl Kind {
    fn redirect(self) -> &'static str {
        match self {
            Kind::Manifest => "a manifest redirect to",
            Kind::Blob => "a blob redirect to",
        }
    }
}

impl Ctx<'_> {
    /// GETs `origin` (a URL of the registry itself): without credentials
    /// first, or with those the registry last accepted for the repository;
    /// after a 401, once more with what its challenge asks for
    /// (remembered per repository). Credentials go to the registry's
    /// origin only, never where it redirects. The 200 answer, its body not
    /// yet read.
    pub(super) async fn get(
        &self,
        origin: &Url,
        accept: Option<&str>,
        kind: Kind,
        what: &str,
    ) -> Result<reqwest::Response, FetchError> {
        let key = (self.registry.to_string(), self.repository.to_string());
        let mut authorization = authorizations().get(&key).cloned();
        if let Some(Authorization::Bearer(token)) = &authorization {
            self.secrets.add(token);
        }
        let mut challenged = false;
        let mut url = origin.clone();
        let mut redirects = 0;
        // A refused or reset connection, a 5xx or a 429 is tried again from
        // the registry's own URL (crate::retry), inside the fetch's deadline.
        let mut schedule = Schedule::new(Peer::Registry, self.opts.timeout);
        loop {
            let at_origin = same_origin(&url, origin);
            let client = if at_origin {
                &self.clients.http
            } else {
                self.client_to(&url, Purpose::Redirect, kind.redirect())?
            };
            let mut request = client.get(url.clone());
            if let Some(accept) = accept {
                request = request.header(ACCEPT, accept);
            }
            if at_origin {
                request = match &authorization {
                    Some(Authorization::Bearer(token)) => request.bearer_auth(token),
                    Some(Authorization::Basic(user, password)) => request.basic_auth(user, Some(password)),
                    None => request,
                };
            }
            let purpose = (!at_origin).then_some((Purpose::Redirect, kind.redirect()));
            let context = if at_origin {
                String::new()
            } else {
                format!("{} {}: ", kind.redirect(), self.secrets.show(url.as_str()))
            };
            let mut response = match crate::latency::timed(Peer::Registry, request.send()).await {
                Ok(response) => response,
                Err(e) => {
                    let refused = purpose.is_some() && super::reach::refusal(&e).is_some();
                    let retry = if refused { Retry::No } else { Retry::for_error(&e) };
                    let error = self.send_error(e, &url, purpose, &context);
                    match schedule.next(retry) {
                        Ok(wait) => {
                            tracing::info!(
                                registry = self.registry,
                                attempt = schedule.attempt(),
                                "retrying {what}: {error}"
                            );
                            tokio::time::sleep(wait).await;
                            (url, redirects) = (origin.clone(), 0);
                            continue;
                        }
                        Err(_) => return Err(error),
                    }
                }
            };
            let status = response.status();
            if let Ok(wait) = schedule.next(Retry::for_status(status, response.headers())) {
                tracing::info!(
                    registry = self.registry,
                    attempt = schedule.attempt(),
                    "retrying {what}: the registry answered HTTP {status}"
                );
                tokio::time::sleep(wait).await;
                (url, redirects) = (origin.clone(), 0);
                continue;
            }
            if matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308) {
                redirects += 1;
                url = self.redirect(&url, &response, redirects, kind, what)?;
                continue;
            }
            if status == StatusCode::UNAUTHORIZED && !challenged && at_origin {
                challenged = true;
                if let Some(found) = self.authenticate(response.headers()).await? {
                    authorizations().insert(key.clone(), found.clone());
                    authorization = Some(found);
                    continue;
                }
            }
            if status != StatusCode::OK {
                // A host the registry redirected to is a third party (a
                // bucket, a CDN, or an internal address it wants reflected):
                // its status is told, its body never.
                let body = if at_origin {
                    crate::http::read_prefix(&mut response, MAX_ERROR_BYTES).await
                } else {
                    Vec::new()
                };
                if status == StatusCode::BAD_REQUEST
                    && at_origin
                    && let Some(sentence) =
                        crate::tls::explain_plain_to_tls(&String::from_utf8_lossy(&body), self.registry)
                {
                    return Err(FetchError::Unreachable {
                        registry: self.registry.into(),
                        reason: sentence,
                    });
                }
                let shown = |text: &str| self.secrets.show(text);
                let e = status_error(status, &body, self.registry, self.repository, what, shown);
                return Err(self.error(e));
            }
            return Ok(response);
        }
    }

    /// Where a redirect leads, if provgate goes there: for a manifest only
    /// over HTTPS or to an `--insecure-registry` host, for a blob over
    /// either; at most [`MAX_REDIRECTS`].
    fn redirect(
        &self,
        from: &Url,
        response: &reqwest::Response,
        count: usize,
        kind: Kind,
        what: &str,
    ) -> Result<Url, FetchError> {
        let status = response.status();
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| self.unusable(what, format!("a redirect (HTTP {status}) without a Location")))?;
        let next = from
            .join(location)
            .map_err(|e| self.unusable(what, format!("a redirect to {}: {e}", self.secrets.show(location))))?;
        let shown = self.secrets.show(next.as_str());
        if count > MAX_REDIRECTS {
            return Err(self.unusable(
                what,
                format!("it redirected more than {MAX_REDIRECTS} times (last to {shown})"),
            ));
        }
        let allowed = match kind {
            Kind::Manifest => manifest_redirect_allowed(&next, &self.opts.insecure),
            Kind::Blob if matches!(next.scheme(), "http" | "https") => Ok(()),
            Kind::Blob => Err(format!("{} is not HTTP", self.secrets.show(next.scheme()))),
        };
        allowed
            .map(|()| next.clone())
            .map_err(|reason| self.unusable(what, format!("it redirected (HTTP {status}) to {shown}: {reason}")))
    }

    /// The client for a request to `url`, which is not the registry's own
    /// origin, made for `purpose` (`what` names it in an error: "the token
    /// realm"): refused when this fetch's reach does not allow it.
    pub(super) fn client_to(&self, url: &Url, purpose: Purpose, what: &str) -> Result<&reqwest::Client, FetchError> {
        match self.opts.reach.judge(url, self.origin, purpose) {
            Verdict::Trusted => Ok(&self.clients.http),
            Verdict::PublicOnly => Ok(self.clients.public_only.as_ref().unwrap_or(&self.clients.http)),
            Verdict::Refused(reason) => Err(self.not_allowed(url, purpose, what, reason)),
        }
    }

    fn not_allowed(&self, url: &Url, purpose: Purpose, what: &str, reason: String) -> FetchError {
        FetchError::HostNotAllowed {
            registry: self.registry.into(),
            what: format!("{what} {}", self.secrets.show(url.as_str())),
            reason,
            allow: format!("{} {}", purpose.flag(), super::reach::plain(&suggestion(url))),
        }
    }

    /// A request that got no answer: refused by the guard's resolver
    /// (when `purpose` says the request was a guarded one), or the
    /// transport's failure, after `context`.
    pub(super) fn send_error(
        &self,
        e: reqwest::Error,
        url: &Url,
        purpose: Option<(Purpose, &str)>,
        context: &str,
    ) -> FetchError {
        if let Some((purpose, what)) = purpose
            && let Some(reason) = super::reach::refusal(&e)
        {
            return self.not_allowed(url, purpose, what, reason);
        }
        // The registry's own URL is provgate's (built from the parsed
        // reference) and says which scheme was tried; another host's is
        // the registry's to choose, named quoted in `context` instead.
        let cause = if purpose.is_none() {
            super::error::request_error(&e)
        } else {
            transport(e)
        };
        // A TLS failure in words that name the host and the fix
        // (`crate::tls`); the flag that allows plain HTTP only for the
        // registry itself.
        let tls = match purpose {
            None => {
                let flag = (!self.opts.insecure.iter().any(|h| h == self.registry)).then_some("--insecure-registry");
                crate::tls::explain(&cause, self.registry, flag)
            }
            Some(_) => crate::tls::explain(&cause, &super::reach::plain(&suggestion(url)), None),
        };
        let cause = match tls {
            Some(sentence) => format!("{sentence} ({cause})"),
            None => cause,
        };
        let reason = format!("{context}{}", self.secrets.scrub(&cause));
        self.error(FetchError::Unreachable {
            registry: self.registry.into(),
            reason,
        })
    }
}

pub(super) fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme() && a.host_str() == b.host_str() && a.port_or_known_default() == b.port_or_known_default()
}
