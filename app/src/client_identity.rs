//! Who the client of a request is, for per-client throttling, and whether the request reached
//! Steno over HTTPS, for `Secure` cookies. Pure: decided from the peer address, the forwarding
//! headers and the trusted-proxy setting; the HTTP layer gathers those and calls [`resolve`].
//!
//! `X-Forwarded-For` and `X-Forwarded-Proto` are believed only when the peer that sent them is a
//! trusted proxy (`STENO_TRUSTED_PROXIES`): anyone can send those headers, so believing them from
//! an untrusted peer would let each request pick its own client address.

use std::net::IpAddr;

/// One trusted address or network (`127.0.0.1`, `10.0.0.0/8`, `::1`, `fd00::/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    address: IpAddr,
    prefix_bits: u8,
}

impl Network {
    /// Parses `ADDRESS` or `ADDRESS/PREFIX`; the error says what is wrong.
    pub fn parse(text: &str) -> Result<Network, String> {
        let text = text.trim();
        let (address_text, prefix_text) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address_text
            .parse()
            .map_err(|_| format!("{address_text:?} is not an IP address"))?;
        let max_bits = if address.is_ipv4() { 32 } else { 128 };
        let prefix_bits = match prefix_text {
            Some(prefix) => prefix
                .parse::<u8>()
                .ok()
                .filter(|bits| *bits <= max_bits)
                .ok_or_else(|| format!("{prefix:?} is not a prefix length from 0 to {max_bits}"))?,
            None => max_bits,
        };
        Ok(Network {
            address,
            prefix_bits,
        })
    }

    pub fn contains(&self, candidate: IpAddr) -> bool {
        let candidate = canonical(candidate);
        match (self.address, candidate) {
            (IpAddr::V4(network), IpAddr::V4(candidate)) => {
                prefix_matches(&network.octets(), &candidate.octets(), self.prefix_bits)
            }
            (IpAddr::V6(network), IpAddr::V6(candidate)) => {
                prefix_matches(&network.octets(), &candidate.octets(), self.prefix_bits)
            }
            _ => false,
        }
    }
}

/// An IPv4 address mapped into IPv6 (`::ffff:1.2.3.4`) is the IPv4 address.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

fn prefix_matches(network: &[u8], candidate: &[u8], prefix_bits: u8) -> bool {
    let full_bytes = usize::from(prefix_bits / 8);
    let rest_bits = prefix_bits % 8;
    if network[..full_bytes] != candidate[..full_bytes] {
        return false;
    }
    if rest_bits == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest_bits);
    network[full_bytes] & mask == candidate[full_bytes] & mask
}

/// The proxies whose forwarding headers Steno believes (`STENO_TRUSTED_PROXIES`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    networks: Vec<Network>,
}

impl TrustedProxies {
    /// Parses a comma-separated list; an empty list trusts nobody.
    pub fn parse(text: &str) -> Result<TrustedProxies, String> {
        let networks = text
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(Network::parse)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TrustedProxies { networks })
    }

    pub fn trusts(&self, address: IpAddr) -> bool {
        self.networks
            .iter()
            .any(|network| network.contains(address))
    }

    pub fn is_empty(&self) -> bool {
        self.networks.is_empty()
    }
}

/// What a request carries about its sender.
#[derive(Debug, Clone, Default)]
pub struct RequestOrigin<'a> {
    /// The TCP peer, when served by `axum::serve`.
    pub peer: Option<IpAddr>,
    /// The source address API Gateway reports in the Lambda request context.
    pub gateway_source_ip: Option<&'a str>,
    /// True under Lambda behind API Gateway (HTTPS only) or an ALB (which sets the forwarding
    /// headers itself and cannot be bypassed).
    pub behind_aws_front: bool,
    /// Every `X-Forwarded-For` value, in order.
    pub forwarded_for: Vec<&'a str>,
    /// The `X-Forwarded-Proto` value.
    pub forwarded_proto: Option<&'a str>,
}

/// The client of one request as Steno judges it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientContext {
    /// The client's address, when known.
    pub address: Option<IpAddr>,
    /// True when the request reached Steno's public side over HTTPS.
    pub https: bool,
}

impl ClientContext {
    /// The key per-client throttling counts under.
    pub fn throttle_key(&self) -> String {
        match self.address {
            Some(address) => canonical(address).to_string(),
            None => "unknown".to_string(),
        }
    }
}

/// Decides the client address and HTTPS from what the request carries.
///
/// - Lambda behind API Gateway: the gateway's source IP; always HTTPS.
/// - Lambda behind an ALB: the last `X-Forwarded-For` entry (the one the ALB appended), and
///   `X-Forwarded-Proto`.
/// - Otherwise the TCP peer; when the peer is a trusted proxy, `X-Forwarded-For` is walked from
///   the right, skipping trusted proxies, and the first untrusted address is the client.
///   `X-Forwarded-Proto: https` counts only from a trusted proxy.
/// - `public_url_is_https` (`STENO_PUBLIC_URL=https://...`) makes every request HTTPS.
pub fn resolve(
    origin: &RequestOrigin<'_>,
    trusted: &TrustedProxies,
    public_url_is_https: bool,
) -> ClientContext {
    let forwarded: Vec<IpAddr> = origin
        .forwarded_for
        .iter()
        .flat_map(|value| value.split(','))
        .filter_map(|item| item.trim().parse::<IpAddr>().ok())
        .collect();
    let proto_is_https = origin
        .forwarded_proto
        .and_then(|value| value.split(',').next_back())
        .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"));
    if let Some(source_ip) = origin.gateway_source_ip {
        return ClientContext {
            address: source_ip.trim().parse().ok(),
            https: true,
        };
    }
    if origin.behind_aws_front {
        return ClientContext {
            address: forwarded.last().copied(),
            https: public_url_is_https || proto_is_https,
        };
    }
    let Some(peer) = origin.peer else {
        return ClientContext {
            address: None,
            https: public_url_is_https,
        };
    };
    if !trusted.trusts(peer) {
        return ClientContext {
            address: Some(canonical(peer)),
            https: public_url_is_https,
        };
    }
    let client = forwarded
        .iter()
        .rev()
        .find(|address| !trusted.trusts(**address))
        .or_else(|| forwarded.first())
        .copied()
        .unwrap_or(peer);
    ClientContext {
        address: Some(canonical(client)),
        https: public_url_is_https || proto_is_https,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn networks_parse_and_match() {
        let trusted = TrustedProxies::parse("127.0.0.1, 10.0.0.0/8 ,fd00::/8").unwrap();
        assert!(trusted.trusts(ip("127.0.0.1")));
        assert!(trusted.trusts(ip("::ffff:127.0.0.1")));
        assert!(!trusted.trusts(ip("127.0.0.2")));
        assert!(trusted.trusts(ip("10.200.3.4")));
        assert!(trusted.trusts(ip("fd12::1")));
        assert!(!trusted.trusts(ip("fe80::1")));
        assert!(TrustedProxies::parse("").unwrap().is_empty());
        assert!(TrustedProxies::parse("10.0.0.0/33")
            .unwrap_err()
            .contains("prefix"));
        assert!(TrustedProxies::parse("proxy.local")
            .unwrap_err()
            .contains("not an IP"));
    }

    #[test]
    fn forwarding_headers_count_only_from_trusted_proxies() {
        let trusted = TrustedProxies::parse("127.0.0.1").unwrap();
        let spoofed = RequestOrigin {
            peer: Some(ip("198.51.100.7")),
            forwarded_for: vec!["203.0.113.9"],
            forwarded_proto: Some("https"),
            ..RequestOrigin::default()
        };
        assert_eq!(
            resolve(&spoofed, &trusted, false),
            ClientContext {
                address: Some(ip("198.51.100.7")),
                https: false
            }
        );
        let proxied = RequestOrigin {
            peer: Some(ip("127.0.0.1")),
            forwarded_for: vec!["203.0.113.9, 198.51.100.7", "127.0.0.1"],
            forwarded_proto: Some("https"),
            ..RequestOrigin::default()
        };
        assert_eq!(
            resolve(&proxied, &trusted, false),
            ClientContext {
                address: Some(ip("198.51.100.7")),
                https: true
            },
            "the rightmost untrusted address is the client; what it claims before that is not believed"
        );
        let untrusted_defaults = resolve(&proxied, &TrustedProxies::default(), true);
        assert_eq!(untrusted_defaults.address, Some(ip("127.0.0.1")));
        assert!(
            untrusted_defaults.https,
            "STENO_PUBLIC_URL=https://... wins"
        );
    }

    #[test]
    fn lambda_sources_come_from_the_gateway() {
        let gateway = RequestOrigin {
            gateway_source_ip: Some("203.0.113.5"),
            forwarded_for: vec!["1.2.3.4"],
            behind_aws_front: true,
            ..RequestOrigin::default()
        };
        assert_eq!(
            resolve(&gateway, &TrustedProxies::default(), false),
            ClientContext {
                address: Some(ip("203.0.113.5")),
                https: true
            }
        );
        let alb = RequestOrigin {
            behind_aws_front: true,
            forwarded_for: vec!["1.2.3.4, 203.0.113.6"],
            forwarded_proto: Some("http"),
            ..RequestOrigin::default()
        };
        let context = resolve(&alb, &TrustedProxies::default(), false);
        assert_eq!(context.address, Some(ip("203.0.113.6")));
        assert!(!context.https);
        assert_eq!(
            resolve(&RequestOrigin::default(), &TrustedProxies::default(), false).throttle_key(),
            "unknown"
        );
    }
}
