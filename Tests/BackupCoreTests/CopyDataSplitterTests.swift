import Foundation
import Testing

@testable import BackupCore

/// Cutting a table's COPY data into segments of whole rows, as several connections load them.
struct CopyDataSplitterTests {
    /// Splits `data` fed `piece` bytes at a time; the segments, or the error.
    static func split(_ data: [UInt8], segmentSize: Int, piece: Int, longRow: Int = 1 << 30) throws
        -> (segments: [[UInt8]], rows: Int64)
    {
        let (pieces, rows) = try splitPieces(data, segmentSize: segmentSize, piece: piece, longRow: longRow)
        return (pieces.map(\.bytes), rows)
    }

    static func splitPieces(_ data: [UInt8], segmentSize: Int, piece: Int, longRow: Int) throws
        -> (segments: [CopyDataSplitter.Segment], rows: Int64)
    {
        var splitter = CopyDataSplitter(segmentSize: segmentSize, longRow: longRow)
        var segments: [CopyDataSplitter.Segment] = []
        var offset = 0
        while offset < data.count {
            let end = min(data.count, offset + piece)
            if let segment = try data[offset..<end].withUnsafeBytes({ try splitter.append($0) }) {
                segments.append(segment)
            }
            offset = end
        }
        if let last = try splitter.finish() { segments.append(last) }
        return (segments, splitter.rows)
    }

    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    /// (data as pg_dump writes it, the rows that must be loaded, how many).
    static let cases: [(label: String, data: String, rows: String, count: Int64)] = [
        ("rows and the end marker with pg_dump's empty lines", "1\ta\n2\tb\n\\.\n\n\n", "1\ta\n2\tb\n", 2),
        ("an empty table: the marker alone", "\\.\n\n\n", "", 0),
        ("no data at all", "", "", 0),
        ("escaped newline, tab and backslash inside values", "1\tx\\ny\\tz\n2\t\\\\\n\\.\n", "1\tx\\ny\\tz\n2\t\\\\\n", 2),
        ("a value that is a backslash and a dot is not the marker", "1\t\\\\.\n\\\\.\n\\.\n", "1\t\\\\.\n\\\\.\n", 2),
        ("a row starting with an escaped backslash then a dot", "\\\\.\n", "\\\\.\n", 1),
        ("NULLs and empty values", "\\N\t\n\t\\N\n\n", "\\N\t\n\t\\N\n\n", 3),
        ("a last row without its newline", "1\ta\n2\tb", "1\ta\n2\tb", 2),
        ("the marker at the very end without its newline", "1\ta\n\\.", "1\ta\n", 1),
        ("a value starting with the marker's first byte", "\\x0102\n\\.\n", "\\x0102\n", 1),
    ]

    @Test("rows are kept whole and the marker is not sent, however the data arrives and is cut", arguments: cases)
    func splits(_ example: (label: String, data: String, rows: String, count: Int64)) throws {
        let data = Self.bytes(example.data)
        for segmentSize in [1, 3, 8, 1 << 20] {
            for piece in [1, 2, 5, max(1, data.count)] {
                let (segments, rows) = try Self.split(data, segmentSize: segmentSize, piece: piece)
                #expect(Array(segments.joined()) == Self.bytes(example.rows), "\(example.label) \(segmentSize)/\(piece)")
                #expect(rows == example.count, "\(example.label) \(segmentSize)/\(piece)")
                for segment in segments.dropLast() {
                    #expect(segment.last == UInt8(ascii: "\n"), "\(example.label): a segment cut inside a row")
                }
                for segment in segments {
                    #expect(!segment.isEmpty)
                }
            }
        }
    }

    @Test("anything but empty lines after the marker is refused, in the same piece or a later one")
    func afterMarker() {
        for data in ["1\ta\n\\.\n2\tb\n", "\\.\nx", "1\n\\.\n\n\n\\.\n"] {
            for piece in [1, 4, data.utf8.count] {
                #expect(throws: CopyDataSplitter.Malformed.self, "\(data) by \(piece)") {
                    try Self.split(Self.bytes(data), segmentSize: 1 << 20, piece: piece)
                }
            }
        }
    }

    @Test("a segment is cut once its whole rows reach the size, and a row longer than a segment stays whole")
    func segmentSizes() throws {
        let long = String(repeating: "x", count: 5000)
        let data = Self.bytes("a\nbb\n\(long)\ncc\nd\n")
        let (segments, rows) = try Self.split(data, segmentSize: 4, piece: 1)
        #expect(segments.map { String(decoding: $0, as: UTF8.self) } == ["a\nbb\n", "\(long)\n", "cc\nd\n"])
        #expect(rows == 5)
        // Given at once, all whole rows there are cut together.
        let (together, _) = try Self.split(data, segmentSize: 4, piece: data.count)
        #expect(together == [data])
    }

    @Test("random rows, random pieces and sizes: the same rows, each once")
    func randomRows() throws {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Self.bytes("ab\\.\tN")
        for _ in 0..<200 {
            var data: [UInt8] = []
            var expected = 0
            for _ in 0..<Int.random(in: 0...40, using: &generator) {
                var row = (0..<Int.random(in: 0...12, using: &generator)).map { _ in alphabet.randomElement()! }
                // A backslash is always followed by another byte, as COPY writes it; never the marker row.
                if row.last == UInt8(ascii: "\\") { row.append(UInt8(ascii: "N")) }
                if row == Self.bytes("\\.") { row = Self.bytes("\\\\.") }
                data += row + [10]
                expected += 1
            }
            let withMarker = data + Self.bytes("\\.\n\n\n")
            let (segments, rows) = try Self.split(
                withMarker, segmentSize: Int.random(in: 1...64, using: &generator),
                piece: Int.random(in: 1...32, using: &generator))
            #expect(Array(segments.joined()) == data)
            #expect(rows == Int64(expected))
        }
    }

    @Test("a row longer than longRow goes in pieces marked as continuing, the marker still found after it")
    func longRows() throws {
        let long = String(repeating: "y", count: 10_000)
        let data = Self.bytes("a\n\(long)\nb\n\\.\n\n")
        for piece in [1, 7, 1000, data.count] {
            let (segments, rows) = try Self.splitPieces(data, segmentSize: 3, piece: piece, longRow: 2500)
            #expect(Array(segments.map(\.bytes).joined()) == Self.bytes("a\n\(long)\nb\n"), "by \(piece)")
            #expect(rows == 3, "by \(piece)")
            // No piece holds more than longRow plus what one piece of input brought, plus a segment.
            #expect(segments.allSatisfy { $0.bytes.count <= 2500 + piece + 3 }, "by \(piece)")
            // A continuing piece never ends at a row's end followed by nothing: the next one holds the rest.
            #expect(segments.contains(where: \.continues) == (piece < data.count), "by \(piece)")
            #expect(segments.last?.continues == false)
            for (index, segment) in segments.enumerated() where !segment.continues && index < segments.count - 1 {
                #expect(segment.bytes.last == UInt8(ascii: "\n"), "by \(piece)")
            }
        }
        // A long row starting with the marker's bytes is not the marker when it continues a row.
        let tricky = Self.bytes("x" + String(repeating: "z", count: 3000) + "\\.\nnext\n")
        let (segments, rows) = try Self.splitPieces(tricky, segmentSize: 1 << 20, piece: 1, longRow: 3001)
        #expect(Array(segments.map(\.bytes).joined()) == tricky)
        #expect(rows == 2)
    }
}
