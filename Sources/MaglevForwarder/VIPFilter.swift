public import MaglevCore
public import MaglevLinux

/// The classic BPF program each worker's packet socket runs, so the kernel hands over only
/// frames that may be ours: IPv4 / IPv6 whose destination lies in a configured VIP prefix
/// (and, unfiltered, VLAN / QinQ / MPLS frames, which the data plane parses itself). Frames
/// the host itself sends out are refused too (belt and braces with `PACKET_IGNORE_OUTGOING`).
///
/// Program shape (every accept is a `ret` right after its test, so no jump is longer than 13
/// instructions and there is no limit but `BPF_MAXINSNS` on the VIP count):
///
///     ld   pkttype;  jeq OUTGOING -> ret 0
///     ldh  [12];     jeq 0x0800 -> ja V4;  jeq 0x86DD -> ja V6
///                    jeq 0x8100 / 0x88A8 / 0x8847 -> ret ACCEPT;  ret 0
///     V4: per VIP:   ld [30]; and mask; jeq net -> ret ACCEPT;             ... ret 0
///     V6: per VIP:   per 32-bit word of the prefix: ld [38+4w]; and m; jne -> next VIP
///                    ret ACCEPT;                                           ... ret 0
public enum VIPFilter {
    /// How much the kernel filters.
    public enum Mode: String, Sendable, CaseIterable {
        /// IPv4/IPv6 to a VIP destination (plus tagged frames).
        case vips
        /// IPv4, IPv6 and tagged frames, whatever their destination.
        case ethertype
    }

    static let ldW: UInt16 = 0x20  // BPF_LD | BPF_W | BPF_ABS
    static let ldH: UInt16 = 0x28  // BPF_LD | BPF_H | BPF_ABS
    static let ldB: UInt16 = 0x30  // BPF_LD | BPF_B | BPF_ABS
    static let andK: UInt16 = 0x54  // BPF_ALU | BPF_AND | BPF_K
    static let jeqK: UInt16 = 0x15  // BPF_JMP | BPF_JEQ | BPF_K
    static let ja: UInt16 = 0x05  // BPF_JMP | BPF_JA
    static let retK: UInt16 = 0x06  // BPF_RET | BPF_K
    static let accept: UInt32 = 0x4_0000

    /// The program for `vips`; falls back to `.ethertype` when the VIP program would exceed
    /// `BPF_MAXINSNS`. Returns the program and the mode it implements.
    /// `redirects`: this forwarder's address in its forwarder group (`fragments: redirect`):
    /// GRE to it (fragments redirected by the group) is accepted too.
    public static func program(
        for vips: [VIPConfig], mode: Mode = .vips, redirects: IPAddress? = nil
    ) -> (program: [BPFInstruction], mode: Mode) {
        if mode == .vips {
            let p = vipProgram(vips, redirects: redirects)
            if p.count <= BPFInstruction.maximumCount { return (p, .vips) }
        }
        return (vipProgram(nil), .ethertype)
    }

    /// `nil`: ethertype only.
    static func vipProgram(_ vips: [VIPConfig]?, redirects: IPAddress? = nil) -> [BPFInstruction] {
        var v4: [BPFInstruction] = []
        var v6: [BPFInstruction] = []
        if let vips {
            for vip in vips where !vip.address.isIPv6 {
                let mask: UInt32 = vip.prefixLength <= 0 ? 0 : ~UInt32(0) << UInt32(32 - min(vip.prefixLength, 32))
                v4 += [
                    BPFInstruction(code: ldW, k: 30),
                    BPFInstruction(code: andK, k: mask),
                    BPFInstruction(code: jeqK, jt: 0, jf: 1, k: vip.address.ipv4Value & mask),
                    BPFInstruction(code: retK, k: accept),
                ]
            }
            for vip in vips where vip.address.isIPv6 {
                let prefix = max(0, min(vip.prefixLength, 128))
                let words = (prefix + 31) / 32
                var block: [BPFInstruction] = []
                for w in 0..<words {
                    let bits = min(32, prefix - 32 * w)
                    let mask: UInt32 = bits >= 32 ? ~0 : ~UInt32(0) << UInt32(32 - bits)
                    let value = UInt32(truncatingIfNeeded: (w < 2 ? vip.address.high : vip.address.low) >> (w % 2 == 0 ? 32 : 0))
                    // Skip to the next VIP: past the remaining words (3 each) and the ret.
                    let skip = UInt8((words - 1 - w) * 3 + 1)
                    block += [
                        BPFInstruction(code: ldW, k: UInt32(38 + 4 * w)),
                        BPFInstruction(code: andK, k: mask),
                        BPFInstruction(code: jeqK, jt: 0, jf: skip, k: value & mask),
                    ]
                }
                block.append(BPFInstruction(code: retK, k: accept))
                v6 += block
            }
            if let r = redirects, !r.isIPv6 {
                // GRE (protocol 47, byte 23) to this forwarder's group address.
                v4 += [
                    BPFInstruction(code: ldW, k: 30),
                    BPFInstruction(code: jeqK, jt: 0, jf: 3, k: r.ipv4Value),
                    BPFInstruction(code: ldB, k: 23),
                    BPFInstruction(code: jeqK, jt: 0, jf: 1, k: UInt32(IPProtocol.gre)),
                    BPFInstruction(code: retK, k: accept),
                ]
            } else if let r = redirects {
                // GRE (next header 47, byte 20) to this forwarder's group address.
                for w in 0..<4 {
                    let value = UInt32(truncatingIfNeeded: (w < 2 ? r.high : r.low) >> (w % 2 == 0 ? 32 : 0))
                    v6 += [
                        BPFInstruction(code: ldW, k: UInt32(38 + 4 * w)),
                        BPFInstruction(code: jeqK, jt: 0, jf: UInt8((3 - w) * 2 + 3), k: value),
                    ]
                }
                v6 += [
                    BPFInstruction(code: ldB, k: 20),
                    BPFInstruction(code: jeqK, jt: 0, jf: 1, k: UInt32(IPProtocol.gre)),
                    BPFInstruction(code: retK, k: accept),
                ]
            }
        } else {
            v4 = [BPFInstruction(code: retK, k: accept)]
            v6 = [BPFInstruction(code: retK, k: accept)]
        }
        v4.append(BPFInstruction(code: retK, k: 0))
        v6.append(BPFInstruction(code: retK, k: 0))

        var p: [BPFInstruction] = [
            BPFInstruction(code: ldW, k: BPFInstruction.packetTypeOffset),
            BPFInstruction(code: jeqK, jt: 0, jf: 1, k: BPFInstruction.packetOutgoing),
            BPFInstruction(code: retK, k: 0),
            BPFInstruction(code: ldH, k: 12),
        ]
        // Dispatch: 0x0800 -> V4, 0x86DD -> V6, tags -> accept, else drop.
        let dispatch: [BPFInstruction] = [
            BPFInstruction(code: jeqK, jt: 0, jf: 1, k: 0x0800),
            BPFInstruction(code: ja, k: 0),  // to V4, patched below
            BPFInstruction(code: jeqK, jt: 0, jf: 1, k: 0x86DD),
            BPFInstruction(code: ja, k: 0),  // to V6, patched below
            BPFInstruction(code: jeqK, jt: 3, jf: 0, k: 0x8100),
            BPFInstruction(code: jeqK, jt: 2, jf: 0, k: 0x88A8),
            BPFInstruction(code: jeqK, jt: 1, jf: 0, k: 0x8847),
            BPFInstruction(code: retK, k: 0),
            BPFInstruction(code: retK, k: accept),
        ]
        let dispatchStart = p.count
        p += dispatch
        let v4Start = p.count
        p += v4
        let v6Start = p.count
        p += v6
        // ja's target is relative to the instruction after it.
        p[dispatchStart + 1].k = UInt32(v4Start - (dispatchStart + 2))
        p[dispatchStart + 3].k = UInt32(v6Start - (dispatchStart + 4))
        return p
    }

    /// The prefixes `--io xdp`'s program steers to the workers: every VIP prefix, and GRE to
    /// this forwarder's group address (marked as both when a VIP prefix covers it, so its other
    /// traffic stays a VIP's). The same packets as the `vips` program, less tagged frames (XDP
    /// would take them from the kernel whatever their destination).
    public static func xdpPrefixes(for vips: [VIPConfig], redirects: IPAddress? = nil) -> [XDPProgram.Prefix] {
        var byKey: [[UInt8]: XDPProgram.Prefix] = [:]
        for vip in vips {
            let bits = vip.address.isIPv6 ? 128 : 32
            let length = max(0, min(vip.prefixLength, bits))
            let address = masked(vip.address.networkBytes, to: length)
            byKey[[UInt8(length)] + address] = XDPProgram.Prefix(address: address, length: length, kind: .vip)
        }
        if let r = redirects {
            let address = r.networkBytes
            let length = r.isIPv6 ? 128 : 32
            let covered = vips.contains { vip in
                vip.address.isIPv6 == r.isIPv6
                    && masked(address, to: vip.prefixLength) == masked(vip.address.networkBytes, to: vip.prefixLength)
            }
            byKey[[UInt8(length)] + address] = XDPProgram.Prefix(
                address: address, length: length, kind: covered ? .vipAndGRE : .gre)
        }
        return byKey.sorted { $0.key.count != $1.key.count ? $0.key.count < $1.key.count : $0.key.lexicographicallyPrecedes($1.key) }
            .map(\.value)
    }

    static func masked(_ bytes: [UInt8], to length: Int) -> [UInt8] {
        bytes.enumerated().map { i, b in
            let keep = max(0, min(8, length - 8 * i))
            return keep == 8 ? b : b & ~(UInt8(0xFF) >> keep)
        }
    }
}
