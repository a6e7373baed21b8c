/// A NOTIFICATION (RFC 4271 §4.5): error code, subcode and data; the connection closes after it.
/// `description` names both codes for logs (RFC 4271 §6, RFC 4486 Cease subcodes, RFC 6608 FSM
/// subcodes) and shows a shutdown communication (RFC 9003) as text.
public struct BGPNotification: Equatable, Sendable, CustomStringConvertible {
    public var code: UInt8
    public var subcode: UInt8
    public var data: [UInt8]

    public init(code: UInt8, subcode: UInt8, data: [UInt8] = []) {
        self.code = code
        self.subcode = subcode
        self.data = data
    }

    public static let messageHeaderError: UInt8 = 1
    public static let openMessageError: UInt8 = 2
    public static let updateMessageError: UInt8 = 3
    public static let holdTimerExpired: UInt8 = 4
    public static let fsmError: UInt8 = 5
    public static let cease: UInt8 = 6
    public static let routeRefreshMessageError: UInt8 = 7

    /// Hold Timer Expired (4/0).
    public static var holdTimerExpiry: BGPNotification { BGPNotification(code: holdTimerExpired, subcode: 0) }

    /// Cease (6/subcode) with an optional shutdown communication (RFC 9003, at most 255 bytes of
    /// UTF-8; longer text is cut at a character boundary). Subcode 2 is Administrative Shutdown.
    public static func cease(subcode: UInt8, message: String? = nil) -> BGPNotification {
        guard let message, subcode == 2 || subcode == 4 else { return BGPNotification(code: cease, subcode: subcode) }
        var text: [UInt8] = []
        for scalar in message.unicodeScalars {
            let utf8 = Array(String(scalar).utf8)
            if text.count + utf8.count > 255 { break }
            text += utf8
        }
        return BGPNotification(code: cease, subcode: subcode, data: [UInt8(text.count)] + text)
    }

    public var codeName: String {
        switch code {
        case Self.messageHeaderError: "Message Header Error"
        case Self.openMessageError: "OPEN Message Error"
        case Self.updateMessageError: "UPDATE Message Error"
        case Self.holdTimerExpired: "Hold Timer Expired"
        case Self.fsmError: "Finite State Machine Error"
        case Self.cease: "Cease"
        case Self.routeRefreshMessageError: "ROUTE-REFRESH Message Error"
        default: "error code \(code)"
        }
    }

    public var subcodeName: String? {
        switch (code, subcode) {
        case (1, 1): "Connection Not Synchronized"
        case (1, 2): "Bad Message Length"
        case (1, 3): "Bad Message Type"
        case (2, 0): "Unspecific"
        case (2, 1): "Unsupported Version Number"
        case (2, 2): "Bad Peer AS"
        case (2, 3): "Bad BGP Identifier"
        case (2, 4): "Unsupported Optional Parameter"
        case (2, 6): "Unacceptable Hold Time"
        case (2, 7): "Unsupported Capability"
        case (2, 11): "Role Mismatch"
        case (3, 1): "Malformed Attribute List"
        case (3, 2): "Unrecognized Well-known Attribute"
        case (3, 3): "Missing Well-known Attribute"
        case (3, 4): "Attribute Flags Error"
        case (3, 5): "Attribute Length Error"
        case (3, 6): "Invalid ORIGIN Attribute"
        case (3, 8): "Invalid NEXT_HOP Attribute"
        case (3, 9): "Optional Attribute Error"
        case (3, 10): "Invalid Network Field"
        case (3, 11): "Malformed AS_PATH"
        case (5, 1): "Unexpected Message in OpenSent State"
        case (5, 2): "Unexpected Message in OpenConfirm State"
        case (5, 3): "Unexpected Message in Established State"
        case (6, 1): "Maximum Number of Prefixes Reached"
        case (6, 2): "Administrative Shutdown"
        case (6, 3): "Peer De-configured"
        case (6, 4): "Administrative Reset"
        case (6, 5): "Connection Rejected"
        case (6, 6): "Other Configuration Change"
        case (6, 7): "Connection Collision Resolution"
        case (6, 8): "Out of Resources"
        case (6, 9): "Hard Reset"
        case (6, 10): "BFD Down"
        case (7, 1): "Invalid Message Length"
        default: nil
        }
    }

    /// The shutdown communication of a Cease 6/2 or 6/4 (RFC 9003), control characters removed.
    public var shutdownCommunication: String? {
        guard code == Self.cease, subcode == 2 || subcode == 4, let n = data.first, n > 0, data.count == Int(n) + 1 else {
            return nil
        }
        let text = String(decoding: data[1...], as: UTF8.self)
        return String(String.UnicodeScalarView(text.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F }))
    }

    public var description: String {
        var s = codeName
        if let name = subcodeName { s += " / \(name)" }
        s += " (\(code)/\(subcode))"
        if let text = shutdownCommunication {
            s += ": \"\(text)\""
        } else if !data.isEmpty {
            s += " data \(BGP.hex(Array(data.prefix(32))))\(data.count > 32 ? "..." : "")"
        }
        return s
    }
}
