#if canImport(MaglevCore)
    public import MaglevCore  // Tools/fuzz bgp compiles the core into the same module
#endif

/// An IPv4 or IPv6 prefix as BGP carries it: a length in bits and the address with every bit
/// past the length cleared (so two prefixes that route the same are equal). On the wire
/// (RFC 4271 §4.3, RFC 4760 §5) it is one length octet and the fewest address octets that hold
/// `length` bits: a /32 takes 5 bytes, a /128 17, a /0 one.
public struct BGPPrefix: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let address: IPAddress
    public let length: UInt8

    /// A prefix of `length` bits (at most 32 for IPv4, 128 for IPv6); host bits are cleared.
    public init?(_ address: IPAddress, length: Int) {
        guard length >= 0, length <= (address.isIPv6 ? 128 : 32) else { return nil }
        self.address = BGPPrefix.masked(address, length: length)
        self.length = UInt8(length)
    }

    /// The host route of an address: /32 or /128.
    public init(host address: IPAddress) {
        self.address = address
        self.length = address.isIPv6 ? 128 : 32
    }

    /// Parses `198.19.0.10/32`, `2001:db8::10/128`, or a bare address (a host route).
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let address = IPAddress(parts[0]) else { return nil }
        if parts.count == 1 {
            self.init(host: address)
        } else {
            guard parts[1].count <= 3, parts[1].allSatisfy({ $0.isASCII && $0.isNumber }), let length = Int(parts[1]) else {
                return nil
            }
            self.init(address, length: length)
        }
    }

    public var isIPv6: Bool { address.isIPv6 }

    /// The family's AFI: 1 (IPv4) or 2 (IPv6).
    public var afi: UInt16 { isIPv6 ? BGP.afiIPv6 : BGP.afiIPv4 }

    /// Bytes on the wire: the length octet and the significant address octets.
    public var encodedLength: Int { 1 + (Int(length) + 7) / 8 }

    public var description: String { "\(address)/\(length)" }

    public static func < (a: BGPPrefix, b: BGPPrefix) -> Bool {
        (a.address, a.length) < (b.address, b.length)
    }

    static func masked(_ a: IPAddress, length: Int) -> IPAddress {
        if !a.isIPv6 {
            let mask: UInt32 = length == 0 ? 0 : ~0 << UInt32(32 - length)
            return IPAddress(ipv4: a.ipv4Value & mask)
        }
        let highMask: UInt64 = length >= 64 ? ~0 : (length == 0 ? 0 : ~0 << UInt64(64 - length))
        let lowMask: UInt64 = length <= 64 ? 0 : (length >= 128 ? ~0 : ~0 << UInt64(128 - length))
        return IPAddress(high: a.high & highMask, low: a.low & lowMask, isIPv6: true)
    }

    /// Writes the wire form.
    func write(to w: inout BGPWriter) {
        w.u8(length)
        let bytes = address.networkBytes
        w.append(bytes[0..<((Int(length) + 7) / 8)])
    }

    /// Reads one prefix of the family; nil if the length is too long for the family or the bytes
    /// run out.
    static func read(from r: inout BGPReader, ipv6: Bool) -> BGPPrefix? {
        guard let length = r.u8(), length <= (ipv6 ? 128 : 32) else { return nil }
        guard let significant = r.take((Int(length) + 7) / 8) else { return nil }
        var bytes = [UInt8](repeating: 0, count: ipv6 ? 16 : 4)
        for i in 0..<significant.count { bytes[i] = significant[i] }
        return BGPPrefix(IPAddress(networkBytes: bytes), length: Int(length))
    }

    /// Reads prefixes until the reader is empty; nil if one is malformed.
    static func readAll(from r: inout BGPReader, ipv6: Bool) -> [BGPPrefix]? {
        var out: [BGPPrefix] = []
        while r.remaining > 0 {
            guard let p = read(from: &r, ipv6: ipv6) else { return nil }
            out.append(p)
        }
        return out
    }
}

/// Appends big-endian fields to a byte array.
struct BGPWriter {
    var bytes: [UInt8] = []

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) {
        bytes.append(UInt8(v >> 8))
        bytes.append(UInt8(v & 0xFF))
    }
    mutating func u32(_ v: UInt32) {
        u16(UInt16(v >> 16))
        u16(UInt16(v & 0xFFFF))
    }
    mutating func append(_ b: some Sequence<UInt8>) { bytes.append(contentsOf: b) }
    mutating func patch16(at offset: Int, _ v: Int) {
        bytes[offset] = UInt8(truncatingIfNeeded: v >> 8)
        bytes[offset + 1] = UInt8(truncatingIfNeeded: v)
    }
}

/// Reads big-endian fields from `bytes[position..<end]`. Every read checks the bytes left first
/// and returns nil when they run out, so no input can read past `end`.
struct BGPReader {
    let bytes: [UInt8]
    private(set) var position: Int
    let end: Int

    init(_ bytes: [UInt8], from start: Int = 0, to end: Int? = nil) {
        self.bytes = bytes
        self.end = min(end ?? bytes.count, bytes.count)
        self.position = min(max(start, 0), self.end)
    }

    var remaining: Int { end - position }

    mutating func u8() -> UInt8? {
        guard remaining >= 1 else { return nil }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func u16() -> UInt16? {
        guard remaining >= 2 else { return nil }
        defer { position += 2 }
        return UInt16(bytes[position]) << 8 | UInt16(bytes[position + 1])
    }

    mutating func u32() -> UInt32? {
        guard remaining >= 4 else { return nil }
        defer { position += 4 }
        return UInt32(bytes[position]) << 24 | UInt32(bytes[position + 1]) << 16 | UInt32(bytes[position + 2]) << 8
            | UInt32(bytes[position + 3])
    }

    mutating func take(_ n: Int) -> [UInt8]? {
        guard n >= 0, remaining >= n else { return nil }
        defer { position += n }
        return Array(bytes[position..<(position + n)])
    }

    /// A reader over the next `n` bytes; this one skips them.
    mutating func sub(_ n: Int) -> BGPReader? {
        guard n >= 0, remaining >= n else { return nil }
        defer { position += n }
        return BGPReader(bytes, from: position, to: position + n)
    }
}
