/// An IPv4 or IPv6 address as a 128-bit value in network order (`high` holds bytes 0-7).
/// IPv4 addresses are stored IPv4-mapped (`::ffff:a.b.c.d`) with `isIPv6 == false`, so one
/// flow key and one hash serve both families.
public struct IPAddress: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var high: UInt64
    public var low: UInt64
    public var isIPv6: Bool

    @inline(__always)
    public init(high: UInt64, low: UInt64, isIPv6: Bool) {
        self.high = high
        self.low = low
        self.isIPv6 = isIPv6
    }

    /// An IPv4 address from its 32-bit value in host order (`0xC6120001` is 198.18.0.1).
    @inline(__always)
    public init(ipv4 value: UInt32) {
        self.init(high: 0, low: 0x0000_FFFF_0000_0000 | UInt64(value), isIPv6: false)
    }

    /// The IPv4 address as a 32-bit host-order value (meaningful only when `!isIPv6`).
    @inline(__always) public var ipv4Value: UInt32 { UInt32(truncatingIfNeeded: low) }

    public static func < (a: IPAddress, b: IPAddress) -> Bool {
        (a.isIPv6 ? 1 : 0, a.high, a.low) < (b.isIPv6 ? 1 : 0, b.high, b.low)
    }

    /// Loads 4 bytes of an IPv4 address at `offset`.
    @inline(__always)
    static func loadIPv4(_ p: UnsafeRawPointer, _ offset: Int) -> IPAddress {
        IPAddress(ipv4: p.loadBE32(offset))
    }

    /// Loads 16 bytes of an IPv6 address at `offset`.
    @inline(__always)
    static func loadIPv6(_ p: UnsafeRawPointer, _ offset: Int) -> IPAddress {
        IPAddress(high: p.loadBE64(offset), low: p.loadBE64(offset + 8), isIPv6: true)
    }

    /// Stores the address at `offset`: 4 bytes for IPv4, 16 for IPv6.
    @inline(__always)
    func store(to p: UnsafeMutableRawPointer, _ offset: Int) {
        if isIPv6 {
            p.storeBE64(high, offset)
            p.storeBE64(low, offset + 8)
        } else {
            p.storeBE32(ipv4Value, offset)
        }
    }

    /// Whether the first `prefixLength` bits equal those of `network` (same family only).
    public func isIn(network: IPAddress, prefixLength: Int) -> Bool {
        guard isIPv6 == network.isIPv6 else { return false }
        let bits = isIPv6 ? prefixLength : prefixLength + 96
        if bits <= 0 { return true }
        if bits <= 64 {
            let mask: UInt64 = bits == 64 ? ~0 : ~(~0 >> UInt64(bits))
            return high & mask == network.high & mask
        }
        let lowBits = min(bits - 64, 64)
        let mask: UInt64 = lowBits == 64 ? ~0 : ~(~0 >> UInt64(lowBits))
        return high == network.high && low & mask == network.low & mask
    }

    // MARK: Text (control side only; never on the data path)

    /// Parses dotted IPv4 (`198.18.0.1`) or IPv6 text (`2001:db8::1`, `::ffff:1.2.3.4`).
    public init?(_ text: some StringProtocol) {
        if text.contains(":") {
            guard let v = IPAddress.parseIPv6(String(text)) else { return nil }
            self = v
        } else {
            guard let v = IPAddress.parseIPv4(String(text)) else { return nil }
            self.init(ipv4: v)
        }
    }

    static func parseIPv4(_ s: String) -> UInt32? {
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy({ $0.isASCII && $0.isNumber }),
                let octet = UInt32(part), octet <= 255
            else { return nil }
            value = value << 8 | octet
        }
        return value
    }

    static func parseIPv6(_ s: String) -> IPAddress? {
        var groups: [UInt16] = []
        var text = Substring(s)
        // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two groups.
        var tail: [UInt16] = []
        if let lastColon = text.lastIndex(of: ":"), text[text.index(after: lastColon)...].contains(".") {
            guard let v4 = parseIPv4(String(text[text.index(after: lastColon)...])) else { return nil }
            tail = [UInt16(v4 >> 16), UInt16(v4 & 0xFFFF)]
            text = text[...lastColon]
            if text.hasSuffix("::") == false { text = text.dropLast() }
        }
        let halves = text.components(separatedByDoubleColon: ())
        guard halves.count <= 2 else { return nil }
        func parseGroups(_ part: Substring) -> [UInt16]? {
            if part.isEmpty { return [] }
            var out: [UInt16] = []
            for g in part.split(separator: ":", omittingEmptySubsequences: false) {
                guard !g.isEmpty, g.count <= 4, let v = UInt16(g, radix: 16) else { return nil }
                out.append(v)
            }
            return out
        }
        guard let head = parseGroups(halves[0]) else { return nil }
        if halves.count == 2 {
            guard let back = parseGroups(halves[1]) else { return nil }
            let missing = 8 - head.count - back.count - tail.count
            guard missing >= 1 else { return nil }
            groups = head + Array(repeating: 0, count: missing) + back + tail
        } else {
            groups = head + tail
        }
        guard groups.count == 8 else { return nil }
        var high: UInt64 = 0
        var low: UInt64 = 0
        for i in 0..<4 { high = high << 16 | UInt64(groups[i]) }
        for i in 4..<8 { low = low << 16 | UInt64(groups[i]) }
        return IPAddress(high: high, low: low, isIPv6: true)
    }

    public var description: String {
        if !isIPv6 {
            let v = ipv4Value
            return "\(v >> 24).\(v >> 16 & 0xFF).\(v >> 8 & 0xFF).\(v & 0xFF)"
        }
        var groups: [UInt16] = []
        for i in stride(from: 48, through: 0, by: -16) { groups.append(UInt16(truncatingIfNeeded: high >> UInt64(i))) }
        for i in stride(from: 48, through: 0, by: -16) { groups.append(UInt16(truncatingIfNeeded: low >> UInt64(i))) }
        // RFC 5952: compress the longest run (length >= 2) of zero groups, the first one on ties.
        var bestStart = -1
        var bestLength = 1
        var i = 0
        while i < 8 {
            if groups[i] == 0 {
                var j = i
                while j < 8 && groups[j] == 0 { j += 1 }
                if j - i > bestLength {
                    bestStart = i
                    bestLength = j - i
                }
                i = j
            } else {
                i += 1
            }
        }
        func hex(_ range: Range<Int>) -> String {
            groups[range].map { String($0, radix: 16) }.joined(separator: ":")
        }
        if bestStart < 0 { return hex(0..<8) }
        return hex(0..<bestStart) + "::" + hex((bestStart + bestLength)..<8)
    }
}

extension Substring {
    /// Splits at the first "::" (at most two halves); more than one "::" yields three halves.
    fileprivate func components(separatedByDoubleColon _: Void) -> [Substring] {
        var halves: [Substring] = []
        var rest = self[...]
        while let r = rest.firstRange(of: "::") {
            halves.append(rest[..<r.lowerBound])
            rest = rest[r.upperBound...]
        }
        halves.append(rest)
        return halves
    }
}

extension IPAddress {
    /// The address in network order: 4 bytes (IPv4) or 16 (IPv6). Allocates: control side only.
    public var networkBytes: [UInt8] {
        if !isIPv6 {
            let v = ipv4Value
            return [UInt8(v >> 24), UInt8(truncatingIfNeeded: v >> 16), UInt8(truncatingIfNeeded: v >> 8), UInt8(truncatingIfNeeded: v)]
        }
        var out: [UInt8] = []
        out.reserveCapacity(16)
        for word in [high, low] {
            for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: word >> UInt64(shift))) }
        }
        return out
    }

    /// The address of 4 (IPv4) or 16 (IPv6) bytes in network order; any other count is a
    /// programming error.
    public init(networkBytes bytes: some Collection<UInt8>) {
        let b = Array(bytes)
        precondition(b.count == 4 || b.count == 16, "an IP address has 4 or 16 bytes, got \(b.count)")
        if b.count == 4 {
            self.init(ipv4: UInt32(b[0]) << 24 | UInt32(b[1]) << 16 | UInt32(b[2]) << 8 | UInt32(b[3]))
            return
        }
        var high: UInt64 = 0
        var low: UInt64 = 0
        for i in 0..<8 { high = high << 8 | UInt64(b[i]) }
        for i in 8..<16 { low = low << 8 | UInt64(b[i]) }
        self.init(high: high, low: low, isIPv6: true)
    }
}
