/// Why a packet was not forwarded. Every packet that is not forwarded or answered ends in
/// exactly one of these, and each has its own counter. `notIP` and `unknownVIP` are "pass"
/// outcomes (not our traffic), the rest are drops.
public enum DropReason: UInt8, CaseIterable, Sendable, CustomStringConvertible {
    // Not ours: passed, not dropped.
    case notIP = 0
    case unknownVIP

    // Link layer.
    case truncatedL2
    case tooManyL2Headers

    // IPv4.
    case badIPVersion
    case truncatedIPv4Header
    case badIPv4HeaderLength
    case badIPv4TotalLength
    case truncatedPacket

    // IPv6.
    case truncatedIPv6Header
    case ipv6ExtensionChainTooLong
    case truncatedIPv6ExtensionHeader

    // Transport.
    case truncatedL4Header
    case firstFragmentTooShort
    case truncatedICMPQuote
    /// An ICMP error whose quote is not an IP header of the outer packet's family (or whose
    /// quoted IPv6 extension chain is too long): there is no flow to follow.
    case badICMPQuote

    // Decisions.
    case noBackend
    case packetTooBigNoDF
    case icmpRateLimited
    case noHeadroom
    case tooBigForICMP

    // Fragments (`fragments: redirect`).
    /// A later fragment waited for its first fragment longer than the hold timeout.
    case fragmentHoldExpired
    /// A later fragment could not be held: as many as the hold takes were waiting already.
    case fragmentHoldFull
    /// GRE with recursion control 1 (a fragment redirect) from an address outside the
    /// forwarder group.
    case redirectNotFromGroup
    /// A redirected packet that carried another redirect: fragments are redirected once.
    case redirectLoop
    /// Replay only: redirected to a group member that is not running in the scenario (live,
    /// such a fragment is lost on the way).
    case redirectOwnerAbsent

    /// The name used in counters, reports and CSV files (`drop:NAME`).
    public var description: String {
        switch self {
        case .notIP: "not_ip"
        case .unknownVIP: "unknown_vip"
        case .truncatedL2: "truncated_l2"
        case .tooManyL2Headers: "too_many_l2_headers"
        case .badIPVersion: "bad_ip_version"
        case .truncatedIPv4Header: "truncated_ipv4_header"
        case .badIPv4HeaderLength: "bad_ipv4_header_length"
        case .badIPv4TotalLength: "bad_ipv4_total_length"
        case .truncatedPacket: "truncated_packet"
        case .truncatedIPv6Header: "truncated_ipv6_header"
        case .ipv6ExtensionChainTooLong: "ipv6_extension_chain_too_long"
        case .truncatedIPv6ExtensionHeader: "truncated_ipv6_extension_header"
        case .truncatedL4Header: "truncated_l4_header"
        case .firstFragmentTooShort: "first_fragment_too_short"
        case .truncatedICMPQuote: "truncated_icmp_quote"
        case .badICMPQuote: "bad_icmp_quote"
        case .noBackend: "no_backend"
        case .packetTooBigNoDF: "packet_too_big_no_df"
        case .icmpRateLimited: "icmp_rate_limited"
        case .noHeadroom: "no_headroom"
        case .tooBigForICMP: "too_big_for_icmp"
        case .fragmentHoldExpired: "fragment_hold_expired"
        case .fragmentHoldFull: "fragment_hold_full"
        case .redirectNotFromGroup: "redirect_not_from_group"
        case .redirectLoop: "redirect_loop"
        case .redirectOwnerAbsent: "redirect_owner_absent"
        }
    }

    /// Whether this outcome is a "pass" (not our traffic) rather than a drop.
    public var isPass: Bool { self == .notIP || self == .unknownVIP }
}
