/// The `COPY … FROM stdin;` statement a pg_dump table of contents gives for a table's data, checked to be
/// exactly that and nothing else before a restore runs it on connections of its own (a table loaded through
/// several connections at once, `SplitTableLoad`).
///
/// pg_restore runs whatever statement the dump holds; running it outside pg_restore, the restore holds it to
/// the one shape pg_dump writes (pg_dump.c `dumpTableData`: `COPY %s %s FROM stdin;\n`, with the table's
/// schema-qualified name and the column list as `fmtId` quotes them), so that a forged table of contents
/// cannot slip another statement in: anything else is refused, and the table is then loaded by pg_restore.
public struct CopyStatement: Sendable, Equatable {
    /// The schema and the table, unquoted.
    public let schema: String
    public let table: String
    /// The columns, unquoted; empty when the dump names none (all columns, in order).
    public let columns: [String]

    /// The statement, quoted again from the parts, so that only what was checked is ever sent.
    public var sql: String {
        let list = columns.isEmpty ? "" : " (" + columns.map(Self.quote).joined(separator: ", ") + ")"
        return "COPY \(Self.quote(schema)).\(Self.quote(table))\(list) FROM stdin"
    }

    /// `schema.table`, for messages.
    public var qualifiedName: String { "\(Self.quote(schema)).\(Self.quote(table))" }

    /// Parses `COPY <schema>.<table> [(<column>, …)] FROM stdin;` (with the newline pg_dump ends it with);
    /// nil for anything else.
    public init?(parsing text: String) {
        var scanner = Scanner(Array(text.utf8))
        guard scanner.take("COPY "), let schema = scanner.identifier(), scanner.take("."),
            let table = scanner.identifier(), scanner.take(" ")
        else { return nil }
        var columns: [String] = []
        if scanner.take("(") {
            repeat {
                guard let column = scanner.identifier() else { return nil }
                columns.append(column)
            } while scanner.take(", ")
            guard scanner.take(") ") else { return nil }
        } else {
            // No column list: pg_dump leaves the two spaces around the empty list (`sql` writes one).
            _ = scanner.take(" ")
        }
        guard scanner.take("FROM stdin;"), scanner.take("\n") || scanner.atEnd, scanner.atEnd else { return nil }
        self.init(schema: schema, table: table, columns: columns)
    }

    public init(schema: String, table: String, columns: [String]) {
        self.schema = schema
        self.table = table
        self.columns = columns
    }

    /// An identifier as a double-quoted SQL identifier (always quoted: the parts were unquoted when parsed).
    static func quote(_ identifier: String) -> String {
        "\"" + identifier.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    private struct Scanner {
        let bytes: [UInt8]
        var offset = 0

        init(_ bytes: [UInt8]) { self.bytes = bytes }

        var atEnd: Bool { offset == bytes.count }

        mutating func take(_ literal: String) -> Bool {
            let wanted = Array(literal.utf8)
            guard bytes.count - offset >= wanted.count, Array(bytes[offset..<offset + wanted.count]) == wanted else {
                return false
            }
            offset += wanted.count
            return true
        }

        /// An identifier as `fmtId` writes it: bare (lower-case letters, digits, `_` and `$`, not starting with
        /// a digit or `$`), or double-quoted with `""` for a quote inside. A NUL or a control character is
        /// refused either way.
        mutating func identifier() -> String? {
            guard offset < bytes.count else { return nil }
            if bytes[offset] == UInt8(ascii: "\"") {
                var name: [UInt8] = []
                var index = offset + 1
                while index < bytes.count {
                    let byte = bytes[index]
                    if byte == UInt8(ascii: "\"") {
                        if index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "\"") {
                            name.append(byte)
                            index += 2
                            continue
                        }
                        guard !name.isEmpty else { return nil }
                        offset = index + 1
                        return String(decoding: name, as: UTF8.self)
                    }
                    guard byte >= 0x20, byte != 0x7F else { return nil }
                    name.append(byte)
                    index += 1
                }
                return nil
            }
            func isStart(_ byte: UInt8) -> Bool { (0x61...0x7A).contains(byte) || byte == UInt8(ascii: "_") }
            func isPart(_ byte: UInt8) -> Bool {
                isStart(byte) || (0x30...0x39).contains(byte) || byte == UInt8(ascii: "$")
            }
            guard isStart(bytes[offset]) else { return nil }
            let start = offset
            while offset < bytes.count, isPart(bytes[offset]) { offset += 1 }
            return String(decoding: bytes[start..<offset], as: UTF8.self)
        }
    }
}
