//! Where a fetch may go besides the registry itself: token realms and
//! redirects are the registry's to name, and under `serve` a registry must
//! not be able to make provgate call the machine's own or its network's
//! internal addresses (SSRF).
//!
//! With [`Reach::Guarded`], a request to a host other than the registry's
//! own `HOST:PORT` goes out only when the host is named by the operator
//! (`--allow-auth-host`, `--allow-redirect-host`), or when every address
//! it has is public. The check is made on the addresses actually
//! connected to: such requests use a client whose resolver
//! ([`PublicOnly`]) refuses a name as soon as any of its addresses is not
//! public, so a name cannot resolve to a public address for a check and
//! to an internal one for the connection. An IP literal skips DNS, so it
//! is checked before the request. That client uses no proxy (through a
//! proxy the address connected to is the proxy's); hosts that are named
//! by the operator go out as the registry's own requests do.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::HeaderValue;

/// Where a fetch's requests may go.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Reach {
    /// Anywhere the registry points (`verify`, `audit`: run by the user,
    /// on the user's own machine and references).
    #[default]
    Anywhere,
    /// The registry's own `HOST:PORT`; token realms on `auth_hosts`,
    /// redirects to `redirect_hosts` (`HOST` for any port, or
    /// `HOST:PORT`, lower case); anything else only when every address it
    /// has is public (`serve`).
    Guarded {
        auth_hosts: Vec<String>,
        redirect_hosts: Vec<String>,
    },
}

/// Why a request leaves the registry's own host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Purpose {
    /// The token realm of a `WWW-Authenticate` challenge.
    Realm,
    /// A manifest or blob redirect.
    Redirect,
}

impl Purpose {
    /// The `serve` flag that allows a host for this purpose.
    pub(super) fn flag(self) -> &'static str {
        match self {
            Purpose::Realm => "--allow-auth-host",
            Purpose::Redirect => "--allow-redirect-host",
        }
    }
}

/// What a guarded fetch decides for one URL.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// The registry itself, a host the operator named, or any host
    /// ([`Reach::Anywhere`]): the ordinary client.
    Trusted,
    /// Any other host, reachable if its addresses are public: the client
    /// with the [`PublicOnly`] resolver.
    PublicOnly,
    /// An IP literal that is not public: never contacted.
    Refused(String),
}

impl Reach {
    /// Where `url` may be reached from a fetch from `registry` (the
    /// registry's origin URL), for `purpose`.
    pub(super) fn judge(&self, url: &Url, registry: &Url, purpose: Purpose) -> Verdict {
        let (auth_hosts, redirect_hosts) = match self {
            Reach::Anywhere => return Verdict::Trusted,
            Reach::Guarded {
                auth_hosts,
                redirect_hosts,
            } => (auth_hosts, redirect_hosts),
        };
        if same_host_and_port(url, registry) {
            return Verdict::Trusted;
        }
        let named = match purpose {
            Purpose::Realm => auth_hosts,
            Purpose::Redirect => redirect_hosts,
        };
        if named.iter().any(|entry| names(entry, url)) {
            return Verdict::Trusted;
        }
        match literal(url).and_then(|ip| not_public(ip).map(|why| (ip, why))) {
            Some((ip, why)) => Verdict::Refused(format!("{ip} is {why}")),
            None => Verdict::PublicOnly,
        }
    }
}

/// The address a URL names itself (an IP literal, which no resolver sees):
/// the URL parser has already turned every spelling of one (`0x7f.1`,
/// `2130706433`, `[::ffff:7f00:1]`) into its canonical form.
fn literal(url: &Url) -> Option<IpAddr> {
    let host = url.host_str()?;
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
        .parse()
        .ok()
}

/// `HOST:PORT` of a URL, the port always written (the scheme's default
/// when the URL has none): what an allow-list entry with a port names.
pub(super) fn host_port(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port_or_known_default() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

/// What to suggest for a flag: `HOST:PORT` when the URL names a port,
/// else `HOST`.
pub(super) fn suggestion(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

fn same_host_and_port(a: &Url, b: &Url) -> bool {
    a.host_str().map(str::to_ascii_lowercase) == b.host_str().map(str::to_ascii_lowercase)
        && a.port_or_known_default() == b.port_or_known_default()
}

/// Whether an allow-list entry (`HOST` or `HOST:PORT`, lower case) names
/// the host of `url`: `HOST` any port of it, `HOST:PORT` that port only.
fn names(entry: &str, url: &Url) -> bool {
    let Some(host) = url.host_str().map(str::to_ascii_lowercase) else {
        return false;
    };
    let entry = entry.trim().to_ascii_lowercase();
    if entry == host {
        return true;
    }
    match url.port_or_known_default() {
        Some(port) => entry == format!("{host}:{port}"),
        None => false,
    }
}

/// Why `ip` is not a public address (as "a loopback address"), or `None`
/// when it is one. IPv4-mapped, NAT64 and 6to4 addresses are judged by the
/// IPv4 address inside.
pub fn not_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => not_public_v4(v4),
        IpAddr::V6(v6) => not_public_v6(v6),
    }
}

fn not_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    let why = if ip.is_unspecified() {
        "the unspecified address"
    } else if a == 0 {
        "a \"this network\" address (0.0.0.0/8)"
    } else if ip.is_loopback() {
        "a loopback address"
    } else if ip.is_private() {
        "a private address"
    } else if a == 100 && (64..128).contains(&b) {
        "a shared (CGNAT) address (100.64.0.0/10)"
    } else if ip.is_link_local() {
        "a link-local address"
    } else if a == 192 && b == 0 && c == 0 {
        "an IETF protocol assignment (192.0.0.0/24)"
    } else if ip.is_documentation() {
        "a documentation address"
    } else if a == 198 && (b == 18 || b == 19) {
        "a benchmarking address (198.18.0.0/15)"
    } else if a == 192 && b == 88 && c == 99 {
        "a 6to4 relay address (192.88.99.0/24)"
    } else if ip.is_multicast() {
        "a multicast address"
    } else if ip.is_broadcast() {
        "the broadcast address"
    } else if a >= 240 {
        "a reserved address (240.0.0.0/4)"
    } else {
        return None;
    };
    Some(why)
}

fn not_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let segments = ip.segments();
    let embedded_v4 = |at: usize| {
        let [hi, lo] = [segments[at], segments[at + 1]];
        Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8)
    };
    let why = if ip.is_unspecified() {
        "the unspecified address"
    } else if ip.is_loopback() {
        "a loopback address"
    } else if let Some(v4) = ip.to_ipv4_mapped() {
        return not_public_v4(v4);
    } else if segments[..6] == [0; 6] {
        "an IPv4-compatible address (::/96, deprecated)"
    } else if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        // NAT64's well-known prefix: whatever the IPv4 address inside is.
        return not_public_v4(embedded_v4(6));
    } else if segments[0] == 0x64 && segments[1] == 0xff9b && segments[2] == 1 {
        "a local-use NAT64 address (64:ff9b:1::/48)"
    } else if segments[0] == 0x2002 {
        // 6to4: the IPv4 address inside decides.
        return not_public_v4(embedded_v4(1));
    } else if segments[..4] == [0x100, 0, 0, 0] {
        "a discard-only address (100::/64)"
    } else if segments[0] == 0x2001 && segments[1] == 0xdb8 {
        "a documentation address (2001:db8::/32)"
    } else if segments[0] == 0x3fff && segments[1] < 0x1000 {
        "a documentation address (3fff::/20)"
    } else if segments[0] == 0x2001 && segments[1] < 0x200 {
        "an IETF protocol assignment (2001::/23, Teredo included)"
    } else if segments[0] & 0xfe00 == 0xfc00 {
        "a unique local address (fc00::/7)"
    } else if segments[0] & 0xffc0 == 0xfe80 {
        "a link-local address (fe80::/10)"
    } else if segments[0] & 0xffc0 == 0xfec0 {
        "a site-local address (fec0::/10, deprecated)"
    } else if ip.is_multicast() {
        "a multicast address"
    } else {
        return None;
    };
    Some(why)
}

/// A resolver that refuses a name when any of its addresses is not public.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct PublicOnly;

/// A name or address a guarded request refused to connect to.
#[derive(Debug)]
pub(super) struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            check_resolved(&host, &addrs)?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The addresses `host` resolved to, refused when any is not public.
fn check_resolved(host: &str, addrs: &[SocketAddr]) -> Result<(), Refused> {
    if addrs.is_empty() {
        return Err(Refused(format!("{} has no address", plain(host))));
    }
    match addrs.iter().find_map(|a| not_public(a.ip()).map(|why| (a.ip(), why))) {
        Some((ip, why)) => Err(Refused(format!("{} resolves to {ip}, {why}", plain(host)))),
        None => Ok(()),
    }
}

/// The refusal in a request error's chain of causes, if that is why it
/// failed.
pub(super) fn refusal(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next = Some(e);
    while let Some(err) = next {
        if let Some(refused) = err.downcast_ref::<Refused>() {
            return Some(refused.0.clone());
        }
        next = err.source();
    }
    None
}

/// A host name as printed: as it is when it is only the characters a DNS
/// name has, else quoted.
pub(super) fn plain(host: &str) -> String {
    let safe = !host.is_empty()
        && host.len() <= crate::text::MAX_CHARS
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']' | b'_'));
    if safe {
        host.to_string()
    } else {
        crate::text::quote(host)
    }
}

/// Whether a token can be sent as `Authorization: Bearer <token>`.
pub(super) fn header_safe(token: &str) -> bool {
    HeaderValue::from_str(&format!("Bearer {token}")).is_ok() && token.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(ip: &str) -> bool {
        not_public(ip.parse().unwrap()).is_some()
    }

    #[test]
    fn internal_special_and_reserved_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "127.255.0.9",
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.254",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "198.18.0.1",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::1",
            "2002:7f00:1::1",
            "2002:c0a8:101::1",
            "100::1",
            "2001:db8::1",
            "3fff::1",
            "2001::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
        ] {
            assert!(refused(ip), "{ip} was taken for public");
        }
    }

    #[test]
    fn public_addresses_are_public() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "140.82.121.4",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.255.255",
            "172.32.0.1",
            "192.169.0.1",
            "198.20.0.1",
            "2606:4700::1111",
            "2a00:1450:4001::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(!refused(ip), "{ip} was refused: {:?}", not_public(ip.parse().unwrap()));
        }
    }

    #[test]
    fn the_reason_names_the_kind_of_address() {
        assert_eq!(not_public("127.0.0.1".parse().unwrap()), Some("a loopback address"));
        assert_eq!(not_public("10.0.0.1".parse().unwrap()), Some("a private address"));
        assert_eq!(
            not_public("::ffff:192.168.0.1".parse().unwrap()),
            Some("a private address")
        );
        assert!(not_public("fe80::1".parse().unwrap()).unwrap().contains("link-local"));
    }

    fn guarded() -> Reach {
        Reach::Guarded {
            auth_hosts: vec!["auth.internal".into(), "127.0.0.1:9".into()],
            redirect_hosts: vec!["storage.internal:8443".into()],
        }
    }

    fn judge(reach: &Reach, url: &str, purpose: Purpose) -> Verdict {
        let registry = Url::parse("https://registry.example:5000/").unwrap();
        reach.judge(&Url::parse(url).unwrap(), &registry, purpose)
    }

    #[test]
    fn anywhere_trusts_every_host() {
        let any = Reach::Anywhere;
        assert_eq!(judge(&any, "http://127.0.0.1:9/x", Purpose::Realm), Verdict::Trusted);
        assert_eq!(judge(&any, "http://10.0.0.1/x", Purpose::Redirect), Verdict::Trusted);
    }

    #[test]
    fn guarded_trusts_the_registry_and_named_hosts_and_refuses_internal_literals() {
        let g = guarded();
        // The registry's own host and port, whatever the scheme's default.
        assert_eq!(
            judge(&g, "https://registry.example:5000/token", Purpose::Realm),
            Verdict::Trusted
        );
        // Another port of the registry's host is another host.
        assert_eq!(
            judge(&g, "https://registry.example:5001/token", Purpose::Realm),
            Verdict::PublicOnly
        );
        // A HOST entry names every port; HOST:PORT only that one.
        assert_eq!(
            judge(&g, "https://auth.internal:1234/token", Purpose::Realm),
            Verdict::Trusted
        );
        assert_eq!(judge(&g, "http://127.0.0.1:9/token", Purpose::Realm), Verdict::Trusted);
        assert_eq!(
            judge(&g, "http://127.0.0.1:10/token", Purpose::Realm),
            Verdict::Refused("127.0.0.1 is a loopback address".into())
        );
        assert_eq!(
            judge(&g, "https://storage.internal:8443/b", Purpose::Redirect),
            Verdict::Trusted
        );
        assert_eq!(
            judge(&g, "https://storage.internal/b", Purpose::Redirect),
            Verdict::PublicOnly
        );
        // Each flag is for its own purpose.
        assert_eq!(
            judge(&g, "https://auth.internal/b", Purpose::Redirect),
            Verdict::PublicOnly
        );
        assert!(matches!(
            judge(&g, "http://127.0.0.1:9/b", Purpose::Redirect),
            Verdict::Refused(_)
        ));
        // Literals in every spelling the URL parser accepts.
        for url in [
            "http://[::1]/x",
            "http://[::ffff:7f00:1]/x",
            "http://0x7f.1/x",
            "http://2130706433/x",
            "http://169.254.169.254/latest/meta-data",
            "http://[fd00::1]:8080/x",
        ] {
            assert!(
                matches!(judge(&g, url, Purpose::Redirect), Verdict::Refused(_)),
                "{url}"
            );
        }
        assert_eq!(judge(&g, "https://8.8.8.8/x", Purpose::Redirect), Verdict::PublicOnly);
    }

    #[test]
    fn a_name_with_any_internal_address_is_refused() {
        let public: SocketAddr = "8.8.8.8:0".parse().unwrap();
        let internal: SocketAddr = "10.1.2.3:0".parse().unwrap();
        assert!(check_resolved("cdn.example", &[public]).is_ok());
        let err = check_resolved("rebind.example", &[public, internal]).unwrap_err();
        assert_eq!(err.0, "rebind.example resolves to 10.1.2.3, a private address");
        assert!(check_resolved("nothing.example", &[]).is_err());
    }

    #[tokio::test]
    async fn the_resolver_refuses_localhost() {
        let name: Name = "localhost".parse().unwrap();
        let err = match PublicOnly.resolve(name).await {
            Ok(addrs) => panic!("localhost resolved to {:?}", addrs.collect::<Vec<_>>()),
            Err(e) => e,
        };
        assert!(err.to_string().contains("localhost resolves to"), "{err}");
        assert!(err.to_string().contains("loopback"), "{err}");
        assert!(refusal(&*err).is_some());
    }

    #[test]
    fn host_names_print_as_they_are_and_anything_else_quoted() {
        assert_eq!(plain("registry.example:5000"), "registry.example:5000");
        assert_eq!(plain("a\nb"), "\"a\\nb\"");
        assert!(header_safe("abc.DEF-123_~+/="));
        assert!(!header_safe("a b"));
        assert!(!header_safe("a\nb"));
    }
}
