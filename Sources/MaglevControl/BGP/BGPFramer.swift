/// Cuts a TCP byte stream into BGP messages.
///
/// Feed whatever `read` returned with `append`, then call `next` until it returns nil (more bytes
/// needed). The header is checked as soon as its 19 bytes are in, so a bad marker or length is
/// reported at once rather than after waiting for bytes that will never make sense. After an
/// error the stream has lost its framing: the framer keeps returning that error (the session
/// sends its NOTIFICATION and closes the connection).
///
/// Buffered bytes never exceed one message plus what was appended since the last `next`.
public struct BGPFramer: Sendable {
    private var buffer: [UInt8] = []
    private var start = 0
    private var failed: BGPDecodeError?

    public init() {}

    /// Bytes received and not yet returned as messages.
    public var bufferedCount: Int { buffer.count - start }

    public mutating func append(_ bytes: some Sequence<UInt8>) {
        if start > 0 && start >= buffer.count / 2 {
            buffer.removeFirst(start)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// The next complete message, decoded (`fourOctetAS`: see `BGPMessage.decode`), a decode
    /// error, or nil when the next message is not complete yet.
    public mutating func next(fourOctetAS: Bool = true) -> Result<BGPMessage, BGPDecodeError>? {
        nextFrame().map { frame in frame.flatMap { BGPMessage.decode($0, fourOctetAS: fourOctetAS) } }
    }

    /// The next complete message's bytes, header included, after checking the header.
    public mutating func nextFrame() -> Result<[UInt8], BGPDecodeError>? {
        if let failed { return .failure(failed) }
        guard bufferedCount >= BGP.headerLength else { return nil }
        let header = Array(buffer[start..<(start + BGP.headerLength)])
        switch BGPMessage.checkHeader(header) {
        case .failure(let e):
            failed = e
            return .failure(e)
        case .success(let h):
            guard bufferedCount >= h.length else { return nil }
            let frame = Array(buffer[start..<(start + h.length)])
            start += h.length
            return .success(frame)
        }
    }
}
