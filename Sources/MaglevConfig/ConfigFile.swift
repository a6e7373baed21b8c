public import MaglevCore

// PLACEHOLDER: the config engineer replaces this file with the real loader (same API).

/// One problem in a config file: where it is and what is wrong.
public struct ConfigProblem: Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int
    /// The field's path, e.g. `vips[0].backends[2].address`.
    public var field: String
    public var message: String
    public var description: String { "\(file):\(line):\(column): \(field): \(message)" }
    public init(file: String, line: Int, column: Int, field: String, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.field = field
        self.message = message
    }
}

/// Every problem found in a config file (all of them, not just the first).
public struct ConfigError: Error, Sendable, CustomStringConvertible {
    public var problems: [ConfigProblem]
    public var description: String { problems.map(\.description).joined(separator: "\n") }
    public init(problems: [ConfigProblem]) { self.problems = problems }
}

/// A loaded, validated config file.
public struct MaglevConfigFile: Sendable {
    public var dataplane: DataplaneConfig
    /// Connection-table entries per worker (per simulated forwarder in replay).
    public var connectionCapacity: Int
    public var path: String

    public init(dataplane: DataplaneConfig, connectionCapacity: Int, path: String) {
        self.dataplane = dataplane
        self.connectionCapacity = connectionCapacity
        self.path = path
    }

    public static func load(path: String) throws(ConfigError) -> MaglevConfigFile {
        throw ConfigError(problems: [ConfigProblem(file: path, line: 0, column: 0, field: "", message: "not implemented")])
    }

    public static func parse(yaml: String, path: String) throws(ConfigError) -> MaglevConfigFile {
        throw ConfigError(problems: [ConfigProblem(file: path, line: 0, column: 0, field: "", message: "not implemented")])
    }
}
