// libFuzzer target: a table's data block in a pg_dump custom archive, as restore-job splits a large table's rows
// across connections (CustomDumpDataBlock, CopyDataSplitter), and the COPY statements it runs (CopyStatement).
import BackupCore
import BackupInterop

/// The rows of `block`'s data, cut at `segmentSize`: the segments, or nil when the input is refused.
private func split(_ block: [UInt8], segmentSize: Int, bufferSize: Int, longRow: Int) -> [CopyDataSplitter.Segment]? {
    do {
        var reader = try CustomDumpDataBlock(
            source: MemorySource(block), intSize: 4, dumpId: 7, bufferSize: bufferSize)
        var splitter = CopyDataSplitter(segmentSize: segmentSize, longRow: longRow)
        var segments: [CopyDataSplitter.Segment] = []
        try reader.forEachRun { run in
            if let segment = try splitter.append(run) { segments.append(segment) }
        }
        if let last = try splitter.finish() { segments.append(last) }
        return segments
    } catch {
        return nil
    }
}

/// Any input: no trap; every segment but the last ends at a row's end; and the same rows however the data is cut
/// and read (what several connections loading one table rely on).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCopyData(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    // A data block of entry 7 around the input, cut into chunks where the input has a 0xFF byte.
    var block: [UInt8] = [1, 0, 7, 0, 0, 0]
    for chunk in bytes.split(separator: 0xFF, omittingEmptySubsequences: true) {
        block += [0, UInt8(chunk.count & 0xFF), UInt8(chunk.count >> 8 & 0xFF), UInt8(chunk.count >> 16 & 0xFF), 0]
        block += chunk
    }
    block += [0, 0, 0, 0, 0]
    let whole = split(block, segmentSize: 1 << 20, bufferSize: 1 << 16, longRow: 1 << 30)
    let small = split(
        block, segmentSize: 1 + Int(bytes.first ?? 0) % 16, bufferSize: 64, longRow: 1 + Int(bytes.last ?? 0) % 40)
    precondition((whole == nil) == (small == nil), "refused one way, not the other")
    if let whole, let small {
        precondition(
            whole.map(\.bytes).joined().elementsEqual(small.map(\.bytes).joined()), "different rows when cut differently")
        for segment in small.dropLast() where !segment.continues {
            precondition(segment.bytes.last == UInt8(ascii: "\n"), "a segment that does not end at a row's end")
        }
        precondition(whole.allSatisfy { !$0.continues }, "a piece of a row shorter than longRow")
    }
    // A statement that parses is the one it gives back.
    if let statement = CopyStatement(parsing: String(decoding: bytes, as: UTF8.self)) {
        precondition(CopyStatement(parsing: statement.sql + ";\n") == statement, "not the statement it parsed")
    }
    return 0
}
