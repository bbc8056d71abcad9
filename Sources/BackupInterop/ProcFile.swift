import Foundation

/// Reads a file of /proc whole. Its size reads as 0, and Foundation's `String(contentsOfFile:)` and
/// `Data(contentsOf:)` then return only the first page (4068 bytes of a longer /proc/self/mountinfo here): a
/// file handle reads until the end.
public enum ProcFile {
    public static func contents(_ path: String) -> Data? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        return try? handle.readToEnd() ?? Data()
    }

    /// Its lines, each decoded on its own (a line that is not UTF-8 is decoded with replacement characters
    /// rather than losing the whole file).
    public static func lines(_ path: String) -> [String]? {
        contents(path).map { data in data.split(separator: UInt8(ascii: "\n")).map { String(decoding: $0, as: UTF8.self) } }
    }
}
