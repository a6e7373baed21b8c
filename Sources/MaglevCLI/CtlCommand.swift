import ArgumentParser
import MaglevForwarder

#if canImport(Glibc)
    import Glibc
#endif

/// `maglev ctl`: the admin API's client.
struct CtlCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ctl",
        abstract: "Talk to a running forwarder's admin API: status, drain, fail, weight, reload, metrics, withdraw.",
        discussion: """
            Sends one request to the admin API of `maglev forward --admin ADDRESS` and prints the \
            answer. Exits 0 when the forwarder accepted the request, 1 when it refused it (the \
            reason is printed), 2 on a usage error.

              status         VIPs, pools, backends (health, state, connections), workers
              drain NAME     keep NAME's connections, send it no new ones
                             (--timeout: take it out after that long anyway)
              undrain NAME   end a drain
              fail NAME      take NAME out now (its connections move), whatever its health
              recover NAME   end a fail (its failed health checks are forgotten too)
              weight NAME --value N
                             NAME's share of new connections (0: none; existing ones stay)
              reload         re-read the config file (as SIGHUP)
              withdraw       withdraw every VIP route from the BGP peers (maintenance)
              announce       announce them again
              metrics        the Prometheus exposition

            Examples:
              maglev ctl --admin 127.0.0.1:9100 status
              maglev ctl --admin 127.0.0.1:9100 drain backend-1 --timeout 5m
              maglev ctl --admin 127.0.0.1:9100 undrain backend-1
              maglev ctl --admin 127.0.0.1:9100 weight backend-2 --value 3
              ip netns exec mglab-fwd1 maglev ctl --admin 9100 reload
            """)

    @Option(help: "The admin API: HOST:PORT or PORT (127.0.0.1).")
    var admin = "127.0.0.1:9100"

    @Argument(help: "status, drain, undrain, fail, recover, weight, reload, metrics, withdraw or announce.")
    var action: String

    @Argument(help: "The backend name (drain, undrain, fail, recover, weight).")
    var name: String?

    @Option(help: "drain: take the backend out after this long (30s, 5m, ...) even if connections remain.")
    var timeout: String?

    @Option(help: "weight: the backend's new weight (0 .. 4294967295).")
    var value: UInt32?

    static let actions = [
        "status", "drain", "undrain", "fail", "recover", "weight", "reload", "metrics", "withdraw", "announce",
    ]
    static let backendActions: Set = ["drain", "undrain", "fail", "recover", "weight"]

    func validate() throws {
        guard AdminAddress(admin) != nil else { throw ValidationError("--admin must be PORT or HOST:PORT, got '\(admin)'") }
        guard Self.actions.contains(action) else {
            throw ValidationError("unknown action '\(action)': use one of \(Self.actions.joined(separator: ", "))")
        }
        let needsName = Self.backendActions.contains(action)
        if needsName && name == nil { throw ValidationError("\(action) needs a backend name: maglev ctl \(action) NAME") }
        if !needsName && name != nil { throw ValidationError("\(action) takes no backend name") }
        if timeout != nil && action != "drain" { throw ValidationError("--timeout applies to drain only") }
        if action == "weight" && value == nil { throw ValidationError("weight needs --value N: maglev ctl weight NAME --value 2") }
        if value != nil && action != "weight" { throw ValidationError("--value applies to weight only") }
    }

    func run() async throws {
        let address = AdminAddress(admin)!
        let (method, target): (String, String)
        switch action {
        case "status": (method, target) = ("GET", "/status")
        case "metrics": (method, target) = ("GET", "/metrics")
        case "reload": (method, target) = ("POST", "/reload")
        case "withdraw", "announce": (method, target) = ("POST", "/bgp/\(action)")
        default:
            var t = "/backends/\(Self.percentEncoded(name!))/\(action)"
            if let timeout { t += "?timeout=\(Self.percentEncoded(timeout))" }
            if let value { t += "?value=\(value)" }
            (method, target) = ("POST", t)
        }
        let reply: AdminClient.Reply
        do {
            reply = try await AdminClient.request(address, method: method, target: target)
        } catch {
            throw CLIError(error.message)
        }
        var out = reply.body
        if !out.hasSuffix("\n") { out += "\n" }
        if (200..<300).contains(reply.status) {
            print(out, terminator: "")
        } else {
            out.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
            throw ExitCode(1)
        }
    }

    static func percentEncoded(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            let c = Character(Unicode.Scalar(b))
            if c.isLetter && b < 0x80 || c.isNumber && b < 0x80 || "-._~".contains(c) {
                out.append(c)
            } else {
                let hex = String(b, radix: 16, uppercase: true)
                out += "%" + (hex.count == 1 ? "0" : "") + hex
            }
        }
        return out
    }
}
