//! Which addresses and hosts webhooks may reach: the operator's allow-list
//! of hosts, and the address ranges refused unless the operator allows
//! them (loopback, private networks, link-local and cloud metadata, …),
//! so that a caller cannot use the converter to reach what only it can
//! reach (SSRF).
//!
//! Addresses are judged as the converter will connect to them: after DNS
//! resolution, on the address itself (an IPv4-mapped IPv6 address is its
//! IPv4 address; forms that embed an IPv4 address are judged by it).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// A network in CIDR notation, e.g. `10.0.0.0/8` or `fd00::/8`; a plain
/// address is a network of one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Cidr, String> {
        let text = text.trim();
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let written: IpAddr =
            address.parse().map_err(|_| format!("{text:?} is not a network: write e.g. 10.0.0.0/8 or fd00::/8"))?;
        let bits: u8 = if written.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => bits,
            Some(prefix) => prefix
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= bits)
                .ok_or_else(|| format!("{text:?}: the prefix length must be 0 to {bits}"))?,
        };
        // An IPv4-mapped network is the IPv4 network, as its addresses are.
        let network = written.to_canonical();
        if network.is_ipv4() && written.is_ipv6() {
            let prefix =
                prefix.checked_sub(96).ok_or_else(|| format!("{text:?}: the prefix length must be 96 to 128"))?;
            return Ok(Cidr { network, prefix });
        }
        Ok(Cidr { network, prefix })
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => in_v4(ip, net, self.prefix),
            (IpAddr::V6(net), IpAddr::V6(ip)) => in_v6(ip, net, self.prefix),
            _ => false,
        }
    }
}

fn in_v4(ip: Ipv4Addr, net: Ipv4Addr, prefix: u8) -> bool {
    let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
    u32::from(ip) & mask == u32::from(net) & mask
}

fn in_v6(ip: Ipv6Addr, net: Ipv6Addr, prefix: u8) -> bool {
    let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - prefix) };
    u128::from(ip) & mask == u128::from(net) & mask
}

/// A host of the allow-list: a name, or `*.suffix` for every name under
/// the suffix (not the suffix itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPattern(String);

impl FromStr for HostPattern {
    type Err = String;

    fn from_str(text: &str) -> Result<HostPattern, String> {
        let pattern = text.trim().trim_end_matches('.').to_ascii_lowercase();
        let name = pattern.strip_prefix("*.").unwrap_or(&pattern);
        let valid = !name.is_empty()
            && name.split('.').all(|label| {
                !label.is_empty() && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b':')
            });
        if !valid {
            return Err(format!("{text:?} is not a host name or a pattern such as *.example.com"));
        }
        Ok(HostPattern(pattern))
    }
}

impl HostPattern {
    /// Whether `host` (lowercase, as a URL holds it) matches.
    fn matches(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.');
        match self.0.strip_prefix("*.") {
            Some(suffix) => host.strip_suffix(suffix).is_some_and(|rest| rest.len() > 1 && rest.ends_with('.')),
            None => host == self.0,
        }
    }
}

/// What the operator allows.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// Hosts webhooks may go to; empty: any.
    pub hosts: Vec<HostPattern>,
    /// Networks reachable although they are not public.
    pub networks: Vec<Cidr>,
}

impl Policy {
    /// Whether the allow-list lets webhooks go to `host` (a name, or an
    /// address as the URL writes it, without brackets).
    pub fn allows_host(&self, host: &str) -> bool {
        self.hosts.is_empty() || self.hosts.iter().any(|pattern| pattern.matches(host))
    }

    /// Why webhooks may not reach `ip`, if they may not: what kind of
    /// address it is (words to put in parentheses after "not a public
    /// address").
    pub fn refusal(&self, ip: IpAddr) -> Option<&'static str> {
        if self.networks.iter().any(|network| network.contains(ip)) {
            return None;
        }
        not_public(ip)
    }
}

/// What kind of address `ip` is, unless it is a public one.
pub fn not_public(ip: IpAddr) -> Option<&'static str> {
    match ip.to_canonical() {
        IpAddr::V4(ip) => v4_kind(ip),
        IpAddr::V6(ip) => v6_kind(ip),
    }
}

fn v4_kind(ip: Ipv4Addr) -> Option<&'static str> {
    const RANGES: &[([u8; 4], u8, &str)] = &[
        ([0, 0, 0, 0], 8, "\"this network\", 0.0.0.0/8"),
        ([10, 0, 0, 0], 8, "private (RFC 1918)"),
        ([100, 64, 0, 0], 10, "shared carrier-grade NAT, 100.64.0.0/10"),
        ([127, 0, 0, 0], 8, "loopback"),
        ([169, 254, 0, 0], 16, "link-local, where cloud metadata services answer"),
        ([172, 16, 0, 0], 12, "private (RFC 1918)"),
        ([192, 0, 0, 0], 24, "IETF protocol assignments"),
        ([192, 0, 2, 0], 24, "documentation"),
        ([192, 88, 99, 0], 24, "6to4 relay anycast"),
        ([192, 168, 0, 0], 16, "private (RFC 1918)"),
        ([198, 18, 0, 0], 15, "benchmarking"),
        ([198, 51, 100, 0], 24, "documentation"),
        ([203, 0, 113, 0], 24, "documentation"),
        ([224, 0, 0, 0], 4, "multicast"),
        ([255, 255, 255, 255], 32, "broadcast"),
        ([240, 0, 0, 0], 4, "reserved"),
    ];
    RANGES.iter().find(|(net, prefix, _)| in_v4(ip, Ipv4Addr::from(*net), *prefix)).map(|(_, _, kind)| *kind)
}

fn v6_kind(ip: Ipv6Addr) -> Option<&'static str> {
    let bits = u128::from(ip);
    let embedded = |shift: u32| Ipv4Addr::from((bits >> shift) as u32);
    let within = |net: u128, prefix: u8| in_v6(ip, Ipv6Addr::from(net), prefix);
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    // ::a.b.c.d, deprecated; mapped addresses were made IPv4 already.
    if within(0, 96) {
        return Some("IPv4-compatible (deprecated)");
    }
    // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) reach the IPv4 address
    // they embed.
    if within(0x0064_ff9b << 96, 96) {
        return v4_kind(embedded(0));
    }
    if within(0x2002 << 112, 16) {
        return v4_kind(embedded(80));
    }
    const RANGES: &[(u128, u8, &str)] = &[
        (0x0064_ff9b_0001 << 80, 48, "local-use NAT64"),
        (0x0100 << 112, 64, "discard-only"),
        (0x2001 << 112, 32, "Teredo tunnel"),
        (0x2001_0db8 << 96, 32, "documentation"),
        (0xfc00 << 112, 7, "unique local, fc00::/7"),
        (0xfe80 << 112, 10, "link-local"),
        (0xfec0 << 112, 10, "site-local (deprecated)"),
        (0xff00 << 112, 8, "multicast"),
    ];
    RANGES.iter().find(|(net, prefix, _)| within(*net, *prefix)).map(|(_, _, kind)| *kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.trim_matches(['[', ']']).parse().unwrap()
    }

    #[test]
    fn only_public_addresses_are_reachable_by_default() {
        let refused = [
            ("127.0.0.1", "loopback"),
            ("127.8.9.10", "loopback"),
            ("[::1]", "loopback"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:7f00:1", "loopback"),
            ("::127.0.0.1", "IPv4-compatible"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("::ffff:192.168.1.1", "private"),
            ("100.64.0.1", "carrier-grade NAT"),
            ("100.127.255.254", "carrier-grade NAT"),
            ("169.254.169.254", "link-local"),
            ("::ffff:169.254.169.254", "link-local"),
            ("fe80::1", "link-local"),
            ("fd00:ec2::254", "unique local"),
            ("fc00::1", "unique local"),
            ("0.0.0.0", "this network"),
            ("0.1.2.3", "this network"),
            ("::", "unspecified"),
            ("224.0.0.1", "multicast"),
            ("ff02::1", "multicast"),
            ("255.255.255.255", "broadcast"),
            ("240.0.0.1", "reserved"),
            ("64:ff9b::a00:1", "private"),
            ("64:ff9b::7f00:1", "loopback"),
            ("2002:7f00:1::", "loopback"),
            ("2002:a9fe:a9fe::1", "link-local"),
            ("192.0.2.10", "documentation"),
            ("2001:db8::1", "documentation"),
        ];
        for (address, kind) in refused {
            let found = not_public(ip(address));
            assert!(found.is_some_and(|k| k.contains(kind)), "{address}: {found:?}, expected {kind}");
        }
        for public in
            ["8.8.8.8", "1.1.1.1", "93.184.215.14", "172.32.0.1", "100.128.0.1", "2606:4700::1111", "::ffff:8.8.8.8"]
        {
            assert_eq!(not_public(ip(public)), None, "{public}");
        }
        assert_eq!(not_public(ip("64:ff9b::808:808")), None, "NAT64 of a public address");
    }

    #[test]
    fn allowed_networks_are_reachable_and_nothing_else() {
        let policy = Policy { networks: vec!["127.0.0.1/32".parse().unwrap()], ..Policy::default() };
        assert_eq!(policy.refusal(ip("127.0.0.1")), None);
        assert_eq!(policy.refusal(ip("::ffff:127.0.0.1")), None, "the mapped form is the same address");
        assert_eq!(policy.refusal(ip("127.0.0.2")), Some("loopback"));
        assert_eq!(policy.refusal(ip("::1")), Some("loopback"));
        assert_eq!(policy.refusal(ip("8.8.8.8")), None);
        let policy = Policy { networks: vec!["10.0.0.0/8".parse().unwrap(), "fd00::/8".parse().unwrap()], ..policy };
        assert_eq!(policy.refusal(ip("10.200.1.1")), None);
        assert_eq!(policy.refusal(ip("fd12::1")), None);
        assert!(policy.refusal(ip("fc00::1")).is_some());
        assert!(policy.refusal(ip("169.254.169.254")).is_some());
    }

    #[test]
    fn networks_are_read_strictly() {
        assert_eq!("10.0.0.0/8".parse::<Cidr>().unwrap().to_string(), "10.0.0.0/8");
        assert_eq!("127.0.0.1".parse::<Cidr>().unwrap().to_string(), "127.0.0.1/32");
        assert_eq!("::ffff:10.0.0.0/104".parse::<Cidr>().unwrap().to_string(), "10.0.0.0/8");
        assert!("0.0.0.0/0".parse::<Cidr>().unwrap().contains(ip("8.8.8.8")));
        for bad in ["10.0.0.0/33", "fd00::/129", "localhost", "10.0.0/8", "", "10.0.0.0/x"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn host_patterns_match_names_and_subdomains() {
        let policy = Policy {
            hosts: vec!["hooks.example.com".parse().unwrap(), "*.example.org".parse().unwrap()],
            ..Policy::default()
        };
        for allowed in ["hooks.example.com", "a.example.org", "a.b.example.org", "hooks.example.com."] {
            assert!(policy.allows_host(allowed), "{allowed}");
        }
        for refused in ["example.com", "evil-hooks.example.com", "example.org", "aexample.org", "x.example.com"] {
            assert!(!policy.allows_host(refused), "{refused}");
        }
        assert!(Policy::default().allows_host("anything.example"), "an empty list allows every host");
        for bad in ["", "*.", "a b", "*", "http://x"] {
            assert!(bad.parse::<HostPattern>().is_err(), "{bad}");
        }
    }
}
