enum HTMLReport { static func render(_ report: ReplayReport) -> String { "" } }
