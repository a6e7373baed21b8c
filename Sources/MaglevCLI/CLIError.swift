/// An error for the person at the terminal: one line that names the problem and, where it
/// helps, what to do. ArgumentParser prints it as `Error: <description>` and exits non-zero.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
