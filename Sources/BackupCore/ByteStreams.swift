/// Somewhere bytes go: an object being uploaded, a file, a hash. Writes are whole: a sink either takes
/// every byte or throws.
public protocol ByteSink: AnyObject {
    func write(_ bytes: UnsafeRawBufferPointer) throws
}

/// Somewhere bytes come from. `read` fills up to `buffer.count` bytes and returns how many; 0 means the end.
public protocol ByteSource: AnyObject {
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
}
