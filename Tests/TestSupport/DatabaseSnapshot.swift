/// The user-visible content of one database, as captured by `PostgresServer.snapshot(database:)`:
/// compare two with `==` (the database's name is not part of it, so a restore into another
/// database compares equal) and read `differences(from:)` or the description when they differ.
public struct DatabaseSnapshot: Equatable, Sendable, CustomStringConvertible {
    /// One table's content in summary.
    public struct Table: Equatable, Sendable {
        /// The number of rows.
        public let rowCount: Int
        /// md5 over the rows' text forms, sorted and joined by newlines.
        public let md5: String

        /// Creates a table summary.
        public init(rowCount: Int, md5: String) {
            self.rowCount = rowCount
            self.md5 = md5
        }
    }

    /// Tables (ordinary and partitioned) by "schema.table".
    public let tables: [String: Table]
    /// Sequences by "schema.sequence" with their last_value (nil if never used).
    public let sequences: [String: Int64?]
    /// Views and materialized views as "schema.view", sorted.
    public let views: [String]

    /// Creates a snapshot.
    public init(tables: [String: Table], sequences: [String: Int64?], views: [String]) {
        self.tables = tables
        self.sequences = sequences
        self.views = views
    }

    /// The table names, sorted.
    public var tableNames: [String] { tables.keys.sorted() }

    /// The total number of rows over all tables.
    public var totalRowCount: Int { tables.values.reduce(0) { $0 + $1.rowCount } }

    /// One line per difference between `other` (the expected state) and this snapshot; empty when equal.
    public func differences(from other: DatabaseSnapshot) -> [String] {
        var lines: [String] = []
        for name in Set(tables.keys).union(other.tables.keys).sorted() {
            switch (other.tables[name], tables[name]) {
            case let (expected?, actual?) where expected != actual:
                lines.append("table \(name): expected \(Self.describe(expected)), got \(Self.describe(actual))")
            case (nil, _?):
                lines.append("table \(name): unexpected (not in the other snapshot)")
            case (_?, nil):
                lines.append("table \(name): missing")
            default:
                break
            }
        }
        for name in Set(sequences.keys).union(other.sequences.keys).sorted() {
            switch (other.sequences[name], sequences[name]) {
            case let (expected?, actual?) where expected != actual:
                lines.append("sequence \(name): expected last_value \(Self.describe(expected)), got \(Self.describe(actual))")
            case (nil, _?):
                lines.append("sequence \(name): unexpected (not in the other snapshot)")
            case (_?, nil):
                lines.append("sequence \(name): missing")
            default:
                break
            }
        }
        for name in Set(other.views).subtracting(views).sorted() { lines.append("view \(name): missing") }
        for name in Set(views).subtracting(other.views).sorted() { lines.append("view \(name): unexpected") }
        return lines
    }

    /// A sorted, one-line-per-object listing.
    public var description: String {
        var lines = ["DatabaseSnapshot(\(tables.count) tables, \(totalRowCount) rows, \(sequences.count) sequences, \(views.count) views)"]
        for name in tableNames { lines.append("  table \(name): \(Self.describe(tables[name]!))") }
        for name in sequences.keys.sorted() { lines.append("  sequence \(name): last_value \(Self.describe(sequences[name]!))") }
        for name in views { lines.append("  view \(name)") }
        return lines.joined(separator: "\n")
    }

    private static func describe(_ table: Table) -> String { "\(table.rowCount) rows, md5 \(table.md5)" }
    private static func describe(_ value: Int64?) -> String { value.map(String.init) ?? "null" }
}
