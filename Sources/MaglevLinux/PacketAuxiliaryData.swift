internal import CMaglevShim

/// The `PACKET_AUXDATA` control message that a `PacketSocket` attaches to each frame, reduced
/// to the one bit the forwarder needs: "checksum not ready" (`TP_STATUS_CSUMNOTREADY`).
///
/// A frame from a local sender or a veth peer may be `CHECKSUM_PARTIAL`: its TCP/UDP checksum
/// field holds only the folded pseudo-header sum, and the sending NIC was meant to finish it.
/// Forwarded as it is inside GRE, the backend would drop it for a bad checksum, so the data
/// plane completes it (`PacketSlot.checksumPending`).
///
/// The corresponding C macros are `CMSG_FIRSTHDR`, `CMSG_NXTHDR` and `CMSG_SPACE` over
/// `struct tpacket_auxdata` (through `cmaglev_packet_checksum_not_ready`).
public enum PacketAuxiliaryData {
    /// Control bytes a receive reserves per frame for the message (`CMSG_SPACE(sizeof(struct
    /// tpacket_auxdata))`, 40 on 64-bit Linux).
    public static let controlSpace = Int(cmaglev_packet_auxdata_space())

    /// Whether the control messages at `control` (`length` bytes, as the kernel wrote them)
    /// say the frame's checksum is not ready. False without the message (control space cut
    /// short, `MSG_CTRUNC`, or auxdata off). No system call, no allocation.
    @inline(__always)
    public static func checksumNotReady(control: UnsafeRawPointer, length: Int) -> Bool {
        length > 0 && cmaglev_packet_checksum_not_ready(control, length) != 0
    }
}
