/// Somewhere bytes go: an object being uploaded, a file, a hash. Writes are whole: a sink either takes
/// every byte or throws.
public protocol ByteSink: AnyObject {
    func write(_ bytes: UnsafeRawBufferPointer) throws
}

/// Somewhere bytes come from. `read` fills up to `buffer.count` bytes and returns how many; 0 means the end.
public protocol ByteSource: AnyObject {
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
}

/// Bytes held in memory, read as a stream (small members: globals.sql, metadata.json).
public final class MemorySource: ByteSource {
    private let bytes: [UInt8]
    private var offset = 0

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let count = min(buffer.count, bytes.count - offset)
        guard count > 0 else { return 0 }
        bytes.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[offset..<(offset + count)])) }
        offset += count
        return count
    }
}

/// Collects what is written, up to a limit past which writing throws.
public final class MemorySink: ByteSink {
    public private(set) var bytes: [UInt8] = []
    private let limit: Int

    public init(limit: Int) { self.limit = limit }

    public func write(_ chunk: UnsafeRawBufferPointer) throws {
        guard bytes.count + chunk.count <= limit else { throw ContingencyError.failed("more than \(limit) bytes where a small file was expected") }
        bytes.append(contentsOf: chunk)
    }
}
