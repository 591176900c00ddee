//! The outbound URL policy for every URL a request makes the gateway fetch (MCP
//! servers named by URL today; search result pages, `file_url` and image URLs
//! next).
//!
//! A request may point the gateway at any URL, so without a guard it could make
//! the gateway reach what only the gateway can reach: its own loopback services,
//! the private network, or a cloud metadata endpoint (server-side request
//! forgery). The policy is checked twice: on the URL before connecting (scheme,
//! host names, IP literals) and on every address a host name resolves to, inside
//! the HTTP client's DNS resolver (see `client.rs`), so that a name which resolves
//! to a public address at check time and to a private one at connect time (DNS
//! rebinding) is still refused. Targets from the configuration (backends,
//! configured MCP servers) are trusted and never pass through here.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use reqwest::Url;

use crate::EgressError;

/// Which URLs named by a request the gateway may connect to.
///
/// By default only `http` and `https` URLs whose host is a public address are
/// allowed: loopback, private (RFC 1918, unique-local `fc00::/7`), shared
/// (CGNAT `100.64.0.0/10`), link-local (`169.254.0.0/16`, which includes cloud
/// metadata endpoints, and `fe80::/10`), unspecified, multicast, broadcast and
/// reserved addresses are denied, also in their IPv4-mapped IPv6 forms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UrlPolicy {
    /// Allow loopback addresses (`127.0.0.0/8`, `::1`). Tests and single-host
    /// deployments turn this on.
    pub allow_loopback: bool,
    /// Allow private and shared addresses (`10.0.0.0/8`, `172.16.0.0/12`,
    /// `192.168.0.0/16`, `100.64.0.0/10`, `fc00::/7`).
    pub allow_private: bool,
    /// Exceptions to the built-in denials: host names (`mcp.internal`, or
    /// `*.corp.example` for its subdomains), IP addresses and CIDRs
    /// (`10.1.2.0/24`). A host name allowed here may resolve to any address
    /// that the deny list does not name. This list does not restrict anything.
    pub allow: Vec<String>,
    /// Host names, addresses and CIDRs never to connect to. Wins over `allow`.
    pub deny: Vec<String>,
}

/// A host-name entry of a policy list.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Exact(String),
    /// `*.example.com`: any subdomain of `example.com` (not the name itself).
    Subdomains(String),
}

impl HostPattern {
    fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(name) => host == name,
            HostPattern::Subdomains(parent) => host
                .strip_suffix(parent.as_str())
                .is_some_and(|prefix| prefix.ends_with('.') && prefix.len() > 1),
        }
    }
}

/// One parsed list (allow or deny).
#[derive(Debug, Clone, Default)]
struct Entries {
    hosts: Vec<HostPattern>,
    nets: Vec<IpNet>,
}

impl Entries {
    fn parse(list: &[String], which: &str) -> Result<Self, EgressError> {
        let mut entries = Entries::default();
        for raw in list {
            let entry = raw.trim();
            if let Ok(net) = entry.parse::<IpNet>() {
                entries.nets.push(canonical_net(net));
            } else if let Ok(ip) = entry.trim_matches(['[', ']']).parse::<IpAddr>() {
                entries.nets.push(canonical_net(IpNet::from(ip)));
            } else if let Some(parent) = entry.strip_prefix("*.") {
                entries
                    .hosts
                    .push(HostPattern::Subdomains(host_name(parent, raw, which)?));
            } else {
                entries
                    .hosts
                    .push(HostPattern::Exact(host_name(entry, raw, which)?));
            }
        }
        Ok(entries)
    }

    fn names(&self, host: &str) -> bool {
        self.hosts.iter().any(|pattern| pattern.matches(host))
    }

    fn contains(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|net| net.contains(&ip))
    }
}

/// Validates and normalises a host name of a policy list.
fn host_name(name: &str, raw: &str, which: &str) -> Result<String, EgressError> {
    let name = normalize_host(name);
    let valid = !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if valid {
        Ok(name)
    } else {
        Err(EgressError::Policy(format!(
            "url_policy {which} entry '{raw}' is neither a host name, an IP address nor a CIDR"
        )))
    }
}

/// Host names compare case-insensitively and without the root's trailing dot.
fn normalize_host(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// An IPv4 network written in IPv4-mapped IPv6 form matches the IPv4 addresses
/// it means, since addresses are canonicalised before matching.
fn canonical_net(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(v6) => match v6.addr().to_ipv4_mapped() {
            Some(v4) if v6.prefix_len() >= 96 => {
                IpNet::new(IpAddr::V4(v4), v6.prefix_len() - 96).unwrap_or(net)
            }
            _ => net,
        },
        IpNet::V4(_) => net,
    }
}

/// The compiled policy, shared by the pre-connect check and the DNS resolver.
#[derive(Debug, Clone)]
pub struct EgressGuard {
    allow_loopback: bool,
    allow_private: bool,
    allow: Entries,
    deny: Entries,
}

impl EgressGuard {
    pub fn new(policy: &UrlPolicy) -> Result<Self, EgressError> {
        Ok(Self {
            allow_loopback: policy.allow_loopback,
            allow_private: policy.allow_private,
            allow: Entries::parse(&policy.allow, "allow")?,
            deny: Entries::parse(&policy.deny, "deny")?,
        })
    }

    /// Checks a URL before anything connects to it: the scheme, a denied host
    /// name, and an IP literal (which no resolver sees). Host names are checked
    /// again, address by address, when they resolve.
    pub fn check_url(&self, url: &Url) -> Result<(), String> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "the scheme '{}' is not allowed (only http and https)",
                url.scheme()
            ));
        }
        let Some(host) = url.host_str().filter(|host| !host.is_empty()) else {
            return Err("the URL has no host".to_owned());
        };
        // The URL parser has already normalised IPv4 literals (`0x7f.1` becomes
        // `127.0.0.1`) and brackets IPv6 ones.
        if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
            return self.check_ip(host, ip);
        }
        let host = normalize_host(host);
        if self.deny.names(&host) {
            Err(format!("the host '{host}' is on the deny list"))
        } else {
            Ok(())
        }
    }

    /// Checks one address that `host` resolved to.
    pub fn check_resolved(&self, host: &str, ip: IpAddr) -> Result<(), String> {
        let host = normalize_host(host);
        if self.deny.names(&host) {
            return Err(format!("the host '{host}' is on the deny list"));
        }
        if self.allow.names(&host) {
            // The operator vouched for this name, wherever it points; only an
            // explicitly denied address still stops it.
            let ip = canonical(ip);
            if self.deny.contains(ip) {
                return Err(format!("the host '{host}' resolves to a denied address"));
            }
            return Ok(());
        }
        self.check_ip(&host, ip)
    }

    /// The address rules, with `host` naming the URL's host in the message.
    fn check_ip(&self, host: &str, ip: IpAddr) -> Result<(), String> {
        let ip = canonical(ip);
        let shown = if host.parse::<IpAddr>().is_ok() || host.starts_with('[') {
            format!("the host {host}")
        } else {
            format!("the host '{host}' resolves to {ip}, which")
        };
        if self.deny.contains(ip) {
            return Err(format!("{shown} is on the deny list"));
        }
        if self.allow.contains(ip) {
            return Ok(());
        }
        match classify(ip) {
            Class::Public => Ok(()),
            Class::Loopback if self.allow_loopback => Ok(()),
            Class::Private if self.allow_private => Ok(()),
            class => Err(format!("{shown} is {}", class.describe())),
        }
    }
}

/// What kind of address an IP is, for the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Public,
    Loopback,
    Private,
    LinkLocal,
    Unspecified,
    Multicast,
    Reserved,
    /// A cloud provider's instance metadata service outside the link-local
    /// range; denied even with `allow_private`.
    Metadata,
}

impl Class {
    fn describe(self) -> &'static str {
        match self {
            Class::Public => "a public address",
            Class::Loopback => "a loopback address",
            Class::Private => "a private address",
            Class::LinkLocal => "a link-local address",
            Class::Unspecified => "an unspecified address",
            Class::Multicast => "a multicast address",
            Class::Reserved => "a reserved address",
            Class::Metadata => "a cloud metadata service address",
        }
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:127.0.0.1`) and the NAT64 well-known
/// prefix (`64:ff9b::/96`) reach the IPv4 address they embed, so they are judged
/// as that address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            if v6.segments()[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [.., a, b, c, d] = v6.octets();
                return IpAddr::V4(Ipv4Addr::new(a, b, c, d));
            }
            IpAddr::V6(v6)
        }
        IpAddr::V4(_) => ip,
    }
}

fn classify(ip: IpAddr) -> Class {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Class {
    let [a, b, c, _] = ip.octets();
    if ip == Ipv4Addr::new(100, 100, 100, 200) {
        // Alibaba Cloud's metadata service, inside the CGNAT range.
        Class::Metadata
    } else if ip.is_loopback() {
        Class::Loopback
    } else if ip.is_private() || (a == 100 && (64..128).contains(&b)) {
        // 100.64.0.0/10 is carrier-grade NAT space: internal to some network.
        Class::Private
    } else if ip.is_link_local() {
        Class::LinkLocal
    } else if a == 0 {
        // 0.0.0.0/8 means "this host" on many stacks, not a remote server.
        Class::Unspecified
    } else if ip.is_multicast() {
        Class::Multicast
    } else if ip.is_broadcast()
        || a >= 240
        // IETF protocol assignments 192.0.0.0/24, benchmarking 198.18.0.0/15, and
        // the documentation ranges: nothing a remote MCP server lives on.
        || (a, b, c) == (192, 0, 0)
        || (a == 198 && (18..20).contains(&b))
        || (a, b, c) == (192, 0, 2)
        || (a, b, c) == (198, 51, 100)
        || (a, b, c) == (203, 0, 113)
    {
        Class::Reserved
    } else {
        Class::Public
    }
}

fn classify_v6(ip: Ipv6Addr) -> Class {
    let segments = ip.segments();
    let first = segments[0];
    if segments == [0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254] {
        // AWS's instance metadata service over IPv6, inside fc00::/7.
        Class::Metadata
    } else if ip.is_loopback() {
        Class::Loopback
    } else if ip.is_unspecified() {
        Class::Unspecified
    } else if first & 0xfe00 == 0xfc00 || first & 0xffc0 == 0xfec0 {
        // Unique-local fc00::/7, and the deprecated site-local fec0::/10.
        Class::Private
    } else if first & 0xffc0 == 0xfe80 {
        Class::LinkLocal
    } else if ip.is_multicast() {
        Class::Multicast
    } else if segments[..6] == [0; 6]
        // The local-use NAT64 prefix 64:ff9b:1::/48 reaches local IPv4 space;
        // ::ffff:0:a.b.c.d (IPv4-translated) and 2001:db8::/32 (documentation).
        || segments[..3] == [0x64, 0xff9b, 1]
        || segments[..5] == [0, 0, 0, 0, 0xffff]
        || segments[..2] == [0x2001, 0x0db8]
    {
        // Also the deprecated IPv4-compatible form ::a.b.c.d.
        Class::Reserved
    } else {
        Class::Public
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(policy: UrlPolicy) -> EgressGuard {
        EgressGuard::new(&policy).unwrap()
    }

    fn check(guard: &EgressGuard, url: &str) -> Result<(), String> {
        guard.check_url(&Url::parse(url).unwrap())
    }

    #[test]
    fn metadata_services_stay_denied_with_private_addresses_allowed() {
        let guard = guard(UrlPolicy {
            allow_private: true,
            ..UrlPolicy::default()
        });
        for url in [
            "http://100.100.100.200/latest/meta-data",
            "http://[fd00:ec2::254]/",
            "http://169.254.169.254/",
            "http://198.18.0.1/",
            "http://[64:ff9b:1::a00:1]/",
        ] {
            assert!(check(&guard, url).is_err(), "{url}");
        }
        assert!(check(&guard, "http://100.64.0.1/").is_ok());
        assert!(check(&guard, "http://[fd00::1]/").is_ok());
    }

    #[test]
    fn literals_are_judged_by_class() {
        let guard = guard(UrlPolicy::default());
        for url in [
            "http://127.0.0.1:8080/mcp",
            "http://127.1.2.3/",
            "http://[::1]/",
            "http://10.0.0.1/",
            "http://172.16.5.4/",
            "http://192.168.1.1/",
            "http://100.64.0.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://[fe80::1]/",
            "http://[fd00::1]/",
            "http://0.0.0.0/",
            "http://[::]/",
            "http://224.0.0.1/",
            "http://255.255.255.255/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:169.254.169.254]/",
            "http://[64:ff9b::a9fe:a9fe]/",
            "http://[::127.0.0.1]/",
        ] {
            assert!(check(&guard, url).is_err(), "{url} should be denied");
        }
        for url in [
            "https://8.8.8.8/mcp",
            "https://[2001:4860:4860::8888]/",
            "https://mcp.example.com/mcp",
            "http://100.128.0.1/",
            "http://172.32.0.1/",
        ] {
            assert!(check(&guard, url).is_ok(), "{url} should be allowed");
        }
    }

    #[test]
    fn schemes_other_than_http_are_denied() {
        let guard = guard(UrlPolicy::default());
        assert!(check(&guard, "ftp://example.com/").is_err());
        assert!(check(&guard, "file:///etc/passwd").is_err());
    }

    #[test]
    fn switches_allow_their_class_only() {
        let guard = guard(UrlPolicy {
            allow_loopback: true,
            ..UrlPolicy::default()
        });
        assert!(check(&guard, "http://127.0.0.1/").is_ok());
        assert!(check(&guard, "http://[::ffff:127.0.0.1]/").is_ok());
        assert!(check(&guard, "http://10.0.0.1/").is_err());
        let guard = EgressGuard::new(&UrlPolicy {
            allow_private: true,
            ..UrlPolicy::default()
        })
        .unwrap();
        assert!(check(&guard, "http://10.0.0.1/").is_ok());
        assert!(check(&guard, "http://[fd12::1]/").is_ok());
        assert!(check(&guard, "http://169.254.169.254/").is_err());
        assert!(check(&guard, "http://127.0.0.1/").is_err());
    }

    #[test]
    fn deny_wins_over_allow() {
        let guard = guard(UrlPolicy {
            allow: vec![
                "10.1.0.0/16".into(),
                "mcp.internal".into(),
                "*.corp.example".into(),
            ],
            deny: vec!["10.1.2.0/24".into(), "evil.corp.example".into()],
            ..UrlPolicy::default()
        });
        assert!(check(&guard, "http://10.1.1.1/").is_ok());
        assert!(check(&guard, "http://10.1.2.3/").is_err());
        assert!(check(&guard, "http://10.2.0.1/").is_err());
        assert!(check(&guard, "http://evil.corp.example/").is_err());
        let private = "10.9.9.9".parse().unwrap();
        assert!(guard.check_resolved("mcp.internal", private).is_ok());
        assert!(guard.check_resolved("a.corp.example", private).is_ok());
        assert!(guard.check_resolved("corp.example", private).is_err());
        assert!(guard.check_resolved("evil.corp.example", private).is_err());
        assert!(
            guard
                .check_resolved("mcp.internal", "10.1.2.9".parse().unwrap())
                .is_err()
        );
        assert!(guard.check_resolved("other.example", private).is_err());
    }

    #[test]
    fn messages_name_the_host() {
        let guard = guard(UrlPolicy::default());
        let message = check(&guard, "http://169.254.169.254/").unwrap_err();
        assert!(message.contains("169.254.169.254"), "{message}");
        assert!(message.contains("link-local"), "{message}");
        let message = guard
            .check_resolved("localhost", "127.0.0.1".parse().unwrap())
            .unwrap_err();
        assert!(message.contains("'localhost'"), "{message}");
    }

    #[test]
    fn bad_entries_are_rejected() {
        assert!(
            EgressGuard::new(&UrlPolicy {
                allow: vec!["not a host".into()],
                ..UrlPolicy::default()
            })
            .is_err()
        );
        assert!(
            EgressGuard::new(&UrlPolicy {
                deny: vec!["10.0.0.0/33".into()],
                ..UrlPolicy::default()
            })
            .is_err()
        );
    }
}
