import Foundation

/// Cuts a table's data as `COPY … TO stdout` writes it in text format (what a pg_dump custom archive holds) into
/// segments of whole rows, so that several connections can each load some of them with `COPY … FROM stdin`.
///
/// In the text format a row ends at its newline byte, and only there: a newline, carriage return or backslash
/// inside a value is written escaped (`\n`, `\r`, `\\`), so a segment cut just after a newline byte holds whole
/// rows. The data may end with the end-of-data marker pg_dump writes, a row that is `\.` alone (a value `\.`
/// would be written `\\.`), followed by empty lines only; the marker and what follows are not rows, and are
/// never sent (each connection ends its own COPY). Anything but newlines after the marker is refused: a plain
/// pg_restore would send it to one server that would stop at the marker, so loading it elsewhere would not
/// give the same table. (A `\.` in the middle of a line, which pg_dump never writes, also ends a COPY on
/// PostgreSQL 17 and older; it is not looked for: such data, forged, would lose a different share of its rows.)
///
/// A row longer than `longRow` (PostgreSQL allows values up to 1 GB) is not held whole: it is given in pieces,
/// each marked `continues`, whose connection must also take the next piece, so that the row reaches one server
/// session in order.
///
/// Pure and without I/O; memory is at most a segment, the bytes of one `append` and `longRow`.
public struct CopyDataSplitter {
    public struct Malformed: Error, CustomStringConvertible {
        public let description: String
    }

    /// Rows to send, ending at a row's end unless `continues`: then the next segment goes on with the same row,
    /// and must be sent after it, on the same connection.
    public struct Segment: Equatable, Sendable {
        public let bytes: [UInt8]
        public let continues: Bool
    }

    /// A segment is cut once the whole rows received reach this many bytes: all of them, so a segment is at
    /// most this plus what one `append` brought.
    public let segmentSize: Int
    /// Rows cut into segments so far (the marker not counted).
    public private(set) var rows: Int64 = 0
    /// Bytes of rows so far.
    public private(set) var bytes: Int64 = 0
    /// Whether the end-of-data marker was seen.
    public private(set) var ended = false
    /// A row still incomplete past this many bytes is given in pieces.
    public let longRow: Int
    /// Whether `pending` starts inside a row, after a piece given as `continues`.
    private var continuing = false

    private var pending: [UInt8] = []
    /// Where the next row starts in `pending`; everything before it is whole rows.
    private var cursor = 0
    /// How far the search for the current row's newline has gone (so a long row is searched once).
    private var searched = 0

    public init(segmentSize: Int, longRow: Int = 4 << 20) {
        self.segmentSize = max(1, segmentSize)
        // At least the marker's length, so that a marker at the end is never given away as a piece of a row.
        self.longRow = max(3, longRow)
        pending.reserveCapacity(self.segmentSize + (64 << 10))
    }

    private static let newline = UInt8(ascii: "\n")
    private static let marker: [UInt8] = Array("\\.".utf8)

    /// Adds the next bytes; returns a segment when one is complete, or a piece of a long row.
    public mutating func append(_ data: UnsafeRawBufferPointer) throws -> Segment? {
        guard !ended else {
            guard data.allSatisfy({ $0 == Self.newline }) else { throw Self.afterMarker }
            return nil
        }
        pending.append(contentsOf: data)
        try scan(final: false)
        if cursor >= segmentSize { return cut() }
        guard pending.count - cursor >= longRow else { return nil }
        // The row under way is long: what is here goes now, the row's next bytes after it.
        cursor = pending.count
        let piece = cut(continues: true)
        continuing = true
        return piece
    }

    /// After the last bytes: the last segment, if any rows are left.
    public mutating func finish() throws -> Segment? {
        if !ended { try scan(final: true) }
        if !ended && cursor < pending.count {
            // A last row without its newline: the server takes it as a row, so it is sent as one.
            rows += 1
            cursor = pending.count
        }
        return cursor > 0 ? cut() : nil
    }

    private static let afterMarker = Malformed(description: "the table's data goes on after its end-of-data marker")

    /// Finds the rows complete in `pending` from `cursor` on, and the marker at a row's start.
    private mutating func scan(final: Bool) throws {
        let count = pending.count
        let found: (marker: Int?, cursor: Int, searched: Int, rows: Int64) = pending.withUnsafeBytes { buffer in
            let base = buffer.baseAddress!
            var cursor = self.cursor
            var searched = max(self.searched, cursor)
            var rows: Int64 = 0
            while cursor < count {
                // The marker is `\.` then a newline, or then the end of the data, at a row's start.
                let left = count - cursor
                if buffer[cursor] == Self.marker[0], cursor > 0 || !continuing {
                    if left >= 3, buffer[cursor + 1] == Self.marker[1], buffer[cursor + 2] == Self.newline {
                        return (cursor, cursor, searched, rows)
                    }
                    if left < 3 && !final { break }
                    if left == 2 && buffer[cursor + 1] == Self.marker[1] { return (cursor, cursor, searched, rows) }
                }
                guard let hit = memchr(base + searched, Int32(Self.newline), count - searched) else {
                    searched = count
                    break
                }
                cursor = base.distance(to: UnsafeRawPointer(hit)) + 1
                searched = cursor
                rows += 1
            }
            return (nil, cursor, searched, rows)
        }
        if found.cursor > 0 { continuing = false }
        cursor = found.cursor
        searched = found.searched
        rows += found.rows
        if let marker = found.marker {
            let after = pending[(marker + min(3, count - marker))...]
            guard after.allSatisfy({ $0 == Self.newline }) else { throw Self.afterMarker }
            pending.removeSubrange(marker...)
            ended = true
        }
    }

    private mutating func cut(continues: Bool = false) -> Segment {
        let segment = Array(pending[..<cursor])
        pending.removeSubrange(..<cursor)
        bytes += Int64(segment.count)
        searched = max(0, searched - cursor)
        cursor = 0
        return Segment(bytes: segment, continues: continues)
    }
}
