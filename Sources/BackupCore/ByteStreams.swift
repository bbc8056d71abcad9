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

/// One source after another, as one stream.
public final class ConcatenatedSource: ByteSource {
    private var sources: [any ByteSource]

    public init(_ sources: [any ByteSource]) { self.sources = sources.reversed() }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while let current = sources.last {
            let count = try current.read(into: buffer)
            if count > 0 { return count }
            sources.removeLast()
        }
        return 0
    }
}

/// `length` bytes of another source, after passing over its first `skip` bytes. Ends early if it does.
public final class SliceSource: ByteSource {
    private let source: any ByteSource
    private var skip: Int64
    private var remaining: Int64

    public init(_ source: any ByteSource, skip: Int64 = 0, length: Int64) {
        self.source = source
        self.skip = skip
        self.remaining = length
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while skip > 0 {
            let count = try source.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[..<Int(min(Int64(buffer.count), skip))]))
            if count == 0 { return 0 }
            skip -= Int64(count)
        }
        guard remaining > 0, !buffer.isEmpty else { return 0 }
        let count = try source.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[..<Int(min(Int64(buffer.count), remaining))]))
        remaining -= Int64(count)
        return count
    }
}
